"""NIfTI orientation policy: the sform is followed; a qform that disagrees is a warning (or a refusal when strict)
whose text says what was followed and where ITK-based viewers put the image; checked against SimpleITK."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from app.errors import InputError
from app.loading import ReadOptions, load_volume
from app.loading.nifti import QFORM_SFORM_TOLERANCE_MM, affine_distance, itk_reads_qform
from app.volume import Volume, convert_affine


def _write(
    path: Path, sform: np.ndarray, qform: np.ndarray | None, *, sform_code: int = 1, qform_code: int = 1
) -> Path:
    image = nib.Nifti1Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), sform)
    image.set_sform(sform, code=sform_code)
    image.set_qform(qform, code=qform_code if qform is not None else 0)
    nib.save(image, path)
    return path


def _sitk_affine(path: Path) -> np.ndarray:
    """Where SimpleITK puts the image, as a RAS voxel -> world affine."""
    image = sitk.ReadImage(str(path))
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return convert_affine(lps, "LPS", "RAS")


def _rotated(degrees: float, shift: tuple[float, float, float] = (0, 0, 0)) -> np.ndarray:
    angle = np.deg2rad(degrees)
    affine = np.eye(4)
    affine[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    affine[:3, :3] = affine[:3, :3] @ np.diag([0.8, 0.9, 2.0])
    affine[:3, 3] = shift
    return affine


def test_agreeing_qform_and_sform_give_no_warning(tmp_path: Path, shared_data: Path) -> None:
    assert load_volume(_write(tmp_path / "same.nii", _rotated(30), _rotated(30))).warnings == ()
    # dcm2niix output: qform and sform agree up to float32 rounding (~6e-6 mm), far inside the tolerance
    assert load_volume(shared_data / "dcm-qa-ts" / "Ref" / "2.nii").warnings == ()


def test_disagreement_follows_the_sform_and_says_where_itk_puts_it(tmp_path: Path, caplog) -> None:
    path = _write(tmp_path / "shifted.nii", _rotated(30), _rotated(30, (0, 7.5, 0)), sform_code=2)
    with caplog.at_level("WARNING", logger="app.loading.nifti"):
        volume = load_volume(path)
    np.testing.assert_allclose(volume.affine, _rotated(30), atol=1e-5)
    (warning,) = volume.warnings
    assert warning == (
        "qform and sform disagree: they place voxels up to 7.5 mm apart (sform_code 2, qform_code 1). unetseg "
        "follows the sform, as nibabel and MONAI do; ITK-based viewers (SimpleITK, 3D Slicer, ITK-SNAP) place "
        "this image by its qform, so they will show it (and its label) elsewhere than unetseg segmented it. To "
        "avoid this, make them agree, e.g. `fslorient -copysform2qform FILE` or nibabel's "
        "`img.set_qform(img.get_sform())`"
    )
    assert warning in caplog.text and str(path) in caplog.text
    # the claim about ITK holds: SimpleITK places this file by its qform, 7.5 mm from where unetseg does
    np.testing.assert_allclose(_sitk_affine(path), _rotated(30, (0, 7.5, 0)), atol=1e-4)


def test_itk_follows_a_scanner_sform_and_the_warning_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "scanner.nii", _rotated(30), _rotated(10), sform_code=1)
    (warning,) = load_volume(path).warnings
    assert "current ITK-based viewers (SimpleITK, 3D Slicer, ITK-SNAP) follow this sform too" in warning
    np.testing.assert_allclose(_sitk_affine(path), _rotated(30), atol=1e-4)
    sheared = _rotated(30)
    sheared[0, 2] = 0.5
    assert (
        itk_reads_qform(sheared, 1)
        and itk_reads_qform(_rotated(30), 2)
        and not itk_reads_qform(_rotated(30), 1)
    )


def test_strict_orientation_refuses_with_the_fix(tmp_path: Path) -> None:
    shifted = np.eye(4)
    shifted[:3, 3] = (3, 0, 0)
    path = _write(tmp_path / "shifted.nii", np.eye(4), shifted)
    with pytest.raises(InputError) as error:
        load_volume(path, options=ReadOptions(strict_orientation=True))
    assert error.value.path == path
    assert error.value.reason.startswith("qform and sform disagree: they place voxels up to 3 mm apart")
    assert "refused because strict orientation is on" in error.value.reason
    assert "fslorient -copysform2qform" in error.value.reason
    # strict mode accepts files with one orientation
    assert load_volume(
        _write(tmp_path / "ok.nii", np.eye(4), np.eye(4)), options=ReadOptions(strict_orientation=True)
    )


def test_the_tolerance_is_measured_at_the_corners(tmp_path: Path) -> None:
    """A 0.01 degree rotation moves the origin by nothing but the far corner of a big grid by more than 1e-3 mm."""
    a, b = np.eye(4), _rotated(0.01)
    b[:3, :3] = b[:3, :3] @ np.linalg.inv(np.diag([0.8, 0.9, 2.0]))
    assert affine_distance(a, b, (2, 2, 2)) < QFORM_SFORM_TOLERANCE_MM < affine_distance(a, b, (512, 512, 10))


def test_no_orientation_at_all_is_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path / "none.nii", np.eye(4), None, sform_code=0)
    (warning,) = load_volume(path).warnings
    assert "neither sform nor qform is set" in warning


def test_warnings_travel_with_the_volume() -> None:
    volume = Volume(np.zeros((2, 2, 2)), np.eye(4), warnings=("w",))
    assert volume.with_array(np.ones((2, 2, 2))).warnings == ("w",)
    assert volume.in_space("LPS").warnings == ("w",)
    assert Volume(np.zeros((2, 2)), np.eye(4)).warnings == ()
    with pytest.raises(TypeError, match="tuple"):
        Volume(np.zeros((2, 2)), np.eye(4), warnings="one sentence")  # type: ignore[arg-type]
