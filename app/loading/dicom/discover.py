"""Find the DICOM image series in a folder tree and select the ones to segment, recording every decision.

Walk (:func:`app.loading.walk.walk_files`, re-exported here): any depth, sorted, hidden files and folders (``.name``) and ``DICOMDIR`` skipped.
DICOM files are Part 10 files and raw data sets without the preamble (old PACS exports, ACR-NEMA-style archives;
:func:`app.loading.dicom.fileformat.is_dicom_file`), which are read like the others. Files that are neither
(text, pictures, archives, ...) are skipped silently (debug log): clutter in a DICOM tree is no decision.

A file cut short before its pixel data (:attr:`InstanceHeader.truncated`) is never dropped: it stays in its series,
whose case then fails naming it (:mod:`app.loading.dicom.reader`). When the cut took its Study/SeriesInstanceUID,
it joins the one series that has files in its folder; with none or several there, it is a skipped-file decision
(warning) saying it is truncated.

Per file (:func:`discover_series`): headers only (``specific_tags``, ``stop_before_pixels``). Files are grouped
by StudyInstanceUID and SeriesInstanceUID (blank UIDs: by folder, Modality and SeriesNumber, with a warning).
Then, per series, in this order:

1. non-image objects (SEG, RTSTRUCT, SR, PR, KO, ... by SOP Class UID and Modality) are dropped;
2. localizers are dropped: ImageType contains ``LOCALIZER``, or the image's normal is orthogonal
   (|cos| < 0.1) to the orientation shared by a strict majority of the series' images;
3. series of colour, MOSAIC or bit-packed images are skipped (the reader would refuse them);
4. the default modality (from the bundle) must match, if given;
5. every user filter (:mod:`app.loading.dicom.filters`) must match, on the series' first image.

Everything is returned as :class:`~app.loading.decisions.Decision` records and logged to this module's
logger; no patient name or ID is ever read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.loading.cases import dicom_case_id
from app.loading.decisions import Decision
from app.loading.dicom.classify import (
    is_localizer,
    non_image_object_reason,
    non_image_reason,
    unsupported_image_reason,
)
from app.loading.dicom.fileformat import is_dicom_file
from app.loading.dicom.filters import SeriesFilter, parse_filters
from app.loading.dicom.header import InstanceHeader, read_header

logger = logging.getLogger(__name__)

#: |cos| between two slice normals below which they count as orthogonal (about 84 degrees or more)
ORTHOGONAL_COS = 0.1


@dataclass(frozen=True)
class DicomSeries:
    """A selected image series: its identity and the headers of its files (sorted by path)."""

    case_id: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    folder: Path
    instances: tuple[InstanceHeader, ...]


def discover_series(
    files: Iterable[Path],
    *,
    modality: str | None = None,
    filters: Sequence[str | SeriesFilter] = (),
) -> tuple[list[DicomSeries], list[Decision]]:
    """Group DICOM ``files`` into series and select the image series that pass the rules (module docstring).

    Args:
        files: candidate files (non-DICOM ones are skipped silently).
        modality: required Modality (e.g. ``"CT"`` from the bundle metadata), or ``None`` for any.
        filters: ``Key=Value`` / ``Key~Regex`` rules, all of which must match.

    Returns:
        ``(series, decisions)``: the selected series sorted by study, SeriesNumber and UID, and one decision per
        skipped file/series and per selected series.

    Raises:
        InputError: a filter is malformed.
    """
    rules = parse_filters(filters)
    decisions: list[Decision] = []
    groups: dict[tuple[str, str], list[InstanceHeader]] = {}
    extra = tuple(dict.fromkeys(r.keyword for r in rules))
    orphans: list[InstanceHeader] = []
    for path in files:
        if not is_dicom_file(path):
            logger.debug("skip %s: not a DICOM file", path)
            continue
        try:
            header = read_header(path, extra)
        except InputError as exc:
            decisions.append(Decision("skipped", "file", str(path), exc.reason).log(logger, logging.WARNING))
            continue
        if header.truncated and not (header.study_instance_uid and header.series_instance_uid):
            orphans.append(header)
            continue
        groups.setdefault(_series_key(header), []).append(header)
    decisions.extend(_place_orphans(orphans, groups))

    selected: list[DicomSeries] = []
    for key in sorted(groups, key=lambda k: (k[0], groups[k][0].series_number or 0, k[1])):
        series, series_decisions = _select(key, groups[key], modality, rules)
        decisions.extend(series_decisions)
        if series is not None:
            selected.append(series)
    return selected, decisions


def _series_key(h: InstanceHeader) -> tuple[str, str]:
    folder = str(h.path.parent.resolve())
    study = h.study_instance_uid or f"folder:{folder}"
    series = h.series_instance_uid or f"folder:{folder}|{h.modality}|{h.series_number}"
    return study, series


def _place_orphans(
    orphans: Sequence[InstanceHeader], groups: dict[tuple[str, str], list[InstanceHeader]]
) -> list[Decision]:
    """Put each truncated file whose UIDs were cut off into the one series with files in its folder."""
    decisions = []
    for orphan in orphans:
        folder = orphan.path.parent
        near = [key for key, headers in groups.items() if any(h.path.parent == folder for h in headers)]
        if len(near) == 1:
            logger.warning("%s: %s; counted in the series of its folder", orphan.path, orphan.truncated)
            groups[near[0]].append(orphan)
            continue
        which = "no series" if not near else f"{len(near)} series"
        reason = (
            f"{orphan.truncated}. Its Study/SeriesInstanceUID are cut off and its folder holds {which}, so it "
            "cannot be told which series it belongs to"
        )
        decisions.append(Decision("skipped", "file", str(orphan.path), reason).log(logger, logging.WARNING))
    return decisions


def _select(
    key: tuple[str, str], headers: list[InstanceHeader], modality: str | None, rules: Sequence[SeriesFilter]
) -> tuple[DicomSeries | None, list[Decision]]:
    """Select the series of ``headers`` (module docstring), its truncated files judged by the complete ones."""
    headers = sorted(headers, key=lambda h: str(h.path))
    truncated = [h for h in headers if h.truncated and non_image_object_reason(h) is None]
    complete = [h for h in headers if not h.truncated]
    if not complete:  # every file cut short: a case that fails naming them, never a silent skip
        return _truncated_series(key, truncated)
    series, decisions = _select_complete(key, complete, modality, rules)
    if series is None or not truncated:
        return series, decisions
    taken = decisions.pop()
    n = len(series.instances) + len(truncated)
    reason = f"{taken.reason}; {len(truncated)} of its {n} files are truncated (the case fails)"
    decisions.append(
        Decision("taken", "series", taken.path, reason, taken.case_id, n).log(logger, logging.WARNING)
    )
    return replace(series, instances=(*series.instances, *truncated)), decisions


def _truncated_series(
    key: tuple[str, str], truncated: list[InstanceHeader]
) -> tuple[DicomSeries | None, list[Decision]]:
    if not truncated:  # truncated non-image objects only
        return None, []
    first = truncated[0]
    case_id = dicom_case_id(key[0], first.series_number, key[1])
    folder = _common_folder([h.path for h in truncated])
    reason = f"{len(truncated)} file(s), all truncated (the case fails)"
    decision = Decision("taken", "series", str(folder), reason, case_id, len(truncated)).log(
        logger, logging.WARNING
    )
    return _series(case_id, folder, truncated), [decision]


def _select_complete(
    key: tuple[str, str], headers: list[InstanceHeader], modality: str | None, rules: Sequence[SeriesFilter]
) -> tuple[DicomSeries | None, list[Decision]]:
    first = headers[0]
    case_id = dicom_case_id(key[0], first.series_number, key[1])
    folder = _common_folder([h.path for h in headers])
    decisions: list[Decision] = []

    def skip_series(reason: str, n: int) -> tuple[None, list[Decision]]:
        decisions.append(Decision("skipped", "series", str(folder), reason, case_id, n).log(logger))
        return None, decisions

    if not first.series_instance_uid or not first.study_instance_uid:
        logger.warning(
            "%s: %d files without Study/SeriesInstanceUID, grouped by folder", folder, len(headers)
        )

    images = [h for h in headers if non_image_reason(h) is None]
    if not images:
        return skip_series(non_image_reason(first) or "no images", len(headers))
    for h in headers:
        reason = non_image_reason(h)
        if reason is not None:
            decisions.append(Decision("skipped", "file", str(h.path), reason, case_id).log(logger))

    if all(is_localizer(h) for h in images):
        return skip_series("localizer series (ImageType LOCALIZER)", len(images))
    images = _drop_localizers(images, case_id, decisions)

    reason = unsupported_image_reason(images[0])
    if reason:
        return skip_series(reason, len(images))
    if modality and first.modality != modality.upper():
        return skip_series(
            f"Modality {first.modality or '(none)'} is not the required {modality.upper()}", len(images)
        )
    for rule in rules:
        value = images[0].attributes.get(rule.keyword, "")
        if not rule.matches(value):
            return skip_series(f"filter {rule} not matched ({rule.keyword} is {value!r})", len(images))

    description = f" {first.series_description!r}" if first.series_description else ""
    reason = (
        f"{len(images)} image file(s), Modality {first.modality or '(none)'}, "
        f"SeriesNumber {first.series_number}{description}"
    )
    decisions.append(Decision("taken", "series", str(folder), reason, case_id, len(images)).log(logger))
    return _series(case_id, folder, images), decisions


def _series(case_id: str, folder: Path, instances: Sequence[InstanceHeader]) -> DicomSeries:
    """The series of ``instances``, its identity read from the first of them."""
    first = instances[0]
    return DicomSeries(
        case_id=case_id,
        study_instance_uid=first.study_instance_uid,
        series_instance_uid=first.series_instance_uid,
        modality=first.modality,
        series_number=first.series_number,
        series_description=first.series_description,
        folder=folder,
        instances=tuple(instances),
    )


def _drop_localizers(
    images: list[InstanceHeader], case_id: str, decisions: list[Decision]
) -> list[InstanceHeader]:
    kept = []
    for h in images:
        if is_localizer(h):
            decisions.append(
                Decision("skipped", "file", str(h.path), "localizer (ImageType LOCALIZER)", case_id).log(
                    logger
                )
            )
        else:
            kept.append(h)
    normals = [_normal(h) for h in kept]
    known = [n for n in normals if n is not None]
    if len(known) < 3:
        return kept
    # the orientation a strict majority shares (|cos| ~ 1 counts as the same stack direction)
    majority = next(
        (n for n in known if sum(abs(float(n @ m)) > 1 - 1e-3 for m in known) * 2 > len(known)), None
    )
    if majority is None:
        return kept
    result = []
    for h, n in zip(kept, normals, strict=True):
        if n is not None and abs(float(n @ majority)) < ORTHOGONAL_COS:
            decisions.append(
                Decision(
                    "skipped",
                    "file",
                    str(h.path),
                    "localizer: orientation orthogonal to the series' other images",
                    case_id,
                ).log(logger)
            )
        else:
            result.append(h)
    return result


def _normal(h: InstanceHeader) -> np.ndarray | None:
    o = h.frames[0].orientation
    if o is None or len(o) != 6 or not np.all(np.isfinite(o)):
        return None
    n = np.cross(o[:3], o[3:])
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else None


def _common_folder(paths: Sequence[Path]) -> Path:
    folder = paths[0].parent
    while any(folder not in p.parents for p in paths) and folder != folder.parent:
        folder = folder.parent
    return folder
