"""Case records: one input volume to process, with a file-name-safe id and a lazy loader.

Case id scheme (safe for file names: ``[A-Za-z0-9._-]``; never a patient name or ID read from DICOM):

* NIfTI/NRRD/PNG/TIFF: the file stem (``case_001.nii.gz`` -> ``case_001``), other characters replaced by ``_``,
  at most :data:`MAX_CASE_ID` characters (a longer stem is cut and ends in a hash of the whole); a stem
  shared by several files of one discovery gets, on each of them, ``-`` and the first 8 hex digits of the SHA-1
  of the file's path from the folder holding its input (``in/site_a/case.nii.gz`` for the input ``in``), so an
  id does not depend on the order of discovery or on which other files exist (``--resume``, ``--shard``);
  ``-2``, ``-3``, ... only if that still collides.
* DICOM series: ``<study8>_<SeriesNumber>_<series8>``, where ``study8``/``series8`` are the first 8 hex digits of
  the SHA-1 of the StudyInstanceUID/SeriesInstanceUID (``na`` for a missing SeriesNumber), e.g.
  ``3f2a9c01_4_be77d0e2``. Stable across runs and machines, distinct per series, and the UIDs themselves stay
  in ``Volume.meta``. Files whose UIDs were blanked by an anonymiser are grouped by folder, and the hash is
  then taken of the folder path.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from app.errors import InputError
from app.formats import VOLUME_SUFFIXES, file_kind, split_suffix
from app.volume import Volume

if TYPE_CHECKING:
    from app.loading.dicom.discover import DicomSeries
    from app.loading.options import ReadOptions

CaseKind = Literal["dicom", "nifti", "nrrd", "picture"]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def volume_kind(path: Path) -> CaseKind | None:
    """``"nifti"``/``"nrrd"``/``"picture"`` (PNG, TIFF) from the file name (:mod:`app.formats`), else ``None``."""
    kind = file_kind(path, VOLUME_SUFFIXES)
    return None if kind in (None, "dicom") else kind


def short_hash(text: str) -> str:
    """First 8 hex digits of the SHA-1 of ``text``."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


#: the longest case id: OUT/<id>/<id>_seg.nii.gz is written through a temporary sibling 18 characters longer,
#: and a name may have 255 bytes on common file systems, so a file stem beyond this is shortened
MAX_CASE_ID = 120


def file_case_id(path: Path) -> str:
    """Case id of a NIfTI/NRRD/picture file: its stem, made file-name safe; a stem longer than
    :data:`MAX_CASE_ID` keeps its start and ends in ``-`` and the short hash of the whole stem."""
    split = split_suffix(path, VOLUME_SUFFIXES)
    name = split[0] if split else path.name
    safe = _UNSAFE.sub("_", name).strip("._") or "case"
    if len(safe) <= MAX_CASE_ID:
        return safe
    return f"{safe[: MAX_CASE_ID - 9].rstrip('._-')}-{short_hash(safe)}"


def dicom_case_id(study_key: str, series_number: int | None, series_key: str) -> str:
    """Case id of a DICOM series (see the module docstring)."""
    number = str(series_number) if series_number is not None else "na"
    return f"{short_hash(study_key)}_{_UNSAFE.sub('_', number)}_{short_hash(series_key)}"


@dataclass(frozen=True)
class Case:
    """One volume to process.

    Attributes:
        case_id: file-name-safe id (scheme in the module docstring).
        kind: ``"dicom"``, ``"nifti"``, ``"nrrd"`` or ``"picture"`` (PNG/TIFF, a multi-page TIFF a stack).
        source: the file, or the folder holding the series' files.
        series: for DICOM, the discovered series (its headers, so loading does not re-read them).
    """

    case_id: str
    kind: CaseKind
    source: Path
    series: DicomSeries | None = None

    def identity(self) -> dict[str, Any]:
        """What tells that this case's input is still the one an earlier run segmented (``--resume``): the
        absolute path of its source, and the number, total size and latest modification time (ns) of its files
        (a DICOM series' instances). A file replaced by another scan of the same name, or a case id that now
        names another file, differs here; a file that cannot be stat'ed gives ``-1`` values, which differ from
        any recorded ones."""
        files = [i.path for i in self.series.instances] if self.series is not None else [self.source]
        try:
            stats = [os.stat(f) for f in files]
            size, mtime = sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)
        except (OSError, ValueError):
            size = mtime = -1
        return {
            "input": os.path.abspath(self.source),
            "input_files": len(files),
            "input_bytes": size,
            "input_mtime_ns": mtime,
        }

    def load(self, options: ReadOptions | None = None) -> Volume:
        """Read the volume now: DICOM in ``"LPS"``, NIfTI/NRRD/pictures in ``"RAS"`` (use ``Volume.in_space``).

        Args:
            options: size limit and orientation policy of every reader
                (:class:`~app.loading.options.ReadOptions`); for DICOM also a
                :class:`~app.loading.dicom.options.DicomReadOptions` with its tolerances. ``None``: the defaults.

        Raises:
            InputError: the input cannot be read into a correct volume (the only exception bad input causes).
        """
        return require_usable(self._read(options), self.source)

    def _read(self, options: ReadOptions | None) -> Volume:
        if self.kind == "dicom":
            from app.loading.dicom.reader import read_series

            if self.series is None:
                raise ValueError(f"case {self.case_id}: a DICOM case needs its series")
            return read_series(self.series.instances, options)
        if self.kind == "nifti":
            from app.loading.nifti import read_nifti

            return read_nifti(self.source, options)
        if self.kind == "picture":
            from app.loading.picture import read_picture

            return read_picture(self.source, options=options)
        from app.loading.nrrd import read_nrrd

        return read_nrrd(self.source, options)


def require_usable(volume: Volume, source: Path) -> Volume:
    """``volume`` unchanged if its affine maps voxels to a grid (no zero-length or parallel axes) and every voxel
    is a number; else :class:`~app.errors.InputError`, whatever the format.

    A singular affine (a corrupt header) has no spacing or orientation to resample by. One NaN or infinite voxel
    makes intensity normalisation NaN everywhere, and the network's argmax then labels the whole image background
    (or, for a 2D picture, one class everywhere) without any error: refused rather than segmented into a silently
    empty mask."""
    axes = np.asarray(volume.affine, dtype=np.float64)[:3, :3]
    lengths = np.linalg.norm(axes, axis=0)
    if not np.all(lengths > 0) or abs(np.linalg.det(axes / lengths)) < 1e-6:
        raise InputError(
            source,
            "the affine is singular (a voxel axis of zero length, or two axes parallel): the header gives no "
            f"usable voxel grid; columns {np.round(axes, 6).T.tolist()}",
        )
    array = volume.array
    if not np.issubdtype(array.dtype, np.floating):
        return volume
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        nan = int(np.count_nonzero(np.isnan(array)))
        raise InputError(
            source,
            f"{bad} of {array.size} voxels are not finite ({nan} NaN, {bad - nan} infinite); the network cannot "
            "segment such an image (its intensity normalisation would turn every voxel into NaN). Replace them, "
            "e.g. with the image's minimum, and run the case again",
        )
    return volume
