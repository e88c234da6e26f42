"""Label maps and 2D network inputs -> PNG/TIFF (Pillow), the inverse of :func:`app.loading.picture.read_picture`.

Contract: ``array`` index order ``(i, j[, k])`` as :class:`~app.volume.Volume` defines it (a page is stored
transposed, rows = ``j``); a 3D array becomes a multi-page TIFF, one page per ``k``. Values are stored in the
narrowest lossless dtype: 8-bit for 0..255, 16-bit for 0..65535, else float32 (TIFF). The file is written
atomically (:mod:`app.writing.atomic`): the final path holds the previous file or the complete new one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.errors import OutputError
from app.volume import Volume
from app.writing.atomic import atomic_write


def write_picture(volume: Volume, path: str | Path) -> Path:
    """Write ``volume.array`` as a picture at ``path`` (``.png`` for 2D only, or ``.tif``/``.tiff``), atomically.

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
        with atomic_write(path) as tmp:
            images[0].save(tmp, save_all=len(images) > 1, append_images=images[1:])
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
