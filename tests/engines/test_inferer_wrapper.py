"""InfererWrapper / find_inferer: the sliding window inside test-time augmentation and window skipping."""

from __future__ import annotations

from monai.inferers import SimpleInferer, SlidingWindowInferer

from app.engines.inferers.flip_tta import FlipTTAInferer
from app.engines.inferers.inferer_wrapper import find_inferer
from app.engines.inferers.skip_empty import SkipEmptyWindows


def test_find_inferer_walks_down_the_wrappers():
    sliding = SlidingWindowInferer(roi_size=(8, 8, 8), sw_batch_size=2)
    chain = SkipEmptyWindows(FlipTTAInferer(sliding))
    assert find_inferer(chain, SlidingWindowInferer) is sliding
    assert find_inferer(sliding, SlidingWindowInferer) is sliding
    assert find_inferer(chain, FlipTTAInferer) is chain.inferer
    assert find_inferer(FlipTTAInferer(SimpleInferer()), SlidingWindowInferer) is None


def test_settings_set_on_the_sliding_window_are_read_through_every_wrapper():
    sliding = SlidingWindowInferer(roi_size=(8, 8, 8), sw_batch_size=2)
    chain = SkipEmptyWindows(FlipTTAInferer(sliding))
    find_inferer(chain, SlidingWindowInferer).sw_batch_size = 5
    assert chain.sw_batch_size == 5 and list(chain.roi_size) == [8, 8, 8]
