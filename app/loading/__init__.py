"""Loading stage: DICOM folders, NIfTI and NRRD files -> :class:`~app.volume.Volume`.

Public API::

    load_volume(path, *, modality=None, filters=(), options=None) -> Volume
    discover_inputs(paths, modality=None, filters=(), *, pictures=True) -> (list[Case], list[Decision])
    Case.load(options=None) -> Volume
    ReadOptions(*, max_bytes=4 GiB, strict_orientation=False)

The only exception bad input makes a reader raise is :class:`~app.errors.InputError`; discovery never raises
for a bad file (it records a skipped-file :class:`Decision`).

DICOM volumes come out in LPS, NIfTI/NRRD in RAS; convert with ``Volume.in_space``. Importing this package does
not import pydicom.
"""

from app.loading.cases import Case
from app.loading.decisions import Decision
from app.loading.load import discover_inputs, load_volume
from app.loading.options import ReadOptions

__all__ = ["Case", "Decision", "ReadOptions", "discover_inputs", "load_volume"]
