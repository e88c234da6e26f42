"""The U-Net paper's weight map on shapes whose distances are computed by hand (in the comments).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

The border term is applied to background (gap) pixels only; objects are the 4-/6-connected components of each
foreground class. Defaults: w0 = 10, sigma = 5, balance_power = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from app.transforms.weight_map import UNetWeightMap, UNetWeightMapd, unet_weight_map

W0, SIGMA = 10.0, 5.0


def border(d1: float, d2: float, w0: float = W0, sigma: float = SIGMA) -> float:
    return w0 * math.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))


def two_squares(gap: int = 2, shape=(40, 60)) -> np.ndarray:
    """Two 10x10 squares of label 1 on rows 10..19: A on columns 10..19, B from column 20 + gap."""
    label = np.zeros(shape, dtype=np.int64)
    label[10:20, 10:20] = 1
    label[10:20, 20 + gap : 30 + gap] = 1
    return label


def balanced(label: np.ndarray, value: int) -> float:
    """The paper's w_c = N / (K n_c), K classes present in N pixels."""
    values, counts = np.unique(label, return_counts=True)
    return label.size / (len(values) * counts[list(values).index(value)])


# --- border term: known geometry -------------------------------------------------------------------------------


def test_two_squares_two_pixel_gap_2d():
    label = two_squares(gap=2)  # gap = columns 20 and 21
    w = unet_weight_map(label)
    wc0 = 40 * 60 / (2 * (2400 - 200))  # 200 object pixels, 2 classes: 0.5454...
    assert wc0 == pytest.approx(balanced(label, 0))
    # (15, 20): 1 px from A's edge (15, 19), 2 px from B's edge (15, 22).
    assert w[15, 20] == pytest.approx(wc0 + border(1, 2), rel=1e-5)  # 0.5455 + 10 exp(-9/50) = 8.898
    assert w[15, 21] == pytest.approx(wc0 + border(2, 1), rel=1e-5)  # symmetric
    # (9, 20): one row above the gap; nearest A pixel (10, 19) at sqrt(2), nearest B pixel (10, 22) at sqrt(5).
    assert w[9, 20] == pytest.approx(wc0 + border(math.sqrt(2), math.sqrt(5)), rel=1e-5)
    # the gap is where the weight peaks, and it is far above w_c
    assert w.max() == pytest.approx(w[15, 20], rel=1e-6)
    assert w[15, 20] > 10 * wc0


def test_one_pixel_gap_2d():
    label = two_squares(gap=1)  # gap = column 20 only: d1 = d2 = 1
    w = unet_weight_map(label)
    assert w[15, 20] == pytest.approx(balanced(label, 0) + border(1, 1), rel=1e-5)  # 10 exp(-4/50) = 9.23


def test_object_pixels_get_no_border_term():
    label = two_squares(gap=2)
    w = unet_weight_map(label)
    np.testing.assert_array_equal(w[label == 1], np.float32(balanced(label, 1)))


def test_far_from_every_object_weight_is_exactly_w_c():
    label = two_squares(gap=2, shape=(80, 80))
    w = unet_weight_map(label)
    # (70, 70) is > 60 px from both squares: 10 exp(-(64 + 70)^2 / 50) underflows; w is w_c exactly.
    wc0 = np.float32(balanced(label, 0))
    assert w[70, 70] == wc0
    assert w[79, 0] == wc0 and w[0, 79] == wc0
    # beyond d1 = 28 px the term is below 10 exp(-(2 * 28)^2 / 50) = 6e-27, far under float32 resolution of w_c
    far = ndimage.distance_transform_edt(label == 0) > 28
    assert far.any()
    np.testing.assert_array_equal(w[far], wc0)


def test_single_object_has_no_border_term():
    label = np.zeros((30, 30), dtype=np.int64)
    label[5:15, 8:20] = 1
    w = unet_weight_map(label)
    np.testing.assert_array_equal(w, unet_weight_map(label, w0=0.0))
    # w_c only: two values, the paper's N / (K n_c)
    np.testing.assert_allclose(w[0, 0], 900 / (2 * (900 - 120)), rtol=1e-6)
    np.testing.assert_allclose(w[10, 10], 900 / (2 * 120), rtol=1e-6)


