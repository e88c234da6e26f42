"""Each refusal of the DICOM reader on a tiny synthetic series: an InputError that names the file(s) and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.errors import InputError
from app.loading.dicom.options import DicomReadOptions
from app.loading.dicom.reader import read_series


def refusal(files: list[Path], options: DicomReadOptions | None = None) -> InputError:
    with pytest.raises(InputError) as info:
        read_series(files, options)
    return info.value


def test_missing_slice(write_series) -> None:
    files = write_series("s", 5)
    files[2].unlink()
    error = refusal([f for f in files if f.exists()])
    assert "missing slice" in error.reason and "slice001.dcm and slice003.dcm" in error.reason


def test_non_uniform_spacing(write_series, slice_writer) -> None:
    files = write_series("s", 4, spacing=2.0)
    ds = pydicom.dcmread(files[3])
    ds.ImagePositionPatient = [-10.0, -20.0, 30.0 + 6.5]  # 2, 2, 2.5 mm gaps
    ds.save_as(files[3])
    error = refusal(files)
    assert "non-uniform slice spacing" in error.reason and "slice002.dcm->slice003.dcm" in error.reason


def test_spacing_within_tolerance_is_accepted(write_series) -> None:
    files = write_series("s", 4, spacing=2.0)
    ds = pydicom.dcmread(files[2])
    ds.ImagePositionPatient = [-10.0, -20.0, 34.015]  # 0.015 mm off, tolerance max(0.01, 1% of 2) = 0.02 mm
    ds.save_as(files[2])
    assert read_series(files).shape == (6, 8, 4)


def test_duplicate_position_with_different_pixels(write_series, slice_writer) -> None:
    files = write_series("s", 3)
    ds = pydicom.dcmread(files[1])
    slice_writer(
        files[1].parent / "other.dcm",
        np.full((8, 6), 7, np.int16),
        position=ds.ImagePositionPatient,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
    )
    error = refusal(sorted(files[0].parent.iterdir()))
    assert "duplicate slice positions with different pixels" in error.reason
    assert "other.dcm" in error.reason and "slice001.dcm" in error.reason


def test_identical_duplicate_is_dropped_with_warning(write_series, caplog) -> None:
    files = write_series("s", 3)
    copy = files[0].parent / "copy_of_slice001.dcm"
    shutil.copy(files[1], copy)
    volume = read_series([*files, copy])
    assert volume.shape == (6, 8, 3)
    assert volume.dicom.dropped_files == ("slice001.dcm",)  # the copy sorts first and is kept
    assert "same position and pixels" in caplog.text


def test_a_duplicate_in_another_folder_is_named_by_its_subfolder(write_series, caplog) -> None:
    """An archive holding one series twice (e.g. as compressed and implicit copies): the same file name in two
    folders; the messages name each file relative to the folder they share, not by a name both have."""
    files = write_series("s", 3)
    other = files[0].parent.parent / "copy"
    other.mkdir()
    shutil.copy(files[1], other / files[1].name)
    volume = read_series([*files, other / files[1].name])
    assert volume.shape == (6, 8, 3)
    # the copy's folder sorts first and is kept
    assert volume.dicom.dropped_files == (f"s/{files[1].name}",)
    assert f"s/{files[1].name} duplicates copy/{files[1].name}" in caplog.text


def test_mixed_orientation(write_series) -> None:
    files = write_series("s", 4)
    ds = pydicom.dcmread(files[3])
    angle = np.radians(10)
    ds.ImageOrientationPatient = [np.cos(angle), np.sin(angle), 0.0, -np.sin(angle), np.cos(angle), 0.0]
    ds.save_as(files[3])
    error = refusal(files)
    assert "mixed orientations" in error.reason and "slice003.dcm" in error.reason


def test_different_rows_columns(write_series, slice_writer) -> None:
    files = write_series("s", 3)
    ds = pydicom.dcmread(files[2])
    slice_writer(
        files[2],
        np.zeros((8, 8), np.int16),
        position=ds.ImagePositionPatient,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
    )
    error = refusal(files)
    assert "different image sizes (Rows, Columns)" in error.reason
    assert "(8, 6)" in error.reason and "(8, 8)" in error.reason and "slice002.dcm" in error.reason


def test_truncated_file(write_series) -> None:
    files = write_series("s", 3)
    files[1].write_bytes(files[1].read_bytes()[:-40])
    error = refusal(files)
    assert error.path == files[1] and "truncated" in error.reason


def test_missing_pixel_data(write_series) -> None:
    files = write_series("s", 3)
    ds = pydicom.dcmread(files[2])
    del ds.PixelData
    ds.save_as(files[2])
    error = refusal(files)
    assert error.path == files[2] and "no Pixel Data" in error.reason


def test_two_images_per_position_is_4d(write_series) -> None:
    first = write_series("s", 3, series_uid=(uid := generate_uid()), extra={"AcquisitionNumber": 1})
    second = write_series("t", 3, series_uid=uid, extra={"AcquisitionNumber": 2}, intercept=5, slope=1)
    error = refusal([*first, *second])
    assert "several images per position" in error.reason and "4D" in error.reason
    assert "2 different images at each of 3 slice position(s)" in error.reason
    assert "AcquisitionNumber values [1, 2]" in error.reason


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_nan_in_geometry(write_series) -> None:
    files = write_series("s", 3)
    ds = pydicom.dcmread(files[1])
    ds.ImagePositionPatient = ["nan", "0", "0"]
    ds.save_as(files[1])
    error = refusal(files)
    assert "slice001.dcm: non-finite geometry, ImagePositionPatient [nan, 0, 0]" in error.reason


def test_missing_orientation(write_series) -> None:
    files = write_series("s", 2)
    ds = pydicom.dcmread(files[0])
    del ds.ImageOrientationPatient
    ds.save_as(files[0])
    assert "ImageOrientationPatient is missing" in refusal(files).reason


def test_gantry_tilt(write_series) -> None:
    """Axial slices whose positions advance along z *and* y: a 15 degree tilted CT acquisition."""
    tilt = np.radians(15)
    files = write_series(
        "s", 4, orientation=(1, 0, 0, 0, np.cos(tilt), -np.sin(tilt)), extra={"GantryDetectorTilt": 15}
    )
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [-10.0, -20.0, 30.0 + 2.0 * k]  # table moves along z only
        ds.save_as(f)
    error = refusal(files)
    assert "gantry tilt" in error.reason and "15.0 degrees, GantryDetectorTilt 15" in error.reason


def test_declared_size_over_the_limit_is_refused_before_decoding(write_series, slice_writer) -> None:
    files = write_series("s", 3)
    error = refusal(files, DicomReadOptions(max_bytes=200))
    assert "exceeds the limit" in error.reason and "6x8x3" in error.reason
    # a header declaring 65535 x 65535 pixels (8 GiB for one slice) with a few bytes of pixel data
    ds = pydicom.dcmread(files[0])
    ds.Rows = ds.Columns = 65535
    ds.save_as(files[0])
    error = refusal(files[:1])
    assert "exceeds the limit of 4096 MiB" in error.reason


def test_colour_image(write_series) -> None:
    files = write_series("s", 2)
    ds = pydicom.dcmread(files[0])
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.save_as(files[0])
    assert "colour image" in refusal(files).reason


def test_non_image_object(write_series) -> None:
    files = write_series("s", 2, sop_class_uid="1.2.840.10008.5.1.4.1.1.66.4", modality="SEG")
    assert "Segmentation (SEG)" in refusal(files).reason


def test_not_dicom(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    error = refusal([text])
    assert error.path == text and "cannot read the DICOM header" in error.reason


def test_classic_multiframe_without_frame_positions(write_series) -> None:
    files = write_series("s", 1, rows=4, columns=3)
    ds = pydicom.dcmread(files[0])
    ds.NumberOfFrames = 2
    ds.PixelData = np.zeros((2, 4, 3), np.int16).tobytes()
    ds.save_as(files[0])
    error = refusal(files)
    assert "slice000.dcm frame 1: ImagePositionPatient is missing" in error.reason


def test_implausible_number_of_frames(write_series) -> None:
    files = write_series("s", 1)
    ds = pydicom.dcmread(files[0])
    ds.NumberOfFrames = 10**9
    ds.save_as(files[0])
    error = refusal(files)
    assert error.path == files[0] and "NumberOfFrames 1000000000" in error.reason
