"""The direct reader of native pixel data agrees with pydicom, including unused high bits and odd lengths."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import pixel_array
from pydicom.uid import ImplicitVRLittleEndian

from app.loading.dicom.header import read_header
from app.loading.dicom.pixels import decode, read_native


@pytest.mark.parametrize(
    ("stored", "representation", "expected"),
    [
        (0xF000 | (4096 - 100), 1, -100),  # signed 12-bit, garbage in the 4 unused bits -> sign-extended
        (0xF000 | 100, 0, 100),  # unsigned 12-bit, garbage in the unused bits -> cleared
    ],
)
def test_unused_high_bits(write_series, stored: int, representation: int, expected: int) -> None:
    files = write_series(
        "s", 1, dtype=np.uint16, bits_stored=12, extra={"PixelRepresentation": representation}
    )
    ds = pydicom.dcmread(files[0])
    ds.PixelData = np.full((8, 6), stored, np.uint16).tobytes()
    ds.save_as(files[0])
    header = read_header(files[0])
    direct = read_native(header)
    assert direct is not None
    np.testing.assert_array_equal(direct[0], pixel_array(files[0]))
    assert np.all(direct == expected)


def test_odd_length_8_bit_and_implicit_vr(write_series) -> None:
    files = write_series("s", 1, rows=3, columns=3)
    ds = pydicom.dcmread(files[0])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(10, 19))  # 9 bytes, written padded to 10
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(files[0], implicit_vr=True, little_endian=True)
    header = read_header(files[0])
    direct = read_native(header)
    assert direct is not None and direct.dtype == np.uint8
    np.testing.assert_array_equal(direct[0], pixel_array(files[0]))


def test_trailing_element_falls_back_to_pydicom(write_series) -> None:
    files = write_series("s", 1)
    ds = pydicom.dcmread(files[0])
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 8)  # Data Set Trailing Padding after Pixel Data
    ds.save_as(files[0])
    header = read_header(files[0])
    assert read_native(header) is None
    np.testing.assert_array_equal(decode(header)[0], pixel_array(files[0]))
