"""One DICOM series (a list of files) -> :class:`~app.volume.Volume` in LPS, or a clear :class:`InputError`.

Contract of the returned volume:

* ``space="LPS"``; ``array`` is 3D ``(i, j, k)``: ``i`` = column index (along ImageOrientationPatient[:3]),
  ``j`` = row index, ``k`` = slice, sorted by position along ``n = row x column`` (see
  :mod:`app.loading.dicom.geometry`). The array is a Fortran-ordered view (DICOM frames are ``(j, i)``), which is
  also NIfTI's on-disk order. A single slice gives shape ``(i, j, 1)``.
* ``affine`` 4x4 float64, voxel -> LPS mm: columns ``row cosine * PixelSpacing[1]``, ``column cosine *
  PixelSpacing[0]``, ``n * slice spacing``, ImagePositionPatient of slice ``k=0``.
* dtype: see :mod:`app.loading.dicom.pixels` (stored integer dtype, widened integers for integral intercepts,
  float32 otherwise). Values are rescaled (e.g. Hounsfield units), per slice/frame.
* ``dicom``: the series' :class:`~app.volume.DicomSource` (UIDs, modality, description and number, the files
  and SOP Instance UIDs in ``k`` order, frame numbers of multi-frame input, slice spacing, dropped
  duplicates), which the DICOM SEG writer references. ``meta``: ``{"format": "dicom"}``.

MONOCHROME1 images are inverted within their stored range before the rescale (higher values brighter, as
SimpleITK/GDCM and MONAI's ITK reader give them), with a warning in ``Volume.warnings``.

Policies: a file cut short (``InstanceHeader.truncated``) fails the series, naming it, before anything else, so
a stack is never read one slice shorter; duplicate positions with identical pixels are dropped with a warning; with different pixels they are
refused; the same number (>1) of images at every position is a 4D series and refused. Gantry tilt is refused
(see geometry). A single slice needs SpacingBetweenSlices or SliceThickness (or
``DicomReadOptions.single_slice_spacing_mm``); two slices are read with their one gap as spacing.
The declared size is checked against ``ReadOptions.max_bytes`` before any pixel is decoded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.loading.dicom.classify import (
    invalid_pixel_format_reason,
    non_image_reason,
    unsupported_image_reason,
)
from app.loading.dicom.geometry import (
    SliceRef,
    check_uniform,
    group_by_position,
    shared_folder,
    stack_geometry,
)
from app.loading.dicom.header import InstanceHeader, read_header
from app.loading.dicom.options import DicomReadOptions
from app.loading.dicom.pixels import decode, invert_monochrome1, output_dtype, rescale_into, stored_range
from app.loading.options import ReadOptions, check_declared_size
from app.volume import DicomSource, Volume

logger = logging.getLogger(__name__)


def read_series(
    source: Sequence[InstanceHeader] | Sequence[str | Path],
    options: ReadOptions | None = None,
) -> Volume:
    """Read one series into an LPS :class:`Volume` (contract in the module docstring).

    Args:
        source: the series' files, or their headers already read by discovery (saves a second header pass).
        options: tolerances and the size limit: :class:`DicomReadOptions`, or shared :class:`ReadOptions` (then
            with the default tolerances); ``None`` for the defaults.

    Raises:
        InputError: the series cannot be read into a correct volume; the message names the file(s) and why.
    """
    options = DicomReadOptions.from_options(options)
    if not source:
        raise InputError(None, "empty DICOM series: no files given")
    headers = [h if isinstance(h, InstanceHeader) else read_header(h) for h in source]
    headers.sort(key=lambda h: str(h.path))
    _check_images(headers)
    where = shared_folder([h.path for h in headers])
    slices = [SliceRef(h, i, where) for h in headers for i in range(len(h.frames))]
    check_uniform(slices, options)
    _check_rescale(slices, where)
    dtype = output_dtype(headers[0], [s.geometry for s in slices])
    _check_size(headers[0], len(slices), dtype, options, where)

    groups = group_by_position(slices, options)
    ordered, dropped = _resolve_duplicates(groups, where)
    stack = stack_geometry(ordered, options)

    out = np.empty((len(ordered), headers[0].rows or 0, headers[0].columns or 0), dtype=dtype)
    by_file: dict[Path, list[tuple[int, SliceRef]]] = {}
    for k, s in enumerate(ordered):
        by_file.setdefault(s.header.path, []).append((k, s))
    inverted: list[InstanceHeader] = []
    for items in by_file.values():
        header = items[0][1].header
        frames = decode(header)
        if header.photometric_interpretation == "MONOCHROME1":
            frames = invert_monochrome1(frames, header)
            inverted.append(header)
        for k, s in items:
            rescale_into(
                out[k], frames[s.frame_index], s.geometry.rescale_slope, s.geometry.rescale_intercept
            )
    logger.debug("read %d slices of %s into %s %s", len(ordered), where, out.shape[::-1], dtype)
    return Volume(
        array=out.transpose(2, 1, 0),
        affine=stack.affine,
        space="LPS",
        source=str(where),
        meta={"format": "dicom"},
        warnings=_monochrome1_warnings(inverted, len(by_file), where),
        dicom=_provenance(ordered, stack.slice_spacing, dropped),
    )


def _monochrome1_warnings(inverted: Sequence[InstanceHeader], n_files: int, where: Path) -> tuple[str, ...]:
    if not inverted:
        return ()
    lo, hi = stored_range(inverted[0])
    which = "all files" if len(inverted) == n_files else f"{len(inverted)} of {n_files} files"
    message = (
        f"PhotometricInterpretation MONOCHROME1 (lowest value white) in {which}: stored values inverted within "
        f"{lo}..{hi} (value -> {lo + hi} - value) before the rescale, so that higher values are brighter as in "
        "MONOCHROME2 (what SimpleITK/GDCM and MONAI's ITK reader give); intensities differ from the stored ones"
    )
    logger.warning("%s: %s", where, message)
    return (message,)


def _check_images(headers: Sequence[InstanceHeader]) -> None:
    truncated = [h for h in headers if h.truncated]
    if truncated:
        others = [h.path.name for h in truncated[1:]]
        more = (
            f"; {len(others)} more truncated file(s) in the series: {', '.join(others[:5])}" if others else ""
        )
        raise InputError(truncated[0].path, f"{truncated[0].truncated}{more}")
    for h in headers:
        reason = non_image_reason(h) or unsupported_image_reason(h) or invalid_pixel_format_reason(h)
        if reason:
            raise InputError(h.path, reason)
    formats: dict[tuple[int | None, int | None, int], list[str]] = {}
    for h in headers:
        formats.setdefault((h.bits_allocated, h.bits_stored, h.pixel_representation), []).append(h.path.name)
    if len(formats) > 1:
        parts = "; ".join(
            f"{len(names)} with {fmt} (e.g. {', '.join(names[:2])})"
            for fmt, names in sorted(formats.items(), key=lambda item: -len(item[1]))
        )
        raise InputError(
            headers[0].path.parent,
            f"mixed pixel formats (BitsAllocated, BitsStored, PixelRepresentation) in one series: {parts}",
        )


def _check_rescale(slices: Sequence[SliceRef], where: Path) -> None:
    """Refuse a RescaleSlope/RescaleIntercept that is not a finite number, or a slope of 0, naming the image."""
    for s in slices:
        slope, intercept = s.geometry.rescale_slope, s.geometry.rescale_intercept
        if not (math.isfinite(slope) and math.isfinite(intercept)):
            raise InputError(
                where,
                f"{s.label}: RescaleSlope {slope:g} / RescaleIntercept {intercept:g} is not a finite number; "
                "the header is corrupt",
            )
        if slope == 0:
            raise InputError(
                where, f"{s.label}: RescaleSlope 0 maps every pixel to the intercept; the header is corrupt"
            )


def _check_size(
    header: InstanceHeader, n_slices: int, dtype: np.dtype, options: DicomReadOptions, where: Path
) -> None:
    """Refuse before allocating: the output, or the stored frames if wider, must fit in ``max_bytes``."""
    per_voxel = max(dtype.itemsize, (header.bits_allocated or 8) // 8)
    check_declared_size(where, (header.columns or 0, header.rows or 0, n_slices), per_voxel, options)


def _resolve_duplicates(groups: list[list[SliceRef]], where: Path) -> tuple[list[SliceRef], list[SliceRef]]:
    """One slice per position: identical duplicates dropped (warning), anything else refused."""
    if all(len(g) == 1 for g in groups):
        return [g[0] for g in groups], []
    decoded: dict[Path, np.ndarray] = {}

    def pixels(s: SliceRef) -> np.ndarray:
        if s.header.path not in decoded:
            decoded[s.header.path] = decode(s.header)
        return decoded[s.header.path][s.frame_index]

    kept_groups: list[list[SliceRef]] = []
    dropped: list[SliceRef] = []
    for group in groups:
        kept: list[SliceRef] = []
        for s in group:
            same = next(
                (
                    k
                    for k in kept
                    if (k.geometry.rescale_slope, k.geometry.rescale_intercept)
                    == (s.geometry.rescale_slope, s.geometry.rescale_intercept)
                    and np.array_equal(pixels(k), pixels(s))
                ),
                None,
            )
            if same is None:
                kept.append(s)
            else:
                logger.warning(
                    "%s: %s duplicates %s (same position and pixels); dropped", where, s.label, same.label
                )
                dropped.append(s)
        kept_groups.append(kept)
    counts = {len(g) for g in kept_groups}
    if counts == {1}:
        return [g[0] for g in kept_groups], dropped
    if len(counts) == 1:
        n = counts.pop()
        numbers = {s.header.acquisition_number for g in kept_groups for s in g}
        acquisitions = sorted(a for a in numbers if a is not None)
        hint = f"; AcquisitionNumber values {acquisitions}" if len(acquisitions) > 1 else ""
        raise InputError(
            where,
            f"several images per position: {n} different images at each of {len(kept_groups)} slice position(s) "
            f"(e.g. {', '.join(s.label for s in kept_groups[0])}{hint}). This is a 4D series or repeated "
            "acquisitions (time points, echoes, ...), not one volume: split it into single volumes",
        )
    clash = next(g for g in kept_groups if len(g) > 1)
    raise InputError(
        where,
        f"duplicate slice positions with different pixels: {', '.join(s.label for s in clash)} lie at the same "
        "position; remove the wrong files or split the series",
    )


def _provenance(ordered: Sequence[SliceRef], spacing: float, dropped: Sequence[SliceRef]) -> DicomSource:
    first = ordered[0].header
    paths = list(dict.fromkeys(s.header.path for s in ordered))
    single_multiframe = len(paths) == 1 and first.is_multiframe
    multiframe = any(s.header.is_multiframe for s in ordered)
    if single_multiframe:
        files, uids = [str(first.path)], [first.sop_instance_uid]
    else:
        files = [str(s.header.path) for s in ordered]
        uids = [s.header.sop_instance_uid for s in ordered]
    return DicomSource(
        study_instance_uid=first.study_instance_uid,
        series_instance_uid=first.series_instance_uid,
        frame_of_reference_uid=first.frame_of_reference_uid,
        modality=first.modality,
        series_description=first.series_description,
        series_number=first.series_number,
        sop_class_uid=first.sop_class_uid,
        files=tuple(files),
        sop_instance_uids=tuple(uids),
        frame_numbers=tuple(s.geometry.frame_number for s in ordered) if multiframe else None,
        slice_spacing=spacing,
        dropped_files=tuple(s.label for s in dropped),
    )
