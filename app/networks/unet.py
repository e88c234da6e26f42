"""The classic U-Net (Ronneberger et al. 2015) in its common modern form, built on MONAI's ``BasicUNet``.

MONAI's :class:`~monai.networks.nets.BasicUNet` already is the paper's topology: per level two 3x3(x3)
convolutions with normalisation and activation, 2x max-pool down-sampling with doubled channels, transposed-
convolution up-sampling and skips joined by concatenation. This subclass adds the two things the paper has and
``BasicUNet`` does not:

* dropout only at the bottom of the contracting path (``BasicUNet``'s ``dropout`` applies to every layer);
* He (Kaiming) normal initialisation of every convolution, suited to ReLU, in ``fan_out`` mode (std
  ``sqrt(2 / (out_channels * kernel volume))``, as torchvision's ResNets). The paper states ``sqrt(2 / N)`` with
  ``N`` the incoming nodes (``fan_in``); the two agree wherever in and out channels are equal, and with
  instance normalisation after every convolution the first layers' scale does not carry through. The shipped
  weights were trained with ``fan_out``; it is kept so that train.json reproduces them.

Input ``(B, in_channels, *spatial)``; output raw logits ``(B, out_channels, *spatial)``. Spatial sizes that are
not multiples of 16 work (``BasicUNet`` pads in the decoder) but multiples of 16 avoid the asymmetric padding.
Every axis must reach at least 2 voxels at the bottom level (instance normalisation needs more than one
element), so an input needs some axis >= 32; the sliding-window inferers pad images up to the window.
State-dict keys are ``BasicUNet``'s, plus no parameters for the dropout.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.layers.factories import Dropout
from monai.networks.nets import BasicUNet
from torch import nn

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class ClassicUNet(BasicUNet):
    """U-Net with bottom-only dropout and He initialisation.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (1 for MRI/CT/EM).
        out_channels: classes, background included.
        features: six channel counts, the five encoder levels then the last decoder level (``BasicUNet``).
        act: activation; the paper's ReLU by default.
        norm: normalisation; instance norm by default (batch sizes on CPU are small).
        bottom_dropout: dropout probability applied after the bottom level's convolutions.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        features: Sequence[int] = (16, 32, 64, 128, 256, 16),
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = ("instance", {"affine": True}),
        bottom_dropout: float = 0.5,
    ):
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            features=features,
            act=act,
            norm=norm,
            dropout=0.0,
            upsample="deconv",
        )
        if bottom_dropout > 0:
            # Down is an nn.Sequential (max-pool, two convs): appending keeps BasicUNet's forward and keys.
            self.down_4.add_module("dropout", Dropout[Dropout.DROPOUT, spatial_dims](bottom_dropout))
        self.apply(_he_init)


def _he_init(module: nn.Module) -> None:
    if isinstance(module, _CONV_TYPES):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
