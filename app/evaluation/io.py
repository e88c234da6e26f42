"""Read label maps (and images for report overlays) from files into RAS :class:`~app.volume.Volume` objects.

Contract: :func:`read_label` returns a RAS volume whose array is a non-negative integer label map; it raises
:class:`~app.errors.InputError` naming the file for anything it cannot read correctly. Formats:

* NIfTI (``.nii``, ``.nii.gz``), nibabel: the affine is nibabel's (already RAS); trailing axes of length 1
  beyond the third are dropped.
* NRRD (``.nrrd``, ``.nhdr``), pynrrd: the affine is built from ``space directions`` and ``space origin``
  in the file's ``space`` (LPS or RAS) and converted with :func:`app.volume.convert_affine`. Files with a
  non-spatial axis (e.g. one layer per segment) are refused.
* PNG (Pillow) and TIFF (tifffile): 2D label images (a multi-page TIFF is a 3D stack), read by
  :func:`app.loading.picture.read_picture`: index order ``(i, j[, k])`` as :class:`~app.volume.Volume` defines
  it, the identity affine (spacing 1: pixel units reported as mm). Colour images count only if their colour
  channels are equal.
* DICOM SEG (``.dcm``): ``app.loading.seg.read_dicom_seg(path)``, imported when needed (it needs highdicom);
  its label map (segment numbers as label values, LPS) is converted to RAS. Overlapping segments cannot be
  one label map and are refused by that reader.

:func:`read_image` reads the same formats (except DICOM SEG) without the integer check, for the overlay
pictures of the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.evaluation.pairing import split_extension
from app.loading.picture import PICTURE_SUFFIXES, read_picture
from app.volume import Space, Volume, convert_affine

logger = logging.getLogger(__name__)

_NRRD_SPACES: dict[str, Space] = {
    "left-posterior-superior": "LPS",
    "lps": "LPS",
    "right-anterior-superior": "RAS",
    "ras": "RAS",
}


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
    if not path.is_file():
        raise InputError(path, "file not found")
    split = split_extension(path)
    ext = split[1] if split else path.suffix.lower()
    try:
        if ext in (".nii", ".nii.gz"):
            volume = _read_nifti(path)
        elif ext in (".nrrd", ".nhdr"):
            volume = _read_nrrd(path)
        elif ext in PICTURE_SUFFIXES:
            volume = read_picture(path, label=label)
        elif ext == ".dcm" and label:
            volume = _read_dicom_seg(path)
        else:
            raise InputError(
                path,
                f"unsupported file type {ext!r}; expected one of NIfTI, NRRD, PNG, TIFF, "
                "DICOM SEG (labels only)",
            )
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(path, f"cannot be read: {exc}") from exc
    logger.debug("read %s: shape %s, dtype %s", path, volume.shape, volume.array.dtype)
    return volume.in_space("RAS")


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except nib.filebasedimages.ImageFileError as exc:
        raise InputError(path, f"is not a readable NIfTI file: {exc}") from exc
    if not isinstance(image, nib.spatialimages.SpatialImage) or image.affine is None:
        raise InputError(path, "has no voxel-to-world affine")
    array = np.asanyarray(image.dataobj)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise InputError(path, f"expected a 2D or 3D image, got shape {array.shape}")
    return Volume(array=array, affine=image.affine, space="RAS", source=str(path))


def _read_nrrd(path: Path) -> Volume:
    import nrrd

    try:
        array, header = nrrd.read(str(path))
    except nrrd.NRRDError as exc:
        raise InputError(path, f"is not a readable NRRD file: {exc}") from exc
    space_name = str(header.get("space", "")).lower()
    directions = header.get("space directions")
    if directions is None:
        spacing = header.get("spacings", [1.0] * array.ndim)
        directions = np.diag(np.asarray(spacing, dtype=np.float64))
        space_name = space_name or "ras"
    directions = np.asarray(directions, dtype=np.float64)
    spatial = ~np.all(np.isnan(directions), axis=1)
    if not spatial.all():
        if np.all(np.asarray(array.shape)[~spatial] == 1):
            array = array.reshape([n for n, s in zip(array.shape, spatial, strict=True) if s])
            directions = directions[spatial]
        else:
            raise InputError(
                path,
                f"has a non-spatial axis (kinds {header.get('kinds')}); one label map per file is supported",
            )
    if space_name not in _NRRD_SPACES:
        raise InputError(path, f"NRRD space {header.get('space')!r} is not supported; expected LPS or RAS")
    affine = np.eye(4)
    dims = directions.shape[1]
    affine[:dims, : array.ndim] = directions.T
    origin = np.asarray(header.get("space origin", np.zeros(dims)), dtype=np.float64)
    affine[:dims, 3] = origin
    space = _NRRD_SPACES[space_name]
    return Volume(array=array, affine=convert_affine(affine, space, "RAS"), space="RAS", source=str(path))


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
