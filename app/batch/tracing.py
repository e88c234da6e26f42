"""Tracing a case back to its input without patient data in its id: the source relative to INPUT.

Case ids are opaque for DICOM (``8f175593_4_cf899d56``: no names, no patient IDs) and can lose the folders of a
NIfTI file found deep inside a tree. :func:`relative_source` gives the path a user recognises: the series
folder or file relative to the INPUT it was found under (``study_1/series_4``, ``sub/001_ground_truth.nii.gz``).
The batch stores it in each :class:`~app.batch.records.CaseRecord` (``source``), so the console line,
``report.csv`` and ``OUT/<case_id>/case.json`` all carry it, beside the DICOM SeriesNumber and
SeriesDescription (:func:`describe_series`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def relative_source(path: str | Path, inputs: Sequence[str | Path]) -> str:
    """``path`` relative to the first of ``inputs`` that holds it; an input file itself gives its name, a
    path under none of them is returned as given."""
    # absolute, not resolved: a link inside INPUT (datalad, a link farm) is named where the user put it
    target = Path(os.path.abspath(path))
    for given in inputs:
        root = Path(os.path.abspath(given))
        if target == root:
            return root.name
        try:
            return str(target.relative_to(root if root.is_dir() else root.parent))
        except ValueError:
            continue
    return str(path)
