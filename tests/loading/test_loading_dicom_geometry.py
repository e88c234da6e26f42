"""Geometry, order and intensities of synthetic series, checked by hand and against SimpleITK."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.loading import load_volume
from app.loading.dicom.reader import read_series
from app.volume import Volume


def sitk_canonical(folder: Path) -> nib.Nifti1Image:
    """The series as SimpleITK reads it, as a RAS-canonical nibabel image (independent reference)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    ras = Volume(sitk.GetArrayFromImage(image).transpose(2, 1, 0), affine, space="LPS").in_space("RAS")
    return nib.as_closest_canonical(nib.Nifti1Image(ras.array, ras.affine))


def assert_same_as_sitk(volume: Volume, folder: Path) -> None:
    ras = volume.in_space("RAS")
    ours = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(ras.array), ras.affine))
    theirs = sitk_canonical(folder)
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ours.dataobj), np.asarray(theirs.dataobj), rtol=1e-6)


def test_non_square_pixels_put_column_spacing_on_i(write_series) -> None:
    """PixelSpacing is [row spacing, column spacing]: i (along a row) steps by 0.8, j (down a column) by 0.5."""
    files = write_series("s", 3, rows=8, columns=6, pixel_spacing=(0.5, 0.8), spacing=3.0)
    volume = read_series(files)
    assert volume.shape == (6, 8, 3)  # (columns, rows, slices)
    np.testing.assert_allclose(volume.spacing, [0.8, 0.5, 3.0])
    np.testing.assert_allclose(volume.affine[:3, 0], [0.8, 0, 0])
    np.testing.assert_allclose(volume.affine[:3, 1], [0, 0.5, 0])
    assert volume.array[5, 7, 0] == (7 * 6 + 5) % 50  # array[i, j] is the pixel at row j, column i
    assert_same_as_sitk(volume, files[0].parent)


def test_negative_column_cosine_orders_slices_along_the_normal(tmp_path: Path, slice_writer) -> None:
    """Column cosine (0, -1, 0): normal = row x column = (0, 0, -1), so k runs towards -z (LPS)."""
    study, series = generate_uid(), generate_uid()
    folder = tmp_path / "neg"
    for name, z in (("a.dcm", 30.0), ("b.dcm", 32.0), ("c.dcm", 34.0)):
        slice_writer(
            folder / name,
            np.full((4, 5), int(z), np.int16),
            position=(-10, -20, z),
            orientation=(1, 0, 0, 0, -1, 0),
            pixel_spacing=(0.7, 0.9),
            study_uid=study,
            series_uid=series,
        )
    volume = load_volume(folder)
    expected = np.array([[0.9, 0, 0, -10], [0, -0.7, 0, -20], [0, 0, -2, 34], [0, 0, 0, 1]])
    np.testing.assert_allclose(volume.affine, expected)
    assert [int(volume.array[0, 0, k]) for k in range(3)] == [34, 32, 30]
    assert [Path(f).name for f in volume.dicom.files] == ["c.dcm", "b.dcm", "a.dcm"]
    np.testing.assert_allclose(
        volume.in_space("RAS").world_coordinates([[1, 2, 1]]), [[10 - 0.9, 20 + 1.4, 32]]
    )
    assert_same_as_sitk(volume, folder)


def test_oblique_series_affine_by_hand(write_series) -> None:
    """Doubly oblique: row (2/3, 2/3, 1/3), column (-2/3, 1/3, 2/3), normal (1/3, -2/3, 2/3)."""
    row, col = (2 / 3, 2 / 3, 1 / 3), (-2 / 3, 1 / 3, 2 / 3)
    files = write_series(
        "s", 3, orientation=(*row, *col), pixel_spacing=(0.5, 0.8), spacing=3.0, origin=(10, 20, 30)
    )
    volume = read_series(files)
    np.testing.assert_allclose(volume.affine[:3, 2], [1, -2, 2])  # normal * 3 mm
    # voxel (i=2, j=3, k=1): origin + 2 * 0.8 * row + 3 * 0.5 * column + 1 * 3 * normal
    np.testing.assert_allclose(
        volume.world_coordinates([[2, 3, 1]]), [[11 + 1 / 15, 19.5 + 1 / 15, 33.5 + 1 / 30]]
    )
    np.testing.assert_allclose(
        volume.in_space("RAS").world_coordinates([[2, 3, 1]]), [[-11 - 1 / 15, -19.5 - 1 / 15, 33.5 + 1 / 30]]
    )
    assert volume.array[2, 3, 1] == 100 + (3 * 6 + 2) % 50
    assert_same_as_sitk(volume, files[0].parent)


