"""FlipTTAInferer: the mean of the logits over the identity and flipped copies, flipped back."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer

from app.engines.inferers.flip_tta import FlipTTAInferer


class AsymmetricNet(torch.nn.Module):
    """Not flip-equivariant (a fixed random 3x3x3 convolution), so every flip changes its output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(1, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.mark.parametrize("flips", [[[0]], [[0], [1], [2]], [[0, 2]]])
def test_mean_of_flipped_predictions(flips):
    net = AsymmetricNet().eval()
    x = torch.rand((1, 1, 12, 10, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)
        for axes in flips:
            dims = [2 + a for a in axes]
            expected = expected + torch.flip(net(torch.flip(x, dims)), dims)
        expected = expected / (1 + len(flips))
        got = FlipTTAInferer(SimpleInferer(), flips=flips)(x, net)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, net(x).detach())  # the flips did change something


def test_no_flips_is_the_inner_inferer_and_settings_pass_through():
    net = AsymmetricNet().eval()
    inner = SlidingWindowInferer(roi_size=(8, 8, 8), sw_batch_size=2, overlap=0.25)
    tta = FlipTTAInferer(inner, flips=[])
    x = torch.rand((1, 1, 12, 10, 8))
    with torch.no_grad():
        torch.testing.assert_close(tta(x, net), inner(x, net))
    assert tta.sw_batch_size == 2 and list(tta.roi_size) == [8, 8, 8]


def test_dihedral_copies_on_a_non_square_2d_image():
    """flips [[0], [1], [0, 1]] + transpose: the mean over all 8 rotations/mirrorings, each undone, on a 2D
    image that is not square (so a wrong transpose-back would not even have the right shape)."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 2, 3, padding=1).eval()
    x = torch.rand((1, 1, 12, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outputs = []
        for transposed in (False, True):
            view = x.transpose(-1, -2) if transposed else x
            for dims in ([], [2], [3], [2, 3]):
                out = torch.flip(net(torch.flip(view, dims)), dims)
                outputs.append(out.transpose(-1, -2) if transposed else out)
        expected = torch.stack(outputs).mean(0)
        tta = FlipTTAInferer(SimpleInferer(), flips=[[0], [1], [0, 1]], transpose=True)
        got = tta(x, net)
    assert got.shape == (1, 2, 12, 7)
    torch.testing.assert_close(got, expected)
    # a rotation-equivariant input/network pair is unchanged: a centre-symmetric kernel on a constant image
    constant = torch.ones((1, 1, 6, 5))
    torch.testing.assert_close(tta(constant, lambda t: t * 2), constant * 2)
