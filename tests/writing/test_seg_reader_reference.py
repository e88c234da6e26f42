"""read_dicom_seg against SEGs written by two other tools (dcmqi, highdicom), which validates our round-trip tooling.

References: dcmqi's label NRRDs on the same grid (pixels and affine), and for highdicom's files an independent
pydicom decode placed by PlanePosition (conftest ``decode_seg``).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.errors import InputError
from app.loading.seg import read_dicom_seg, read_dicom_seg_masks

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # highdicom: single-component patient names


@pytest.fixture(scope="module")
def dcmqi(shared_data):
    return shared_data / "dcmqi-seg"


@pytest.fixture(scope="module")
def hdseg(shared_data):
    return shared_data / "highdicom-seg"


@pytest.mark.parametrize(
    ("seg_file", "nrrd_file"),
    [
        ("liver.dcm", "liver_seg.nrrd"),  # BINARY 512x512x3
        ("23x38x3/seg/label.seg", "23x38x3/nrrd/label.nrrd"),  # BINARY, rows*columns not a multiple of 8
        ("24x38x3/seg/label.seg", "24x38x3/nrrd/label.nrrd"),
        ("sparse-labelmap-noppv.dcm", "sparse_labelmap_noppv_seg.nrrd"),  # LABELMAP, a frame omitted
    ],
)
def test_dcmqi_segs_match_their_label_maps(dcmqi, seg_tools, seg_file, nrrd_file):
    labels, segments = read_dicom_seg(dcmqi / seg_file)
    reference = seg_tools.nrrd_volume(dcmqi / nrrd_file)
    assert segments == {1: "Liver"}
    assert labels.space == "LPS" and labels.shape == reference.shape
    np.testing.assert_allclose(labels.affine, reference.affine, atol=1e-4)
    np.testing.assert_array_equal(labels.array, reference.array)


def test_dcmqi_sparse_labelmap_with_padding_value(dcmqi, seg_tools):
    """dcmqi fills the omitted frame with PixelPaddingValue 5; we read absent frames as background."""
    labels, _ = read_dicom_seg(dcmqi / "sparse-labelmap-ppv5.dcm")
    reference = seg_tools.nrrd_volume(dcmqi / "sparse_labelmap_ppv5_seg.nrrd").array
    padded = reference == 5
    assert padded.sum() == 24 * 38  # exactly the one omitted slice
    np.testing.assert_array_equal(labels.array, np.where(padded, 0, reference))
    assert labels.meta["dicom_seg"]["segmentation_type"] == "LABELMAP"


def test_overlapping_segments_are_refused_by_name_and_read_as_masks(dcmqi, seg_tools):
    with pytest.raises(InputError, match=r"overlap.*1 'GREEN' and 2 'ORANGE' \(\d+ voxels\)"):
        read_dicom_seg(dcmqi / "partial_overlaps.dcm")

    masks, segments = read_dicom_seg_masks(dcmqi / "partial_overlaps.dcm")
    assert segments == {1: "GREEN", 2: "ORANGE", 3: "PURPLE", 4: "LIGHT_BLUE", 5: "DARK_BLUE"}
    # dcmqi's inputs: segments 1, 4, 5 in the first NRRD, 2 and 3 in the others.
    for nrrd_file, numbers in (
        ("partial_overlaps-1.nrrd", (1, 4, 5)),
        ("partial_overlaps-2.nrrd", (2,)),
        ("partial_overlaps-3.nrrd", (3,)),
    ):
        reference = seg_tools.nrrd_volume(dcmqi / nrrd_file)
        for number in numbers:
            np.testing.assert_allclose(masks[number].affine, reference.affine, atol=1e-4)
            np.testing.assert_array_equal(masks[number].array, reference.array == number)


@pytest.mark.parametrize(
    "name",
    [
        "seg_image_ct_binary.dcm",
        "seg_image_ct_binary_fractional.dcm",  # FRACTIONAL with 0/1 values
        "seg_image_ct_true_fractional.dcm",  # FRACTIONAL with intermediate values: threshold 0.5
        "seg_image_ct_binary_single_frame.dcm",
    ],
)
def test_highdicom_segs_match_an_independent_pydicom_decode(hdseg, seg_tools, name):
    labels, segments = read_dicom_seg(hdseg / name)
    assert segments == {1: "first segment"}
    reference = seg_tools.masks_to_labels(seg_tools.decode_seg(hdseg / name, labels))
    assert reference.any()
    np.testing.assert_array_equal(labels.array, reference)


def test_true_fractional_threshold_is_applied(hdseg, seg_tools):
    """Stored values are 0, 64 and 128 of 255: 0.25 is out and 0.502 is in at the default threshold 0.5."""
    path = hdseg / "seg_image_ct_true_fractional.dcm"
    raw = pydicom.dcmread(path).pixel_array / 255.0
    counts = {}
    for threshold in (0.1, 0.5, 0.9):
        labels, _ = read_dicom_seg(path, fractional_threshold=threshold)
        counts[threshold] = int(labels.array.sum())
        assert counts[threshold] == int((raw >= threshold).sum())
        reference = seg_tools.decode_seg(path, labels, fractional_threshold=threshold)
        np.testing.assert_array_equal(labels.array.astype(bool), reference[1])
    assert counts[0.1] > counts[0.5] > counts[0.9] == 0


def test_highdicom_overlap_sparse_frames(hdseg, seg_tools):
    """8 frames at 4 irregular positions (-99.5 .. 105.5 mm): read on a regular grid with empty gaps."""
    path = hdseg / "seg_image_ct_binary_overlap.dcm"
    with pytest.raises(InputError, match="overlap"):
        read_dicom_seg(path)
    masks, _ = read_dicom_seg_masks(path)
    grid = masks[1]
    reference = seg_tools.decode_seg(path, grid)
    for number in (1, 2):
        np.testing.assert_array_equal(masks[number].array.astype(bool), reference[number])
    occupied = np.flatnonzero(reference[1].any(axis=(0, 1)) | reference[2].any(axis=(0, 1)))
    assert grid.shape[2] > len(occupied)  # slices between the frames are present and empty


@pytest.mark.parametrize(
    ("name", "reason"), [("seg_image_cr_binary.dcm", "plane positions"), ("ct_image.dcm", "not a DICOM SEG")]
)
def test_unusable_files_raise_input_errors(hdseg, name, reason):
    with pytest.raises(InputError, match=reason) as info:
        read_dicom_seg(hdseg / name)
    assert info.value.path == hdseg / name


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_dicom_seg(tmp_path / "nothing.dcm")
