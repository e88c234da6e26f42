"""dicom2nifti's conformance suite: every readable series matches its reference NIfTI; failing/ is refused."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.errors import InputError
from app.loading import load_volume
from app.loading.dicom.options import DicomReadOptions
from app.loading.dicom.reader import read_series
from app.volume import Volume

#: series (relative to the suite) with a reference NIfTI that must read to the same voxels and geometry
READABLE = [
    "ge/anatomical/001",
    "ge/anatomical/001_implicit",
    "generic/anatomical/001",
    "generic/anatomical/001_implicit",
    "generic/anatomical/002_non_isotropic",
    "generic/compressed/001",
    "generic/compressed_j2k/001",
    "generic/compressed_jpeg/001",
    "generic/compressed_jpegls/001",
    "generic/compressed_rle/001",
    "hitachi/anatomical/001",
    "hitachi/anatomical/001_implicit",
    "hyperfine/anatomical/001",
    "philips/anatomical/001",
    "philips/anatomical/001_implicit",
    "philips_enhanced/anatomical/001",
    "siemens/anatomical/001",
    "siemens/anatomical/001_implicit",
    "siemens_multiframe/anatomical/001",
    # only 2 slices: the spacing is their one gap, consistent by construction; read (documented policy)
    "failing/slicecount/001",
]

#: series a strict reader must refuse, with words the reason must contain
REFUSED = {
    "failing/gantrytilting/001": ["gantry tilt"],
    "failing/sliceincrement/001": ["missing slice", "spacing"],
    # tilted and a slice missing: both problems are named
    "failing/sliceincrement/002": ["gantry tilt", "missing slice"],
    "failing/sliceorientation/001": ["mixed orientations"],
    "failing/notavolume/001": ["several images per position", "4D"],
    "generic/rgb/001": ["colour", "RGB"],
}

AFFINE_TOL_MM = 0.05


def canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voxels and affine reoriented to RAS+ with nibabel (trailing singleton dimensions dropped)."""
    array = np.asarray(array)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    img = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
    return np.asarray(img.dataobj), img.affine


def assert_matches_reference(volume: Volume, reference: Path) -> None:
    """Same voxels (exactly for integers; float32 rounding for rescaled data) and affine within 0.05 mm."""
    ras = volume.in_space("RAS")
    ours, our_affine = canonical(ras.array, ras.affine)
    ref_img = nib.load(reference)
    theirs, ref_affine = canonical(np.asanyarray(ref_img.dataobj), ref_img.affine)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(our_affine, ref_affine, atol=AFFINE_TOL_MM)
    if np.issubdtype(ours.dtype, np.integer) and np.issubdtype(theirs.dtype, np.integer):
        np.testing.assert_array_equal(ours.astype(np.int64), theirs.astype(np.int64))
    else:
        # float32 rescale vs the reference's float64 (PMOD) or its own float rounding (Philips, <= 1.3e-4)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", READABLE)
def test_series_matches_reference_nifti(d2n: Path, case: str) -> None:
    volume = load_volume(d2n / case)
    assert volume.space == "LPS"
    assert_matches_reference(volume, d2n / f"{case}_ground_truth.nii.gz")
    meta = volume.dicom
    assert len(meta.sop_instance_uids) == len(meta.files)
    if meta.frame_numbers is None:
        assert len(meta.files) == volume.shape[2]
    else:
        assert len(meta.files) == 1 and sorted(meta.frame_numbers) == list(range(1, volume.shape[2] + 1))


@pytest.mark.parametrize(("case", "words"), REFUSED.items())
def test_bad_series_is_refused_with_reason(d2n: Path, case: str, words: list[str]) -> None:
    with pytest.raises(InputError) as info:
        load_volume(d2n / case)
    for word in words:
        assert word.lower() in info.value.reason.lower()
    assert info.value.path is not None and str(info.value.path).startswith(str(d2n))


def test_rgb_reader_refuses_directly(d2n: Path) -> None:
    with pytest.raises(InputError, match="colour"):
        read_series(sorted((d2n / "generic/rgb/001").iterdir()))


def test_single_slice_needs_a_known_spacing(d2n: Path) -> None:
    folder = d2n / "ge/anatomical/001_single_slice"
    with pytest.raises(InputError, match="spacing along k cannot be determined"):
        read_series(sorted(folder.iterdir()))
    volume = read_series(sorted(folder.iterdir()), DicomReadOptions(single_slice_spacing_mm=1.0))
    assert volume.shape == (256, 256, 1)
    assert_matches_reference(volume, d2n / "ge/anatomical/001_single_slice_ground_truth.nii.gz")


def test_non_square_pixels_real(d2n: Path) -> None:
    """PMOD series: PixelSpacing [4.0, 6.4] (row, column) on 28 rows x 64 columns."""
    volume = load_volume(d2n / "generic/anatomical/002_non_isotropic")
    assert volume.shape[:2] == (64, 28)
    np.testing.assert_allclose(volume.spacing[:2], [6.39995861, 4.0], rtol=1e-6)
    assert volume.array.dtype == np.float32  # per-slice RescaleSlope
