"""SeededWatershedd: two-class probabilities -> labels whose foreground regions do not merge through small gaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image
from scipy import ndimage

from app.evaluation.em import adapted_rand_error, cell_components
from app.transforms.threshold import ForegroundThresholdd
from app.transforms.watershed import SeededWatershedd, separated_foreground


def _two_class(cell: np.ndarray) -> torch.Tensor:
    p = torch.as_tensor(cell, dtype=torch.float32)
    return torch.stack([1 - p, p])


def _two_cells_with_a_leaky_wall() -> np.ndarray:
    """p(cell) of two 20 x 20 cells side by side, their 3-pixel wall broken over 2 rows in the middle."""
    p = np.full((24, 45), 0.02, np.float32)
    p[2:22, 2:21] = 0.97  # left cell
    p[2:22, 24:43] = 0.97  # right cell
    p[11:13, 21:24] = 0.4  # the gap: uncertain, above the mask threshold
    return p


def test_a_gap_in_the_wall_merges_under_the_threshold_but_not_the_watershed():
    p = _two_class(_two_cells_with_a_leaky_wall())
    plain = ForegroundThresholdd("pred", threshold=0.15)({"pred": p})["pred"][0].numpy() > 0
    split = SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9)({"pred": p})["pred"]
    assert split.shape == (1, 24, 45)
    assert set(split.unique().tolist()) == {0.0, 1.0}
    ws = split[0].numpy() > 0
    assert cell_components(plain).max() == 1
    assert cell_components(ws).max() == 2
    assert not (ws & ~plain).any(), "the watershed only removes foreground pixels"
    assert np.count_nonzero(plain & ~ws) == 2, "one pixel of the line per row of the gap"


def test_unseeded_foreground_is_kept():
    p = np.full((10, 10), 0.05, np.float32)
    p[2:5, 2:5] = 0.6  # foreground, never above the seed threshold
    out = SeededWatershedd("pred", threshold=0.5, seed_threshold=0.9)({"pred": _two_class(p)})["pred"][0]
    assert torch.equal(out > 0, torch.as_tensor(p > 0.5))


def test_small_seeds_are_dropped():
    p = _two_cells_with_a_leaky_wall()
    p[2:22, 24:43] = 0.6
    p[5:7, 30:32] = 0.97  # a 4-pixel seed in the right cell
    kept = SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9)({"pred": _two_class(p)})["pred"][0]
    dropped = SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9, min_seed_size=5)(
        {"pred": _two_class(p)}
    )["pred"][0]
    assert cell_components(kept.numpy() > 0).max() == 2
    assert cell_components(dropped.numpy() > 0).max() == 1, "without its seed the right cell is flooded"


def test_separated_foreground_leaves_no_two_regions_face_adjacent():
    rng = np.random.default_rng(0)
    regions = rng.integers(0, 5, size=(40, 30, 6))
    fg = separated_foreground(regions)
    kept = np.where(fg, regions, 0)
    for axis in range(3):
        a, b = np.moveaxis(kept, axis, 0)[:-1], np.moveaxis(kept, axis, 0)[1:]
        assert not ((a != b) & (a > 0) & (b > 0)).any()
    assert not (fg & (regions == 0)).any()


def test_channel_zero_splits_the_other_class():
    p = _two_class(_two_cells_with_a_leaky_wall())
    one = SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9)({"pred": p})["pred"]
    zero = SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9, channel=0)({"pred": p.flip(0)})[
        "pred"
    ]
    assert torch.equal(zero, 1 - one)


def test_3d_and_metadata():
    p = np.repeat(_two_cells_with_a_leaky_wall()[..., None], 3, axis=-1)
    meta = MetaTensor(_two_class(p), affine=torch.diag(torch.tensor([2.0, 3.0, 4.0, 1.0])))
    out = SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9)({"pred": meta})["pred"]
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, meta.affine)
    labels, n = ndimage.label(out[0].numpy() > 0)  # 6-connected
    assert out.shape == (1, 24, 45, 3) and n == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 0.5, "seed_threshold": 0.4},
        {"seed_threshold": 1.0},
        {"min_seed_size": -1},
        {"sigma": -1.0},
        {"channel": 2},
    ],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        SeededWatershedd("pred", **kwargs)


def test_more_than_two_classes_raise():
    with pytest.raises(ValueError, match="two-class"):
        SeededWatershedd("pred")({"pred": torch.rand(3, 4, 4)})


def test_real_slice_with_broken_membranes(shared_data):
    """An ISBI 2012 label slice as a probability map with gaps opened in its thin membranes: thresholding merges
    the cells on both sides of each gap, the seeded watershed keeps them apart."""
    label = np.asarray(Image.open(shared_data / "isbi2012-em" / "train" / "label" / "20.png")) > 127
    truth = cell_components(label)
    p = ndimage.gaussian_filter(label.astype(np.float32), 1.0)
    # membrane pixels with cell 3 px away on both sides along an axis, 30 % of them (and their neighbours) opened
    thin = ~label & (
        (ndimage.shift(label, (0, 3), order=0) & ndimage.shift(label, (0, -3), order=0))
        | (ndimage.shift(label, (3, 0), order=0) & ndimage.shift(label, (-3, 0), order=0))
    )
    broken = ndimage.binary_dilation(thin & (np.random.default_rng(1).random(label.shape) < 0.3))
    p[broken] = np.maximum(p[broken], 0.5)
    probabilities = _two_class(p)
    plain = ForegroundThresholdd("pred", threshold=0.15)({"pred": probabilities})["pred"][0].numpy() > 0
    ws = (
        SeededWatershedd("pred", threshold=0.15, seed_threshold=0.9, min_seed_size=10)(
            {"pred": probabilities}
        )["pred"][0].numpy()
        > 0
    )
    assert cell_components(plain).max() < truth.max() / 2, "the test must open gaps that merge cells"
    assert adapted_rand_error(plain, label) > 0.5
    assert adapted_rand_error(ws, label) < 0.01
    assert abs(int(cell_components(ws).max()) - int(truth.max())) <= 0.1 * truth.max()
