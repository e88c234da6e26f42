"""Sliding-window inference that does not run the network on windows lying entirely outside the imaged body.

Contract of :class:`SkipEmptyWindows` (wraps any MONAI sliding-window inferer, bundle-agnostic):

* per case, a body threshold is taken from the network input itself: Otsu's threshold
  (:func:`skimage.filters.threshold_otsu`) of a strided sample of the input, i.e. the split between air/background
  and the imaged object. A constant image has no threshold and nothing is skipped.
* a window is *empty* when none of its voxels (any channel) exceeds the threshold. Empty windows are not sent to the
  network; their output is the network's output on one window filled with the background level (the median of the
  sampled voxels below the threshold), computed once per case and only when some window is empty. The rest of the
  sliding window (blending, stitching) is MONAI's, unchanged.
* so the result is exact for windows of constant background, and close to it for windows of background noise;
  any window that holds a single voxel of the object runs through the network as before. ``scripts/bench_infer.py``
  shows the segmentations with and without skipping side by side (Dice per label).
* ``last_counts`` holds ``(windows, skipped)`` of the latest call, for logs and benchmarks.

Meant for 3D volumes with air around the body (CT, MRI); a 2D EM slice has no such background and gains nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from monai.inferers import Inferer

from app.engines.inferers.inferer_wrapper import InfererWrapper

logger = logging.getLogger(__name__)

#: at most this many voxels are sampled for the threshold
SAMPLE_SIZE = 1_000_000


def body_threshold(inputs: torch.Tensor) -> tuple[float, float] | None:
    """``(threshold, background level)`` of an image ``(B, C, *spatial)``, or ``None`` when it is constant."""
    from skimage.filters import threshold_otsu

    plain = inputs.as_tensor() if hasattr(inputs, "as_tensor") else inputs  # MetaTensor: no meta bookkeeping
    flat = plain.detach().reshape(-1)
    step = max(1, flat.numel() // SAMPLE_SIZE)
    sample = flat[::step].float().cpu().numpy()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0 or sample.min() == sample.max():
        return None
    threshold = float(threshold_otsu(sample))
    below = sample[sample <= threshold]
    return threshold, float(np.median(below))


class _SkippingPredictor:
    """The network, called only on windows with at least one voxel above the threshold."""

    def __init__(self, network: Any, threshold: float, background: float) -> None:
        self.network = network
        self.threshold = threshold
        self.background = background
        self.windows = 0
        self.skipped = 0
        self._empty_output: torch.Tensor | None = None

    def __call__(self, windows: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if hasattr(windows, "as_tensor"):
            windows = windows.as_tensor()
        busy = (windows.reshape(windows.shape[0], -1) > self.threshold).any(dim=1)
        count, active = windows.shape[0], int(busy.sum())
        self.windows += count
        self.skipped += count - active
        if active == count:
            return self.network(windows, *args, **kwargs)
        empty = self._empty(windows, *args, **kwargs)
        if empty is None:  # the network returns no plain tensor: run everything
            self.skipped -= count - active
            return self.network(windows, *args, **kwargs)
        outputs = empty.expand(count, *empty.shape[1:]).clone()
        if active:
            outputs[busy] = self.network(windows[busy], *args, **kwargs).to(outputs.dtype)
        return outputs

    def _empty(self, windows: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
        if self._empty_output is None:
            filled = torch.full_like(windows[:1], self.background)
            output = self.network(filled, *args, **kwargs)
            if not isinstance(output, torch.Tensor):
                return None
            self._empty_output = output
        return self._empty_output


class SkipEmptyWindows(InfererWrapper):
    """A sliding-window inferer that skips windows outside the body (contract in the module docstring).

    Args:
        inferer: the sliding-window inferer to drive (e.g. the bundle's ``SlidingWindowInferer``).
    """

    def __init__(self, inferer: Inferer) -> None:
        super().__init__(inferer)
        self.last_counts: tuple[int, int] = (0, 0)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        levels = body_threshold(inputs)
        if levels is None:
            self.last_counts = (0, 0)
            return self.inferer(inputs, network, *args, **kwargs)
        predictor = _SkippingPredictor(network, *levels)
        outputs = self.inferer(inputs, predictor, *args, **kwargs)
        self.last_counts = (predictor.windows, predictor.skipped)
        logger.debug(
            "sliding window: %d of %d windows outside the body skipped (threshold %.3g)",
            predictor.skipped,
            predictor.windows,
            levels[0],
        )
        return outputs
