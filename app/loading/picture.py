"""PNG and TIFF pictures (2D, or a multi-page TIFF stack of 2D slices) as :class:`~app.volume.Volume` objects.

Contract of :func:`read_picture`: the array is in :class:`~app.volume.Volume` index order ``(i, j[, k])``:
``i`` along a row (the column index), ``j`` down the rows, ``k`` the page of a stack; the picture library's
``(row, column)`` / ``(page, row, column)`` array is transposed. That is also the order of MONAI's
``PILReader``, so a bundle's own reader and this one agree pixel for pixel. The affine is the identity (pixel
units; pictures carry no physical spacing), space ``RAS``. Intensities are as stored; a colour image counts
only when ``label`` is false (converted to grey with ITU-R BT.601 luma weights, as Pillow converts a PNG) or
when its colour channels are equal. A TIFF's pages are a stack also when each was written as its own series.
Bad input raises :class:`~app.errors.InputError` only.

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
    warnings: tuple[str, ...] = ()
    try:
        if suffix == ".png":
            array = _png_array(path, label, options)
        else:
            array, warnings = _tiff_array(path, label, options)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow/tifffile errors have no common base; all mean "not readable"
        raise InputError(path, f"cannot be read as a picture ({type(exc).__name__}: {exc})") from exc
    if array.ndim not in (2, 3):
        raise InputError(path, f"expected a 2D image or a 3D stack, got shape {array.shape}")
    if min(array.shape) < 1:
        raise InputError(path, f"picture of shape {array.shape} has no pixels")
    for warning in warnings:
        logger.warning("%s: %s", path, warning)
    return Volume(
        array=np.ascontiguousarray(array.T),
        affine=np.eye(4),
        space="RAS",
        source=str(path),
        warnings=warnings,
    )


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


def _tiff_array(path: Path, label: bool, options: ReadOptions) -> tuple[np.ndarray, tuple[str, ...]]:
    """The TIFF's pixels and the warnings to record. A stack written one page at a time (one
    ``TiffWriter.write`` per page, common in scripts and acquisition software) is a series per page to tifffile:
    pages of one size and type are stacked, as pages of one series are; a file whose images differ (a thumbnail,
    another resolution) is read as its first image, with a warning naming what was left out."""
    import tifffile

    warnings: tuple[str, ...] = ()
    with tifffile.TiffFile(path) as tiff:
        series = list(tiff.series)
        first = series[0]
        layouts = [(tuple(int(n) for n in s.shape), s.dtype, s.axes) for s in series]
        if len(series) > 1 and len(set(layouts)) == 1:
            parts = series
            shape = (len(series), *layouts[0][0])
        else:
            parts = [first]
            shape = layouts[0][0]
            if len(series) > 1:
                left = ", ".join(f"{'x'.join(map(str, s))} {d}" for s, d, _ in layouts[1:4])
                more = f" and {len(series) - 4} more" if len(series) > 4 else ""
                warnings = (
                    f"holds {len(series)} images of different sizes or types; only the first "
                    f"({'x'.join(map(str, shape))} {first.dtype}) was read, not {left}{more}",
                )
        colour = first.axes.endswith("S")  # S: samples per pixel
        pixels = shape[:-1] if colour else shape
        per_pixel = first.dtype.itemsize * (shape[-1] if colour else 1)
        check_declared_size(path, pixels[::-1], max(per_pixel, 8 if colour and not label else 0), options)
        array = np.asarray(first.asarray()) if len(parts) == 1 else np.stack([s.asarray() for s in parts])
    if not colour:
        return array, warnings
    return (_single_channel(path, array) if label else luma(array)), warnings


#: ITU-R BT.601 luma weights of R, G, B: what Pillow's ``convert("L")`` applies to a colour PNG, so one colour
#: picture gives the same grey image (up to Pillow's rounding to 8 bits) whether stored as PNG or TIFF
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def luma(array: np.ndarray) -> np.ndarray:
    """Grey values (float64) of a colour array whose last axis holds R, G, B (and possibly alpha)."""
    return array[..., :3].astype(np.float64) @ np.asarray(LUMA_WEIGHTS)


def _single_channel(path: Path, array: np.ndarray) -> np.ndarray:
    """The grey values of a colour picture (last axis: colour samples) whose colour channels are equal."""
    colour = array[..., :3]
    if not np.all(colour == colour[..., :1]):
        raise InputError(path, "is a colour image; a label image must be grey or palette-indexed")
    return colour[..., 0]
