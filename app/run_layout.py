"""The per-case files of an ``unetseg infer`` output folder, by name: the contract between the batch that writes
``OUT/<case_id>/`` and the evaluation that may read it back (``unetseg evaluate --pred OUT``).

* ``<case_id>_seg.<ext>``: the predicted label map (NIfTI, or PNG/TIFF for 2D pictures), the file to score;
* ``<case_id>_seg.dcm``: the same labels as a DICOM SEG, for DICOM input;
* ``statistics.json``, ``preview.png``: what a person checks without a reference;
* ``case.json``: the completion record, written last; its presence marks a folder as an infer case folder.

It imports nothing of the application, like :mod:`app.formats`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MANIFEST_NAME = "case.json"
STATISTICS_NAME = "statistics.json"
PREVIEW_NAME = "preview.png"
SEG_SUFFIX = "_seg"
DICOM_SEG_EXTENSION = ".dcm"


def is_case_folder(folder: Path) -> bool:
    """Whether ``folder`` is a case folder an infer run completed (it holds ``case.json``)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


def companion_files(folder: Path, files: Iterable[Path]) -> list[Path]:
    """Of ``files`` (label-like files listed in ``folder``), those an infer case folder holds beside its label map
    to score: the preview, and the DICOM SEG when a label map in another format is beside it (the SEG holds the
    same labels). Empty for any other folder."""
    if not is_case_folder(folder):
        return []
    files = list(files)
    out = [f for f in files if f.name == PREVIEW_NAME]
    segs = [f for f in files if f.name.lower().endswith(SEG_SUFFIX + DICOM_SEG_EXTENSION)]
    if any(SEG_SUFFIX + "." in f.name.lower() and f not in segs for f in files):
        out += segs
    return out
