"""Pixel decoding and rescale for DICOM images.

Decoding goes through pydicom's pixel backends: native (uncompressed) data, RLE, and with the installed plugins
JPEG lossless (pylibjpeg-libjpeg), JPEG-LS (pyjpegls) and JPEG 2000 (pylibjpeg-openjpeg / Pillow). pydicom
already corrects unused high bits and the signedness of 12-bit and JPEG-LS/JPEG 2000 data.

Output dtype (:func:`output_dtype`), chosen from the headers before any pixel is decoded:

* RescaleSlope 1 and RescaleIntercept 0 everywhere: the stored integer dtype (uint8/int8/uint16/int16/...).
* RescaleSlope 1 and integral intercepts (typical CT, -1024): the stored dtype if it holds the rescaled range of
  BitsStored, else the smallest of int16/int32/int64 that does. Exact, and half the memory of float32.
* Anything else (a non-unit slope, a fractional intercept, per-slice scaling): float32.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence

import numpy as np
from pydicom.errors import InvalidDicomError
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from app.errors import InputError
from app.loading.dicom.header import FrameGeometry, InstanceHeader

logger = logging.getLogger(__name__)

#: what pydicom and its decoder plugins raise for corrupt, truncated or undecodable pixel data
_DECODE_ERRORS = (
    ValueError,
    AttributeError,
    KeyError,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    InvalidDicomError,
    struct.error,
)


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
    raise InputError(header.path.parent, f"rescaled range [{lo}, {hi}] does not fit in int64")


def decode(header: InstanceHeader) -> np.ndarray:
    """Stored pixel values of ``header.path`` as ``(frames, rows, columns)`` in ``stored_dtype(header)``.

    Array axes are DICOM's: frame, row (``j``), column (``i``). No rescale applied.

    Raises:
        InputError: missing, truncated or undecodable pixel data, or a shape that disagrees with the header.
    """
    path = header.path
    try:
        array = pixel_array(path)
    except _DECODE_ERRORS as exc:
        text = str(exc) or type(exc).__name__
        if "no 'pixel data'" in text.lower():
            raise InputError(path, "no Pixel Data element (7FE0,0010): the file holds no image") from exc
        syntax = UID(header.transfer_syntax_uid).name if header.transfer_syntax_uid else "unknown"
        raise InputError(
            path,
            f"cannot decode the pixel data (file truncated or corrupt, or transfer syntax "
            f"{syntax!r} not supported by the installed decoders): {text}",
        ) from exc
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
