"""MONAI metric adapters for the EM membrane scores of :mod:`app.evaluation.em`, for Ignite evaluators.

Wrap one in MONAI's ``IgniteMetricHandler`` (``save_details=True``) to get a key/additional metric of a
``SupervisedEvaluator`` whose per-image values ``MetricsSaver`` writes as CSV rows.

Contract of ``y_pred`` / ``y``: batch-first ``(B, C, H, W)`` tensors (or lists of channel-first ``(C, H, W)``),
either one-hot/probabilities over ``C >= 2`` classes (argmax taken) or a single channel of class indices.
``cell_class`` is the class index of cell interior (1 in the EM bundle, whose class 0 is membrane).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from app.evaluation.em import SCORES


def _cell_masks(batch: torch.Tensor, cell_class: int) -> np.ndarray:
    array = batch.detach().cpu()
    if array.ndim != 4:
        raise ValueError(f"EM metrics expect 2D images (B, C, H, W), got shape {tuple(array.shape)}")
    classes = array.argmax(dim=1) if array.shape[1] > 1 else array[:, 0].round().long()
    return (classes == cell_class).numpy()


class EMSegmentationMetric(CumulativeIterationMetric):
    """One of the EM scores per image: ``"pixel_error"`` (1 - accuracy) or ``"pixel_fscore_error"`` (1 - F-score
    of cell pixels, the ISBI leaderboard's pixel error), ``"rand_error"`` (the challenge's adapted Rand error),
    ``"rand_error_membrane_segment"`` or ``"rand_error_thinned"`` (its variants), ``"v_rand"`` or ``"v_info"`` (the
    leaderboard's F-scores after border thinning; :mod:`app.evaluation.em`).

    Lower is better for the errors, higher for the V scores (:data:`app.evaluation.em.HIGHER_IS_BETTER`; a key
    metric among them needs ``metric_cmp_fn`` accordingly). ``aggregate`` reduces the per-image values (mean by
    default).

    Args:
        score: which score (see :mod:`app.evaluation.em`).
        cell_class: class index of cell interior.
        reduction: MONAI metric reduction for :meth:`aggregate`.
    """

    def __init__(
        self,
        score: str = "rand_error",
        cell_class: int = 1,
        reduction: MetricReduction | str = MetricReduction.MEAN,
    ) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown EM score {score!r}; choose one of {sorted(SCORES)}")
        self.score = score
        self.cell_class = cell_class
        self.reduction = reduction

    def _compute_tensor(  # type: ignore[override]  # MONAI's own metrics narrow the signature alike
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        if y is None:
            raise ValueError("EM metrics need the ground truth y")
        pred = _cell_masks(y_pred, self.cell_class)
        true = _cell_masks(y, self.cell_class)
        values = [SCORES[self.score](p, t) for p, t in zip(pred, true, strict=True)]
        return torch.tensor(values, dtype=torch.float32).reshape(-1, 1)

    def aggregate(self, reduction: MetricReduction | str | None = None) -> torch.Tensor:
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the buffer holds {type(data).__name__}, not a tensor: nothing accumulated")
        value, _ = do_metric_reduction(data, reduction or self.reduction)
        return value
