"""Grid geometry the metrics need: voxel spacing, voxel volume and the worst-case distance.

Contract: every function takes a :class:`~app.volume.Volume` (2D or 3D, any space) and works from its affine
alone. Spacing is the column norms of ``affine[:3, :ndim]`` (mm per index step along each array axis).

Distances between voxel centres are computed by scaling each index axis by its spacing, which is exact only
when the axes are mutually orthogonal (axis-aligned or *oblique* grids). A *sheared* grid (non-orthogonal
columns, e.g. a gantry-tilted CT kept in scanner geometry) would need the full metric tensor; we refuse it
with :class:`~app.errors.InputError` rather than report wrong millimetres. Resample such volumes first.
"""

from __future__ import annotations

import numpy as np

from app.errors import InputError
from app.volume import Volume

#: largest |cos(angle)| between two index axes that still counts as orthogonal (about 0.06 degrees off 90)
ORTHOGONALITY_TOLERANCE = 1e-3


def spacing_mm(volume: Volume) -> np.ndarray:
    """Voxel spacing in mm along each array axis (length ``ndim``), after checking the axes are orthogonal.

    Raises:
        InputError: the grid is sheared, or an axis has zero length.
    """
    columns = volume.affine[:3, : volume.ndim]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 0):
        raise InputError(volume.source or None, f"affine has a zero-length axis (spacing {spacing.tolist()})")
    unit = columns / spacing
    cosines = np.abs(unit.T @ unit - np.eye(volume.ndim))
    if cosines.max() > ORTHOGONALITY_TOLERANCE:
        raise InputError(
            volume.source or None,
            f"sheared grid (axes not orthogonal, max |cos| {cosines.max():.4f}); surface distances would be "
            "wrong. Resample the volume onto an orthogonal grid first.",
        )
    return spacing


def voxel_volume_mm3(volume: Volume) -> float:
    """Volume of one voxel in mm^3, ``|det(affine[:3, :3])|``.

    For 2D volumes the affine's third column is a unit normal, so this is the pixel area in mm^2 times a
    nominal 1 mm thickness.
    """
    return float(abs(np.linalg.det(volume.affine[:3, :3])))


def volume_ml(n_voxels: int, voxel_mm3: float) -> float:
    """``n_voxels`` voxels of ``voxel_mm3`` each, in millilitres (1 mL = 1000 mm^3)."""
    return n_voxels * voxel_mm3 / 1000.0


def diagonal_mm(volume: Volume) -> float:
    """Length in mm of the field-of-view diagonal, ``||shape * spacing||``.

    This is the empty-mask policy's worst-case distance: it is larger than any distance between two voxel
    centres of the grid (those are at most ``||(shape - 1) * spacing||``), so a worst-case value can never be
    mistaken for a measured one.
    """
    return float(np.linalg.norm(np.asarray(volume.shape, dtype=np.float64) * spacing_mm(volume)))
