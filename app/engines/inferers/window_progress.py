"""Windows done of total inside one case: the sliding window tells a listener how far it is.

Contract of :class:`WindowProgress` (wraps the sliding-window inferer itself, below any test-time augmentation
or window skipping, so every window counts whether or not the network runs on it; put there by
:func:`app.inference.bundle.load_bundle`):

* without a listener (the default) it calls the inferer unchanged;
* inside ``with progress.reporting(listener):`` each call (one pass of the sliding window over the image) calls
  ``listener(done, total)`` once when the pass starts and after every batch of windows, ``done`` counting
  from the first pass of the ``with`` block;
* ``total`` is the windows of the passes so far plus this pass's windows times the passes left of ``passes``
  (a test-time augmentation runs the window several times; one that transposes axes can change the count, so
  the total is exact from the last pass on). A pass's windows are MONAI's own scan of the image (as the
  inferer pads it: its ``padded_shape`` when it has one) times its batch size;
* a listener must not raise: it only watches (its exception would fail the case).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

from app.engines.inferers.inferer_wrapper import InfererWrapper

#: ``listener(done, total)``: windows run so far in this case, and the expected total
ProgressListener = Callable[[int, int], None]


def count_windows(spatial_shape: Sequence[int], roi_size: Any, overlap: Any) -> int:
    """The windows MONAI's ``sliding_window_inference`` runs over one image of ``spatial_shape``."""
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval  # MONAI's own step rule, so the count is its count
    from monai.utils import ensure_tuple_rep, fall_back_tuple

    dims = len(spatial_shape)
    roi = fall_back_tuple(roi_size, spatial_shape)
    image = tuple(max(int(s), int(r)) for s, r in zip(spatial_shape, roi, strict=True))
    interval = _get_scan_interval(image, roi, dims, ensure_tuple_rep(overlap, dims))
    return len(dense_patch_slices(image, roi, interval))


class _CountingPredictor:
    """The predictor, counting the windows it is called with."""

    def __init__(self, predictor: Any, tick: Callable[[int], None]) -> None:
        self.predictor, self.tick = predictor, tick

    def __call__(self, windows: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        outputs = self.predictor(windows, *args, **kwargs)
        self.tick(int(windows.shape[0]))
        return outputs


class WindowProgress(InfererWrapper):
    """A sliding-window inferer that reports windows done of total (contract in the module docstring).

    Args:
        inferer: the sliding-window inferer (it needs ``roi_size`` and ``overlap``).
        passes: how often one case runs this inferer (e.g. 2 under a left-right flip augmentation).
    """

    def __init__(self, inferer: Inferer, passes: int = 1) -> None:
        super().__init__(inferer)
        self.passes = max(1, int(passes))
        self._listener: ProgressListener | None = None
        self._done = self._passes_done = 0

    @contextlib.contextmanager
    def reporting(self, listener: ProgressListener) -> Iterator[None]:
        """Report to ``listener`` during the block (one case); counts start at zero."""
        previous = self._listener, self._done, self._passes_done
        self._listener, self._done, self._passes_done = listener, 0, 0
        try:
            yield
        finally:
            self._listener, self._done, self._passes_done = previous

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        listener = self._listener
        if listener is None:
            return self.inferer(inputs, network, *args, **kwargs)
        sliding: Any = self.inferer
        shape = tuple(inputs.shape[2:])
        if hasattr(type(sliding), "padded_shape"):  # e.g. MirroredSlidingWindowInferer pads first
            shape = sliding.padded_shape(shape)
        windows = count_windows(shape, sliding.roi_size, sliding.overlap) * inputs.shape[0]
        left = max(1, self.passes - self._passes_done)
        total = self._done + windows * left

        def tick(count: int) -> None:
            self._done += count
            listener(self._done, max(total, self._done))

        listener(self._done, total)
        try:
            return self.inferer(inputs, _CountingPredictor(network, tick), *args, **kwargs)
        finally:
            self._passes_done += 1


def inference_passes(inferer: Any) -> int:
    """How often the wrappers above a sliding window run it per case: their ``passes`` properties, multiplied
    (looked up on each wrapper's class: a wrapper forwards unknown attributes to the inferer it drives)."""
    passes = 1
    while isinstance(inferer, InfererWrapper):
        own = getattr(type(inferer), "passes", None)
        if isinstance(own, property) and own.fget is not None:
            passes *= max(1, int(own.fget(inferer)))
        inferer = inferer.inferer
    return passes
