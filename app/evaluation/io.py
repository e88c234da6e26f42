"""Read label maps (and images for report overlays) from files into RAS :class:`~app.volume.Volume` objects.

Contract: :func:`read_label` returns a RAS volume whose array is a non-negative integer label map; it raises
:class:`~app.errors.InputError` naming the file for anything it cannot read correctly. Files are read by the
loading stage's one reader per format (:func:`app.loading.nifti.read_nifti`, :func:`app.loading.nrrd.read_nrrd`,
:func:`app.loading.picture.read_picture`, :func:`app.loading.seg.read_dicom_seg`; the endings in
:mod:`app.formats`), with their geometry rules and size limit; evaluation adds only the label-map checks:

* integer values (floats that are whole numbers are accepted, booleans become 0/1), none negative;
* a DICOM SEG (``.dcm``) only as a label (its segment numbers as label values); overlapping segments cannot be
  one label map and are refused by that reader.

:func:`read_image` reads the same formats (except DICOM SEG) without the integer check, for the overlay
pictures of the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.formats import file_kind
from app.volume import Volume

logger = logging.getLogger(__name__)


def read_label(path: str | Path) -> Volume:
    """A label map file as a RAS volume with a non-negative integer array."""
    path = Path(path)
    volume = _read(path, label=True)
    array = np.asarray(volume.array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.rint(array)):
            raise InputError(path, "is not a label map: it holds non-integer values (a probability map?)")
        array = array.astype(np.int32 if array.max(initial=0) < 2**31 else np.int64)
    if array.size and array.min() < 0:
        raise InputError(path, f"is not a label map: it holds negative values (min {array.min()})")
    return volume.with_array(array)


def read_image(path: str | Path) -> Volume:
    """An image file (NIfTI, NRRD, PNG, TIFF) as a RAS volume, voxel values as stored."""
    return _read(Path(path), label=False)


def _read(path: Path, *, label: bool) -> Volume:
    from app.loading.nifti import read_nifti
    from app.loading.nrrd import read_nrrd
    from app.loading.picture import read_picture

    if not path.is_file():
        raise InputError(path, "file not found")
    kind = file_kind(path)
    try:
        if kind == "nifti":
            volume = read_nifti(path)
        elif kind == "nrrd":
            volume = read_nrrd(path)
        elif kind == "picture":
            volume = read_picture(path, label=label)
        elif kind == "dicom" and label:
            volume = _read_dicom_seg(path)
        else:
            raise InputError(
                path,
                f"unsupported file type {path.name!r}; expected one of NIfTI, NRRD, PNG, TIFF, "
                "DICOM SEG (labels only)",
            )
    except (
        OSError,
        ValueError,
        KeyError,
    ) as exc:  # the readers' contract is InputError; a reader bug is named
        raise InputError(path, f"cannot be read: {type(exc).__name__}: {exc}") from exc
    logger.debug("read %s: shape %s, dtype %s", path, volume.shape, volume.array.dtype)
    return volume.in_space("RAS")


def _read_dicom_seg(path: Path) -> Volume:
    try:
        from app.loading.seg import read_dicom_seg
    except ImportError as exc:
        raise InputError(
            path, "DICOM SEG reading needs app.loading.seg, which this installation lacks"
        ) from exc
    result = read_dicom_seg(path)
    volume = result[0] if isinstance(result, tuple) else result  # (label map, segment number -> label)
    if not isinstance(volume, Volume):
        raise InputError(
            path, f"app.loading.seg.read_dicom_seg returned {type(volume).__name__}, not a Volume"
        )
    return volume
