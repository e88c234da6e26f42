"""Label readers (NIfTI, NRRD, PNG, TIFF, DICOM SEG), the same-grid check and nearest-neighbour resampling."""

from __future__ import annotations

import importlib.util

import nrrd
import numpy as np
import pytest
import tifffile
from PIL import Image

from app.errors import InputError
from app.evaluation import evaluate_case
from app.evaluation.grid import check_same_grid, resample_nearest
from app.evaluation.io import read_image, read_label
from app.volume import Volume


def test_nifti_round_trip_keeps_affine(tmp_path, save_nifti):
    affine = np.array([[0, 0, 2.0, -10], [0, 0.5, 0, 4], [-1.5, 0, 0, 7], [0, 0, 0, 1]])
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) % 3
    volume = read_label(save_nifti(tmp_path / "x.nii.gz", array, affine))
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.affine, affine)
    assert volume.space == "RAS"


def test_nifti_float_labels_must_be_whole_numbers(tmp_path, save_nifti):
    good = read_label(save_nifti(tmp_path / "ok.nii.gz", np.array([[[0.0, 1.0], [2.0, 0.0]]], np.float32)))
    assert np.issubdtype(good.array.dtype, np.integer)
    with pytest.raises(InputError, match="non-integer"):
        read_label(save_nifti(tmp_path / "prob.nii.gz", np.array([[[0.2, 0.9]]], np.float32)))


def test_nrrd_lps_header_becomes_ras_affine(shared_data):
    # dcmqi's liver_seg.nrrd: space LPS, directions diag(0.810547, 0.810547, 1), origin (-235.2, -226.8,
    # -128.69). In RAS x and y flip: diag(-0.810547, -0.810547, 1), origin (235.2, 226.8, -128.69).
    volume = read_label(shared_data / "dcmqi-seg" / "liver_seg.nrrd")
    expected = np.array(
        [[-0.810547, 0, 0, 235.2], [0, -0.810547, 0, 226.8], [0, 0, 1.0, -128.69], [0, 0, 0, 1]]
    )
    np.testing.assert_allclose(volume.affine, expected, atol=1e-6)
    assert volume.shape == (512, 512, 3) and set(np.unique(volume.array)) == {0, 1}


def test_nrrd_written_in_ras_stays_ras(tmp_path):
    path = tmp_path / "ras.nrrd"
    header = {
        "space": "right-anterior-superior",
        "space directions": np.diag([1.0, 2.0, 3.0]),
        "space origin": np.array([5.0, 6.0, 7.0]),
    }
    nrrd.write(str(path), np.ones((2, 2, 2), np.uint8), header)
    volume = read_label(path)
    np.testing.assert_allclose(volume.affine, [[1, 0, 0, 5], [0, 2, 0, 6], [0, 0, 3, 7], [0, 0, 0, 1]])


def test_png_and_tiff_are_index_order_with_unit_spacing(tmp_path):
    # a 3-row, 5-column picture; Volume index order is (i = column, j = row): shape (5, 3)
    picture = np.zeros((3, 5), dtype=np.uint8)
    picture[0, 4] = 2  # top-right pixel
    Image.fromarray(picture).save(tmp_path / "x.png")
    tifffile.imwrite(tmp_path / "x.tif", picture)
    for name in ("x.png", "x.tif"):
        volume = read_label(tmp_path / name)
        assert volume.shape == (5, 3) and volume.array[4, 0] == 2
        np.testing.assert_allclose(volume.spacing, [1.0, 1.0])


def test_colour_png_label_is_refused(tmp_path):
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="colour"):
        read_label(tmp_path / "rgb.png")
    assert read_image(tmp_path / "rgb.png").shape == (4, 4)


def test_unknown_or_missing_files_name_the_file(tmp_path):
    (tmp_path / "x.mha").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported") as info:
        read_label(tmp_path / "x.mha")
    assert info.value.path == tmp_path / "x.mha"
    with pytest.raises(InputError, match="not found"):
        read_label(tmp_path / "nothing.nii.gz")
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputError) as info:
        read_label(tmp_path / "bad.nii.gz")
    assert "bad.nii.gz" in str(info.value)


@pytest.mark.skipif(
    importlib.util.find_spec("app.loading.seg") is None or importlib.util.find_spec("highdicom") is None,
    reason="DICOM SEG reader (app.loading.seg, highdicom) not available",
)
def test_dicom_seg_matches_its_source_label_map(shared_data):
    # dcmqi made liver.dcm from liver_seg.nrrd: same voxels, same RAS grid after each reader's conversion.
    seg = read_label(shared_data / "dcmqi-seg" / "liver.dcm")
    ref = read_label(shared_data / "dcmqi-seg" / "liver_seg.nrrd")
    check_same_grid(seg, ref)
    np.testing.assert_array_equal(seg.array, ref.array)


