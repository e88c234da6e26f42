"""Loading stage: DICOM folders, NIfTI and NRRD files -> :class:`~app.volume.Volume`.

Public API::

    load_volume(path, *, modality=None, filters=(), dicom_options=None) -> Volume
    discover_inputs(paths, modality=None, filters=()) -> (list[Case], list[Decision])

DICOM volumes come out in LPS, NIfTI/NRRD in RAS; convert with ``Volume.in_space``. Importing this package does
not import pydicom.
"""

from app.loading.cases import Case
from app.loading.decisions import Decision
from app.loading.load import discover_inputs, load_volume

__all__ = ["Case", "Decision", "discover_inputs", "load_volume"]