def test_rescale_dtypes(write_series) -> None:
    plain = read_series(write_series("plain", 2))
    assert plain.array.dtype == np.int16 and plain.array[0, 0, 1] == 100

    ct = read_series(write_series("ct", 2, dtype=np.uint16, bits_stored=12, slope=1, intercept=-1024))
    assert ct.array.dtype == np.int16 and ct.array[0, 0, 1] == 100 - 1024

    wide = read_series(write_series("wide", 2, dtype=np.uint16, bits_stored=16, intercept=-1024))
    assert wide.array.dtype == np.int32 and wide.array[3, 0, 0] == 3 - 1024

    scaled = read_series(write_series("scaled", 2, slope=2.5, intercept=0.5))
    assert scaled.array.dtype == np.float32 and scaled.array[1, 0, 1] == pytest.approx(101 * 2.5 + 0.5)


def test_per_slice_rescale(write_series) -> None:
    files = write_series("s", 3, slope=1.0, intercept=0)
    ds = pydicom.dcmread(files[1])
    ds.RescaleSlope, ds.RescaleIntercept = 0.5, -3
    ds.save_as(files[1])
    volume = read_series(files)
    assert volume.array.dtype == np.float32
    assert volume.array[2, 0, 0] == 2 and volume.array[2, 0, 1] == pytest.approx(102 * 0.5 - 3)
    assert volume.array[2, 0, 2] == 202


def test_signed_12_bit(write_series) -> None:
    """-100 stored as a 12-bit two's complement (0x0F9C) with the unused high bits zero."""
    files = write_series("s", 2, dtype=np.uint16, bits_stored=12, extra={"PixelRepresentation": 1})
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PixelData = np.full((8, 6), 4096 - 100, np.uint16).tobytes()
        ds.save_as(f)
    volume = read_series(files)
    assert volume.array.dtype == np.int16 and np.all(volume.array == -100)


def test_single_slice_with_thickness_and_two_slices(write_series) -> None:
    one = read_series(write_series("one", 1, thickness=3.0))
    assert one.shape == (6, 8, 1)
    np.testing.assert_allclose(one.spacing, [1, 1, 3])
    two = read_series(write_series("two", 2, spacing=1.7))
    np.testing.assert_allclose(two.spacing, [1, 1, 1.7])


def test_provenance_keys_for_the_seg_writer(write_series) -> None:
    files = write_series("s", 3, modality="MR", series_number=7, description="T1 ax")
    meta = read_series(list(reversed(files))).dicom
    headers = [pydicom.dcmread(f) for f in files]
    assert meta.study_instance_uid == headers[0].StudyInstanceUID
    assert meta.series_instance_uid == headers[0].SeriesInstanceUID
    assert meta.frame_of_reference_uid == headers[0].FrameOfReferenceUID
    assert (meta.modality, meta.series_number, meta.series_description) == ("MR", 7, "T1 ax")
    assert meta.sop_class_uid == headers[0].SOPClassUID
    assert meta.files == tuple(str(f) for f in files)
    assert meta.sop_instance_uids == tuple(h.SOPInstanceUID for h in headers)
    assert meta.frame_numbers is None


def _enhanced_ct(path: Path, z_by_frame: list[float], slopes: list[float]) -> Path:
    """An Enhanced CT-like multi-frame file: geometry and rescale in the functional groups only."""
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.SeriesNumber, ds.ImageType = "CT", 2, ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = 4, 3, len(z_by_frame)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.5], 1.0
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = (
        Sequence([orientation]),
        Sequence([measures]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for z, slope in zip(z_by_frame, slopes, strict=True):
        item, position, transform = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [0, 0, z]
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, 0, "HU"
        item.PlanePositionSequence, item.PixelValueTransformationSequence = (
            Sequence([position]),
            Sequence([transform]),
        )
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.stack([np.full((4, 3), int(z), np.int16) for z in z_by_frame]).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_enhanced_multiframe_frames_sorted_by_position(tmp_path: Path) -> None:
    path = _enhanced_ct(tmp_path / "enhanced.dcm", z_by_frame=[4.0, 0.0, 2.0], slopes=[1.0, 1.0, 2.0])
    volume = load_volume(path)
    assert volume.shape == (3, 4, 3)
    np.testing.assert_allclose(volume.spacing, [0.5, 0.5, 2.0])
    assert volume.dicom.frame_numbers == (2, 3, 1)
    assert volume.dicom.files == (str(path),) and len(volume.dicom.sop_instance_uids) == 1
    assert volume.array.dtype == np.float32  # per-frame slopes
    assert [float(volume.array[0, 0, k]) for k in range(3)] == [0.0, 2.0 * 2.0, 4.0]  # frame 3: slope 2
