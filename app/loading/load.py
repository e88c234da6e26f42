"""Entry points of the loading stage: one path -> Volume, and many paths -> cases plus decision records.

* :func:`load_volume`: a NIfTI/NRRD file (RAS), a DICOM file or a folder holding exactly one DICOM image
  series (LPS; convert with ``Volume.in_space``).
* :func:`discover_inputs`: any mix of NIfTI/NRRD files, folders of them, series folders and DICOM trees ->
  :class:`~app.loading.cases.Case` records (lazy: nothing but DICOM headers is read) and
  :class:`~app.loading.decisions.Decision` records for the batch report.

The DICOM stack (pydicom) is imported only when DICOM input is met, so NIfTI-only use needs no DICOM packages.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import InputError
from app.loading.cases import Case, CaseKind, file_case_id, short_hash, volume_kind
from app.loading.decisions import Decision
from app.volume import Volume

if TYPE_CHECKING:
    from app.loading.dicom.filters import SeriesFilter
    from app.loading.options import ReadOptions

logger = logging.getLogger(__name__)


def load_volume(
    path: str | Path,
    *,
    modality: str | None = None,
    filters: Sequence[str | SeriesFilter] = (),
    options: ReadOptions | None = None,
) -> Volume:
    """Read one volume.

    Args:
        path: ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr`` file, a DICOM file, or a folder with one DICOM image series
            (after the ``modality``/``filters`` rules; non-image objects and localizers do not count).
        modality, filters: series selection rules, see :func:`app.loading.dicom.discover.discover_series`.
        options: size limit and orientation policy (:class:`~app.loading.options.ReadOptions`), or for DICOM a
            :class:`~app.loading.dicom.options.DicomReadOptions` with the stack tolerances too.

    Returns:
        NIfTI/NRRD in ``"RAS"``, DICOM in ``"LPS"`` (``volume.in_space("RAS")`` to convert).

    Raises:
        InputError: missing path, unknown format, no or several series in the folder, or an unreadable volume.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    kind = volume_kind(path) if path.is_file() else None
    if kind is not None:
        return Case(file_case_id(path), kind, path).load(options)
    from app.loading.dicom.discover import discover_series
    from app.loading.dicom.fileformat import is_dicom_file
    from app.loading.walk import walk_files

    if path.is_file() and not is_dicom_file(path):
        raise InputError(path, "not a NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), PNG/TIFF or DICOM file")
    series, decisions = discover_series(walk_files([path]), modality=modality, filters=filters)
    if len(series) == 1:
        return Case(series[0].case_id, "dicom", series[0].folder, series[0]).load(options)
    if not series:
        reasons = list(dict.fromkeys(d.reason for d in decisions if d.action == "skipped"))
        detail = f": {'; '.join(reasons[:5])}" if reasons else " (no DICOM files found)"
        raise InputError(path, f"no usable DICOM image series{detail}")
    listing = ", ".join(f"{s.case_id} ({s.modality} {s.series_description!r})" for s in series[:10])
    raise InputError(
        path,
        f"{len(series)} image series found ({listing}); give one series folder, or select one "
        "with the modality/filters rules (e.g. SeriesDescription~T1)",
    )


def discover_inputs(
    paths: Iterable[str | Path],
    modality: str | None = None,
    filters: Sequence[str | SeriesFilter] = (),
    *,
    pictures: bool = True,
    exclude: Sequence[str | Path] = (),
) -> tuple[list[Case], list[Decision]]:
    """Find every case in ``paths`` (files or folders, any depth), reading DICOM headers only.

    NIfTI/NRRD files each become a case (``modality``/``filters`` cannot be checked on them and do not apply),
    and so do PNG/TIFF pictures when ``pictures`` (a 2D bundle; otherwise each is skipped with a decision, so a
    stray preview image in a DICOM tree is not a failed case); all other files are handed to DICOM discovery,
    which groups them into series and applies the rules. A file reached twice is one case: the same path given
    again silently, another name for it (a link) with a decision naming both. Files under ``exclude`` (the
    run's OUT, when it lies inside an input) are not inputs: one decision per folder counts them.

    Returns:
        ``(cases, decisions)``: file cases first (in walk order), then DICOM series; case ids are unique
        (:mod:`app.loading.cases`: a file stem shared by several files gets a hash of each one's path under its
        input, never a number that depends on which other files exist).

    Raises:
        InputError: a path does not exist, or a filter is malformed.
    """
    from app.loading.walk import walk_files

    decisions: list[Decision] = []
    files: list[tuple[Path, Path, CaseKind, str]] = []  # (file, the input it was found under, kind, stem id)
    first_name: dict[Path, Path] = {}
    excluded = [Path(e).resolve() for e in exclude]
    left_out: dict[Path, int] = {}
    others: list[Path] = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise InputError(root, "input does not exist")
        for file in walk_files([root]):
            resolved = file.resolve()
            inside = next((e for e in excluded if resolved.is_relative_to(e)), None)
            if inside is not None:
                left_out[inside] = left_out.get(inside, 0) + 1
                continue
            name = Path(os.path.abspath(file))
            if resolved in first_name:
                if name != first_name[resolved]:  # another name, not the same path again
                    reason = (
                        f"the same file as {first_name[resolved]} (a link); segmented once, under that name"
                    )
                    decisions.append(Decision("skipped", "file", str(file), reason).log(logger))
                continue
            first_name[resolved] = name
            kind = volume_kind(file)
            if kind is None:
                others.append(file)
                continue
            if kind == "picture" and not pictures:
                reason = "a PNG/TIFF picture; the bundle segments 3D volumes"
                decisions.append(Decision("skipped", "file", str(file), reason).log(logger))
                continue
            files.append((file, root, kind, file_case_id(file)))
    for folder, count in left_out.items():
        reason = f"{count} file(s) in this run's output folder; outputs are not inputs"
        decisions.append(Decision("skipped", "folder", str(folder), reason, n_files=count).log(logger))
    cases: list[Case] = []
    ids: set[str] = set()
    stems = Counter(stem for _, _, _, stem in files)
    for file, root, kind, stem in files:
        # a stem shared by several files: each gets a hash of its path under its input, so that a case's id does
        # not depend on which other files exist (--resume, --shard)
        wanted = stem if stems[stem] == 1 else f"{stem}-{short_hash(_relative(file, root))}"
        case_id = _unique(wanted, ids)
        cases.append(Case(case_id, kind, file))
        decisions.append(Decision("taken", "input", str(file), f"{kind} file", case_id).log(logger))
    if others:  # pydicom is imported only when there are files to look at as DICOM
        from app.loading.dicom.discover import discover_series

        series, dicom_decisions = discover_series(others, modality=modality, filters=filters)
        decisions.extend(dicom_decisions)
        for s in series:
            cases.append(Case(_unique(s.case_id, ids), "dicom", s.folder, s))
    return cases, decisions


def _relative(file: Path, root: Path) -> str:
    """``file``'s path from the folder holding the input ``root`` it was found under (``in/site_a/case.nii.gz``
    for the input ``in``; ``site_a/case.nii.gz`` for the input ``in/site_a`` or the file itself), so inputs given
    one folder each still differ."""
    base = root.parent if root.is_dir() else root.parent.parent
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return os.path.abspath(file)


def _unique(case_id: str, used: set[str]) -> str:
    candidate, n = case_id, 1
    while candidate in used:
        n += 1
        candidate = f"{case_id}-{n}"
    used.add(candidate)
    return candidate
