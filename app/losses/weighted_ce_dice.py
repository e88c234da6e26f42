"""The U-Net paper's weighted cross-entropy, plus a Dice term, as a MONAI-style loss.

    loss = lambda_ce * sum_x w(x) * CE(x) / sum_x w(x)  +  lambda_dice * DiceLoss  +  lambda_cldice * clDice

``w`` is the pixel weight map of :mod:`app.transforms.weight_map`. MONAI's ``SupervisedTrainer`` calls
``loss_function(y_pred, y)`` with two arguments, so the weight map travels in the target: ``y`` is
``(B, 2, *spatial)`` with the label in channel 0 and the weight map in channel 1 (see
:class:`app.engines.training.prepare_batch.PrepareBatchWithWeight`, which builds it). A plain ``(B, 1, *spatial)`` label
gives unweighted cross-entropy, so the same loss serves validation and MONAI Label training.

Normalising by ``sum w`` (rather than the voxel count) keeps the loss scale independent of ``w0``; the Dice term
is MONAI's :class:`~monai.losses.DiceLoss` (softmax, one-hot target, background excluded by default). The
optional clDice term (off by default) is MONAI's :class:`~monai.losses.SoftclDiceLoss` (Shit et al. 2021) on the
softmax of the ``cldice_channels`` only: it compares soft skeletons, so a gap in a thin structure (an EM membrane)
costs as much as its length along the skeleton, not just its few pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import DiceLoss, SoftclDiceLoss
from monai.networks import one_hot
from torch import nn
from torch.nn import functional as F


class WeightedCEDiceLoss(nn.Module):
    """Pixel-weighted cross-entropy plus soft Dice.

    Args:
        lambda_ce: weight of the cross-entropy term.
        lambda_dice: weight of the Dice term (0 disables it).
        include_background: whether the Dice term includes channel 0.
        batch: Dice over the whole batch (True) or per sample then averaged (False).
        smooth_nr, smooth_dr: Dice smoothing constants (MONAI's).
        lambda_cldice: weight of the clDice term (0, the default, disables it).
        cldice_channels: the classes the clDice term scores (e.g. ``[0]``, the EM membrane).
        cldice_iterations: soft-skeleton iterations; at least the largest radius of the scored structures.

    Shapes:
        input: logits ``(B, C, *spatial)``.
        target: ``(B, 1, *spatial)`` integer labels, or ``(B, 2, *spatial)`` labels then weights.
    """

    def __init__(
        self,
        lambda_ce: float = 1.0,
        lambda_dice: float = 1.0,
        include_background: bool = False,
        batch: bool = True,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        lambda_cldice: float = 0.0,
        cldice_channels: Sequence[int] = (0,),
        cldice_iterations: int = 3,
    ) -> None:
        super().__init__()
        if lambda_ce < 0 or lambda_dice < 0 or lambda_cldice < 0:
            raise ValueError("lambda_ce, lambda_dice and lambda_cldice must be >= 0")
        if lambda_cldice > 0 and not cldice_channels:
            raise ValueError("cldice_channels must name at least one class when lambda_cldice > 0")
        self.lambda_ce = lambda_ce
        self.lambda_dice = lambda_dice
        self.lambda_cldice = lambda_cldice
        self.cldice_channels = [int(c) for c in cldice_channels]
        self.cldice = SoftclDiceLoss(iter_=cldice_iterations, include_background=True)
        self.dice = DiceLoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            batch=batch,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
        )

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if (
            target.shape[1] not in (1, 2)
            or target.shape[2:] != input.shape[2:]
            or target.shape[0] != input.shape[0]
        ):
            raise ValueError(
                f"target must be (B, 1|2, *spatial) matching input {tuple(input.shape)}, got {tuple(target.shape)}"
            )
        label = target[:, :1]
        weight = target[:, 1] if target.shape[1] == 2 else None
        ce = F.cross_entropy(input, label[:, 0].long(), reduction="none")
        ce = (ce * weight).sum() / weight.sum().clamp_min(1e-8) if weight is not None else ce.mean()
        loss = self.lambda_ce * ce
        if self.lambda_dice > 0:
            loss = loss + self.lambda_dice * self.dice(input, label)
        if self.lambda_cldice > 0:
            if max(self.cldice_channels) >= input.shape[1]:
                raise ValueError(
                    f"cldice_channels {self.cldice_channels} out of range for {input.shape[1]} classes"
                )
            classes = self.cldice_channels
            probabilities = torch.softmax(input, 1)[:, classes]
            reference = one_hot(label.long(), input.shape[1], dtype=probabilities.dtype)[:, classes]
            loss = loss + self.lambda_cldice * self.cldice(probabilities, reference)
        return loss
