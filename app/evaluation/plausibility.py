"""Plausibility of a prediction and of an input, judged against the bundle's training data.

Contract:

* :func:`label_flags` returns the :class:`~app.evaluation.statistics.Flag` list of one case's statistics:
  ``empty`` (a label the bundle segments has no voxel; needs no ranges), and with the bundle's
  :class:`~app.bundle_ranges.BundleRanges`: ``volume`` (a label's volume far from the training range),
  ``components`` (more connected components than any training label had), ``intensity`` (the mean intensity
  inside a label far from the training range), and for membrane/cell pictures ``membrane_fraction``,
  ``cells`` and ``cell_area``;
* :func:`input_warnings` returns one sentence per way the input image lies far from the training images (field
  of view, voxel spacing, intensity percentiles), for the case record's warnings; ``[]`` without ranges.

"Far" is :meth:`app.bundle_ranges.Range.far` with the ranges' own ``margin``. Nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from app.bundle_ranges import BundleRanges, Range
from app.evaluation.statistics import CaseStatistics, Flag
from app.volume import Volume

#: at most this many voxels are sampled for an input's intensity percentiles (a fixed-stride subsample)
INTENSITY_SAMPLE = 2_000_000


def label_flags(
    stats: CaseStatistics, ranges: BundleRanges | None, *, expected: Mapping[int, str] | None = None
) -> list[Flag]:
    """The flags of ``stats`` (module docstring); ``expected``: labels that must not be empty (default all)."""
    flags: list[Flag] = []
    must = set(expected.values()) if expected is not None else {s.name for s in stats.labels}
    for s in stats.labels:
        if s.voxels == 0:
            if s.name in must:
                flags.append(
                    Flag(s.name, "empty", f"{s.name}: no voxel labelled, but the bundle segments it")
                )
            continue
        entry = ranges.labels.get(s.name) if ranges is not None else None
        if entry is None or ranges is None:
            continue
        margin = ranges.margin
        if (
            entry.volume_ml is not None
            and s.volume_ml is not None
            and entry.volume_ml.far(s.volume_ml, margin)
        ):
            flags.append(
                Flag(
                    s.name, "volume", f"{s.name}: {s.volume_ml:.3g} mL, training {entry.volume_ml.text()} mL"
                )
            )
        if entry.components_max is not None and s.components > entry.components_max:
            flags.append(
                Flag(
                    s.name,
                    "components",
                    f"{s.name}: {s.components} connected components, training at most {entry.components_max}",
                )
            )
        if entry.intensity_mean is not None and s.intensity is not None:
            if entry.intensity_mean.far(s.intensity.mean, margin):
                flags.append(
                    Flag(
                        s.name,
                        "intensity",
                        f"{s.name}: mean intensity {s.intensity.mean:.4g} {stats.intensity_unit}, "
                        f"training {entry.intensity_mean.text('{:.4g}')}".replace("  ", " "),
                    )
                )
    if stats.cells is not None and ranges is not None and ranges.cells is not None:
        cells, expected_cells, margin = stats.cells, ranges.cells, ranges.margin
        for code, value, allowed, unit in (
            ("membrane_fraction", cells.membrane_fraction, expected_cells.membrane_fraction, ""),
            ("cells", float(cells.cells), expected_cells.cells, ""),
            ("cell_area", cells.cell_area_median_px, expected_cells.cell_area_median_px, " px (median)"),
        ):
            if allowed is not None and value is not None and allowed.far(value, margin):
                flags.append(
                    Flag(
                        "cells",
                        code,
                        f"{code.replace('_', ' ')} {value:.3g}{unit}, training {allowed.text()}",
                    )
                )
    return flags


def input_warnings(volume: Volume, ranges: BundleRanges | None) -> list[str]:
    """Sentences for an input far from the training images (module docstring)."""
    if ranges is None:
        return []
    expected, margin, found = ranges.inputs, ranges.margin, []
    if expected.fov_mm is not None and volume.ndim == 3:
        fov = field_of_view_mm(volume)
        if any(r.far(v, margin) for r, v in zip(expected.fov_mm, fov, strict=True)):
            found.append(
                "field of view "
                + " x ".join(f"{v:.0f}" for v in fov)
                + " mm (RAS x, y, z) is far from the training images' "
                + " x ".join(r.text("{:.0f}") for r in expected.fov_mm)
                + " mm; the bundle may not have seen anything like this input"
            )
    if expected.spacing_mm is not None and volume.ndim == 3:
        spacing = volume.spacing
        if any(expected.spacing_mm.far(float(v), margin) for v in spacing):
            found.append(
                "voxel spacing "
                + " x ".join(f"{v:.3g}" for v in spacing)
                + f" mm is far from the training images' {expected.spacing_mm.text()} mm"
            )
    checks = (
        ("median", 50, expected.intensity_median),
        ("5th percentile", 5, expected.intensity_p5),
        ("95th percentile", 95, expected.intensity_p95),
    )
    if any(r is not None for _, _, r in checks):
        values = intensity_percentiles(volume.array)
        unit = f" {ranges.intensity_unit}" if ranges.intensity_unit else ""
        far = [
            f"{what} {values[q]:.4g}{unit} (training {r.text('{:.4g}')})"
            for what, q, r in checks
            if isinstance(r, Range) and r.far(values[q], margin)
        ]
        if far:
            found.append("image intensity far from the training images: " + ", ".join(far))
    return found


def field_of_view_mm(volume: Volume) -> tuple[float, float, float]:
    """Extent of the voxel centres along RAS x, y, z (mm): independent of the array's axis order."""
    shape = np.array(volume.shape[:3]) - 1
    corners = np.array([[i, j, k] for i in (0, shape[0]) for j in (0, shape[1]) for k in (0, shape[2])])
    world = volume.in_space("RAS").world_coordinates(corners)
    extent = world.max(axis=0) - world.min(axis=0)
    return (float(extent[0]), float(extent[1]), float(extent[2]))


def intensity_percentiles(array: np.ndarray) -> dict[int, float]:
    """5th, 50th and 95th percentile of the image (a fixed-stride subsample of large images)."""
    flat = np.asarray(array).ravel()
    step = max(1, flat.size // INTENSITY_SAMPLE)
    values = np.percentile(flat[::step].astype(np.float64), [5, 50, 95])
    return {5: float(values[0]), 50: float(values[1]), 95: float(values[2])}
