"""Mirroring test-time augmentation (as nnU-Net's default inference): average the logits over flipped copies.

Contract of :class:`FlipTTAInferer`: ``inferer(inputs, network)`` with inputs ``(B, C, *spatial)`` returns the mean
of ``inner(flip(inputs), network)`` flipped back, over the identity and a flip of each axis group in ``flips``
(spatial axis numbers, 0 = first spatial axis); the output has the inner inferer's shape. Only flips the model
was trained with belong here (the hippocampus bundle flips left-right, spatial axis 0 after ``Orientationd``
to RAS). Logits are averaged, so the bundle's softmax and argmax follow unchanged. The sum is accumulated in
place, channel by channel, so a whole-volume C-channel output is held twice at most (the running sum and the
latest copy), never four times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer

from app.engines.inferer_wrapper import InfererWrapper


class FlipTTAInferer(InfererWrapper):
    """Mean over the identity and flipped copies of ``inferer``'s output (contract in the module docstring).

    Args:
        inferer: the inferer to run on each copy (e.g. a ``SlidingWindowInferer``).
        flips: spatial axes to flip, one tuple per extra copy, e.g. ``[[0]]`` for left-right only.
    """

    def __init__(self, inferer: Inferer, flips: Sequence[Sequence[int]] = ((0,),)) -> None:
        super().__init__(inferer)
        self.flips = [tuple(int(a) for a in axes) for axes in flips]

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        total = self.inferer(inputs, network, *args, **kwargs)
        for axes in self.flips:
            dims = [2 + a for a in axes]
            output = self.inferer(torch.flip(inputs, dims), network, *args, **kwargs)
            # in place, one channel at a time: the whole-volume temporaries stay one channel big
            # (``total = total + flip(output)`` held four C-channel volumes at once)
            for channel in range(output.shape[1]):
                total[:, channel] += torch.flip(output[:, channel], [d - 1 for d in dims])
            del output
        return total.div_(1 + len(self.flips))
