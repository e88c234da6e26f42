"""Batch preparation for ``SupervisedTrainer``: stack the weight map behind the label.

MONAI's trainer passes ``(inputs, targets)`` to ``loss_function(y_pred, y)`` only, so the U-Net weight map has
to ride in ``targets``: this returns ``targets`` of shape ``(B, 2, *spatial)``: label, then weight
(the contract of :class:`app.losses.weighted_ce_dice.WeightedCEDiceLoss`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from monai.engines import PrepareBatch


class PrepareBatchWithWeight(PrepareBatch):
    """``batchdata[image_key]`` -> inputs; ``cat(batchdata[label_key], batchdata[weight_key])`` -> targets."""

    def __init__(
        self, image_key: str = "image", label_key: str = "label", weight_key: str = "weight"
    ) -> None:
        self.image_key = image_key
        self.label_key = label_key
        self.weight_key = weight_key

    def __call__(
        self,
        batchdata: Mapping[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image = batchdata[self.image_key].to(device=device, non_blocking=non_blocking, **kwargs)
        label = batchdata[self.label_key].to(device=device, non_blocking=non_blocking, **kwargs)
        weight = batchdata[self.weight_key].to(device=device, non_blocking=non_blocking, **kwargs)
        return image, torch.cat([label.float(), weight.float()], dim=1)
