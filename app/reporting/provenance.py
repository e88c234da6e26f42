"""The provenance record every evaluation run leaves in ``summary.json`` and ``report.html``.

Contract: :func:`build_provenance` is a pure function of its arguments plus the installed package versions
(read from package metadata, so torch and MONAI are not imported) and the clock (unless ``now`` is given).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from app import __version__
from app.evaluation.policy import POLICY_TEXT
from app.evaluation.units import PHYSICAL, Units

#: distributions whose versions every report records (evaluation and batch runs alike)
PACKAGES = (
    "monai",
    "torch",
    "pytorch-ignite",
    "numpy",
    "scipy",
    "nibabel",
    "pydicom",
    "highdicom",
    "SimpleITK",
    "scikit-image",
    "matplotlib",
    "openvino",
    "onnxruntime",
    "ray",
)

#: one line per metric, as defined in app.evaluation.surface / overlap
DEFINITIONS = {
    "dice": "2TP / (2TP + FP + FN)",
    "iou": "TP / (TP + FP + FN)",
    "precision": "TP / (TP + FP)",
    "recall": "TP / (TP + FN)",
    "surface": "mask XOR its binary erosion (face connectivity); voxel centres, unweighted",
    "hd_mm": "max of both directed surface distance maxima, mm",
    "hd95_mm": "max of the two directed 95th percentiles of surface distances (MONAI, DeepMind), mm",
    "assd_mm": "mean of both directed surface distance sets pooled, mm",
    "nsd": "fraction of both surfaces within the tolerance of the other surface",
    "volume_ml": "voxel count x |det(affine[:3,:3])| / 1000 (2D images: pixel area x a nominal 1 mm)",
    "units": "distances and volumes from the reference's affine: mm and mL on a physical grid (NIfTI, NRRD, "
    "DICOM); PNG/TIFF carry no spacing and are read at 1 per pixel, so there px and 1000 px (the keys keep "
    "their _mm/_ml names)",
}


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Versions of unetseg, Python and ``packages`` from package metadata, nothing imported
    (``"not installed"`` when absent)."""
    versions = {"unetseg": __version__, "python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_provenance(
    *,
    inputs: Mapping[str, Any],
    tolerance_mm: float,
    labels: Mapping[int, str] | None = None,
    timings_s: Mapping[str, float] | None = None,
    now: datetime | None = None,
    units: Units = PHYSICAL,
) -> dict[str, Any]:
    """The provenance dict: versions, inputs, labels, tolerance, policy, definitions, timings, timestamp.

    Args:
        inputs: what was evaluated (paths as strings, options), recorded as given.
        tolerance_mm: the NSD tolerance.
        labels: label value -> name (``None``: inferred from the data).
        timings_s: named durations in seconds.
        now: the timestamp to record (default: the current UTC time).
        units: the units of the distance and volume metrics (:func:`app.evaluation.units.units_of`).
    """
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "tool": "unetseg evaluate",
        "timestamp": stamp,
        "versions": package_versions(),
        "inputs": {str(k): jsonable(v) for k, v in inputs.items()},
        "labels": {str(k): v for k, v in labels.items()} if labels is not None else "inferred from the data",
        "tolerance_mm": float(tolerance_mm),
        "units": units.as_dict(),
        "policy": POLICY_TEXT,
        "definitions": dict(DEFINITIONS),
        "timings_s": {k: round(float(v), 3) for k, v in (timings_s or {}).items()},
    }


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: mappings with string keys, lists (sets sorted), numbers, strings, else ``str``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)
