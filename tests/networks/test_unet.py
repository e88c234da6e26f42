"""ClassicUNet: BasicUNet topology (concatenated skips), dropout at the bottom only, He initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from monai.networks.nets import BasicUNet
from torch import nn

from app.networks.unet import ClassicUNet

TINY = (4, 8, 8, 16, 16, 4)  # channel counts small enough for CPU shape tests
HIPPO_FEATURES = (16, 32, 64, 128, 256, 16)  # bundles/hippocampus_mri_segmentation network_def#features


def tiny(spatial_dims: int, out_channels: int = 2, **kwargs) -> ClassicUNet:
    torch.manual_seed(0)
    return ClassicUNet(spatial_dims, 1, out_channels, features=TINY, **kwargs)


@pytest.mark.parametrize(
    ("spatial_dims", "size"),
    [
        (2, (32, 48)),
        (2, (35, 50)),  # not multiples of 16: BasicUNet pads in the decoder
        (2, (33, 23)),
        (3, (32, 16, 32)),
        (3, (36, 40, 44)),
        (3, (19, 22, 34)),
    ],
)
def test_output_shape_matches_input(spatial_dims, size):
    net = tiny(spatial_dims, out_channels=3).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 1, *size))
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_is_basic_unet_with_basic_unet_state_dict():
    net = tiny(2)
    assert isinstance(net, BasicUNet)
    reference = BasicUNet(
        2,
        1,
        2,
        features=TINY,
        act=("relu", {"inplace": True}),
        norm=("instance", {"affine": True}),
        upsample="deconv",
    )
    assert list(net.state_dict()) == list(reference.state_dict())  # the dropout adds no keys
    reference.load_state_dict(net.state_dict(), strict=True)
    net.eval()
    reference.eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x))  # eval: same forward as BasicUNet


def test_skips_are_concatenated():
    net = tiny(2).eval()
    seen: dict[str, torch.Tensor] = {}
    net.down_3.register_forward_hook(lambda m, i, o: seen.__setitem__("x3", o))
    net.conv_0.register_forward_hook(lambda m, i, o: seen.__setitem__("x0", o))
    net.upcat_4.convs.register_forward_hook(lambda m, i, o: seen.__setitem__("cat4", i[0]))
    net.upcat_1.convs.register_forward_hook(lambda m, i, o: seen.__setitem__("cat1", i[0]))
    with torch.no_grad():
        net(torch.randn(1, 1, 32, 32))
    f0, f1, f2, f3, f4, f5 = TINY
    # the decoder convolution's input is cat([encoder feature, up-sampled feature]) along channels
    assert seen["cat4"].shape == (1, f3 + f4 // 2, 4, 4)
    torch.testing.assert_close(seen["cat4"][:, :f3], seen["x3"])
    assert seen["cat1"].shape == (1, f0 + f1, 32, 32)  # last level: no halving of the up-sampled channels
    torch.testing.assert_close(seen["cat1"][:, :f0], seen["x0"])
    assert net.upcat_4.convs.conv_0.conv.in_channels == f3 + f4 // 2
    assert net.upcat_4.upsample.deconv.__class__ is nn.ConvTranspose2d


def dropouts(net: nn.Module) -> dict[str, float]:
    return {
        name: m.p
        for name, m in net.named_modules()
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
    }


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_dropout_only_at_the_bottom(spatial_dims):
    net = tiny(spatial_dims, bottom_dropout=0.3)
    assert dropouts(net) == {"down_4.dropout": 0.3}
    # after the bottom level's two convolutions, as channel dropout
    assert list(net.down_4.children())[-1] is net.down_4.dropout
    assert isinstance(net.down_4.dropout, (nn.Dropout2d, nn.Dropout3d)[spatial_dims - 2])
    assert dropouts(tiny(spatial_dims, bottom_dropout=0.0)) == {}


def test_dropout_is_the_only_randomness():
    x = torch.randn(2, 1, 32, 32)
    net = tiny(2, bottom_dropout=0.5)
    net.train()
    with torch.no_grad():
        a, b = net(x), net(x)
    assert not torch.allclose(a, b)  # train: bottom dropout draws differently
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x))  # eval: deterministic
    plain = tiny(2, bottom_dropout=0.0).train()
    with torch.no_grad():
        torch.testing.assert_close(plain(x), plain(x))  # no dropout: train mode deterministic too


def convs(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]


def test_he_init_std_and_zero_bias():
    torch.manual_seed(0)
    net = ClassicUNet(3, 1, 3, features=HIPPO_FEATURES)
    checked = 0
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
            assert torch.count_nonzero(m.bias) == 0, name
        if isinstance(m, nn.Conv3d) and m.in_channels == m.out_channels:
            # fan_in = fan_out = C * 27 here, so either He variant gives std sqrt(2 / (C * 27))
            fan = m.in_channels * 27
            std = float(m.weight.detach().std())
            assert std == pytest.approx(math.sqrt(2.0 / fan), rel=0.1), name
            assert float(m.weight.detach().mean()) == pytest.approx(0.0, abs=0.2 * std), name
            checked += 1
    assert checked == 9  # conv_1 of every encoder and decoder level
    # not PyTorch's default init (kaiming_uniform with a = sqrt(5): std = 1 / sqrt(3 fan_in))
    w = net.down_2.convs.conv_1.conv.weight.detach()
    assert float(w.std()) > 1.5 * math.sqrt(1.0 / (3 * 64 * 27))


def test_he_init_is_kaiming_normal_in_fan_out_mode_as_documented():
    """std sqrt(2 / fan_out) for every convolution (the module docstring says why fan_out, not the paper's fan_in)."""
    torch.manual_seed(0)
    net = ClassicUNet(3, 1, 3, features=HIPPO_FEATURES)
    wrong = []
    for name, m in convs(net):
        if not isinstance(m, nn.Conv3d) or m.weight.numel() < 500:
            continue  # too few weights for a stable std estimate
        fan_out = m.out_channels * math.prod(m.kernel_size)
        std = float(m.weight.detach().std())
        if std != pytest.approx(math.sqrt(2.0 / fan_out), rel=0.15):
            wrong.append((name, round(std, 4), round(math.sqrt(2.0 / fan_out), 4)))
    assert not wrong


def two_conv(cin: int, cout: int, k: int = 27) -> int:
    """Parameters of a TwoConv: per Convolution, 3x3x3 weights + bias + instance norm's affine weight and bias."""
    return (k * cin * cout + cout + 2 * cout) + (k * cout * cout + cout + 2 * cout)


def up_cat(cin: int, skip: int, cout: int, halves: bool = True) -> int:
    """Parameters of an UpCat: a 2x2x2 transposed conv (cin -> cin // 2, or cin on the last level), TwoConv."""
    up = cin // 2 if halves else cin
    return (8 * cin * up + up) + two_conv(skip + up, cout)


def test_parameter_count_of_the_hippocampus_network():
    f0, f1, f2, f3, f4, f5 = HIPPO_FEATURES
    out = 3  # background + 2 hippocampus labels
    encoder = two_conv(1, f0) + two_conv(f0, f1) + two_conv(f1, f2) + two_conv(f2, f3) + two_conv(f3, f4)
    decoder = up_cat(f4, f3, f3) + up_cat(f3, f2, f2) + up_cat(f2, f1, f1) + up_cat(f1, f0, f5, halves=False)
    head = f5 * out + out
    assert encoder + decoder + head == 5_658_915
    net = ClassicUNet(3, 1, out, features=HIPPO_FEATURES, bottom_dropout=0.3)
    assert sum(p.numel() for p in net.parameters()) == 5_658_915  # about 5.7 M
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 5_658_915


def test_backward_reaches_every_parameter():
    net = tiny(2, bottom_dropout=0.5).train()
    net(torch.randn(2, 1, 32, 32)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
