"""NIfTI-1/2 file -> :class:`~app.volume.Volume` in RAS (nibabel).

Contract: ``space="RAS"`` (NIfTI's world convention); ``array`` is ``(i, j, k)`` (or ``(i, j)`` for a 2D image)
in the stored dtype, scaled by ``scl_slope``/``scl_inter`` when set (then float32, float64 for float64 files).
Trailing singleton dimensions (``(x, y, z, 1)``) are dropped; true 4D+ images and RGB/vector voxels are refused.
``meta``: ``format``, ``sform_code``, ``qform_code``. Bad input raises :class:`~app.errors.InputError` only.

Size, checked before any voxel is read: the header alone (348 bytes, 540 for NIfTI-2; of a ``.nii.gz`` only
those bytes are decompressed) gives dims x bytes per voxel (the stored type, or the float32 that scaling
produces if wider), which must fit in :attr:`ReadOptions.max_bytes`, and so must the extensions up to
``vox_offset``. nibabel then fills a buffer of exactly the declared size, so decompression of a ``.nii.gz`` is
bounded by the declared size: a gzip bomb inflates no further than that, data longer than declared are not
read, and a stream that ends early is refused as truncated.

Orientation (which affine): the sform if its code is set, else the qform, else pixdim only (orientation unknown:
a warning). This is nibabel's ``img.affine`` and what MONAI's readers use. When both codes are set and the two
transforms place some voxel of the image more than :func:`qform_tolerance_mm` apart (checked at the eight
corners of the grid, where the difference of two affine maps is largest; 1e-3 mm plus what the float32 quaternion
of that rotation costs: dcm2niix output differs by ~1e-5 mm, an exactly orthogonal rotation near 180 degrees by
up to a few 1e-3 mm on a 256 mm grid), the file is ambiguous: other readers may put it elsewhere. ITK (SimpleITK, 3D Slicer,
ITK-SNAP) reads the qform unless the sform code is 1 (scanner) and the sform has no shear (ITK releases since
about 2020; older ones always read the qform, measured with SimpleITK 2.5). Then the sform is followed, a
warning is logged and added to ``Volume.warnings`` (for the case's report entry), or, with
:attr:`ReadOptions.strict_orientation`, the file is refused. The label map of a NIfTI case carries the image's
own orientation fields, so each reader places the two alike (:mod:`app.writing.nifti`).

Spatial unit: nibabel ignores ``xyzt_units``; an affine in metres or microns is scaled to millimetres here
(:func:`affine_mm`, as ITK does), with a warning.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import InputError
from app.loading.options import ReadOptions, check_declared_size, format_bytes
from app.volume import Volume

logger = logging.getLogger(__name__)

#: qform and sform farther apart than this (mm, anywhere on the grid) disagree
QFORM_SFORM_TOLERANCE_MM = 1e-3
#: sform column cosines (after removing scale) farther from orthogonal than this count as shear (as ITK)
_SHEAR_TOLERANCE = 1e-4
#: sform column cosines within this of orthogonal are a rotation (DICOM direction cosines rounded to 6 decimals
#: are orthogonal to ~1e-6); only then does float32 rounding of its qform count as agreement
_ROTATION_TOLERANCE = 1e-5
#: the largest NIfTI header (NIfTI-2); NIfTI-1 is 348 bytes
_HEADER_BYTES = 540


def read_nifti(path: str | Path, options: ReadOptions | None = None) -> Volume:
    """Read ``path`` (``.nii`` or ``.nii.gz``) as a RAS volume (contract in the module docstring).

    Args:
        path: the file.
        options: size limit and orientation policy; ``None`` for the defaults.

    Raises:
        InputError: unreadable, truncated or corrupt file, a declared size over the limit, 4D/vector/RGB image,
            a non-finite affine, or (strict orientation) qform and sform that disagree.
    """
    import nibabel as nib

    path = Path(path)
    options = options or ReadOptions()
    shape, stored_dtype, scaled = _check_header(path, options)
    try:
        img = nib.load(path)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel's errors have no common base; all mean "not readable"
        raise InputError(path, f"cannot read as NIfTI ({type(exc).__name__}: {exc})") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(path, f"not a NIfTI image ({type(img).__name__})")
    sform_code, qform_code = int(img.header["sform_code"]), int(img.header["qform_code"])
    affine = affine_mm(img)
    if not np.all(np.isfinite(affine)):
        raise InputError(path, "the affine (sform/qform) has non-finite values")
    warnings = _orientation_warnings(path, img, shape, options) + _unit_warnings(path, img)

    try:
        if scaled:
            array = img.get_fdata(
                caching="unchanged", dtype=np.float64 if stored_dtype == np.float64 else np.float32
            )
        else:
            array = np.asanyarray(img.dataobj)
        array = array.reshape(shape, order="A")
        if scaled and not np.all(np.isfinite(array)):
            slope, inter = img.header.get_slope_inter()
            raise InputError(
                path,
                f"scl_slope {slope:g} / scl_inter {inter:g} scale voxels beyond the "
                f"range of {array.dtype} (non-finite values); the header is corrupt",
            )
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - gzip, zlib, OSError, ValueError...: the data cannot be read
        raise InputError(
            path,
            f"cannot read the voxel data; the file is truncated or corrupt ({type(exc).__name__}: {exc})",
        ) from exc
    return Volume(
        array=array,
        affine=affine,
        space="RAS",
        source=str(path),
        meta={"format": "nifti", "sform_code": sform_code, "qform_code": qform_code},
        warnings=warnings,
    )


def _check_header(path: Path, options: ReadOptions) -> tuple[tuple[int, ...], np.dtype, bool]:
    """``(shape, stored dtype, scaled)`` from the header alone, after checking them and the declared size.

    Reads at most :data:`_HEADER_BYTES` bytes (decompressed) and lets nibabel parse only the fixed header, not
    its extensions, so nothing larger than the header is read before the size check.
    """
    from nibabel import Nifti1Header, Nifti2Header
    from nibabel.openers import ImageOpener

    if not path.name.lower().endswith(".gz"):
        with open(path, "rb") as raw:
            if raw.read(2) == b"\x1f\x8b":
                raise InputError(
                    path,
                    "is gzip-compressed but named .nii; rename it to .nii.gz (the name says how to read it)",
                )
    try:
        with ImageOpener(str(path)) as fh:
            block = fh.read(_HEADER_BYTES)
        header: Any = _parse_header(block, (Nifti1Header, Nifti2Header))
        dims = tuple(int(n) for n in header.get_data_shape())
        stored_dtype = header.get_data_dtype()
        slope, inter = header.get_slope_inter()
        vox_offset = float(header["vox_offset"])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - gzip/zlib/OSError/nibabel header errors: not a readable header
        raise InputError(
            path,
            f"cannot read the NIfTI header; the file is corrupt or not NIfTI ({type(exc).__name__}: {exc})",
        ) from exc
    shape = dims
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        raise InputError(path, f"image of shape {dims} is not 2D or 3D (4D/time series are not supported)")
    if min(shape) < 1:
        raise InputError(path, f"image of shape {dims} has no voxels")
    if stored_dtype.fields is not None or stored_dtype.kind not in "biuf":
        raise InputError(
            path, f"RGB/vector/complex voxels ({stored_dtype}) are not supported for segmentation"
        )
    scaled = slope is not None and (slope != 1 or (inter or 0) != 0)
    out_itemsize = 8 if stored_dtype == np.float64 else 4 if scaled else stored_dtype.itemsize
    check_declared_size(path, shape, max(stored_dtype.itemsize, out_itemsize), options)
    if not np.isfinite(vox_offset) or vox_offset > options.max_bytes:
        raise InputError(
            path,
            f"vox_offset {vox_offset:g} puts the voxel data after {format_bytes(int(min(vox_offset, 2**62)))} of "
            f"header extensions, over the limit of {format_bytes(options.max_bytes)} (ReadOptions.max_bytes); "
            "the header is corrupt",
        )
    return shape, stored_dtype, bool(scaled)


def _parse_header(block: bytes, classes: Sequence[type]) -> object:
    """The NIfTI-1 or NIfTI-2 header in ``block``, chosen by its ``sizeof_hdr`` (either byte order)."""
    for klass in classes:
        size = int(klass.sizeof_hdr)  # type: ignore[attr-defined]
        if len(block) < size:
            continue
        first = block[:4]
        if int.from_bytes(first, "little") == size or int.from_bytes(first, "big") == size:
            return klass(block[:size], check=False)
    raise ValueError(
        f"sizeof_hdr {int.from_bytes(block[:4], 'little')} is neither 348 (NIfTI-1) nor 540 (NIfTI-2)"
    )


#: millimetres per NIfTI spatial unit (``xyzt_units``); "unknown" is read as mm, as nibabel, MONAI and ITK do
MM_PER_UNIT = {"meter": 1000.0, "mm": 1.0, "micron": 1e-3, "unknown": 1.0}


def spatial_unit(header: Any) -> str:
    """The header's spatial unit name (``MM_PER_UNIT``'s keys); a code NIfTI does not define is ``"unknown"``."""
    try:
        unit = header.get_xyzt_units()[0]
    except KeyError:  # nibabel: a code outside the standard's table
        return "unknown"
    return unit if unit in MM_PER_UNIT else "unknown"


def affine_mm(img: Any) -> np.ndarray:
    """nibabel's affine of ``img`` (sform, else qform, else pixdim) in millimetres: nibabel ignores the header's
    spatial unit, so a file stored in metres or microns is scaled here (ITK converts the same way)."""
    scale = MM_PER_UNIT[spatial_unit(img.header)]
    return np.diag([scale, scale, scale, 1.0]) @ np.asarray(img.affine, dtype=np.float64)


def _unit_warnings(path: Path, img: Any) -> tuple[str, ...]:
    unit = spatial_unit(img.header)
    if MM_PER_UNIT.get(unit, 1.0) == 1.0:
        return ()
    message = f"spatial unit {unit}: the affine is scaled by {MM_PER_UNIT[unit]:g} to millimetres"
    logger.warning("%s: %s", path, message)
    return (message,)


def _orientation_warnings(
    path: Path, img: object, shape: tuple[int, ...], options: ReadOptions
) -> tuple[str, ...]:
    """Warnings about the orientation of ``img`` (module docstring); refuses a qform/sform conflict when strict."""
    header = img.header  # type: ignore[attr-defined]
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code == 0 and qform_code == 0:
        message = "neither sform nor qform is set; using pixdim only, so the orientation is unknown"
        logger.warning("%s: %s", path, message)
        return (message,)
    if sform_code == 0 or qform_code == 0:
        return ()
    sform = np.asarray(header.get_sform(), dtype=np.float64)
    try:
        qform = np.asarray(header.get_qform(), dtype=np.float64)
    except ValueError:  # nibabel: quaternion b, c, d of norm > 1, no rotation
        qform = np.full((4, 4), np.nan)
    if np.all(np.isfinite(qform)):
        distance = affine_distance(sform, qform, shape)
        if distance <= qform_tolerance_mm(sform, shape):
            return ()
        what = (
            f"qform and sform disagree: they place voxels up to {distance:.3g} mm apart (sform_code {sform_code}, "
            f"qform_code {qform_code})"
        )
    else:
        what = f"the qform (code {qform_code}) is not a valid rotation while the sform (code {sform_code}) is set"
    fix = "make them agree, e.g. `fslorient -copysform2qform FILE` or nibabel's `img.set_qform(img.get_sform())`"
    if options.strict_orientation:
        raise InputError(
            path,
            f"{what}; refused because strict orientation is on (ReadOptions.strict_orientation): viewers that follow "
            f"the qform and those that follow the sform would put this image in different places. To use it, {fix}, "
            "or turn strict orientation off to follow the sform",
        )
    if itk_reads_qform(sform, sform_code):
        itk = (
            "ITK-based viewers (SimpleITK, 3D Slicer, ITK-SNAP) place this image by its qform, so they will show "
            "it (and its label) elsewhere than unetseg segmented it"
        )
    else:
        itk = (
            "current ITK-based viewers (SimpleITK, 3D Slicer, ITK-SNAP) follow this sform too (code 1, no shear), "
            "but older ITK releases and other qform readers place the image by its qform, elsewhere than unetseg "
            "segmented it"
        )
    message = f"{what}. unetseg follows the sform, as nibabel and MONAI do; {itk}. To avoid this, {fix}"
    logger.warning("%s: %s", path, message)
    return (message,)


def affine_distance(a: np.ndarray, b: np.ndarray, shape: Sequence[int]) -> float:
    """Largest distance (mm) between where affines ``a`` and ``b`` put a voxel of a grid of ``shape``.

    The difference of two affine maps is affine, so its norm is largest at a corner of the grid's box.
    """
    extent = [max(int(n) - 1, 0) for n in shape[:3]] + [0] * (3 - min(len(shape), 3))
    corners = np.array([[*c, 1.0] for c in itertools.product(*[(0, n) for n in extent])]).T
    return float(np.max(np.linalg.norm(((np.asarray(a) - np.asarray(b)) @ corners)[:3], axis=0)))


def qform_tolerance_mm(sform: np.ndarray, shape: Sequence[int]) -> float:
    """How far (mm) a qform may place a voxel of a grid of ``shape`` from ``sform`` and still agree with it.

    :data:`QFORM_SFORM_TOLERANCE_MM` plus what storing the sform's own rotation as a qform costs: a quaternion
    in float32 is coarse for rotations near 180 degrees (its ``a`` is recovered from ``1 - b^2 - c^2 - d^2``), so
    an exactly orthogonal enhanced MR placed 2.8e-3 mm apart at the far corner of a 256 x 256 x 8 grid. That cost
    is measured by storing the sform as a qform with nibabel; for a sform whose columns are not orthogonal
    (beyond :data:`_ROTATION_TOLERANCE`: shear, which no qform can carry) it is 0, so shear is never accepted.
    """
    import nibabel as nib

    sform = np.asarray(sform, dtype=np.float64)
    deviation = _cosine_deviation(sform)
    if not np.all(np.isfinite(deviation)) or np.any(deviation > _ROTATION_TOLERANCE):
        return QFORM_SFORM_TOLERANCE_MM
    header = nib.Nifti1Header()
    header.set_qform(sform, code=1)
    return QFORM_SFORM_TOLERANCE_MM + affine_distance(header.get_qform(), sform, shape)


def itk_reads_qform(sform: np.ndarray, sform_code: int) -> bool:
    """Whether ITK (5.x, as SimpleITK 2.5 measured) places an image with both codes set by its qform.

    ITK follows the sform only when its code is 1 (scanner) and its columns are orthogonal (no shear).
    """
    if sform_code != 1:
        return True
    return bool(np.any(_cosine_deviation(sform) > _SHEAR_TOLERANCE))


def _cosine_deviation(sform: np.ndarray) -> np.ndarray:
    """``|C^T C - I|`` of the sform's unit column vectors ``C``: 0 for a rotation, the cosines between axes for
    shear (non-finite entries for a zero-length column)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = sform[:3, :3] / np.linalg.norm(sform[:3, :3], axis=0)
        return np.abs(columns.T @ columns - np.eye(3))
