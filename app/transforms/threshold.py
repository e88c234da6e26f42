"""Two-class probabilities -> one channel of labels at a chosen operating point, instead of the argmax.

Contract of :class:`ForegroundThresholdd`: ``d[key]`` holds softmax probabilities ``(2, *spatial)``; it becomes
``(1, *spatial)`` float labels, 1 where the probability of channel ``channel`` exceeds ``threshold`` and 0
elsewhere (``threshold = 0.5`` is the argmax). MetaTensor metadata is kept.

Why: the U-Net paper's weighted cross-entropy up-weights one class (class balancing plus the border term), so
the network's probabilities are biased toward it and the argmax is not the best operating point. The threshold
is a calibration chosen on training data (the EM bundle's docs show the sweep), never on the validation set.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform


class ForegroundThresholdd(MapTransform):
    """Labels from two-class probabilities at ``threshold`` on ``channel`` (contract in the module docstring).

    Args:
        keys: the probability keys.
        threshold: in (0, 1); channel ``channel`` wins where its probability is above it.
        channel: the channel whose probability is thresholded (its label value is 1, the other's 0).
    """

    def __init__(
        self, keys: KeysCollection, threshold: float = 0.5, channel: int = 1, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if channel not in (0, 1):
            raise ValueError(f"channel must be 0 or 1 of a two-class probability map, got {channel}")
        self.threshold = float(threshold)
        self.channel = channel

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            probabilities = d[key]
            if probabilities.shape[0] != 2:
                raise ValueError(
                    f"{key!r}: expected two-class probabilities (2, *spatial), got {probabilities.shape}"
                )
            chosen = probabilities[self.channel : self.channel + 1] > self.threshold
            labels = chosen if self.channel == 1 else ~chosen
            d[key] = labels.to(probabilities.dtype if probabilities.is_floating_point() else torch.float32)
        return d
