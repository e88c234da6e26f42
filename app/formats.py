"""The one table of file formats: which file name endings unetseg reads, as what, in which order of preference.

Every stage asks this module: discovery (:mod:`app.loading.load`) and case ids (:mod:`app.loading.cases`), the
picture reader, pairing in evaluation (:mod:`app.evaluation.pairing`) and label reading
(:mod:`app.evaluation.io`). It imports nothing of the application, so the MONAI Label app can use it too.

* ``nifti``: ``.nii.gz``, ``.nii``; ``nrrd``: ``.nrrd``, ``.nhdr``; ``picture``: ``.png``, ``.tif``, ``.tiff``
  (2D pictures; a multi-page TIFF is a stack); ``dicom``: ``.dcm`` single files (a DICOM SEG as a label file;
  DICOM series are found by content, not by name, see :mod:`app.loading.dicom.discover`).
* Matching is case-insensitive on the whole ending (``.nii.gz`` before ``.nii``). When two files of one folder
  share a stem, the earlier ending in :data:`SUFFIXES` is preferred.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

FileKind = Literal["nifti", "nrrd", "picture", "dicom"]

#: every file ending unetseg reads, with its kind, in order of preference
SUFFIXES: tuple[tuple[str, FileKind], ...] = (
    (".nii.gz", "nifti"),
    (".nii", "nifti"),
    (".nrrd", "nrrd"),
    (".nhdr", "nrrd"),
    (".png", "picture"),
    (".tif", "picture"),
    (".tiff", "picture"),
    (".dcm", "dicom"),
)

#: endings of single-file images (everything but DICOM, whose series span many files)
VOLUME_SUFFIXES: tuple[tuple[str, FileKind], ...] = tuple((s, k) for s, k in SUFFIXES if k != "dicom")
#: endings of 2D pictures
PICTURE_SUFFIXES: tuple[str, ...] = tuple(s for s, k in SUFFIXES if k == "picture")


def split_suffix(
    path: str | Path, suffixes: tuple[tuple[str, FileKind], ...] = SUFFIXES
) -> tuple[str, str] | None:
    """``(stem, ending)`` of a file name with one of ``suffixes`` (the ending in lower case), else ``None``."""
    name = Path(path).name
    for suffix, _ in suffixes:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def file_kind(path: str | Path, suffixes: tuple[tuple[str, FileKind], ...] = SUFFIXES) -> FileKind | None:
    """The kind of a file from its name (one of ``suffixes``), else ``None``."""
    split = split_suffix(path, suffixes)
    return dict(suffixes)[split[1]] if split else None
