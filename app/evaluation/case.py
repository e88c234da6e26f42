"""Metrics of one case: a predicted label map against a reference label map on the same grid.

Contract: ``pred`` and ``ref`` are :class:`~app.volume.Volume` label maps (2D or 3D, non-negative integer
values, or floats holding integers) on one grid (:func:`app.evaluation.grid.check_same_grid`). ``labels``
maps each label value to evaluate to its name; values not in it are not scored (the scoring of a case reports
them with their voxel counts, :mod:`app.evaluation.unlisted`). Distances are in mm from the
reference affine (orthogonal grids only, :mod:`app.evaluation.geometry`), volumes in mL. Returns one
:class:`~app.evaluation.result.LabelResult` per label, in ``labels`` order; empty masks follow
:mod:`app.evaluation.policy`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from app.errors import InputError
from app.evaluation import geometry, overlap, policy
from app.evaluation.grid import check_same_grid
from app.evaluation.pairing import case_id
from app.evaluation.result import LabelResult
from app.evaluation.surface import Backend, surface_distances
from app.volume import Volume

logger = logging.getLogger(__name__)


def evaluate_case(
    pred: Volume,
    ref: Volume,
    labels: Mapping[int, str] | None = None,
    *,
    tolerance_mm: float = 1.0,
    case_id: str | None = None,
    backend: Backend = "auto",
) -> list[LabelResult]:
    """Score ``pred`` against ``ref`` for each label.

    Args:
        pred: predicted label map.
        ref: reference label map on the same grid.
        labels: label value -> name. ``None``: every non-zero value present in either map, named
            ``label_<value>``.
        tolerance_mm: NSD tolerance in mm.
        case_id: identifier for the results (default: derived from ``ref.source``).
        backend: surface distance backend (:func:`app.evaluation.surface.surface_distances`).

    Raises:
        InputError: not on the same grid, a sheared grid, or label maps with non-integer values.
    """
    if tolerance_mm < 0:
        raise ValueError(f"tolerance_mm must be >= 0, got {tolerance_mm}")
    check_same_grid(pred, ref)
    pred_labels = label_array(pred)
    ref_labels = label_array(ref)
    if labels is None:
        present = np.union1d(np.unique(pred_labels), np.unique(ref_labels))
        labels = {int(v): f"label_{int(v)}" for v in present if v > 0}
    case_id = case_id or case_id_from_source(ref.source)
    spacing = geometry.spacing_mm(ref)
    voxel_mm3 = geometry.voxel_volume_mm3(ref)
    diagonal = geometry.diagonal_mm(ref)

    top = max(labels, default=0)
    pred_boxes = ndimage.find_objects(pred_labels, max_label=top) if top > 0 else []
    ref_boxes = ndimage.find_objects(ref_labels, max_label=top) if top > 0 else []
    results = []
    for value, name in labels.items():
        box: tuple[slice, ...] | None
        if value <= 0:  # find_objects skips 0: look at the whole grid
            box = tuple(slice(0, n) for n in ref.shape)
        else:
            box = _union(_box(pred_boxes, value), _box(ref_boxes, value))
        if box is None:  # absent from both maps
            pred_mask = ref_mask = np.zeros((1,) * ref.ndim, dtype=bool)
        else:
            pred_mask, ref_mask = pred_labels[box] == value, ref_labels[box] == value
        counts = overlap.count(pred_mask, ref_mask)
        flag = policy.classify(counts.n_pred == 0, counts.n_ref == 0)
        if flag == "ok":
            distances = surface_distances(pred_mask, ref_mask, spacing, backend=backend)
            measured: dict[str, float] = {
                **overlap.scores(counts),
                "hd_mm": distances.hausdorff(),
                "hd95_mm": distances.hd95(),
                "assd_mm": distances.assd(),
                "nsd": distances.nsd(tolerance_mm),
            }
        else:
            measured = policy.fixed_values(flag, diagonal)
        results.append(_result(case_id, value, name, flag, measured, counts, voxel_mm3, tolerance_mm))
        logger.debug("%s %s: %s dice %.4f", case_id, name, flag, measured["dice"])
    return results


@dataclass(frozen=True)
class ReferenceStats:
    """What a worst-case result needs from a reference: its grid's diagonal and voxel counts per label."""

    case_id: str
    diagonal_mm: float
    voxel_mm3: float
    counts: Mapping[int, int]

    @classmethod
    def of(cls, ref: Volume, case_id: str | None = None) -> ReferenceStats:
        values, counts = np.unique(label_array(ref), return_counts=True)
        return cls(
            case_id=case_id or case_id_from_source(ref.source),
            diagonal_mm=geometry.diagonal_mm(ref),
            voxel_mm3=geometry.voxel_volume_mm3(ref),
            counts={int(v): int(c) for v, c in zip(values, counts, strict=True)},
        )


