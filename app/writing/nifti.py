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
      is checked to place every voxel within :func:`app.loading.nifti.qform_tolerance_mm` of the sform as
      stored, the tolerance the reader warns beyond; readers that follow the qform (ITK: SimpleITK, 3D Slicer,
      ITK-SNAP) and those that follow the sform (nibabel, MONAI, FSL) therefore put the label in the same place.
      A qform cannot hold a sheared affine (e.g. a NIfTI input with a sheared sform): then only the sform is set
      and the qform code is 0, so every reader uses the exact sform. Spatial units: mm.
    * a label map of a NIfTI image (``like``): the image's own geometry fields instead (sform, qform, their
      codes, pixdim, spatial unit, as stored), so the pair overlays in every reader even where readers disagree
      about the image itself (no orientation set, qform and sform apart, a unit other than mm).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from app.errors import OutputError
from app.loading.nifti import QFORM_SFORM_TOLERANCE_MM, affine_distance, qform_tolerance_mm
from app.volume import Volume
from app.writing.atomic import atomic_write

logger = logging.getLogger(__name__)

XformCode = Literal["scanner", "aligned", "talairach", "mni"]


def write_nifti(
    volume: Volume, path: str | Path, *, xform_code: XformCode = "scanner", like: str | Path | None = None
) -> Path:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) as NIfTI-1 in RAS.

    Args:
        volume: label map or image, 2D ``(i, j)`` or 3D ``(i, j, k)``, affine in mm, any space.
        path: output file; must end in ``.nii`` or ``.nii.gz``. Parent folders are created.
        xform_code: NIfTI code for both sform and qform (see the module docstring).
        like: the NIfTI file ``volume`` is a label map of, on its grid: its geometry fields are copied instead
            (:func:`_copy_geometry`), so every reader places the two alike.

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
    if like is None or not _copy_geometry(image, ras, Path(like)):
        image.set_sform(ras.affine, code=xform_code)
        image.set_qform(ras.affine, code=xform_code)
        header = image.header
        sform = header.get_sform()
        if affine_distance(header.get_qform(), sform, data.shape) > qform_tolerance_mm(sform, data.shape):
            image.set_qform(None, code=0)
            logger.warning(
                "%s: a qform cannot carry this (sheared) affine; only the sform does (qform code 0)", path
            )
        image.header.set_xyzt_units(xyz="mm")

    with atomic_write(path) as tmp:
        nib.save(image, tmp)
    logger.info("wrote NIfTI %s shape %s dtype %s", path, data.shape, data.dtype)
    return path


def _copy_geometry(image: Any, ras: Volume, like: Path) -> bool:
    """Give ``image`` (a label map of the NIfTI ``like``) the geometry fields of ``like`` as stored: sform and
    qform with their codes (0 included), pixdim and spatial unit. A reader that places ``like`` by its sform, its
    qform or its pixdim alone (both codes 0: nibabel and ITK then disagree about the image, and a label stamped
    with a "scanner" code would not overlay it in ITK viewers) places the label map on the same voxels, and an
    image registered to a template (code 2-4) keeps its code. ``False`` (nothing changed) if ``like`` is not a
    readable NIfTI on the volume's grid (shape, and affine in mm within the reader's tolerance)."""
    import nibabel as nib

    from app.loading.nifti import affine_mm, spatial_unit

    try:
        source = nib.load(like)
    except Exception as exc:  # noqa: BLE001 - nibabel's errors have no common base
        logger.warning("%s: cannot copy its NIfTI geometry (%s); writing the label's own", like, exc)
        return False
    if not isinstance(source, (nib.Nifti1Image, nib.Nifti2Image)):
        return False
    shape = tuple(int(n) for n in source.shape)
    if shape[: ras.ndim] != ras.shape or any(n != 1 for n in shape[ras.ndim :]) or ras.ndim != 3:
        return False
    if affine_distance(affine_mm(source), ras.affine, ras.shape) > QFORM_SFORM_TOLERANCE_MM:
        logger.warning("%s: the label map is not on its grid; writing the label's own geometry", like)
        return False
    stored = source.header
    sform_code, qform_code = int(stored["sform_code"]), int(stored["qform_code"])
    image.header.set_zooms(tuple(float(z) for z in stored.get_zooms()[:3]))
    image.set_sform(stored.get_sform() if sform_code else None, code=sform_code)
    image.set_qform(stored.get_qform() if qform_code else None, code=qform_code)
    image.header.set_xyzt_units(xyz=spatial_unit(stored))
    return True


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
