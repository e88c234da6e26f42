"""The one volume type that crosses stage boundaries.

A :class:`Volume` is a voxel array plus the 4x4 affine that maps voxel indices ``(i, j, k, 1)`` to world
coordinates in millimetres, plus the name of the world convention the affine is in:

* ``"RAS"``: +x Right, +y Anterior, +z Superior (NIfTI, nibabel, MONAI).
* ``"LPS"``: +x Left, +y Posterior, +z Superior (DICOM patient coordinates).

Array axis order is index order ``(i, j, k)``: for volumes read from DICOM, ``i`` runs along a row (the
column index, direction ImageOrientationPatient[:3]), ``j`` down the columns, ``k`` along the stack. 2D images
are arrays of shape ``(i, j)`` with a 4x4 affine whose third column is a unit normal.

The conversion between LPS and RAS happens in :func:`convert_affine` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

Space = Literal["RAS", "LPS"]

#: diag(-1, -1, 1, 1): flips x and y, which is the whole difference between LPS and RAS.
_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def convert_affine(affine: np.ndarray, src: Space, dst: Space) -> np.ndarray:
    """Return ``affine`` (voxel -> ``src`` world) re-expressed as voxel -> ``dst`` world.

    This is the only place in unetseg where LPS and RAS are converted.
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got {affine.shape}")
    if src not in ("RAS", "LPS") or dst not in ("RAS", "LPS"):
        raise ValueError(f"unknown space {src!r} -> {dst!r}; expected 'RAS' or 'LPS'")
    if src == dst:
        return affine.copy()
    return _LPS_RAS @ affine


@dataclass(frozen=True)
class Volume:
    """Voxels with their geometry.

    Attributes:
        array: 2D ``(i, j)`` or 3D ``(i, j, k)`` array; any numeric dtype (intensities keep their physical
            values, e.g. Hounsfield units after rescale).
        affine: 4x4 float64, voxel index -> world millimetres in ``space``.
        space: ``"RAS"`` or ``"LPS"``.
        source: where it came from (a path or a description), for messages and reports.
        meta: free-form provenance (e.g. DICOM UIDs, the SOP instance UID of each slice in ``k`` order).
        warnings: what a reader accepted but a user should know (e.g. a NIfTI whose qform and sform disagree),
            one sentence each, for the log and the case's report entry. Kept by :meth:`with_array` and
            :meth:`in_space`, so a label map made from this volume carries them too.
    """

    array: np.ndarray
    affine: np.ndarray
    space: Space = "RAS"
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"{self.source or 'volume'}: affine must be 4x4, got {affine.shape}")
        if not np.all(np.isfinite(affine)):
            raise ValueError(f"{self.source or 'volume'}: affine has non-finite values")
        if self.array.ndim not in (2, 3):
            raise ValueError(
                f"{self.source or 'volume'}: expected a 2D or 3D array, got shape {self.array.shape}"
            )
        if self.space not in ("RAS", "LPS"):
            raise ValueError(f"{self.source or 'volume'}: unknown space {self.space!r}")
        object.__setattr__(self, "affine", affine)
        if isinstance(self.warnings, str):
            raise TypeError(f"{self.source or 'volume'}: warnings must be a tuple of strings, not one str")
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each array axis (length ``ndim``)."""
        return np.linalg.norm(self.affine[:3, : self.ndim], axis=0)

    def in_space(self, space: Space) -> Volume:
        """The same voxels with the affine expressed in ``space``."""
        if space == self.space:
            return self
        return replace(self, affine=convert_affine(self.affine, self.space, space), space=space)

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """A volume on the same grid with other voxels (e.g. a label map for this image)."""
        if array.shape[: self.ndim] != self.shape:
            raise ValueError(
                f"{self.source or 'volume'}: array shape {array.shape} is not on grid {self.shape}"
            )
        return replace(self, array=array, **changes)

    def world_coordinates(self, ijk: np.ndarray) -> np.ndarray:
        """Map voxel indices (N, ndim) to world coordinates (N, 3) in this volume's space."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        pad = np.zeros((ijk.shape[0], 3 - ijk.shape[1])) if ijk.shape[1] < 3 else np.zeros((ijk.shape[0], 0))
        hom = np.concatenate([ijk, pad, np.ones((ijk.shape[0], 1))], axis=1)
        return (hom @ self.affine.T)[:, :3]