def failed_case(
    ref: ReferenceStats,
    labels: Mapping[int, str],
    *,
    flag: policy.Flag,
    message: str,
    tolerance_mm: float = 1.0,
) -> list[LabelResult]:
    """Worst-case results for a case whose prediction is missing or unusable (``no_prediction``/``error``).

    Every label gets the ``missed`` values of the policy; reference volumes are measured, so the report
    still shows what was missed.
    """
    if flag not in ("no_prediction", "error"):
        raise ValueError(f"failed_case is for 'no_prediction' or 'error', not {flag!r}")
    fixed = policy.fixed_values(flag, ref.diagonal_mm)
    results = []
    for value, name in labels.items():
        counts = overlap.Counts(tp=0, fp=0, fn=ref.counts.get(int(value), 0))
        results.append(
            _result(ref.case_id, value, name, flag, fixed, counts, ref.voxel_mm3, tolerance_mm, message)
        )
    return results


def both_empty(case_id: str, value: int, name: str, *, tolerance_mm: float = 1.0) -> LabelResult:
    """The result of a label absent from both maps of a case (needs no voxels: the policy fixes it)."""
    fixed = policy.fixed_values("both_empty", 0.0)
    return _result(case_id, value, name, "both_empty", fixed, overlap.Counts(0, 0, 0), 1.0, tolerance_mm)


def _result(
    case_id: str,
    value: int,
    name: str,
    flag: policy.Flag,
    metrics: Mapping[str, float],
    counts: overlap.Counts,
    voxel_mm3: float,
    tolerance_mm: float,
    message: str = "",
) -> LabelResult:
    """One result from scores/distances (measured or fixed by the policy) and voxel counts."""
    return LabelResult(
        case_id=case_id,
        label=int(value),
        name=name,
        flag=flag,
        dice=metrics["dice"],
        iou=metrics["iou"],
        precision=metrics["precision"],
        recall=metrics["recall"],
        hd_mm=metrics["hd_mm"],
        hd95_mm=metrics["hd95_mm"],
        assd_mm=metrics["assd_mm"],
        nsd=metrics["nsd"],
        tolerance_mm=float(tolerance_mm),
        volume_pred_ml=geometry.volume_ml(counts.n_pred, voxel_mm3),
        volume_ref_ml=geometry.volume_ml(counts.n_ref, voxel_mm3),
        volume_diff_ml=geometry.volume_ml(counts.n_pred - counts.n_ref, voxel_mm3),
        tp=counts.tp,
        fp=counts.fp,
        fn=counts.fn,
        message=message,
    )


def label_array(volume: Volume) -> np.ndarray:
    """The volume's voxels as a non-negative integer label array (floats must hold whole numbers)."""
    array = np.asarray(volume.array)
    if array.dtype == bool:
        return array.view(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.rint(array)):
            raise InputError(volume.source or None, "is not a label map: it holds non-integer values")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise InputError(
            volume.source or None, f"is not a label map: it holds negative values ({array.min()})"
        )
    return array


def case_id_from_source(source: str) -> str:
    """A case identifier from a volume's source string (``"case"`` when it has none)."""
    return case_id(Path(source)) if source else "case"


def _box(boxes: list, value: int) -> tuple[slice, ...] | None:
    return boxes[value - 1] if 0 < value <= len(boxes) else None


def _union(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))
