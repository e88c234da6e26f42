"""Same-grid check and nearest-neighbour resampling of a prediction onto its reference's grid.

Contract: volumes are compared in RAS (converted with :meth:`app.volume.Volume.in_space`, never by hand).
Two volumes are on the same grid when their shapes are equal and their affines agree within
``atol_mm`` (default 0.01 mm: far below any voxel, far above float32 round-off in NIfTI headers and the
decimal-string rounding of DICOM positions).

Resampling uses ``scipy.ndimage.affine_transform`` with ``order=0`` (nearest neighbour, so label values are
never blended) and the index-to-index map ``inv(A_pred) @ A_ref``; voxels of the reference grid that fall
outside the prediction's field of view become background (0). We use scipy rather than MONAI's
``SpatialResample`` because the inputs here are plain numpy label maps and scipy needs no torch round trip.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from app.errors import InputError
from app.volume import Volume

logger = logging.getLogger(__name__)

#: largest affine difference (mm, or mm per voxel step) that still counts as the same grid
GRID_ATOL_MM = 0.01


def same_grid(a: Volume, b: Volume, *, atol_mm: float = GRID_ATOL_MM) -> bool:
    """Whether ``a`` and ``b`` have equal shapes and affines (in RAS) within ``atol_mm``."""
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a.in_space("RAS").affine, b.in_space("RAS").affine, rtol=0.0, atol=atol_mm))


def check_same_grid(pred: Volume, ref: Volume, *, atol_mm: float = GRID_ATOL_MM) -> None:
    """Raise :class:`InputError` naming both files unless ``pred`` lies on ``ref``'s grid."""
    if same_grid(pred, ref, atol_mm=atol_mm):
        return
    pred_affine = np.array2string(pred.in_space("RAS").affine[:3], precision=4, suppress_small=True)
    ref_affine = np.array2string(ref.in_space("RAS").affine[:3], precision=4, suppress_small=True)
    raise InputError(
        pred.source or None,
        f"prediction is not on the grid of reference {ref.source or '(unnamed)'}: "
        f"shape {pred.shape} vs {ref.shape}, RAS affine\n{pred_affine}\nvs\n{ref_affine}\n"
        "Pass --resample to put the prediction on the reference grid (nearest neighbour).",
    )


def resample_nearest(pred: Volume, ref: Volume) -> Volume:
    """``pred``'s labels on ``ref``'s grid (nearest neighbour), as a RAS volume with ``pred``'s source.

    Raises:
        InputError: one volume is 2D and the other 3D, or 2D volumes lie in different planes.
    """
    if pred.ndim != ref.ndim:
        raise InputError(pred.source or None, f"is {pred.ndim}D but reference {ref.source} is {ref.ndim}D")
    pred_ras, ref_ras = pred.in_space("RAS"), ref.in_space("RAS")
    index_map = np.linalg.inv(pred_ras.affine) @ ref_ras.affine
    n = ref.ndim
    if n == 2 and not (np.allclose(index_map[2, :2], 0, atol=1e-6) and abs(index_map[2, 3]) < 1e-3):
        raise InputError(pred.source or None, f"2D prediction does not lie in the plane of {ref.source}")
    matrix, offset = index_map[:n, :n], index_map[:n, 3]
    array = ndimage.affine_transform(
        np.asarray(pred.array),
        matrix,
        offset=offset,
        output_shape=ref.shape,
        order=0,
        mode="constant",
        cval=0,
    )
    logger.debug("resampled %s from %s onto %s", pred.source, pred.shape, ref.shape)
    return Volume(array=array, affine=ref_ras.affine, space="RAS", source=pred.source, meta=pred.meta)
