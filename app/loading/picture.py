"""PNG and TIFF pictures (2D, or a multi-page TIFF stack of 2D slices) as :class:`~app.volume.Volume` objects.

Contract of :func:`read_picture`: the array is in :class:`~app.volume.Volume` index order ``(i, j[, k])``:
``i`` along a row (the column index), ``j`` down the rows, ``k`` the page of a stack; the picture library's
``(row, column)`` / ``(page, row, column)`` array is transposed. That is also the order of MONAI's
``PILReader``, so a bundle's own reader and this one agree pixel for pixel. The affine is the identity (pixel
units; pictures carry no physical spacing), space ``RAS``. Intensities are as stored; a colour image counts
only when ``label`` is false (converted to grey) or when its colour channels are equal.

:func:`write_picture` is its inverse for label maps and 2D network inputs: 8-bit PNG for values in 0..255,
16-bit PNG for 0..65535, else a float32 TIFF; a 3D volume becomes a multi-page TIFF.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from app.errors import InputError, OutputError
from app.volume import Volume

logger = logging.getLogger(__name__)

#: file suffixes read as pictures
PICTURE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff")


def read_picture(path: str | Path, *, label: bool = False) -> Volume:
    """A PNG/TIFF file as a RAS volume (contract in the module docstring).

    Raises:
        InputError: unreadable, a colour label image, or not 2D / a 3D stack.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            array = _png_array(path, label=label)
        elif suffix in (".tif", ".tiff"):
            array = _tiff_array(path, label=label)
        else:
            raise InputError(path, f"not a PNG or TIFF file ({', '.join(PICTURE_SUFFIXES)})")
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read as a picture: {exc}") from exc
    if array.ndim not in (2, 3):
        raise InputError(path, f"expected a 2D image or a 3D stack, got shape {array.shape}")
    return Volume(array=np.ascontiguousarray(array.T), affine=np.eye(4), space="RAS", source=str(path))


def write_picture(volume: Volume, path: str | Path) -> Path:
    """Write ``volume.array`` as a picture at ``path`` (``.png`` for 2D only, or ``.tif``/``.tiff``).

    Raises:
        OutputError: a 3D volume asked for as PNG, or the file cannot be written.
    """
    from PIL import Image

    path = Path(path)
    array = np.asarray(volume.array)
    if array.ndim == 3 and path.suffix.lower() == ".png":
        raise OutputError(path, "a stack of slices needs a TIFF file, not PNG")
    pages = [array] if array.ndim == 2 else [array[..., k] for k in range(array.shape[-1])]
    images = [Image.fromarray(_storable(page.T)) for page in pages]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        images[0].save(path, save_all=len(images) > 1, append_images=images[1:])
    except (OSError, ValueError) as exc:
        raise OutputError(path, f"cannot be written: {exc}") from exc
    return path


def _storable(page: np.ndarray) -> np.ndarray:
    """The page in the narrowest lossless picture dtype: uint8, uint16, else float32."""
    if page.dtype == bool:
        return page.astype(np.uint8)
    if np.issubdtype(page.dtype, np.integer) or np.array_equal(page, np.round(page)):
        low, high = (page.min(), page.max()) if page.size else (0, 0)
        if low >= 0 and high <= 255:
            return np.ascontiguousarray(page, dtype=np.uint8)
        if low >= 0 and high <= 65535:
            return np.ascontiguousarray(page, dtype=np.uint16)
    return np.ascontiguousarray(page, dtype=np.float32)


def _png_array(path: Path, *, label: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as picture:
        if not label and picture.mode not in ("L", "I", "I;16", "F"):
            return np.asarray(picture.convert("L"))
        array = np.asarray(picture)
    return _single_channel(path, array) if array.ndim == 3 else array


def _tiff_array(path: Path, *, label: bool) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        array, colour = np.asarray(series.asarray()), series.axes.endswith("S")  # S: samples per pixel
    if not colour:
        return array
    return _single_channel(path, array) if label else array[..., :3].mean(axis=-1)


def _single_channel(path: Path, array: np.ndarray) -> np.ndarray:
    """The grey values of a colour picture (last axis: colour samples) whose colour channels are equal."""
    colour = array[..., :3]
    if not np.all(colour == colour[..., :1]):
        raise InputError(path, "is a colour image; a label image must be grey or palette-indexed")
    return colour[..., 0]
