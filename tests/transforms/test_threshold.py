"""ForegroundThresholdd: two-class probabilities -> labels at a chosen operating point."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from app.transforms.threshold import ForegroundThresholdd


def _probabilities(cell: list[float]) -> torch.Tensor:
    p = torch.tensor(cell).reshape(1, 1, -1)
    return torch.cat([1 - p, p])


def test_threshold_on_the_cell_channel():
    out = ForegroundThresholdd("pred", threshold=0.15)({"pred": _probabilities([0.1, 0.16, 0.5, 0.9])})[
        "pred"
    ]
    assert out.shape == (1, 1, 4)
    assert out.flatten().tolist() == [0.0, 1.0, 1.0, 1.0]


def test_half_is_the_argmax():
    p = _probabilities([0.2, 0.49, 0.51, 0.8])
    out = ForegroundThresholdd("pred", threshold=0.5)({"pred": p})["pred"]
    assert torch.equal(out[0], p.argmax(0).float())


def test_channel_zero_thresholds_the_other_class():
    out = ForegroundThresholdd("pred", threshold=0.7, channel=0)({"pred": _probabilities([0.2, 0.4])})["pred"]
    assert out.flatten().tolist() == [0.0, 1.0]  # p0 = 0.8 > 0.7 -> label 0; p0 = 0.6 -> label 1


def test_metadata_is_kept():
    p = MetaTensor(_probabilities([0.3, 0.6]), affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])))
    out = ForegroundThresholdd("pred", threshold=0.5)({"pred": p})["pred"]
    assert isinstance(out, MetaTensor)
    assert torch.equal(out.affine, p.affine)


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.0}, {"channel": 2}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        ForegroundThresholdd("pred", **kwargs)


def test_more_than_two_classes_raise():
    with pytest.raises(ValueError, match="two-class"):
        ForegroundThresholdd("pred")({"pred": torch.rand(3, 4, 4)})