def test_diagonal_contact_is_two_objects_with_face_connectivity_only():
    label = np.zeros((20, 20), dtype=np.int64)
    label[0:5, 0:5] = 1
    label[5:10, 5:10] = 1  # touches A only at the corner (4, 4)-(5, 5)
    wc0 = balanced(label, 0)
    # connectivity 1 (paper): two objects; (4, 5) is 1 px from (4, 4) in A and 1 px from (5, 5) in B
    w = unet_weight_map(label, connectivity=1)
    assert w[4, 5] == pytest.approx(wc0 + border(1, 1), rel=1e-5)
    # connectivity 2: one object, no border term anywhere
    w8 = unet_weight_map(label, connectivity=2)
    np.testing.assert_array_equal(w8, unet_weight_map(label, w0=0.0))


def test_two_classes_touching_are_two_objects():
    label = np.zeros((20, 30), dtype=np.int64)
    label[5:15, 5:13] = 1
    label[5:15, 14:22] = 2  # one-pixel gap at column 13, different class
    w = unet_weight_map(label)
    assert w[10, 13] == pytest.approx(balanced(label, 0) + border(1, 1), rel=1e-5)
    # restricting objects to class 1 leaves a single object: no border term
    w1 = unet_weight_map(label, foreground_labels=[1])
    assert w1[10, 13] == pytest.approx(balanced(label, 0), rel=1e-6)


def test_two_cubes_gap_voxel_3d():
    label = np.zeros((20, 20, 22), dtype=np.int64)
    label[5:10, 5:10, 5:10] = 1  # A: k = 5..9
    label[5:10, 5:10, 12:17] = 1  # B: k = 12..16, gap k = 10, 11
    w = unet_weight_map(label)
    wc0 = 20 * 20 * 22 / (2 * (8800 - 250))
    assert wc0 == pytest.approx(balanced(label, 0))
    assert w[7, 7, 10] == pytest.approx(wc0 + border(1, 2), rel=1e-5)
    assert w[7, 7, 11] == pytest.approx(wc0 + border(2, 1), rel=1e-5)
    # (4, 7, 10): nearest A voxel (5, 7, 9) at sqrt(2), nearest B voxel (5, 7, 12) at sqrt(1 + 4) = sqrt(5)
    assert w[4, 7, 10] == pytest.approx(wc0 + border(math.sqrt(2), math.sqrt(5)), rel=1e-5)
    # (3, 3, 10): nearest A voxel (5, 5, 9): sqrt(4 + 4 + 1) = 3; nearest B voxel (5, 5, 12): sqrt(4 + 4 + 4)
    assert w[3, 3, 10] == pytest.approx(wc0 + border(3, math.sqrt(12)), rel=1e-5)
    np.testing.assert_array_equal(w[label == 1], np.float32(balanced(label, 1)))


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [
        # columns 2 mm wide: (15, 20) is 2 mm from A and 4 mm from B; (9, 20): sqrt(1 + 2^2), sqrt(1 + 4^2)
        ((1.0, 2.0), {(15, 20): (2.0, 4.0), (9, 20): (math.sqrt(5), math.sqrt(17))}),
        # rows 3 mm high: the in-row distances stay 1 and 2; (9, 20): sqrt(3^2 + 1), sqrt(3^2 + 2^2)
        ((3.0, 1.0), {(15, 20): (1.0, 2.0), (9, 20): (math.sqrt(10), math.sqrt(13))}),
    ],
)
def test_spacing_measures_distances_in_mm(spacing, expected):
    label = two_squares(gap=2)
    wc0 = balanced(label, 0)
    w = unet_weight_map(label, spacing=spacing)
    for pixel, (d1, d2) in expected.items():
        assert w[pixel] == pytest.approx(wc0 + border(d1, d2), rel=1e-5), pixel
    # and it differs from the voxel-unit map where the geometry is anisotropic
    assert not np.allclose(w, unet_weight_map(label))


def test_w0_and_sigma_scale_the_border_term():
    label = two_squares(gap=2)
    wc0 = balanced(label, 0)
    w = unet_weight_map(label, w0=3.0, sigma=2.0)
    assert w[15, 20] == pytest.approx(wc0 + border(1, 2, w0=3.0, sigma=2.0), rel=1e-5)  # 3 exp(-9/8)
    np.testing.assert_array_equal(unet_weight_map(label, w0=0.0), unet_weight_map(label, w0=-1.0))


# --- class balance ---------------------------------------------------------------------------------------------


def three_class_label() -> np.ndarray:
    label = np.zeros((10, 10), dtype=np.int64)  # 75 background
    label[0:4, 0:5] = 1  # 20 pixels
    label[8, 0:5] = 2  # 5 pixels
    return label


