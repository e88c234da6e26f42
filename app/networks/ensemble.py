"""An ensemble of segmentation networks as one ``nn.Module``: the members' softmax probabilities, averaged.

Contract: input ``(B, C_in, *spatial)``; every member maps it to logits ``(B, C, *spatial)``; the output is
``log(mean_k softmax(member_k(x)))``, shape ``(B, C, *spatial)``, float. It is a log-probability, so a bundle's
``Activationsd(softmax=True)`` turns it back into exactly the averaged probabilities, and argmax, thresholds on
p(class) and MONAI's inferers work on it unchanged. (A test-time augmentation that averages logits over views,
like :class:`app.engines.inferers.flip_tta.FlipTTAInferer`, then averages these log-probabilities: a geometric mean over
views of the ensemble's probabilities, renormalised by the softmax, as it is a geometric mean for one network.)

Config-expressible, so that ``inference.json`` and ``evaluate.json`` load an ensemble like any network::

    "network_def": {
        "_target_": "app.networks.ensemble.EnsembleNetwork",
        "member": {"_target_": "app.networks.unet.ClassicUNet", ...},
        "n_members": 5
    }

Its state dict holds each member's under ``members.<k>.``; ``scripts/em_cv.py export`` writes it (stored in
fp16 to halve the file; ``load_state_dict`` copies into the fp32 parameters, so the weights are upcast at load).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["EnsembleNetwork"]


class EnsembleNetwork(nn.Module):
    """Average of the members' softmax probabilities over ``dim=1``, returned as its logarithm.

    Args:
        member: one network, deep-copied ``n_members`` times (the members share the architecture; their weights
            come from the state dict).
        n_members: how many copies of ``member``.
        members: the member networks themselves, instead of ``member`` and ``n_members``.
    """

    def __init__(
        self,
        member: nn.Module | None = None,
        n_members: int = 0,
        *,
        members: Sequence[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if (member is None) == (members is None):
            raise ValueError("give either member and n_members, or members")
        if member is not None:
            if n_members < 1:
                raise ValueError(f"n_members must be at least 1, got {n_members}")
            members = [member] + [copy.deepcopy(member) for _ in range(n_members - 1)]
        assert members is not None
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(dim=0)
        return torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny))
