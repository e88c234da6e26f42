"""PNG and TIFF pictures (2D, or a multi-page TIFF stack of 2D slices) as :class:`~app.volume.Volume` objects.

Contract of :func:`read_picture`: the array is in :class:`~app.volume.Volume` index order ``(i, j[, k])``:
``i`` along a row (the column index), ``j`` down the rows, ``k`` the page of a stack; the picture library's
``(row, column)`` / ``(page, row, column)`` array is transposed. That is also the order of MONAI's
``PILReader``, so a bundle's own reader and this one agree pixel for pixel. The affine is the identity (pixel
units; pictures carry no physical spacing), space ``RAS``. Intensities are as stored; a colour image counts
only when ``label`` is false (converted to grey) or when its colour channels are equal. Bad input raises
:class:`~app.errors.InputError` only.

Size, checked before any pixel is decoded: PNG width x height (from the IHDR chunk) and TIFF page size x pages
(tifffile parses only the page headers), times the bytes per pixel of the decoded picture or
of the output if wider (a colour picture is decoded with all its samples; its grey conversion is float64),
must fit in :attr:`ReadOptions.max_bytes`. Pillow's own decompression-bomb guard
(``PIL.Image.MAX_IMAGE_PIXELS``, about 179 million pixels refused) still applies on top of that limit and is
reported as an :class:`~app.errors.InputError` too; unetseg does not change Pillow's global setting.

:func:`app.writing.picture.write_picture` is its inverse for label maps and 2D network inputs: 8-bit PNG for values in 0..255,
16-bit PNG for 0..65535, else a float32 TIFF; a 3D volume becomes a multi-page TIFF.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.formats import PICTURE_SUFFIXES
from app.loading.options import ReadOptions, check_declared_size
from app.volume import Volume

logger = logging.getLogger(__name__)


def read_picture(path: str | Path, *, label: bool = False, options: ReadOptions | None = None) -> Volume:
    """A PNG/TIFF file as a RAS volume (contract in the module docstring).

    Args:
        path: a ``.png``, ``.tif`` or ``.tiff`` file.
        label: a label image (colour refused unless its channels are equal) rather than an intensity image.
        options: the size limit; ``None`` for the defaults.

    Raises:
        InputError: unreadable or corrupt, over the size limit, a colour label image, or not 2D / a 3D stack.
    """
    path = Path(path)
    options = options or ReadOptions()
    suffix = path.suffix.lower()
    if suffix not in PICTURE_SUFFIXES:
        raise InputError(path, f"not a PNG or TIFF file ({', '.join(PICTURE_SUFFIXES)})")
    try:
        array = _png_array(path, label, options) if suffix == ".png" else _tiff_array(path, label, options)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow/tifffile errors have no common base; all mean "not readable"
        raise InputError(path, f"cannot be read as a picture ({type(exc).__name__}: {exc})") from exc
    if array.ndim not in (2, 3):
        raise InputError(path, f"expected a 2D image or a 3D stack, got shape {array.shape}")
    if min(array.shape) < 1:
        raise InputError(path, f"picture of shape {array.shape} has no pixels")
    return Volume(array=np.ascontiguousarray(array.T), affine=np.eye(4), space="RAS", source=str(path))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int, int] | None:
    """``(width, height, bytes per pixel as Pillow decodes it)`` from the PNG's IHDR chunk, or ``None``.

    Hand-written (25 bytes of a fixed layout) because Pillow's ``Image.open`` applies its own bomb guard before it
    tells the size, and the size must meet unetseg's limit, with unetseg's message, first. Pillow decodes grey
    pictures to 1 byte per pixel (2 for 16-bit), palette ones to 1, every other colour type to 4.
    """
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None  # not a PNG: Pillow says why
    width, height = struct.unpack(">II", head[16:24])
    bit_depth, colour_type = head[24], head[25]
    per_pixel = {0: 2 if bit_depth == 16 else 1, 3: 1}.get(colour_type, 4)
    return width, height, per_pixel


def _png_array(path: Path, label: bool, options: ReadOptions) -> np.ndarray:
    from PIL import Image

    size = _png_size(path)
    if size is not None:
        check_declared_size(path, size[:2], size[2], options)
    with Image.open(path) as picture:  # Pillow's decompression-bomb guard applies here too
        if not label and picture.mode not in ("L", "I", "I;16", "F"):
            return np.asarray(picture.convert("L"))
        array = np.asarray(picture)
    return _single_channel(path, array) if array.ndim == 3 else array


def _tiff_array(path: Path, label: bool, options: ReadOptions) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        colour = series.axes.endswith("S")  # S: samples per pixel
        shape = tuple(int(n) for n in series.shape)
        pixels = shape[:-1] if colour else shape
        per_pixel = series.dtype.itemsize * (shape[-1] if colour else 1)
        check_declared_size(path, pixels[::-1], max(per_pixel, 8 if colour and not label else 0), options)
        array = np.asarray(series.asarray())
    if not colour:
        return array
    return _single_channel(path, array) if label else array[..., :3].mean(axis=-1)


def _single_channel(path: Path, array: np.ndarray) -> np.ndarray:
    """The grey values of a colour picture (last axis: colour samples) whose colour channels are equal."""
    colour = array[..., :3]
    if not np.all(colour == colour[..., :1]):
        raise InputError(path, "is a colour image; a label image must be grey or palette-indexed")
    return colour[..., 0]
