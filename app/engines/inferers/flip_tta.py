"""Mirroring test-time augmentation (as nnU-Net's default inference): average the logits over flipped copies.

Contract of :class:`FlipTTAInferer`: ``inferer(inputs, network)`` with inputs ``(B, C, *spatial)`` returns the mean
of ``inner(flip(inputs), network)`` flipped back, over the identity and a flip of each axis group in ``flips``
(spatial axis numbers, 0 = first spatial axis); the output has the inner inferer's shape. Only flips the model
was trained with belong here (the hippocampus bundle flips left-right, spatial axis 0 after ``Orientationd``
to RAS). With ``transpose=True`` every one of those copies is also run with the last two spatial axes swapped
(transposed back after): with ``flips=[[0], [1], [0, 1]]`` on 2D images that is all 8 rotations and mirrorings
of the square (the dihedral group), for a model trained with flips and 90-degree rotations (the EM bundle; the
U-Net paper's challenge entry averaged such copies). Logits are averaged, so the bundle's softmax and argmax
follow unchanged. The sum is accumulated in place, channel by channel, so a whole-volume C-channel output is
held twice at most (the running sum and the latest copy), never four times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer

from app.engines.inferers.inferer_wrapper import InfererWrapper


class FlipTTAInferer(InfererWrapper):
    """Mean over the identity and flipped copies of ``inferer``'s output (contract in the module docstring).

    Args:
        inferer: the inferer to run on each copy (e.g. a ``SlidingWindowInferer``).
        flips: spatial axes to flip, one tuple per extra copy, e.g. ``[[0]]`` for left-right only.
        transpose: also run every copy (the identity included) with the last two spatial axes swapped.
    """

    def __init__(
        self, inferer: Inferer, flips: Sequence[Sequence[int]] = ((0,),), transpose: bool = False
    ) -> None:
        super().__init__(inferer)
        self.flips = [tuple(int(a) for a in axes) for axes in flips]
        self.transpose = bool(transpose)

    @property
    def passes(self) -> int:
        """Runs of the inner inferer per call: the identity and each flip, all twice with ``transpose``."""
        return (1 + len(self.flips)) * (2 if self.transpose else 1)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        total = self.inferer(inputs, network, *args, **kwargs)
        copies = [(axes, False) for axes in self.flips]
        if self.transpose:
            copies += [(axes, True) for axes in [(), *self.flips]]
        for axes, transposed in copies:
            dims = [2 + a for a in axes]
            view = inputs.transpose(-1, -2) if transposed else inputs
            output = self.inferer(torch.flip(view, dims), network, *args, **kwargs)
            # in place, one channel at a time: the whole-volume temporaries stay one channel big
            # (``total = total + flip(output)`` held four C-channel volumes at once)
            for channel in range(output.shape[1]):
                restored = torch.flip(output[:, channel], [d - 1 for d in dims])
                total[:, channel] += restored.transpose(-1, -2) if transposed else restored
            del output
        return total.div_(1 + len(copies))
