"""write_nifti: round trip through nibabel (pixels, RAS affine, sform/qform codes, dtypes), atomicity."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from app.errors import OutputError
from app.volume import Volume, convert_affine
from app.writing import nifti
from app.writing.nifti import write_nifti


def _oblique_lps_affine() -> np.ndarray:
    angle = np.deg2rad(20)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.9, 2.5])
    affine[:3, 3] = [-12.0, 30.5, 7.25]
    return affine


def test_label_round_trip_lps_volume(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(7, 5, 4)).astype(np.int64)
    volume = Volume(labels, _oblique_lps_affine(), space="LPS")
    path = write_nifti(volume, tmp_path / "labels.nii.gz")

    image = nib.load(path)
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(image.dataobj), labels)
    expected = convert_affine(volume.affine, "LPS", "RAS")
    np.testing.assert_allclose(image.affine, expected, atol=1e-5)
    sform, sform_code = image.header.get_sform(coded=True)
    qform, qform_code = image.header.get_qform(coded=True)
    assert (int(sform_code), int(qform_code)) == (1, 1)
    np.testing.assert_allclose(sform, expected, atol=1e-5)
    np.testing.assert_allclose(qform, expected, atol=1e-4)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert (image.dataobj.slope, image.dataobj.inter) == (1.0, 0.0)  # labels are not scaled


def test_ras_volume_is_written_unchanged(tmp_path):
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    volume = Volume(np.ones((2, 3, 4), dtype=bool), affine, space="RAS")
    image = nib.load(write_nifti(volume, tmp_path / "mask.nii", xform_code="aligned"))
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_allclose(image.affine, affine)
    assert int(image.header["sform_code"]) == 2 and int(image.header["qform_code"]) == 2


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([0, 255]), np.uint8),
        (np.array([0, 300]), np.uint16),
        (np.array([0, 70000]), np.uint32),
        (np.array([-1024, 3000]), np.int16),
        (np.array([0.5, 1.5], dtype=np.float64), np.float64),
        (np.array([0.5, 1.5], dtype=np.float16), np.float32),
    ],
)
def test_on_disk_dtype(values, dtype):
    assert nifti.nifti_array(values).dtype == dtype


def test_sheared_affine_keeps_sform_and_drops_qform(tmp_path):
    affine = np.eye(4)
    affine[0, 2] = 0.3  # gantry tilt: slices shifted along x
    volume = Volume(np.zeros((3, 3, 3), dtype=np.uint8), affine, space="RAS")
    image = nib.load(write_nifti(volume, tmp_path / "tilt.nii.gz"))
    assert int(image.header["qform_code"]) == 0 and int(image.header["sform_code"]) == 1
    np.testing.assert_allclose(image.affine, affine)


def test_real_rotation_near_180_degrees_keeps_its_qform(shared_data, tmp_path, caplog):
    """The real Siemens enhanced MR: orthogonal to 1e-10, but its float32 quaternion (rotation near 180 degrees)
    places the far corner 2.8e-3 mm from the sform; that rounding is no shear (it was written with qform code 0 and
    a 'sheared' warning)."""
    from app.loading import load_volume
    from app.loading.nifti import read_nifti

    series = shared_data / "dicom2nifti-suite" / "siemens_multiframe" / "anatomical" / "001"
    volume = load_volume(series)
    path = write_nifti(volume.with_array(np.zeros(volume.shape, np.uint8)), tmp_path / "enhanced.nii.gz")
    assert "sheared" not in caplog.text
    image = nib.load(path)
    assert int(image.header["qform_code"]) == 1 and int(image.header["sform_code"]) == 1
    assert read_nifti(path).warnings == ()  # and the reader does not call the two transforms ambiguous


def test_a_small_true_shear_still_drops_the_qform(tmp_path):
    """3e-5 of shear (0.002 degrees) moves the far corner of a 256 mm grid 7e-3 mm: that is no rounding."""
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, :3] = affine[:3, :3] @ np.array(
        [[-1.0, 0, 0], [0, 1, 0], [0, 0, -1]]
    )  # rotation by 180 degrees
    affine[0, 2] = 3e-5
    volume = Volume(np.zeros((256, 256, 8), dtype=np.uint8), affine, space="RAS")
    image = nib.load(write_nifti(volume, tmp_path / "shear.nii.gz"))
    assert int(image.header["qform_code"]) == 0 and int(image.header["sform_code"]) == 1


def test_2d_volume(tmp_path):
    volume = Volume(np.arange(6, dtype=np.uint8).reshape(2, 3), np.diag([0.5, 0.5, 1.0, 1.0]), space="RAS")
    image = nib.load(write_nifti(volume, tmp_path / "slice.nii.gz"))
    np.testing.assert_array_equal(np.asarray(image.dataobj), volume.array)


def test_refuses_other_extensions(tmp_path):
    with pytest.raises(OutputError, match=r"\.nii"):
        write_nifti(Volume(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "labels.nrrd")


def test_failing_save_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_save(image, filename):
        with open(filename, "wb") as handle:
            handle.write(b"\x5c\x01\x00\x00 partial header")
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_nifti(Volume(np.zeros((2, 2, 2), np.uint8), np.eye(4)), tmp_path / "out" / "labels.nii.gz")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("xform_code", ["scanner", "aligned"])
def test_label_of_an_ambiguous_input_has_one_orientation_for_every_reader(tmp_path, xform_code):
    """Input: qform 12 mm from the sform. The label carries the sform in both, so SimpleITK (which reads the qform
    of an ``aligned`` file and the sform of a ``scanner`` one) puts it exactly where the prediction was made."""
    import SimpleITK as sitk

    from app.loading.nifti import read_nifti

    sform = _oblique_lps_affine()
    qform = sform.copy()
    qform[:3, 3] += (0.0, 12.0, 0.0)
    source = nib.Nifti1Image(np.zeros((7, 5, 4), np.int16), sform)
    source.set_sform(sform, code=1)
    source.set_qform(qform, code=1)
    nib.save(source, tmp_path / "input.nii.gz")
    image = read_nifti(tmp_path / "input.nii.gz")
    assert len(image.warnings) == 1
    label = image.with_array(np.ones(image.shape, np.uint8))
    path = write_nifti(label, tmp_path / "label.nii.gz", xform_code=xform_code)

    written = nib.load(path).header
    assert (
        int(written["qform_code"]) == int(written["sform_code"]) == {"scanner": 1, "aligned": 2}[xform_code]
    )
    itk = sitk.ReadImage(str(path))
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(itk.GetDirection()).reshape(3, 3) @ np.diag(itk.GetSpacing())
    lps[:3, 3] = itk.GetOrigin()
    np.testing.assert_allclose(convert_affine(lps, "LPS", "RAS"), sform, atol=1e-4)
    assert read_nifti(path).warnings == ()  # no reader of ours would flag it


def test_qform_is_kept_for_a_nearly_orthogonal_affine_of_a_large_grid(tmp_path):
    """DICOM direction cosines rounded to 6 decimals: the qform (a rotation) still agrees with the sform."""
    affine = _oblique_lps_affine()
    affine[:3, 0] += 1e-6  # not exactly orthogonal any more
    volume = Volume(np.zeros((512, 512, 3), dtype=np.uint8), affine, space="LPS")
    header = nib.load(write_nifti(volume, tmp_path / "big.nii.gz")).header
    assert int(header["qform_code"]) == 1
    np.testing.assert_allclose(header.get_qform(), header.get_sform(), atol=1e-3)


def _itk_geometry(path) -> tuple:
    import SimpleITK as sitk

    itk = sitk.ReadImage(str(path))
    return itk.GetSize(), itk.GetOrigin(), itk.GetDirection(), itk.GetSpacing()


def _source(tmp_path, name, sform_code, qform_code, *, unit="mm", qform_shift=0.0):
    sform = _oblique_lps_affine()
    qform = sform.copy()
    qform[:3, 3] += (0.0, qform_shift, 0.0)
    source = nib.Nifti1Image(np.zeros((7, 5, 4), np.int16), sform)
    source.set_sform(sform, code=sform_code)
    source.set_qform(qform, code=qform_code)
    source.header.set_xyzt_units(xyz=unit)
    nib.save(source, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize(
    ("sform_code", "qform_code", "unit", "qform_shift"),
    [
        (0, 0, "mm", 0.0),  # no orientation: nibabel and ITK place the image differently
        (4, 2, "mm", 0.0),  # registered to MNI / aligned: the codes are kept
        (1, 1, "mm", 12.0),  # qform 12 mm from the sform
        (1, 1, "meter", 0.0),  # stored in metres
        (2, 0, "mm", 0.0),  # sform only
    ],
)
def test_label_of_a_nifti_copies_its_geometry_so_every_reader_overlays_them(
    tmp_path, sform_code, qform_code, unit, qform_shift
):
    """like=: the label map of a NIfTI carries the image's own sform, qform, codes, pixdim and unit, so nibabel
    and SimpleITK each place label and image alike (an image without orientation used to get a 'scanner' label
    that ITK showed flipped and shifted off the image)."""
    from app.loading.nifti import read_nifti

    path = _source(tmp_path, "input.nii.gz", sform_code, qform_code, unit=unit, qform_shift=qform_shift)
    image = read_nifti(path)
    label = image.with_array(np.ones(image.shape, np.uint8))
    written = write_nifti(label, tmp_path / "label.nii.gz", like=path)

    source, header = nib.load(path).header, nib.load(written).header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (sform_code, qform_code)
    assert header.get_xyzt_units()[0] == unit
    np.testing.assert_array_equal(header.get_zooms(), source.get_zooms())
    np.testing.assert_array_equal(nib.load(written).affine, nib.load(path).affine)
    np.testing.assert_allclose(read_nifti(written).affine, image.affine, atol=1e-6)
    size, origin, direction, spacing = _itk_geometry(written)
    reference = _itk_geometry(path)
    assert size == reference[0]
    np.testing.assert_allclose(origin, reference[1], atol=1e-5)
    np.testing.assert_allclose(direction, reference[2], atol=1e-6)
    np.testing.assert_allclose(spacing, reference[3], atol=1e-6)


def test_a_nifti_in_metres_is_read_in_millimetres_with_a_warning(tmp_path):
    from app.loading.nifti import read_nifti

    metres = _source(tmp_path, "m.nii.gz", 1, 1, unit="meter")
    millimetres = _source(tmp_path, "mm.nii.gz", 1, 1)
    in_metres = read_nifti(metres)
    np.testing.assert_allclose(in_metres.affine, np.diag([1000.0, 1000, 1000, 1]) @ nib.load(metres).affine)
    assert any("spatial unit meter" in w for w in in_metres.warnings)
    assert read_nifti(millimetres).warnings == ()


def test_like_is_ignored_when_the_label_is_not_on_its_grid(tmp_path):
    path = _source(tmp_path, "input.nii.gz", 0, 0)
    label = Volume(np.ones((7, 5, 4), np.uint8), np.diag([2.0, 2, 2, 1]))
    written = write_nifti(label, tmp_path / "label.nii.gz", like=path)
    header = nib.load(written).header
    assert int(header["sform_code"]) == int(header["qform_code"]) == 1
    np.testing.assert_allclose(nib.load(written).affine, label.affine)
