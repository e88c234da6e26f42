"""What a person needs to judge one case without a reference: statistics, flags and a preview, in OUT.

Contract of :func:`describe_case` (called by :func:`app.batch.case.run_case` after segmenting): computes the
prediction's :class:`~app.evaluation.statistics.CaseStatistics` on the image (labels: the bundle's
``channel_def`` without the background; a 2D bundle with a ``cell`` label also gets the membrane/cell
statistics), adds the plausibility flags (:func:`app.evaluation.plausibility.label_flags`, with the bundle's
``unetseg_ranges`` when it has them), writes ``OUT/<case_id>/statistics.json`` and, when ``preview``,
``OUT/<case_id>/preview.png`` (:func:`app.reporting.preview.preview_png`), both atomically, and returns the
statistics and the written files. :func:`input_warnings` gives the sentences for an input far from the
training images. Flags are logged as warnings; they never fail a case.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from app.batch.records import OutputFile
from app.bundle_metadata import read_metadata, without_background
from app.bundle_ranges import BundleRanges, read_ranges
from app.evaluation import plausibility
from app.evaluation.statistics import CaseStatistics, case_statistics, intensity_unit
from app.inference.bundle_info import BundleInfo
from app.reporting.atomic import write_atomic
from app.run_layout import PREVIEW_NAME, STATISTICS_NAME
from app.volume import Volume

logger = logging.getLogger(__name__)


def bundle_ranges(info: BundleInfo) -> BundleRanges | None:
    """The bundle's ``unetseg_ranges`` (:mod:`app.bundle_ranges`), or ``None``.

    Raises:
        BundleError: the key is malformed.
    """
    return read_ranges(read_metadata(info.path), str(info.metadata_file))


def input_warnings(info: BundleInfo, volume: Volume, modality: str | None = None) -> list[str]:
    """Sentences for ``volume`` lying far from ``info``'s training images (field of view, spacing, intensity:
    ``[]`` without ranges), and for a ``modality`` (the input's own) other than the bundle's, which only runs
    with ``--modality any``."""
    found = plausibility.input_warnings(volume, bundle_ranges(info))
    if modality and info.modality and modality.upper() != info.modality.upper():
        found.insert(0, f"modality {modality}, but the bundle was trained on {info.modality} images")
    return [f"input far from the training data of bundle {info.name!r}: {w}" for w in found]


def describe_case(
    case_id: str,
    image: Volume,
    labels: Volume,
    info: BundleInfo,
    case_dir: Path,
    *,
    modality: str | None,
    picture: bool,
    preview: bool = True,
) -> tuple[CaseStatistics, list[OutputFile]]:
    """Statistics, flags, ``statistics.json`` and ``preview.png`` of one case (module docstring).

    Raises:
        OutputError: a file cannot be written.
    """
    names = without_background(info.labels)
    cell_label = (
        next((v for v, n in names.items() if n.lower() == "cell"), None) if info.spatial_dims == 2 else None
    )
    stats = case_statistics(
        image, labels, names, intensity_unit=intensity_unit(modality), cell_label=cell_label
    )
    flags = plausibility.label_flags(stats, bundle_ranges(info), expected=names)
    stats = CaseStatistics(stats.space, stats.intensity_unit, stats.labels, stats.cells, tuple(flags))
    for flag in flags:
        logger.info("case %s: check the result: %s", case_id, flag.message)  # in the record; printed once
    path = write_atomic(case_dir / STATISTICS_NAME, json.dumps(stats.to_dict(), indent=2) + "\n")
    written = [OutputFile.of("statistics", path)]
    if preview:
        from app.reporting.preview import preview_png  # matplotlib: only when a preview is drawn

        # membrane/cell pictures: the membrane over the picture (a cell fill would cover everything)
        shown = {v: n for v, n in names.items() if v != cell_label} or names
        title = f"{case_id}" + (f": {len(flags)} flag(s)" if flags else "")
        png = preview_png(image, labels, shown, modality=modality, picture=picture, title=title)
        written.append(OutputFile.of("preview", write_atomic(case_dir / PREVIEW_NAME, png)))
    return stats, written
