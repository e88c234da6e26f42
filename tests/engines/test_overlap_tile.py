"""MirroredSlidingWindowInferer: reflect-pad, slide, crop back to the input grid (U-Net paper, Fig. 2)."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SlidingWindowInferer
from torch.nn import functional as F

from app.engines.inferers.overlap_tile import MirroredSlidingWindowInferer


def identity(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


def image(*spatial, channels=1, seed=0) -> torch.Tensor:
    return torch.randn(1, channels, *spatial, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "spatial",
    [
        (10, 12),  # smaller than the roi even after padding (14 x 16 < 24 x 24)
        (20, 23),  # smaller than the roi, larger once padded
        (50, 37),  # larger than the roi: several overlapping tiles
    ],
)
@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_identity_network_returns_the_input(spatial, mode):
    x = image(*spatial)
    inferer = MirroredSlidingWindowInferer(
        margin=2, roi_size=(24, 24), sw_batch_size=2, overlap=0.25, mode=mode
    )
    out = inferer(x, identity)
    assert out.shape == x.shape
    torch.testing.assert_close(torch.as_tensor(out), x, rtol=1e-5, atol=1e-5)


def test_output_channels_follow_the_network():
    x = image(40, 30, channels=2)
    inferer = MirroredSlidingWindowInferer(margin=(3, 5), roi_size=(16, 16), sw_batch_size=1, overlap=0.5)
    out = inferer(x, lambda t: torch.cat([t, 2 * t, t.sum(1, keepdim=True)], dim=1))
    assert out.shape == (1, 5, 40, 30)
    torch.testing.assert_close(torch.as_tensor(out)[:, 2:4], 2 * x)
    torch.testing.assert_close(torch.as_tensor(out)[:, 4:], x.sum(1, keepdim=True))


def test_3d_identity():
    x = image(9, 20, 14)
    inferer = MirroredSlidingWindowInferer(
        margin=(2, 3, 4), roi_size=(8, 8, 8), sw_batch_size=4, overlap=0.25
    )
    out = inferer(x, identity)
    assert out.shape == x.shape
    torch.testing.assert_close(torch.as_tensor(out), x)


def mean3x3(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 mean with zero padding: its border values show what lies beyond the tile's edge."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)


def test_border_context_is_mirrored():
    x = image(12, 14)
    roi = (32, 32)  # one tile holds the whole padded image: only the border extrapolation matters
    mirrored = MirroredSlidingWindowInferer(margin=2, roi_size=roi, sw_batch_size=1)(x, mean3x3)
    expected = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    torch.testing.assert_close(torch.as_tensor(mirrored), expected)
    # MONAI's plain sliding window pads with zeros instead: the borders differ, the interior does not
    plain = SlidingWindowInferer(roi_size=roi, sw_batch_size=1)(x, mean3x3)
    torch.testing.assert_close(plain, mean3x3(x))
    assert not torch.allclose(torch.as_tensor(mirrored)[..., 0, :], plain[..., 0, :])
    torch.testing.assert_close(torch.as_tensor(mirrored)[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])


def test_dict_and_tuple_outputs_are_cropped():
    x = image(18, 21)
    inferer = MirroredSlidingWindowInferer(margin=3, roi_size=(16, 16), sw_batch_size=1, overlap=0.25)
    out = inferer(x, lambda t: {"seg": t, "double": 2 * t})
    assert set(out) == {"seg", "double"}
    torch.testing.assert_close(torch.as_tensor(out["seg"]), x)
    torch.testing.assert_close(torch.as_tensor(out["double"]), 2 * x)
    out = inferer(x, lambda t: (t, -t))
    assert isinstance(out, tuple) and len(out) == 2
    torch.testing.assert_close(torch.as_tensor(out[1]), -x)


def test_zero_margin_is_plain_sliding_window():
    x = image(30, 30)
    kwargs = dict(roi_size=(16, 16), sw_batch_size=1, overlap=0.25, mode="gaussian")
    torch.testing.assert_close(
        torch.as_tensor(MirroredSlidingWindowInferer(margin=0, **kwargs)(x, mean3x3)),
        SlidingWindowInferer(**kwargs)(x, mean3x3),
    )


@pytest.mark.parametrize(
    ("margin", "spatial"),
    [
        (10, (10, 30)),  # reflection needs margin < size
        (12, (10, 30)),
        ((2, 3, 4), (10, 30)),  # one margin per axis
        ((2,), (10, 30)),
        (-1, (10, 30)),
    ],
)
def test_margin_must_fit(margin, spatial):
    inferer = MirroredSlidingWindowInferer(margin=margin, roi_size=(8, 8), sw_batch_size=1)
    with pytest.raises(ValueError, match="margin"):
        inferer(image(*spatial), identity)
