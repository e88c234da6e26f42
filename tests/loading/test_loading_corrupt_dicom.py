"""Hand-made corruptions of real DICOM series, one per reader bug the fuzz test (test_loading_fuzz.py) found.

Each ends as a skipped-file decision in discovery or an InputError that names the file; before the fixes they
raised NotImplementedError/TypeError/OverflowError, or (the truncated JPEG) returned a silently wrong volume.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pydicom
import pytest
from fuzz_inputs import replace_transfer_syntax, set_raw_value

from app.errors import InputError
from app.loading import discover_inputs, load_volume

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning"
)  # pydicom warns about each corrupt value it reads


@pytest.fixture
def series(shared_data: Path, tmp_path: Path) -> Path:
    """A writable copy of a small explicit-VR MR series (28 x 64 x 4; 002.dcm is the second slice)."""
    folder = tmp_path / "series"
    shutil.copytree(
        shared_data / "dicom2nifti-suite" / "generic" / "anatomical" / "002_non_isotropic", folder
    )
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def _flip_vr(path: Path, tag: bytes, vr: bytes, new: bytes) -> None:
    data = path.read_bytes()
    at = data.index(tag + vr)
    path.write_bytes(data[: at + 4] + new + data[at + 6 :])


def test_flipped_bits_in_a_vr_skip_the_file_and_the_series_is_refused_for_the_gap(series: Path) -> None:
    _flip_vr(series / "002.dcm", b"\x28\x00\x30\x00", b"DS", b"DW")  # PixelSpacing's VR, one bit flipped
    cases, decisions = discover_inputs([series])
    (skipped,) = [d for d in decisions if d.action == "skipped"]
    assert (skipped.subject, skipped.path) == ("file", str(series / "002.dcm"))
    assert skipped.reason == (
        "cannot read the DICOM header (NotImplementedError: With tag (0028,0030) got exception: Unknown Value "
        "Representation 'DW' in tag (0028,0030)); the file is corrupt or not DICOM"
    )
    (case,) = cases
    with pytest.raises(InputError) as error:
        case.load()
    assert error.value.reason.startswith("missing slice(s)")
    assert "gap between 001.dcm and 003.dcm (1 mm, ~1 missing)" in error.value.reason


def test_a_corrupt_file_meta_is_a_skipped_file(series: Path) -> None:
    _flip_vr(series / "003.dcm", b"\x02\x00\x02\x00", b"UI", b"U ")  # MediaStorageSOPClassUID's VR
    cases, decisions = discover_inputs([series])
    (skipped,) = [d for d in decisions if d.action == "skipped"]
    assert skipped.path == str(series / "003.dcm") and "NotImplementedError" in skipped.reason
    assert len(cases) == 1


def test_truncated_jpeg_lossless_is_refused_not_decoded_into_garbage(
    shared_data: Path, tmp_path: Path
) -> None:
    """pydicom decodes a JPEG Lossless file cut at 20 % without complaint, 82 % of its pixels wrong."""
    folder = tmp_path / "jpeg"
    shutil.copytree(shared_data / "dicom2nifti-suite" / "generic" / "compressed_jpeg" / "001", folder)
    path = folder / "IM-0001-0002-0001.dcm"
    path.chmod(0o644)
    data = path.read_bytes()
    truncated = "the Pixel Data element (7FE0,0010) ends before its end marker: the file is truncated"
    for cut in (
        14131,
        len(data) - 40,
        len(data) - 8,
    ):  # in a fragment, in the last one, only the end marker lost
        path.write_bytes(data[:cut])
        with pytest.raises(InputError) as error:
            load_volume(folder)
        assert error.value.path == path and error.value.reason == truncated


def test_encapsulated_items_must_fill_the_pixel_data(tmp_path: Path) -> None:
    """The item check behind the end marker: pydicom would hand the decoder a short last fragment."""
    from app.loading.dicom.pixels import _check_encapsulated

    item = struct.pack("<HHL", 0xFFFE, 0xE000, 100)
    offset_table = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    _check_encapsulated(tmp_path, offset_table + item + bytes(100), "JPEG")
    with pytest.raises(InputError, match="item 1 declares 100 bytes but only 42 follow"):
        _check_encapsulated(tmp_path, offset_table + item + bytes(42), "JPEG")
    with pytest.raises(InputError, match="not encapsulated as transfer syntax 'JPEG' requires"):
        _check_encapsulated(tmp_path, bytes(16), "JPEG")


def test_a_transfer_syntax_that_lies_is_refused(series: Path) -> None:
    replace_transfer_syntax(series / "002.dcm", "1.2.840.10008.1.2.4.50")  # JPEG Baseline over raw pixels
    with pytest.raises(InputError) as error:
        load_volume(series)
    assert error.value.path == series / "002.dcm"
    assert error.value.reason == (
        "the pixel data are not encapsulated as transfer syntax 'JPEG Baseline (Process 1)' requires: item 0 has "
        "tag (00F7,001B) instead of (FFFE,E000); the file is corrupt or its transfer syntax is wrong"
    )


def test_mixed_pixel_formats_name_the_files(series: Path) -> None:
    ds = pydicom.dcmread(series / "004.dcm")
    del ds.BitsStored
    ds.save_as(series / "004.dcm")
    with pytest.raises(InputError) as error:
        load_volume(series)
    assert error.value.reason == (
        "mixed pixel formats (BitsAllocated, BitsStored, PixelRepresentation) in one series: "
        "3 with (16, 16, 1) (e.g. 001.dcm, 002.dcm); 1 with (16, None, 1) (e.g. 004.dcm)"
    )


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        ("BitsStored", 0, "BitsStored 0 is outside 1..BitsAllocated (16): the header is corrupt"),
        ("BitsStored", 40, "BitsStored 40 is outside 1..BitsAllocated (16): the header is corrupt"),
        ("PixelRepresentation", 7, "PixelRepresentation 7 is neither 0 (unsigned) nor 1 (signed)"),
    ],
)
def test_contradicting_pixel_format_is_refused(series: Path, keyword: str, value: int, reason: str) -> None:
    for path in series.iterdir():  # all files, so that it is not refused as a mixed format first
        set_raw_value(path, keyword, value)
    with pytest.raises(InputError) as error:
        load_volume(series)
    assert error.value.reason == reason and error.value.path == series / "001.dcm"


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        (
            "RescaleSlope",
            "nan",
            "003.dcm: RescaleSlope nan / RescaleIntercept 42.5429 is not a finite number",
        ),
        (
            "RescaleSlope",
            "abc",
            "003.dcm: RescaleSlope nan / RescaleIntercept 42.5429 is not a finite number",
        ),
        (
            "RescaleIntercept",
            "inf",
            "003.dcm: RescaleSlope 0.00129835 / RescaleIntercept inf is not a finite",
        ),
        ("RescaleSlope", "0", "003.dcm: RescaleSlope 0 maps every pixel to the intercept"),
        (
            "ImagePositionPatient",
            "1e308\\1e308\\1e308",
            "003.dcm: ImagePositionPatient [1e+308, 1e+308, 1e+308] is out of range",
        ),
    ],
)
def test_absurd_values_are_refused_naming_the_file(
    series: Path, keyword: str, value: str, reason: str
) -> None:
    set_raw_value(series / "003.dcm", keyword, value)
    with pytest.raises(InputError) as error:
        load_volume(series)
    assert error.value.reason.startswith(reason)