def test_full_balance_is_n_over_k_n_c():
    label = three_class_label()
    w = unet_weight_map(label, w0=0.0, balance_power=1.0)
    # N = 100, K = 3: 100 / (3 * 75), 100 / (3 * 20), 100 / (3 * 5); every class carries a third of the total
    for value, expected in ((0, 100 / 225), (1, 100 / 60), (2, 100 / 15)):
        np.testing.assert_allclose(w[label == value], expected, rtol=1e-6)
        assert w[label == value].sum() == pytest.approx(100 / 3, rel=1e-5)
    assert w.dtype == np.float32


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_mean_class_weight_is_one(power):
    rng = np.random.default_rng(3)
    label = rng.choice(4, size=(23, 31), p=[0.85, 0.1, 0.04, 0.01])
    assert len(np.unique(label)) == 4
    w = unet_weight_map(label, w0=0.0, balance_power=power)
    assert float(w.mean(dtype=np.float64)) == pytest.approx(1.0, rel=1e-6)


def test_half_power_weights_a_16x_rarer_class_4x():
    label = np.zeros((4, 17), dtype=np.int64)
    label[0, :4] = 1  # 4 pixels of class 1, 64 of class 0: 16x rarer
    w = unet_weight_map(label, w0=0.0, balance_power=0.5)
    # s = N / sum(n_c^(1 - p)) = 68 / (8 + 2) = 6.8; w_0 = 6.8 / sqrt(64) = 0.85, w_1 = 6.8 / sqrt(4) = 3.4
    np.testing.assert_allclose(w[label == 0], 0.85, rtol=1e-6)
    np.testing.assert_allclose(w[label == 1], 3.4, rtol=1e-6)
    assert w[0, 0] / w[3, 16] == pytest.approx(4.0, rel=1e-6)
    # full balancing would weight it 16x
    w_full = unet_weight_map(label, w0=0.0, balance_power=1.0)
    assert w_full[0, 0] / w_full[3, 16] == pytest.approx(16.0, rel=1e-6)


def test_zero_power_is_all_ones():
    label = three_class_label()
    np.testing.assert_array_equal(unet_weight_map(label, w0=0.0, balance_power=0.0), np.ones((10, 10)))


def test_negative_power_raises():
    with pytest.raises(ValueError, match="balance_power"):
        unet_weight_map(three_class_label(), balance_power=-0.5)


def test_fixed_class_weights_are_used_verbatim():
    label = three_class_label()
    w = unet_weight_map(label, w0=0.0, class_weights=[0.1, 2.0, 7.5], balance_power=0.5)  # power ignored
    expected = np.choose(label, [0.1, 2.0, 7.5]).astype(np.float32)
    np.testing.assert_array_equal(w, expected)
    # with the border term on top: background pixels of a gap get 0.1 + border
    gap = two_squares(gap=2)
    wg = unet_weight_map(gap, class_weights=[0.1, 2.0])
    assert wg[15, 20] == pytest.approx(0.1 + border(1, 2), rel=1e-5)
    assert wg[12, 12] == np.float32(2.0)


@pytest.mark.parametrize("bad_value", [3, -1])
def test_class_weights_out_of_range_labels_raise(bad_value):
    label = three_class_label()
    label[9, 9] = bad_value
    with pytest.raises(ValueError, match="class_weights"):
        unet_weight_map(label, class_weights=[0.1, 2.0, 7.5])


def test_label_must_be_2d_or_3d():
    with pytest.raises(ValueError, match="2D or 3D"):
        unet_weight_map(np.zeros(10, dtype=np.int64))
    with pytest.raises(ValueError, match="2D or 3D"):
        unet_weight_map(np.zeros((1, 4, 4, 4), dtype=np.int64))


# --- bounding-box restriction against a brute-force reference --------------------------------------------------


def brute_force(label, *, w0=W0, sigma=SIGMA, spacing=None, power=1.0) -> np.ndarray:
    """The formula read literally: one full-image EDT per object, d1 and d2 the two smallest per pixel."""
    values, counts = np.unique(label, return_counts=True)
    counts = counts.astype(np.float64)
    scale = label.size / np.sum(counts ** (1.0 - power))
    wc = np.zeros(label.shape)
    for value, count in zip(values, counts, strict=True):
        wc[label == value] = scale * count**-power
    structure = ndimage.generate_binary_structure(label.ndim, 1)
    distances = []
    for value in values[values > 0]:
        components, n = ndimage.label(label == value, structure=structure)
        for i in range(1, n + 1):
            distances.append(ndimage.distance_transform_edt(components != i, sampling=spacing))
    assert len(distances) >= 2
    d = np.sort(np.stack(distances), axis=0)
    term = w0 * np.exp(-((d[0] + d[1]) ** 2) / (2.0 * sigma**2))
    term[label > 0] = 0.0
    return wc + term


