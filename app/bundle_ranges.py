"""What a bundle's training data looked like: the ``unetseg_ranges`` key of ``configs/metadata.json``.

Written once per bundle by ``scripts/bundle_ranges.py`` (percentiles over the training cases of the bundle's
``configs/datalist.json``), read here, used by :mod:`app.evaluation.plausibility` to flag a prediction (a label's
volume, its number of connected components, the mean intensity inside it) or an input (field of view, voxel
spacing, intensity) far from the training data. A bundle without the key gets no range flags and no input
warnings. Standard library only, like :mod:`app.bundle_metadata`.

The key (every range is ``[low, high]``, the ``percentiles`` of the training values; units in the names)::

    "unetseg_ranges": {
        "description": "...", "percentiles": [1, 99], "margin": 0.25, "n_cases": 168,
        "cases": "configs/datalist.json training", "intensity_unit": "stored MR values",
        "inputs": {"fov_mm": [[x lo, x hi], [y lo, y hi], [z lo, z hi]], "spacing_mm": [lo, hi],
                   "intensity_median": [lo, hi], "intensity_p5": [lo, hi], "intensity_p95": [lo, hi]},
        "labels": {"anterior": {"volume_ml": [lo, hi], "components_max": 1, "intensity_mean": [lo, hi]}, ...},
        "cells": {"membrane_fraction": [lo, hi], "cells": [lo, hi], "cell_area_median_px": [lo, hi]}
    }

``fov_mm`` is the extent of the image's voxel centres along the RAS x, y, z axes (so it does not depend on the
array's axis order); ``spacing_mm`` covers every axis's voxel size. A value is *far* from its range when it lies
more than ``margin`` times the range's width (at least half its upper end) outside it (:meth:`Range.far`); ``components_max`` is the largest
count seen in training, exceeded by any larger count. ``labels``/``cells`` entries are optional one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import BundleError

RANGES_KEY = "unetseg_ranges"


@dataclass(frozen=True)
class Range:
    """``[low, high]`` of a training distribution (the metadata's ``percentiles``)."""

    low: float
    high: float

    def far(self, value: float, margin: float) -> bool:
        """Whether ``value`` lies more than ``margin`` x the range's width outside it; the width counts as at least
        half of ``|high|``, so that a range of one value (every training image at 1 mm spacing) allows some slack."""
        slack = margin * max(self.high - self.low, abs(self.high) * 0.5, 1e-9)
        return bool(value < self.low - slack or value > self.high + slack)

    def text(self, fmt: str = "{:.3g}") -> str:
        return f"{fmt.format(self.low)}-{fmt.format(self.high)}"

    def to_list(self) -> list[float]:
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class LabelRange:
    """One label's training ranges (each optional)."""

    volume_ml: Range | None = None
    components_max: int | None = None
    intensity_mean: Range | None = None


@dataclass(frozen=True)
class InputRange:
    """The training images' geometry and intensities (each optional)."""

    fov_mm: tuple[Range, Range, Range] | None = None
    spacing_mm: Range | None = None
    intensity_median: Range | None = None
    intensity_p5: Range | None = None
    intensity_p95: Range | None = None


@dataclass(frozen=True)
class CellRange:
    """2D membrane/cell bundles: the training labels' membrane fraction, cells per picture, median cell area."""

    membrane_fraction: Range | None = None
    cells: Range | None = None
    cell_area_median_px: Range | None = None


@dataclass(frozen=True)
class BundleRanges:
    """The ``unetseg_ranges`` key, typed (module docstring)."""

    percentiles: tuple[float, float]
    margin: float
    n_cases: int
    inputs: InputRange
    labels: Mapping[str, LabelRange]
    cells: CellRange | None = None
    intensity_unit: str = ""


def read_ranges(metadata: Mapping[str, Any], source: str = "metadata.json") -> BundleRanges | None:
    """The bundle's ranges, or ``None`` when ``metadata`` has no ``unetseg_ranges`` key.

    Raises:
        BundleError: (naming ``source``) the key is there but malformed.
    """
    data = metadata.get(RANGES_KEY)
    if data is None:
        return None
    try:
        inputs = data.get("inputs") or {}
        fov = inputs.get("fov_mm")
        cells = data.get("cells")
        return BundleRanges(
            percentiles=(float(data["percentiles"][0]), float(data["percentiles"][1])),
            margin=float(data.get("margin", 0.25)),
            n_cases=int(data["n_cases"]),
            inputs=InputRange(
                fov_mm=tuple(_range(r) for r in fov) if fov is not None else None,  # type: ignore[arg-type]
                spacing_mm=_optional(inputs, "spacing_mm"),
                intensity_median=_optional(inputs, "intensity_median"),
                intensity_p5=_optional(inputs, "intensity_p5"),
                intensity_p95=_optional(inputs, "intensity_p95"),
            ),
            labels={
                str(name): LabelRange(
                    volume_ml=_optional(entry, "volume_ml"),
                    components_max=int(entry["components_max"]) if "components_max" in entry else None,
                    intensity_mean=_optional(entry, "intensity_mean"),
                )
                for name, entry in (data.get("labels") or {}).items()
            },
            cells=CellRange(
                membrane_fraction=_optional(cells, "membrane_fraction"),
                cells=_optional(cells, "cells"),
                cell_area_median_px=_optional(cells, "cell_area_median_px"),
            )
            if cells is not None
            else None,
            intensity_unit=str(data.get("intensity_unit", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise BundleError(
            source, f"{RANGES_KEY} is malformed ({type(exc).__name__}: {exc}); rerun scripts/bundle_ranges.py"
        ) from exc


def _range(value: Any) -> Range:
    low, high = (float(v) for v in value)
    if low > high:
        raise ValueError(f"range {value} has low > high")
    return Range(low, high)


def _optional(mapping: Mapping[str, Any], key: str) -> Range | None:
    value = mapping.get(key)
    return _range(value) if value is not None else None
