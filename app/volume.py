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
class DicomSource:
    """Where a volume read from a DICOM series came from: what the DICOM reader records and the SEG writer
    references (:mod:`app.loading.dicom.reader`, :mod:`app.writing.dicom_seg`).

    Attributes:
        study_instance_uid, series_instance_uid, frame_of_reference_uid, sop_class_uid: the series' UIDs.
        modality, series_description: as in the files (``""`` when absent).
        series_number: SeriesNumber, ``None`` when absent.
        files: the source files in slice (``k``) order; for one multi-frame file, that one file.
        sop_instance_uids: SOP Instance UID of each entry of ``files``.
        frame_numbers: for multi-frame input, the 1-based frame of each slice ``k`` (``None`` for a slice from a
            single-frame image); else ``None``.
        slice_spacing: the spacing between slices in mm.
        dropped_files: identical duplicates left out of the volume, by name.
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    modality: str
    series_description: str
    series_number: int | None
    sop_class_uid: str
    files: tuple[str, ...]
    sop_instance_uids: tuple[str, ...]
    frame_numbers: tuple[int | None, ...] | None = None
    slice_spacing: float | None = None
    dropped_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("files", "sop_instance_uids", "dropped_files"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        if self.frame_numbers is not None:
            numbers = tuple(None if n is None else int(n) for n in self.frame_numbers)
            object.__setattr__(self, "frame_numbers", numbers)
        if len(self.files) != len(self.sop_instance_uids):
            raise ValueError(
                f"DicomSource: {len(self.files)} files but {len(self.sop_instance_uids)} SOP Instance UIDs"
            )

    def slice_keys(self, n_slices: int) -> list[tuple[str, int | None]]:
        """``(SOPInstanceUID, frame number)`` of each of the volume's ``n_slices`` slices (frame ``None`` for
        single-frame images)."""
        if self.frame_numbers is None:
            keys: list[tuple[str, int | None]] = [(uid, None) for uid in self.sop_instance_uids]
        else:
            uids = self.sop_instance_uids
            if len(uids) == 1:  # one enhanced multi-frame instance
                uids = uids * len(self.frame_numbers)
            keys = [(uid, number) for uid, number in zip(uids, self.frame_numbers, strict=True)]
        if len(keys) != n_slices:
            raise ValueError(f"DicomSource lists {len(keys)} slices, the volume has {n_slices}")
        return keys


@dataclass(frozen=True)
class Volume:
    """Voxels with their geometry.

    Attributes:
        array: 2D ``(i, j)`` or 3D ``(i, j, k)`` array; any numeric dtype (intensities keep their physical
            values, e.g. Hounsfield units after rescale).
        affine: 4x4 float64, voxel index -> world millimetres in ``space``.
        space: ``"RAS"`` or ``"LPS"``.
        source: where it came from (a path or a description), for messages and reports.
        meta: free-form provenance of the reader (e.g. the file format, NIfTI's sform/qform codes).
        dicom: for a volume read from a DICOM series (and the label maps made from it), its
            :class:`DicomSource`; ``None`` otherwise.
        warnings: what a reader accepted but a user should know (e.g. a NIfTI whose qform and sform disagree),
            one sentence each, for the log and the case's report entry. ``warnings``, ``meta`` and ``dicom`` are kept
            by :meth:`with_array` and :meth:`in_space`, so a label map made from this volume carries them too.
    """

    array: np.ndarray
    affine: np.ndarray
    space: Space = "RAS"
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    dicom: DicomSource | None = None

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
    def modality(self) -> str | None:
        """The DICOM Modality of the series it was read from (``None`` for NIfTI, NRRD and pictures)."""
        return (self.dicom.modality or None) if self.dicom is not None else None

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