def test_grid_mismatch_names_both_files(make_volume):
    array = np.zeros((6, 6, 6), np.uint8)
    array[2:4, 2:4, 2:4] = 1
    ref = make_volume(array, source="/data/ref/case_1.nii.gz")
    moved = make_volume(array, origin=(1.0, 0.0, 0.0), source="/data/pred/case_1_seg.nii.gz")
    with pytest.raises(InputError) as info:
        evaluate_case(moved, ref, {1: "x"})
    message = str(info.value)
    assert "/data/pred/case_1_seg.nii.gz" in message and "/data/ref/case_1.nii.gz" in message
    assert "--resample" in message
    other_shape = make_volume(np.zeros((6, 6, 5), np.uint8), source="/data/pred/p.nii.gz")
    with pytest.raises(InputError, match="shape"):
        check_same_grid(other_shape, ref)


def test_tiny_header_round_off_is_the_same_grid(make_volume):
    array = np.zeros((4, 4, 4), np.uint8)
    check_same_grid(make_volume(array, origin=(1e-4, 0, 0)), make_volume(array))


def test_lps_and_ras_descriptions_of_one_grid_are_the_same_grid(make_volume):
    ras = make_volume(np.zeros((4, 4, 4), np.uint8), origin=(3.0, -2.0, 1.0))
    check_same_grid(ras.in_space("LPS"), ras)


def test_resample_from_finer_grid_restores_the_reference(make_volume):
    # Reference: 1 mm grid. Prediction: the same labels on a 0.5 mm grid covering the same field of view
    # (voxel centres at -0.25 and +0.25 mm around each reference centre). Nearest neighbour maps each
    # reference centre onto the fine voxel at +0.25 mm, which lies inside the same coarse voxel.
    ref_array = np.zeros((8, 8, 8), np.uint8)
    ref_array[2:6, 3:5, 1:7] = 1
    ref_array[6, 6, 6] = 2
    fine = np.repeat(np.repeat(np.repeat(ref_array, 2, 0), 2, 1), 2, 2)
    ref = make_volume(ref_array, source="ref")
    pred = make_volume(fine, spacing=(0.5, 0.5, 0.5), origin=(-0.25, -0.25, -0.25), source="pred")
    resampled = resample_nearest(pred, ref)
    np.testing.assert_array_equal(resampled.array, ref_array)
    np.testing.assert_allclose(resampled.affine, ref.affine)
    assert all(r.dice == 1.0 for r in evaluate_case(resampled, ref, {1: "a", 2: "b"}))


def test_resample_handles_axis_flips_and_shifts(make_volume):
    # The prediction's array is flipped along axis 0 and its affine says so (x = 7 - i), shifted by 2 mm
    # in y: resampling must undo both, with no hand-written flip.
    ref_array = np.zeros((8, 8, 4), np.uint8)
    ref_array[1:3, 2:6, 1:3] = 1
    ref = make_volume(ref_array)
    flipped = np.zeros_like(ref_array)
    flipped[:, 2:8] = ref_array[::-1, 0:6]
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (7.0, -2.0, 0.0)
    pred = Volume(array=flipped, affine=affine, source="pred")
    np.testing.assert_array_equal(resample_nearest(pred, ref).array, ref_array)


def test_resample_2d_and_dimension_mismatch(make_volume):
    ref = make_volume(np.eye(6, dtype=np.uint8), spacing=(1.0, 1.0))
    pred = make_volume(
        np.repeat(np.repeat(np.eye(6, dtype=np.uint8), 2, 0), 2, 1), spacing=(0.5, 0.5), origin=(-0.25, -0.25)
    )
    np.testing.assert_array_equal(resample_nearest(pred, ref).array, ref.array)
    with pytest.raises(InputError, match="2D"):
        resample_nearest(make_volume(np.zeros((6, 6, 1), np.uint8)), ref)


def test_sheared_grid_is_refused(make_volume):
    array = np.zeros((6, 6, 6), np.uint8)
    array[2:4, 2:4, 2:4] = 1
    affine = np.eye(4)
    affine[0, 2] = 0.3  # the k axis leans into x: not orthogonal to i
    sheared = Volume(array=array, affine=affine, source="sheared.nii.gz")
    with pytest.raises(InputError, match="sheared"):
        evaluate_case(sheared, sheared, {1: "x"})


def test_oblique_orthogonal_grid_is_measured(make_volume):
    # A grid rotated 30 degrees about z with spacing (2, 1, 1): distances use the spacing only.
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([2.0, 1.0, 1.0])
    ref = np.zeros((10, 10, 3), np.uint8)
    ref[2:6, 2:6, 1] = 1
    pred = np.roll(ref, 1, axis=0)  # one step along i = 2 mm
    [r] = evaluate_case(Volume(pred, affine), Volume(ref, affine), {1: "x"})
    assert r.hd_mm == pytest.approx(2.0)
    assert r.volume_ref_ml == pytest.approx(16 * 2.0 / 1000)