def random_objects(shape, n_objects, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.int64)
    for _ in range(n_objects):
        corner = [rng.integers(0, s - 6) for s in shape]
        size = [rng.integers(2, 7) for _ in shape]
        label[tuple(slice(c, c + z) for c, z in zip(corner, size, strict=True))] = rng.integers(1, 3)
    return label


@pytest.mark.parametrize(
    ("shape", "n_objects", "spacing"),
    [
        ((96, 96), 14, None),
        ((80, 72), 12, (1.0, 2.5)),
        ((28, 30, 26), 10, None),
        ((28, 30, 26), 10, (2.0, 1.0, 0.7)),
    ],
)
def test_box_restriction_equals_brute_force(shape, n_objects, spacing):
    label = random_objects(shape, n_objects, seed=len(shape) * 100 + n_objects)
    _, n_components = ndimage.label(label > 0)
    assert n_components >= 3
    expected = brute_force(label, spacing=spacing)
    # tolerance = 1e-5: the box restriction drops border terms below 1e-5 only, well inside atol 1e-4
    got = unet_weight_map(label, spacing=spacing, tolerance=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # at the default tolerance the error is bounded by that tolerance
    np.testing.assert_allclose(unet_weight_map(label, spacing=spacing), expected, atol=1e-3, rtol=0)


# --- array and dictionary transforms ---------------------------------------------------------------------------


def test_array_transform_channel_first():
    label = two_squares(gap=2)
    out = UNetWeightMap(w0=5.0)(torch.as_tensor(label)[None])
    assert isinstance(out, torch.Tensor) and out.shape == (1, 40, 60) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), unet_weight_map(label, w0=5.0), rtol=0, atol=0)
    # numpy input works as well
    np.testing.assert_array_equal(UNetWeightMap()(label[None])[0].numpy(), unet_weight_map(label))


@pytest.mark.parametrize("shape", [(2, 40, 60), (3, 8, 8, 8)])
def test_array_transform_rejects_multichannel(shape):
    with pytest.raises(ValueError, match="single-channel"):
        UNetWeightMap()(torch.zeros(shape, dtype=torch.int64))


def test_dict_transform_keeps_affine_and_meta():
    affine = torch.tensor(
        [[1.0, 0.0, 0.0, -20.0], [0.0, 2.0, 0.0, 5.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    label = MetaTensor(torch.as_tensor(two_squares(gap=2))[None].float(), affine=affine)
    label.meta["filename_or_obj"] = "case_001.nii.gz"
    image = torch.rand(1, 40, 60)
    out = UNetWeightMapd("label", weight_key="w")({"image": image, "label": label})
    assert set(out) == {"image", "label", "w"}
    assert out["label"] is label and out["image"] is image
    weight = out["w"]
    assert isinstance(weight, MetaTensor)
    assert weight.shape == (1, 40, 60) and weight.dtype == torch.float32
    torch.testing.assert_close(weight.affine, label.affine)
    assert weight.meta["filename_or_obj"] == "case_001.nii.gz"
    wc0 = balanced(two_squares(gap=2), 0)
    # default: voxel units, ignoring the 2 mm column spacing of the affine
    assert float(weight[0, 15, 20]) == pytest.approx(wc0 + border(1, 2), rel=1e-5)
    # use_spacing: distances from the affine's pixdim (1, 2): 2 mm and 4 mm
    weight_mm = UNetWeightMapd("label", use_spacing=True)({"label": label})["weight"]
    assert float(weight_mm[0, 15, 20]) == pytest.approx(wc0 + border(2, 4), rel=1e-5)
    torch.testing.assert_close(weight_mm.affine, affine)


def test_dict_transform_forwards_options_and_plain_tensors():
    label = torch.as_tensor(three_class_label())[None]
    out = UNetWeightMapd("label", w0=0.0, balance_power=0.0)({"label": label})["weight"]
    assert not isinstance(out, MetaTensor)
    torch.testing.assert_close(out, torch.ones(1, 10, 10))
    weights = UNetWeightMapd("label", w0=0.0, class_weights=[1.0, 2.0, 3.0])({"label": label})["weight"]
    torch.testing.assert_close(weights, label.float() + 1.0)


def test_dict_transform_takes_one_key_and_single_channel():
    with pytest.raises(ValueError, match="one label key"):
        UNetWeightMapd(["label", "other"])
    with pytest.raises(ValueError, match="single-channel"):
        UNetWeightMapd("label")({"label": torch.zeros(2, 8, 8)})
