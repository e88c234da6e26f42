"""WindowProgress: windows done of total inside one case, counted at the sliding window itself."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SlidingWindowInferer, sliding_window_inference

from app.engines.inferers.flip_tta import FlipTTAInferer
from app.engines.inferers.inferer_wrapper import find_inferer, wrap_found
from app.engines.inferers.skip_empty import SkipEmptyWindows
from app.engines.inferers.window_progress import WindowProgress, count_windows, inference_passes


@pytest.mark.parametrize(
    ("shape", "roi", "overlap"),
    [((40, 56, 40), (32, 32, 32), 0.5), ((17, 9, 30), (16, 16, 16), 0.25), ((70, 45), (32, 32), (0.5, 0.0))],
)
def test_count_windows_is_what_monai_runs(shape, roi, overlap):
    seen = []

    def predictor(windows):
        seen.append(windows.shape[0])
        return windows

    sliding_window_inference(torch.zeros((1, 1, *shape)), roi, 3, predictor, overlap=overlap)
    assert count_windows(shape, roi, overlap) == sum(seen)


def test_progress_runs_from_zero_to_total_over_flip_and_transpose_passes_and_skipped_windows():
    sliding = SlidingWindowInferer(roi_size=(16, 16), sw_batch_size=4, overlap=0.5)
    chain = SkipEmptyWindows(FlipTTAInferer(sliding, flips=[[0]], transpose=True))
    assert inference_passes(chain) == 4
    chain = wrap_found(
        chain, SlidingWindowInferer, lambda found: WindowProgress(found, inference_passes(chain))
    )
    meter = find_inferer(chain, WindowProgress)
    assert meter is not None and meter.inferer is sliding and meter.passes == 4
    image = torch.zeros((1, 1, 40, 24))
    image[..., 2:6, 2:6] = 1.0  # most windows are empty: skipped, but still counted
    calls = []
    with meter.reporting(lambda done, total: calls.append((done, total))):
        chain(image, lambda x: torch.cat([x, -x], dim=1))
    per_pass = count_windows((40, 24), (16, 16), 0.5), count_windows((24, 40), (16, 16), 0.5)
    done, total = calls[-1]
    assert done == total == 2 * sum(per_pass)
    assert calls[0] == (0, 4 * per_pass[0])  # the first estimate: this pass's windows times the passes
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    before = len(calls)
    chain(image, lambda x: torch.cat([x, -x], dim=1))  # outside reporting(): silent
    assert len(calls) == before


def test_a_mirrored_window_counts_its_padded_image():
    from app.engines.inferers.overlap_tile import MirroredSlidingWindowInferer

    mirrored = MirroredSlidingWindowInferer(margin=8, roi_size=(16, 16), sw_batch_size=2, overlap=0.5)
    meter = WindowProgress(mirrored)
    calls = []
    with meter.reporting(lambda done, total: calls.append((done, total))):
        meter(torch.rand((1, 1, 30, 20)), lambda x: x)
    assert calls[0] == (0, count_windows((46, 36), (16, 16), 0.5)) == (0, calls[-1][1])
    assert calls[-1][0] == calls[-1][1]
