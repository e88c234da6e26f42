"""SkipEmptyWindows: windows outside the body skip the network and the result does not change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import SlidingWindowInferer

from app.engines.inferers.skip_empty import SkipEmptyWindows, body_threshold
from app.inference.options import InferenceOptions


class CountingNet(torch.nn.Module):
    """A fixed 3x3x3 convolution with two output channels, counting the windows it sees."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(1, 2, 3, padding=1)
        self.windows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.windows += x.shape[0]
        return self.conv(x)


def _image() -> torch.Tensor:
    image = torch.zeros((1, 1, 64, 64, 48))
    image[0, 0, 4:20, 6:22, 5:17] = torch.rand((16, 16, 12), generator=torch.Generator().manual_seed(1)) + 1.0
    return image


def test_windows_outside_the_body_are_skipped_and_the_output_is_unchanged():
    inferer = SlidingWindowInferer(roi_size=(16, 16, 16), sw_batch_size=3, overlap=0.5, mode="gaussian")
    image = _image()
    net = CountingNet().eval()
    with torch.no_grad():
        expected = inferer(image, net)
        all_windows = net.windows
        net.windows = 0
        skipping = SkipEmptyWindows(inferer)
        got = skipping(image, net)
    windows, skipped = skipping.last_counts
    assert windows == all_windows
    assert skipped > windows // 2  # the object fills a corner only
    assert net.windows == windows - skipped + 1  # + the one background window, run once
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_a_window_touching_the_body_runs_through_the_network():
    image = torch.zeros((1, 1, 32, 16, 16))
    image[0, 0, 31, 8, 8] = 5.0  # one bright voxel in the last window only
    inferer = SlidingWindowInferer(roi_size=(16, 16, 16), sw_batch_size=1, overlap=0.0)
    skipping = SkipEmptyWindows(inferer)
    with torch.no_grad():
        skipping(image, CountingNet().eval())
    assert skipping.last_counts == (2, 1)


def test_constant_image_skips_nothing_and_threshold_is_between_background_and_body():
    assert body_threshold(torch.ones((1, 1, 8, 8, 8))) is None
    threshold, background = body_threshold(_image())
    assert background == 0.0
    assert 0.0 < threshold < 1.0
    skipping = SkipEmptyWindows(SlidingWindowInferer(roi_size=(8, 8, 8)))
    with torch.no_grad():
        skipping(torch.ones((1, 1, 16, 16, 16)), CountingNet().eval())
    assert skipping.last_counts == (0, 0)


def test_wrapped_inferer_settings_stay_readable():
    inner = SlidingWindowInferer(roi_size=(8, 8, 8), sw_batch_size=4, overlap=0.25)
    skipping = SkipEmptyWindows(inner)
    assert skipping.sw_batch_size == 4 and list(skipping.roi_size) == [8, 8, 8]
    with pytest.raises(AttributeError):
        _ = skipping.no_such_setting


def test_real_case_with_air_around_it_segments_the_same_with_and_without_skipping(
    real_bundle, demo_data, tmp_path
):
    from app.inference import load_bundle
    from app.inference.predict import segment
    from app.loading import load_volume

    volume = load_volume(sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[0])
    padded = np.pad(volume.array, 48, constant_values=0)  # air around the crop, as in a larger field of view
    shifted = volume.affine.copy()
    shifted[:3, 3] -= shifted[:3, :3] @ np.full(3, 48.0)
    big = type(volume)(padded, shifted, volume.space)
    plain = load_bundle(real_bundle, InferenceOptions(device="cpu", backend="torch", skip_empty=False))
    skipping = load_bundle(real_bundle, InferenceOptions(device="cpu", backend="torch", skip_empty=True))
    expected = segment(plain, big, tmp_path).array
    got = segment(skipping, big, tmp_path).array
    windows, skipped = skipping.inferer.last_counts
    assert skipped > 0
    print(f"{skipped} of {windows} windows skipped")
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got)) >= {1, 2}
