"""Volume -> NIfTI-1 file (RAS affine, sform and qform set), written atomically.

Contract:
    * input: a :class:`~app.volume.Volume` in either space; the array is written as is, in index order
      ``(i, j, k)`` (or ``(i, j)``), and only the affine is re-expressed in RAS via :meth:`Volume.in_space`.
    * dtype on disk: booleans and non-negative integers (label maps) as the smallest of uint8 / uint16 /
      uint32 that holds the maximum; integers with negative values as int16 / int32; floats as float32
      (float64 stays float64). No intensity scaling (``scl_slope`` unset).
    * header: one unambiguous orientation. sform and qform both carry the affine with the given code
      (``scanner`` = 1 by default, right for anything that came from DICOM patient coordinates; ``aligned`` = 2
      for images registered to another one), and the qform as stored (a quaternion, pixdim and offset in float32)
      is checked to place every voxel within :data:`app.loading.nifti.QFORM_SFORM_TOLERANCE_MM` of the sform as
      stored, the tolerance the reader warns beyond; readers that follow the qform (ITK: SimpleITK, 3D Slicer,
      ITK-SNAP) and those that follow the sform (nibabel, MONAI, FSL) therefore put the label in the same place.
      A qform cannot hold a sheared affine (e.g. a NIfTI input with a sheared sform): then only the sform is set
      and the qform code is 0, so every reader uses the exact sform. Spatial units: mm.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from app.errors import OutputError
from app.loading.nifti import QFORM_SFORM_TOLERANCE_MM, affine_distance
from app.volume import Volume
from app.writing.atomic import atomic_write

logger = logging.getLogger(__name__)

XformCode = Literal["scanner", "aligned", "talairach", "mni"]


def write_nifti(volume: Volume, path: str | Path, *, xform_code: XformCode = "scanner") -> Path:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) as NIfTI-1 in RAS.

    Args:
        volume: label map or image, 2D ``(i, j)`` or 3D ``(i, j, k)``, affine in mm, any space.
        path: output file; must end in ``.nii`` or ``.nii.gz``. Parent folders are created.
        xform_code: NIfTI code for both sform and qform (see the module docstring).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: wrong extension, or the file cannot be written (nothing is left at ``path`` then).
    """
    import nibabel as nib

    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise OutputError(path, "a NIfTI file name must end in .nii or .nii.gz")

    ras = volume.in_space("RAS")
    data = nifti_array(ras.array)
    image = nib.Nifti1Image(data, ras.affine)
    image.set_data_dtype(data.dtype)
    image.set_sform(ras.affine, code=xform_code)
    image.set_qform(ras.affine, code=xform_code)
    header = image.header
    if affine_distance(header.get_qform(), header.get_sform(), data.shape) > QFORM_SFORM_TOLERANCE_MM:
        image.set_qform(None, code=0)
        logger.warning(
            "%s: a qform cannot carry this (sheared) affine; only the sform does (qform code 0)", path
        )
    image.header.set_xyzt_units(xyz="mm")

    with atomic_write(path) as tmp:
        nib.save(image, tmp)
    logger.info("wrote NIfTI %s shape %s dtype %s", path, data.shape, data.dtype)
    return path


def nifti_array(array: np.ndarray) -> np.ndarray:
    """``array`` cast to the on-disk dtype described in the module docstring (no copy when it already fits)."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low = int(array.min()) if array.size else 0
        high = int(array.max()) if array.size else 0
        if low >= 0:
            for candidate in (np.uint8, np.uint16, np.uint32):
                if high <= np.iinfo(candidate).max:
                    return array.astype(candidate, copy=False)
            raise ValueError(f"label values up to {high} do not fit in uint32")
        for signed in (np.int16, np.int32):
            info = np.iinfo(signed)
            if info.min <= low and high <= info.max:
                return array.astype(signed, copy=False)
        raise ValueError(f"integer values {low}..{high} do not fit in int32")
    if np.issubdtype(array.dtype, np.floating):
        return array if array.dtype == np.float64 else array.astype(np.float32, copy=False)
    raise ValueError(f"cannot write dtype {array.dtype} to NIfTI; expected bool, integer or float")
