"""NIfTI-1/2 file -> :class:`~app.volume.Volume` in RAS (nibabel).

Contract: ``space="RAS"`` (NIfTI's world convention); ``affine`` is nibabel's ``img.affine`` (sform if its code
is set, else qform, else the pixdim-only fallback, which is logged as a warning because the orientation is then
unknown); ``array`` is ``(i, j, k)`` (or ``(i, j)`` for a 2D image) in the stored dtype, scaled by
``scl_slope``/``scl_inter`` when set (then float32). Trailing singleton dimensions (``(x, y, z, 1)``) are
dropped; true 4D+ images and RGB/vector voxels are refused. ``meta``: ``format``, ``sform_code``,
``qform_code``.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from app.errors import InputError
from app.volume import Volume

logger = logging.getLogger(__name__)

_READ_ERRORS = (ImageFileError, OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile)


def read_nifti(path: str | Path) -> Volume:
    """Read ``path`` (``.nii`` or ``.nii.gz``) as a RAS volume (contract in the module docstring).

    Raises:
        InputError: unreadable or truncated file, 4D/vector/RGB image, or a non-finite affine.
    """
    path = Path(path)
    try:
        img = nib.load(path)
    except _READ_ERRORS as exc:
        raise InputError(path, f"cannot read as NIfTI: {exc}") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(path, f"not a NIfTI image ({type(img).__name__})")
    shape = tuple(img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        raise InputError(
            path, f"image of shape {img.shape} is not 2D or 3D (4D/time series are not supported)"
        )
    if img.get_data_dtype().fields is not None:
        raise InputError(
            path, f"RGB/vector voxels ({img.get_data_dtype()}) are not supported for segmentation"
        )
    try:
        array = np.asanyarray(img.dataobj).reshape(shape, order="A")
    except _READ_ERRORS as exc:
        raise InputError(path, f"cannot read the voxel data (truncated or corrupt file?): {exc}") from exc
    if array.dtype == np.float64 and img.get_data_dtype() != np.float64:
        array = array.astype(np.float32)  # scl_slope/scl_inter scaling of an integer or float32 file
    header = img.header
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code == 0 and qform_code == 0:
        logger.warning("%s: neither sform nor qform is set; using pixdim only (orientation unknown)", path)
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)):
        raise InputError(path, "the affine (sform/qform) has non-finite values")
    return Volume(
        array=array,
        affine=affine,
        space="RAS",
        source=str(path),
        meta={"format": "nifti", "sform_code": sform_code, "qform_code": qform_code},
    )
