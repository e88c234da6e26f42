"""Pixel decoding and rescale for DICOM images.

Decoding goes through pydicom's pixel backends: native (uncompressed) data, RLE, and with the installed plugins
JPEG lossless (pylibjpeg-libjpeg), JPEG-LS (pyjpegls) and JPEG 2000 (pylibjpeg-openjpeg / Pillow). pydicom
already corrects unused high bits and the signedness of 12-bit and JPEG-LS/JPEG 2000 data.

Output dtype (:func:`output_dtype`), chosen from the headers before any pixel is decoded:

* RescaleSlope 1 and RescaleIntercept 0 everywhere: the stored integer dtype (uint8/int8/uint16/int16/...).
* RescaleSlope 1 and integral intercepts (typical CT, -1024): the stored dtype if it holds the rescaled range of
  BitsStored, else the smallest of int16/int32/int64 that does. Exact, and half the memory of float32.
* Anything else (a non-unit slope, a fractional intercept, per-slice scaling): float32.

MONOCHROME1 (the lowest value displayed white, as in many CR/DX and some MR/CT exports) is inverted before the
rescale (:func:`invert_monochrome1`), so higher values are brighter as in MONOCHROME2: what SimpleITK/GDCM, MONAI's
ITK reader and MONAI Deploy do, and what a model trained on them expects.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.uid import UID

from app.errors import InputError
from app.loading.dicom.fileformat import read_dataset
from app.loading.dicom.header import FrameGeometry, InstanceHeader

logger = logging.getLogger(__name__)

_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_NATIVE_LITTLE_ENDIAN = frozenset({_IMPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1"})
#: Pixel Data's tag as stored in a little-endian file
_PIXEL_DATA_TAG = struct.pack("<HH", 0x7FE0, 0x0010)
#: a Part 10 file has at least the preamble, "DICM" and the file meta group before Pixel Data
_MIN_HEADER_BYTES = 132


def stored_dtype(header: InstanceHeader) -> np.dtype:
    """NumPy dtype of the stored values (BitsAllocated, PixelRepresentation)."""
    bits = header.bits_allocated
    if bits not in (8, 16, 32):
        raise InputError(header.path, f"BitsAllocated {bits} is not supported (expected 8, 16 or 32)")
    return np.dtype(f"{'i' if header.pixel_representation == 1 else 'u'}{bits // 8}")


def stored_range(header: InstanceHeader) -> tuple[int, int]:
    """Smallest and largest value BitsStored can hold (signed when PixelRepresentation is 1)."""
    bits = header.bits_stored or header.bits_allocated or 16
    if header.pixel_representation == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def output_dtype(header: InstanceHeader, frames: Sequence[FrameGeometry]) -> np.dtype:
    """Dtype of the rescaled volume (see the module docstring), from one representative header and all frames."""
    slopes = np.asarray([f.rescale_slope for f in frames], dtype=np.float64)
    intercepts = np.asarray([f.rescale_intercept for f in frames], dtype=np.float64)
    if not (np.all(np.isfinite(slopes)) and np.all(np.isfinite(intercepts))):
        raise InputError(header.path.parent, "non-finite RescaleSlope/RescaleIntercept")
    stored = stored_dtype(header)
    if np.any(slopes != 1) or np.any(intercepts != np.round(intercepts)):
        return np.dtype(np.float32)
    lo, hi = stored_range(header)
    lo, hi = lo + int(intercepts.min()), hi + int(intercepts.max())
    for candidate in (stored, np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64)):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return candidate
    raise InputError(header.path, f"rescaled range [{lo}, {hi}] does not fit in int64")


def decode(header: InstanceHeader) -> np.ndarray:
    """Stored pixel values of ``header.path`` as ``(frames, rows, columns)`` in ``stored_dtype(header)``.

    Array axes are DICOM's: frame, row (``j``), column (``i``). No rescale applied. Native little-endian files
    are read directly (:func:`read_native`); everything else goes through pydicom's decoders.

    Raises:
        InputError: missing, truncated or undecodable pixel data, or a shape that disagrees with the header.
    """
    path = header.path
    array = read_native(header)
    if array is None:
        array = _decode_with_pydicom(header)
    expected = (header.number_of_frames, header.rows, header.columns)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.shape != expected:
        raise InputError(
            path,
            f"decoded pixel data has shape {array.shape}, header declares "
            f"(NumberOfFrames, Rows, Columns) = {expected}",
        )
    return array.astype(stored_dtype(header), copy=False)


def _decode_with_pydicom(header: InstanceHeader) -> np.ndarray:
    """Decode ``header.path`` with pydicom's backends, after checking that encapsulated data are complete.

    pydicom's ``pixel_array(path)`` (used here before) decodes a truncated JPEG Lossless or JPEG-LS file into an
    image whose missing part is garbage, without a warning (pydicom 3.0: a file cut at 20 % gave 82 % of its
    pixels wrong). ``dcmread`` instead drops a Pixel Data element that ends before its end marker, which is
    refused here as a truncated file; the item structure of what it keeps is checked too
    (:func:`_check_encapsulated`), so no decoder ever sees a short fragment.
    """
    path = header.path
    syntax = UID(header.transfer_syntax_uid).name if header.transfer_syntax_uid else "unknown"
    if header.truncated:
        raise InputError(path, header.truncated)
    try:
        ds = read_dataset(path, raw=header.raw)
        if "PixelData" not in ds:
            if _PIXEL_DATA_TAG in path.read_bytes():
                raise InputError(
                    path,
                    "the Pixel Data element (7FE0,0010) ends before its end marker: the file is truncated",
                )
            raise InputError(
                path,
                "no Pixel Data element (7FE0,0010): the file holds no image (the pixel data were removed, or the "
                "file is truncated right before them)",
            )
        if ds.file_meta.TransferSyntaxUID.is_encapsulated:
            _check_encapsulated(path, ds.PixelData, syntax)
        return np.asarray(ds.pixel_array)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom and its decoder plugins raise anything for corrupt data
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            path,
            f"cannot decode the pixel data (file truncated or corrupt, or transfer syntax {syntax!r} not "
            f"supported by the installed decoders): {type(exc).__name__}: {text}",
        ) from exc


def _check_encapsulated(path: Path, value: bytes, syntax: str) -> None:
    """Refuse encapsulated Pixel Data whose items do not exactly fill the value (a truncated file).

    Hand-written because pydicom's fragment parser returns a short last fragment without complaint. ``value`` is
    the element's value as pydicom read it: the Basic Offset Table item and the fragment items, each a tag
    (FFFE,E000) and a 4-byte length, little endian (encapsulated syntaxes are all little endian).
    """
    offset, index = 0, 0
    while offset < len(value):
        if offset + 8 > len(value):
            raise InputError(
                path, f"encapsulated pixel data: item {index} is cut in its header: the file is truncated"
            )
        group, element, length = struct.unpack_from("<HHL", value, offset)
        if (group, element) != (0xFFFE, 0xE000):
            raise InputError(
                path,
                f"the pixel data are not encapsulated as transfer syntax {syntax!r} requires: item {index} has "
                f"tag ({group:04X},{element:04X}) instead of (FFFE,E000); the file is corrupt or its transfer "
                "syntax is wrong",
            )
        if offset + 8 + length > len(value):
            raise InputError(
                path,
                f"encapsulated pixel data: item {index} declares {length} bytes but only "
                f"{len(value) - offset - 8} follow: the file is truncated or corrupt",
            )
        offset += 8 + length
        index += 1
    if index < 2:
        raise InputError(path, f"encapsulated pixel data hold {index} item(s), no image fragment")


def read_native(header: InstanceHeader) -> np.ndarray | None:
    """Pixels of an uncompressed little-endian file read straight from disk, or ``None`` to use pydicom.

    Hand-written for speed: pydicom's ``pixel_array`` parses the whole header of every file again, which is
    about half of the load time of a CT series that discovery has already parsed. In a native file Pixel Data
    is nearly always the last element, so its value starts ``Rows*Columns*frames*bytes`` (padded to even) before
    the end of the file; this is only trusted when the element header right before it (tag (7FE0,0010), VR OB/OW
    and that exact length) is there. Unused high bits are then cleared or sign-extended exactly as pydicom does
    (left then right shift by BitsAllocated - BitsStored). ``None`` for any other layout, compressed or big-endian
    data, 1-bit or colour images.
    """
    if header.transfer_syntax_uid not in _NATIVE_LITTLE_ENDIAN or header.samples_per_pixel != 1:
        return None
    if header.bits_allocated not in (8, 16, 32) or not header.rows or not header.columns:
        return None
    dtype = stored_dtype(header).newbyteorder("<")
    count = header.rows * header.columns * header.number_of_frames
    length = count * dtype.itemsize + (count * dtype.itemsize) % 2
    element = struct.pack("<HH", 0x7FE0, 0x0010)
    if header.transfer_syntax_uid == _IMPLICIT_VR_LITTLE_ENDIAN:
        expected_heads = [element + struct.pack("<I", length)]
    else:
        expected_heads = [element + vr + b"\0\0" + struct.pack("<I", length) for vr in (b"OW", b"OB")]
    head_size = len(expected_heads[0])
    try:
        with open(header.path, "rb") as fh:
            offset = fh.seek(0, os.SEEK_END) - length
            if offset < head_size + _MIN_HEADER_BYTES:
                return None
            fh.seek(offset - head_size)
            if fh.read(head_size) not in expected_heads:
                return None
            array = np.fromfile(fh, dtype=dtype, count=count)
    except OSError:
        return None
    if array.size != count:
        return None
    array = array.astype(dtype.newbyteorder("="), copy=False).reshape(
        header.number_of_frames, header.rows, header.columns
    )
    unused = (header.bits_allocated or 0) - (header.bits_stored or header.bits_allocated or 0)
    if 0 < unused < (header.bits_allocated or 0):
        np.left_shift(array, unused, out=array)
        np.right_shift(array, unused, out=array)
    return array


def invert_monochrome1(stored: np.ndarray, header: InstanceHeader) -> np.ndarray:
    """Stored MONOCHROME1 values mirrored within the range BitsStored can hold: ``lo + hi - value``
    (``65535 - value`` for unsigned 16 bits, ``-1 - value`` for signed), in the stored dtype, as GDCM does.

    The result stays in the stored range, so the output dtype chosen from the headers still holds it.
    """
    lo, hi = stored_range(header)
    return (lo + hi - stored.astype(np.int64)).astype(stored.dtype)


def rescale_into(out: np.ndarray, stored: np.ndarray, slope: float, intercept: float) -> None:
    """Write ``stored * slope + intercept`` into ``out`` (one frame, ``(rows, columns)``), in ``out``'s dtype.

    Integer outputs are only chosen by :func:`output_dtype` when slope is 1 and the intercept integral, so the
    integer path is exact.
    """
    if np.issubdtype(out.dtype, np.integer):
        out[...] = stored
        if intercept:
            out += int(intercept)
    elif slope == 1 and intercept == 0:
        out[...] = stored
    else:
        out[...] = stored.astype(np.float64) * slope + intercept
