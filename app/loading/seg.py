"""DICOM SEG file -> label map :class:`~app.volume.Volume` (or one mask Volume per segment), via highdicom.

Contract:
    * output grid: the SEG's own frame of reference geometry (per-frame PlanePositionSequence, shared
      PlaneOrientationSequence and PixelMeasuresSequence), as highdicom's ``Segmentation.get_volume``
      derives it; space ``"LPS"``; array axes ``(i, j, k)`` = (column, row, slice) with ``k`` increasing along
      the slice normal ``row_cosine x column_cosine`` (the stack order of the DICOM reader), so a SEG written
      on a series reads back on that series' grid.
    * sparse SEGs (empty frames omitted, slices missing between others): the missing slices are background
      (0). dcmqi fills them with the PixelPaddingValue instead; we do not.
    * BINARY and LABELMAP pixels are taken as they are; FRACTIONAL pixels (probability or occupancy, scaled
      to 0..1 by MaximumFractionalValue) belong to a segment when ``>= fractional_threshold`` (0.5 by default).
    * label values are the SEG's segment numbers; segment 0 of a LABELMAP SEG is its background and is not
      returned as a segment.
    * overlapping segments cannot share one label map: :func:`read_dicom_seg` raises :class:`InputError`
      naming the overlapping segments; :func:`read_dicom_seg_masks` returns one binary Volume per segment.
    * ``Volume.meta["dicom_seg"]``: SOP/series/study/frame-of-reference UIDs, segmentation type, the
      referenced series UID and per-segment label and property codes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.errors import InputError
from app.volume import Volume

if TYPE_CHECKING:
    import highdicom as hd

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONAL_THRESHOLD = 0.5


def read_dicom_seg(
    path: str | Path, *, fractional_threshold: float = DEFAULT_FRACTIONAL_THRESHOLD
) -> tuple[Volume, dict[int, str]]:
    """Read a SEG into one label map.

    Args:
        path: the SEG file.
        fractional_threshold: for FRACTIONAL SEGs, the value (0..1) from which a pixel belongs to a segment.

    Returns:
        ``(labels, segments)``: ``labels`` is a 3D Volume in LPS, array ``(i, j, k)`` of uint8 (uint16 when a
        segment number exceeds 255) whose values are segment numbers (0 = background); ``segments`` maps
        segment number -> SegmentLabel.

    Raises:
        InputError: not a readable SEG, no volume geometry (e.g. a SEG of a projection X-ray), or segments
            that overlap (the message names them; use :func:`read_dicom_seg_masks`).
    """
    from highdicom.seg import SegmentationTypeValues

    path = Path(path)
    seg = _open(path)
    numbers = _segment_numbers(seg, path)
    segments = _segment_labels(seg, numbers)
    dtype = np.uint8 if max(numbers) <= 255 else np.uint16
    if seg.segmentation_type == SegmentationTypeValues.LABELMAP:
        # Pixel values are segment numbers already, and a label map cannot overlap: no per-segment stack.
        array, affine = _get_array(seg, path, numbers, combine=True)
        labels = array.astype(dtype, copy=False)
    else:
        masks, affine = _masks(seg, path, numbers, fractional_threshold)
        labels = _combine(masks, segments, dtype, path)
    volume = Volume(labels, affine, space="LPS", source=str(path), meta={"dicom_seg": _meta(seg, segments)})
    logger.info("read SEG %s: shape %s, segments %s", path, labels.shape, segments)
    return volume, segments


def read_dicom_seg_masks(
    path: str | Path, *, fractional_threshold: float = DEFAULT_FRACTIONAL_THRESHOLD
) -> tuple[dict[int, Volume], dict[int, str]]:
    """Read a SEG into one binary mask per segment, so overlapping segments survive.

    Returns:
        ``(masks, segments)``: segment number -> 3D uint8 Volume (0/1) in LPS on the SEG grid (all share one
        affine), and segment number -> SegmentLabel.

    Raises:
        InputError: as :func:`read_dicom_seg`, except for overlaps.
    """
    path = Path(path)
    seg = _open(path)
    numbers = _segment_numbers(seg, path)
    masks, affine = _masks(seg, path, numbers, fractional_threshold)
    segments = _segment_labels(seg, numbers)
    meta = {"dicom_seg": _meta(seg, segments)}
    volumes = {
        number: Volume(
            mask.astype(np.uint8), affine, space="LPS", source=f"{path} segment {number}", meta=meta
        )
        for number, mask in masks.items()
    }
    return volumes, segments


def _open(path: Path) -> hd.seg.Segmentation:
    import highdicom as hd
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError) as exc:
        raise InputError(path, f"not a readable DICOM file: {exc}") from exc
    if dataset.get("Modality") != "SEG":
        raise InputError(
            path,
            f"not a DICOM SEG (Modality {dataset.get('Modality')!r}, SOP class {dataset.get('SOPClassUID')})",
        )
    try:
        return hd.seg.Segmentation.from_dataset(dataset, copy=False)
    except (AttributeError, ValueError, KeyError) as exc:
        raise InputError(path, f"highdicom cannot parse this SEG: {exc}") from exc


def _segment_numbers(seg: hd.seg.Segmentation, path: Path) -> list[int]:
    """The described segment numbers, without segment 0 (a LABELMAP SEG's background, which is ours too)."""
    numbers = [int(number) for number in seg.segment_numbers if int(number) != 0]
    if not numbers:
        raise InputError(path, "the SEG describes no segments")
    return numbers


def _masks(
    seg: hd.seg.Segmentation, path: Path, numbers: list[int], fractional_threshold: float
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Segment number -> bool mask ``(i, j, k)``, and the 4x4 LPS affine of that grid."""
    from highdicom.seg import SegmentationTypeValues

    if not 0.0 < fractional_threshold <= 1.0:
        raise ValueError(f"fractional_threshold must be in (0, 1], got {fractional_threshold}")
    array, affine = _get_array(seg, path, numbers, combine=False)  # (i, j, k, segment)
    if seg.segmentation_type == SegmentationTypeValues.FRACTIONAL:
        logger.info("%s: FRACTIONAL SEG, thresholded at %s", path, fractional_threshold)
        masks = array >= fractional_threshold
    else:
        masks = array > 0
    return {number: masks[..., index] for index, number in enumerate(numbers)}, affine


def _get_array(
    seg: hd.seg.Segmentation, path: Path, numbers: list[int], *, combine: bool
) -> tuple[np.ndarray, np.ndarray]:
    """highdicom's volume of ``numbers`` as our ``(i, j, k[, segment])`` array and its LPS affine.

    ``combine``: one label map (pixel = segment number) instead of a stack of per-segment channels.
    FRACTIONAL values are rescaled to 0..1.
    """
    if seg.coordinate_system is None or "PlanePositionSequence" not in _first_frame_groups(seg):
        raise InputError(
            path,
            "this SEG has no plane positions in patient coordinates (e.g. it segments a projection "
            "X-ray), so it has no 3D volume geometry",
        )
    try:
        hd_volume = seg.get_volume(segment_numbers=numbers, combine_segments=combine, rescale_fractional=True)
    except (RuntimeError, ValueError) as exc:
        raise InputError(path, f"the SEG frames do not form a regular 3D volume: {exc}") from exc

    # highdicom orders axes (slice, row, column) with a right-handed affine; ours are (column, row, slice)
    # with the slice axis along the normal row_cosine x column_cosine. Reorder with highdicom's own methods.
    hd_volume = hd_volume.permute_spatial_axes([2, 1, 0])
    affine = hd_volume.affine
    if np.dot(affine[:3, 2], np.cross(affine[:3, 0], affine[:3, 1])) < 0:
        hd_volume = hd_volume.flip_spatial([2])
    return hd_volume.array, hd_volume.affine


def _first_frame_groups(seg: hd.seg.Segmentation) -> Any:
    """Functional groups that hold the first frame's plane position (per-frame, else shared)."""
    if (
        "PerFrameFunctionalGroupsSequence" in seg
        and "PlanePositionSequence" in seg.PerFrameFunctionalGroupsSequence[0]
    ):
        return seg.PerFrameFunctionalGroupsSequence[0]
    if "SharedFunctionalGroupsSequence" in seg:
        return seg.SharedFunctionalGroupsSequence[0]
    return {}


def _segment_labels(seg: hd.seg.Segmentation, numbers: list[int]) -> dict[int, str]:
    return {number: str(seg.get_segment_description(number).segment_label) for number in numbers}


def _combine(masks: dict[int, np.ndarray], segments: dict[int, str], dtype: type, path: Path) -> np.ndarray:
    """One label map from per-segment masks; raises naming the overlapping segments if any voxel is shared."""
    # ufuncs on arrays laid out like the masks (zeros_like keeps their strides) run fast; boolean indexing
    # of these transposed views would not.
    labels: np.ndarray = np.zeros_like(next(iter(masks.values())), dtype=dtype)
    for number, mask in masks.items():
        if np.logical_and(mask, labels).any():
            _refuse_overlap(masks, segments, path)
        np.copyto(labels, number, where=mask)
    return labels


def _refuse_overlap(masks: dict[int, np.ndarray], segments: dict[int, str], path: Path) -> None:
    """Raise naming each pair of segments that share voxels, with the voxel count."""
    numbers = list(masks)
    pairs = []
    for index, a in enumerate(numbers):
        for b in numbers[index + 1 :]:
            shared = int(np.count_nonzero(masks[a] & masks[b]))
            if shared:
                pairs.append(f"{a} '{segments[a]}' and {b} '{segments[b]}' ({shared} voxels)")
    raise InputError(
        path,
        "segments overlap, so they cannot share one label map: "
        + "; ".join(pairs)
        + ". Read them with read_dicom_seg_masks() to get one mask per segment",
    )


def _meta(seg: hd.seg.Segmentation, segments: dict[int, str]) -> dict[str, Any]:
    referenced = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])]
    descriptions = {}
    for number in segments:
        description = seg.get_segment_description(number)
        descriptions[number] = {
            "label": segments[number],
            "category": _code(description.segmented_property_category),
            "type": _code(description.segmented_property_type),
            "algorithm_type": str(description.algorithm_type.value),
        }
    return {
        "sop_instance_uid": str(seg.SOPInstanceUID),
        "series_instance_uid": str(seg.SeriesInstanceUID),
        "study_instance_uid": str(seg.StudyInstanceUID),
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
        "segmentation_type": seg.segmentation_type.value,
        "referenced_series_instance_uids": referenced,
        "segments": descriptions,
    }


def _code(concept: Any) -> tuple[str, str, str]:
    return str(concept.value), str(concept.scheme_designator), str(concept.meaning)
