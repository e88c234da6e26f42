"""Scores of a batch of label arrays, for a training or validation loop's own hook (the bundles' report handler,
:mod:`app.engines.evaluation.report_handler`, scores item by item with :func:`app.evaluation.scoring.score_case`).

Contract: ``pred`` and ``ref`` are batches of label maps, shape ``(B, [C,] *spatial)`` with
``spatial_dims`` spatial axes, as numpy arrays or anything with ``__array__`` / ``.detach()`` (CPU torch
tensors, MONAI MetaTensors). A channel axis of size 1 is dropped; a channel axis of size C > 1 is taken as
one-hot (or probabilities) and reduced with argmax. Float label maps must hold whole numbers. ``affine`` is one RAS 4x4 matrix for the whole batch or
``(B, 4, 4)``, e.g. ``MetaTensor.affine``. Results are those of :func:`app.evaluation.case.evaluate_case`,
case by case, label by label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.evaluation.case import evaluate_case
from app.evaluation.result import LabelResult
from app.volume import Volume


def evaluate_batch(
    pred: Any,
    ref: Any,
    affine: Any,
    labels: Mapping[int, str],
    *,
    spatial_dims: int = 3,
    case_ids: Sequence[str] | None = None,
    tolerance_mm: float = 1.0,
) -> list[LabelResult]:
    """Score every item of a batch (see the module docstring for shapes).

    Args:
        pred: predicted label maps, ``(B, [C,] *spatial)``.
        ref: reference label maps, same shape.
        affine: ``(4, 4)`` or ``(B, 4, 4)`` voxel -> RAS mm.
        labels: label value -> name.
        spatial_dims: 2 or 3.
        case_ids: one id per item (default ``batch_0``, ``batch_1``, ...).
        tolerance_mm: NSD tolerance.
    """
    pred_maps = label_maps(pred, spatial_dims, "pred")
    ref_maps = label_maps(ref, spatial_dims, "ref")
    if pred_maps.shape != ref_maps.shape:
        raise ValueError(f"pred {pred_maps.shape} and ref {ref_maps.shape} batches differ in shape")
    n = pred_maps.shape[0]
    affines = _to_numpy(affine).astype(np.float64)
    affines = np.broadcast_to(affines, (n, 4, 4)) if affines.shape == (4, 4) else affines
    if affines.shape != (n, 4, 4):
        raise ValueError(f"affine must be (4, 4) or ({n}, 4, 4), got {affines.shape}")
    ids = list(case_ids) if case_ids is not None else [f"batch_{i}" for i in range(n)]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} case ids for a batch of {n}")
    results: list[LabelResult] = []
    for i in range(n):
        ref_volume = Volume(array=ref_maps[i], affine=affines[i], source=ids[i])
        pred_volume = Volume(array=pred_maps[i], affine=affines[i], source=ids[i])
        results.extend(
            evaluate_case(pred_volume, ref_volume, labels, tolerance_mm=tolerance_mm, case_id=ids[i])
        )
    return results


def label_maps(batch: Any, spatial_dims: int, what: str) -> np.ndarray:
    """``(B, [C,] *spatial)`` -> ``(B, *spatial)``: a channel axis of size 1 dropped, of size C > 1 reduced by
    argmax (module docstring); ``what`` names the batch in errors.

    Raises:
        ValueError: another shape.
    """
    array = _to_numpy(batch)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if array.ndim == spatial_dims + 2:
        array = array[:, 0] if array.shape[1] == 1 else np.argmax(array, axis=1)
    if array.ndim != spatial_dims + 1:
        raise ValueError(f"{what}: expected (B, [C,] {spatial_dims} spatial axes), got shape {array.shape}")
    return array


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors / MetaTensors, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)
