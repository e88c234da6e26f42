"""Voxel-overlap metrics of one binary prediction against one binary reference.

Contract: ``pred`` and ``ref`` are boolean arrays of the same shape (any dimensionality); counts are voxel
counts. The definitions are MONAI's (``monai.metrics.compute_dice``, ``compute_iou``, and the confusion-matrix
precision/recall): Dice = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN), precision = TP / (TP + FP),
recall = TP / (TP + FN). We compute them from one pass of counts rather than calling MONAI, which needs
one-hot torch tensors of the whole image per label; ``tests/evaluation`` checks the values agree with MONAI.
Scores here are only for non-empty masks: the empty cases are fixed by :mod:`app.evaluation.policy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """True positive, false positive and false negative voxel counts."""

    tp: int
    fp: int
    fn: int

    @property
    def n_pred(self) -> int:
        return self.tp + self.fp

    @property
    def n_ref(self) -> int:
        return self.tp + self.fn


def count(pred: np.ndarray, ref: np.ndarray) -> Counts:
    """TP/FP/FN of boolean masks ``pred`` and ``ref`` (same shape)."""
    if pred.shape != ref.shape:
        raise ValueError(f"pred {pred.shape} and ref {ref.shape} must have the same shape")
    n_pred = int(np.count_nonzero(pred))
    n_ref = int(np.count_nonzero(ref))
    tp = int(np.count_nonzero(pred & ref)) if n_pred and n_ref else 0
    return Counts(tp=tp, fp=n_pred - tp, fn=n_ref - tp)


def scores(counts: Counts) -> dict[str, float]:
    """Dice, IoU, precision and recall from counts where both masks are non-empty."""
    if counts.n_pred == 0 or counts.n_ref == 0:
        raise ValueError(f"scores need non-empty masks, got {counts}; the empty-mask policy decides those")
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    return {
        "dice": 2.0 * tp / (2 * tp + fp + fn),
        "iou": tp / (tp + fp + fn),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
    }
