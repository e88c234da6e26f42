"""Overlap-tile inference (U-Net paper, Fig. 2) with MONAI's sliding window: mirror the image borders first.

The paper predicts a large image tile by tile and extrapolates the missing context at the image border by
mirroring. MONAI's :class:`~monai.inferers.SlidingWindowInferer` pads only when the image is smaller than the
window, so this subclass reflect-pads every spatial border by ``margin`` pixels, runs the sliding window
(gaussian blending of overlapping tiles recommended), then crops the output back to the input's size.

Contract: inputs ``(B, C, *spatial)``; outputs ``(B, out_channels, *spatial)`` on the input grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.inferers import SlidingWindowInferer
from torch.nn import functional as F


class MirroredSlidingWindowInferer(SlidingWindowInferer):
    """``SlidingWindowInferer`` on a reflect-padded image, cropped back to the input size.

    Args:
        margin: pixels mirrored at each side of every spatial axis (one int or one per axis); each must be
            smaller than the image along that axis (a reflection needs that many pixels).
        **kwargs: :class:`~monai.inferers.SlidingWindowInferer` arguments (``roi_size``, ``overlap``, ``mode``...).
    """

    def __init__(self, margin: int | Sequence[int] = 32, **kwargs) -> None:
        super().__init__(**kwargs)
        self.margin = margin

    def _margins(self, spatial: Sequence[int]) -> list[int]:
        margins = [self.margin] * len(spatial) if isinstance(self.margin, int) else list(self.margin)
        if len(margins) != len(spatial) or any(
            m < 0 or m >= s for m, s in zip(margins, spatial, strict=True)
        ):
            raise ValueError(f"margin {self.margin} does not fit an image of spatial shape {tuple(spatial)}")
        return margins

    def padded_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The spatial shape the sliding window runs over: ``spatial`` plus the mirrored margins."""
        return tuple(int(s) + 2 * m for s, m in zip(spatial, self._margins(spatial), strict=True))

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs):
        spatial = inputs.shape[2:]
        margins = self._margins(spatial)
        pad = [p for m in reversed(margins) for p in (m, m)]  # F.pad wants the last axis first
        padded = F.pad(torch.as_tensor(inputs), pad, mode="reflect")
        outputs = super().__call__(padded, network, *args, **kwargs)
        crop = (slice(None), slice(None), *(slice(m, m + s) for m, s in zip(margins, spatial, strict=True)))
        if isinstance(outputs, torch.Tensor):
            return outputs[crop]
        if isinstance(outputs, dict):
            return {k: v[crop] for k, v in outputs.items()}
        return type(outputs)(o[crop] for o in outputs)
