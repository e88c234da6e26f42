"""NIfTI and NRRD files -> RAS volumes; NRRD space handling checked against SimpleITK."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from app.errors import InputError
from app.loading import load_volume
from app.volume import Volume


def test_nifti_real_ct(shared_data: Path) -> None:
    path = next((shared_data / "msd-spleen-crop" / "imagesTr").glob("*.nii.gz"))
    volume = load_volume(path)
    reference = nib.load(path)
    assert volume.space == "RAS" and volume.shape == reference.shape
    np.testing.assert_array_equal(volume.affine, reference.affine)
    assert volume.meta["format"] == "nifti"


def test_nifti_lps_stored_affine_is_kept_as_is(shared_data: Path) -> None:
    """example_mr_sm.nii.gz has an LPS-oriented affine; NIfTI world is RAS by definition, nothing is flipped."""
    path = shared_data / "totalseg-ct" / "example_mr_sm.nii.gz"
    volume = load_volume(path)
    np.testing.assert_array_equal(volume.affine, nib.load(path).affine)
    assert nib.aff2axcodes(volume.affine) == ("L", "P", "S")


def test_nifti_trailing_singleton_dimension_is_dropped(d2n: Path) -> None:
    volume = load_volume(d2n / "philips_enhanced/anatomical/001_ground_truth.nii.gz")
    assert volume.shape == (256, 256, 8) and volume.array.dtype == np.float32


def test_nifti_refusals(tmp_path: Path, d2n: Path) -> None:
    four_d = tmp_path / "4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), four_d)
    with pytest.raises(InputError, match="4D"):
        load_volume(four_d)
    with pytest.raises(InputError, match="RGB"):
        load_volume(d2n / "generic/rgb/001_ground_truth.nii.gz")
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes((d2n / "ge/anatomical/001_ground_truth.nii.gz").read_bytes()[:5000])
    with pytest.raises(InputError) as info:
        load_volume(truncated)
    assert info.value.path == truncated
    with pytest.raises(InputError, match="does not exist"):
        load_volume(tmp_path / "missing.nii.gz")


def test_nrrd_lps_matches_simpleitk(shared_data: Path) -> None:
    path = shared_data / "dcmqi-seg" / "liver_seg.nrrd"
    volume = load_volume(path)
    image = sitk.ReadImage(str(path))
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()  # ITK physical space is LPS
    expected = Volume(np.zeros(1)[:, None], affine, space="LPS").in_space("RAS").affine
    assert volume.space == "RAS"
    np.testing.assert_allclose(volume.affine, expected, atol=1e-6)
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image).transpose(2, 1, 0))


def _write_nrrd(path: Path, data: np.ndarray, space: str, directions: list, kinds: list[str]) -> Path:
    header = {"space": space, "space directions": directions, "space origin": [1.0, 2.0, 3.0], "kinds": kinds}
    nrrd.write(str(path), data, header)
    return path


def test_nrrd_ras_space_and_singleton_list_axis(tmp_path: Path) -> None:
    directions = [[0.5, 0, 0], [0, 0.6, 0], [0, 0, 0.7]]
    ras = load_volume(
        _write_nrrd(
            tmp_path / "ras.nrrd",
            np.zeros((2, 3, 4), np.int16),
            "right-anterior-superior",
            directions,
            ["domain"] * 3,
        )
    )
    np.testing.assert_allclose(ras.affine[:3], [[0.5, 0, 0, 1], [0, 0.6, 0, 2], [0, 0, 0.7, 3]])
    lps = load_volume(
        _write_nrrd(
            tmp_path / "lps.nrrd",
            np.zeros((1, 2, 3, 4), np.int16),
            "left-posterior-superior",
            [[np.nan] * 3, *directions],
            ["list", "domain", "domain", "domain"],
        )
    )
    assert lps.shape == (2, 3, 4)
    np.testing.assert_allclose(lps.affine[:3], [[-0.5, 0, 0, -1], [0, -0.6, 0, -2], [0, 0, 0.7, 3]])


def test_nrrd_refusals(tmp_path: Path) -> None:
    directions = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    las = _write_nrrd(
        tmp_path / "las.nrrd",
        np.zeros((2, 2, 2), np.uint8),
        "left-anterior-superior",
        directions,
        ["domain"] * 3,
    )
    with pytest.raises(InputError, match="not supported"):
        load_volume(las)
    vector = _write_nrrd(
        tmp_path / "rgb.nrrd",
        np.zeros((3, 2, 2, 2), np.uint8),
        "left-posterior-superior",
        [[np.nan] * 3, *directions],
        ["RGB-color", "domain", "domain", "domain"],
    )
    with pytest.raises(InputError, match="3 components"):
        load_volume(vector)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".tif"])
def test_a_non_finite_voxel_is_refused_in_every_format(tmp_path: Path, suffix: str, bad: float) -> None:
    """One NaN or infinite voxel would make the bundle's intensity normalisation NaN everywhere and the argmax
    an empty mask reported as ok; the case is refused instead, naming the file and the count."""
    import tifffile

    def save(array: np.ndarray, path: Path) -> Path:
        if suffix == ".nii.gz":
            nib.save(nib.Nifti1Image(array, np.eye(4)), path)
        elif suffix == ".nrrd":
            nrrd.write(str(path), array, {"space": "left-posterior-superior", "space directions": np.eye(3)})
        else:
            tifffile.imwrite(path, array.T)
        return path

    array = np.random.default_rng(0).random((16, 12, 8)).astype(np.float32)
    array[3, 4, 5] = bad
    array[0, 0, 0] = bad
    path = save(array, tmp_path / f"bad{suffix}")
    with pytest.raises(InputError, match=r"2 of 1536 voxels are not finite") as info:
        load_volume(path)
    assert str(path) in str(info.value)
    array[np.isnan(array) | np.isinf(array)] = 0.0
    finite = save(array, tmp_path / f"good{suffix}")
    assert load_volume(finite).shape == (16, 12, 8)


def test_a_gzip_file_named_nii_is_refused_with_the_fix(tmp_path: Path) -> None:
    import gzip

    plain = tmp_path / "plain.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), plain)
    misnamed = tmp_path / "misnamed.nii"
    misnamed.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(InputError, match=r"gzip-compressed but named \.nii; rename it to \.nii\.gz") as info:
        load_volume(misnamed)
    assert str(misnamed) in str(info.value)


def test_a_singular_affine_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A header whose sform has a zero column (or two parallel ones) gives no voxel grid: refused on reading, not
    an internal error later when the temporary copy cannot be written."""
    flat = np.diag([1.0, 1.0, 1.0, 1.0])
    flat[:3, 2] = 0.0
    parallel = np.diag([1.0, 1.0, 1.0, 1.0])
    parallel[:3, 1] = parallel[:3, 0]
    for name, affine in (("zero_axis.nii.gz", flat), ("parallel.nii.gz", parallel)):
        path = tmp_path / name
        image = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), None)  # nibabel cannot build a qform of it
        image.header.set_sform(affine, code=1)
        nib.save(image, path)
        with pytest.raises(InputError, match="the affine is singular") as info:
            load_volume(path)
        assert str(path) in str(info.value)
