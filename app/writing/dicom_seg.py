"""Label Volume + its DICOM source series -> DICOM Segmentation (SEG) file, via highdicom.

Contract:
    * ``labels``: a :class:`~app.volume.Volume` label map on the source series grid, 3D ``(i, j, k)``
      (column, row, slice) or 2D ``(i, j)`` for one source image; integer or bool dtype; value 0 is background,
      every other value present must be described in ``segments``. Either space: a RAS volume is brought to
      LPS with :meth:`Volume.in_space`, never with hand-written flips.
    * ``source``: the series' :class:`~app.volume.DicomSource` as the DICOM reader recorded it (its files), or
      the source images as datasets or file paths.
    * ``labels.dicom`` (optional, the :class:`~app.volume.DicomSource` a label map made from a DICOM volume
      carries): its SOP Instance UIDs and frame numbers in ``k`` order tie each slice to its source frame, and
      its series UID must be the source images' series. Without it, slices are matched to source frames by
      position. Either way every slice is checked against its frame's geometry, and a label map that is not
      on the source grid is refused (:class:`OutputError`).
    * output: one SEG instance. highdicom wants frames as ``(frames, rows, columns)`` in the order of the
      source images, i.e. our ``array.transpose(2, 1, 0)`` with the source images listed in ``k`` order; for an
      enhanced multi-frame source, the array follows the source's frame numbers instead.

Decisions (see the module-level constants):
    * BINARY by default (the most widely supported); LABELMAP (Label Map Segmentation Storage, 8/16-bit)
      on request. BINARY segment numbers must be 1..N (the standard's rule for Segment Number, which
      highdicom enforces); LABELMAP takes any values 1..65535.
    * Empty frames are kept by default (``keep_empty_frames=True``) for viewer compatibility: every source
      image then has its frame(s), which viewers that pair SEG frames with images one to one expect.
    * SegmentAlgorithmType AUTOMATIC with an AlgorithmIdentificationSequence (family DCM "Artificial
      Intelligence", name and version of the model).
    * Patient, study and frame of reference are copied from the source by highdicom; the SEG gets new
      Series and SOP Instance UIDs (returned in :class:`WrittenSeg` for the run report). highdicom is given
      copies of the source images with what it reads but real sources lack (:mod:`app.writing.seg_source`):
      absent Type 2 patient/study attributes present and empty, a slice thickness from the slice spacing
      when the source has none, and an enhanced image's per-frame geometry in its shared functional group.
    * Series number: :func:`default_series_number` (9000 + source series number mod 1000) unless given.
    * Series description: :data:`DEFAULT_SERIES_DESCRIPTION`, which marks the output as research AI output.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from app import __version__
from app.errors import InputError, OutputError
from app.segment_codes import SegmentSpec, resolve_segments
from app.volume import DicomSource, Volume
from app.writing.atomic import atomic_write
from app.writing.seg_source import prepare_source_images
from app.writing.source_grid import SourceFrame, dataset_path, match_slices, source_frames

if TYPE_CHECKING:
    from pydicom import Dataset

logger = logging.getLogger(__name__)

#: SeriesDescription of every SEG we write unless the caller gives another (LO: at most 64 characters).
DEFAULT_SERIES_DESCRIPTION = "unetseg research AI segmentation - not for diagnostic use"
#: SEG series numbers start here, above the numbers scanners give acquired series.
SERIES_NUMBER_BASE = 9000
#: ContentLabel (CS: upper case, digits, space, underscore; at most 16 characters).
CONTENT_LABEL = "UNETSEG"
#: default tolerance (mm) between a label slice corner and the same source pixel
DEFAULT_TOLERANCE_MM = 0.1

SegmentationType = Literal["BINARY", "LABELMAP"]

#: UIDs a source image must carry for the SEG to reference it and share its study and frame of reference
_REQUIRED_SOURCE_UIDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
)


@dataclass(frozen=True)
class WrittenSeg:
    """What was written, for the provenance record.

    Attributes:
        path: the SEG file.
        series_instance_uid, sop_instance_uid: new UIDs of the SEG.
        series_number: SeriesNumber of the SEG.
        segmentation_type: ``"BINARY"`` or ``"LABELMAP"``.
        number_of_frames: frames in the SEG.
        segments: segment number -> SegmentLabel.
        source_series_instance_uid: the referenced series.
        source_sop_instance_uids: the referenced source images, in ``k`` order (repeated for multi-frame).
    """

    path: Path
    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    segmentation_type: str
    number_of_frames: int
    segments: dict[int, str]
    source_series_instance_uid: str
    source_sop_instance_uids: tuple[str, ...]


def default_series_number(source_series_number: int | None) -> int:
    """``9000 + source series number mod 1000`` (``9000`` when the source has none).

    Deterministic: the same source series always gets the same SEG series number, and SEG series sort after
    the acquired series in viewers. Pass ``series_number`` to :func:`write_dicom_seg` to override.
    """
    if source_series_number is None:
        return SERIES_NUMBER_BASE
    return SERIES_NUMBER_BASE + int(source_series_number) % 1000


def write_dicom_seg(
    labels: Volume,
    source: DicomSource | Sequence[Dataset | str | Path],
    segments: Mapping[int, SegmentSpec | str],
    path: str | Path,
    *,
    segmentation_type: SegmentationType = "BINARY",
    keep_empty_frames: bool = True,
    series_number: int | None = None,
    series_description: str = DEFAULT_SERIES_DESCRIPTION,
    algorithm_name: str = "unetseg",
    algorithm_version: str = __version__,
    content_creator_name: str | None = None,
    label_context: str | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> WrittenSeg:
    """Write ``labels`` as a DICOM SEG that references ``source``, atomically.

    Args:
        labels: label map on the source grid (see the module docstring for shape, axis order and dtype).
        source: the source series: its :class:`~app.volume.DicomSource` (e.g. ``labels.dicom``), or datasets
            (metadata is enough) or file paths, any order. Images that no label slice lies on are not referenced.
        segments: label value -> :class:`SegmentSpec` or channel name (names are coded with
            :func:`~app.segment_codes.resolve_segment`), e.g. a bundle's ``channel_def`` (its entry
            for 0, the background, is ignored). Every non-zero value in ``labels`` must be described;
            described values absent from the array become empty segments.
        path: output file (parent folders are created; nothing is left there on failure).
        segmentation_type: ``"BINARY"`` (1 bit per pixel, one frame per segment and slice) or ``"LABELMAP"``.
        keep_empty_frames: write frames without any segment pixels too (default, for viewer compatibility).
        series_number: SeriesNumber; default :func:`default_series_number` of the source series number.
        series_description: SeriesDescription (at most 64 characters).
        algorithm_name, algorithm_version: SegmentationAlgorithmIdentification (e.g. bundle name and version).
        content_creator_name: ContentCreatorName (PN), e.g. of the person running the tool; optional.
        label_context: anatomy for short channel names, e.g. ``"hippocampus"`` so that ``"anterior"`` becomes
            Hippocampus with modifier Anterior.
        tolerance_mm: largest allowed distance between the label grid and the source pixels.
        series_instance_uid, sop_instance_uid: UIDs to use instead of new random ones (tests, re-runs).

    Returns:
        :class:`WrittenSeg` with the new UIDs.

    Raises:
        OutputError: labels off the source grid, undescribed label values, BINARY segment numbers not 1..N,
            or the file cannot be written.
        InputError: a source file cannot be read or is not a cross-sectional image, or is a multi-frame image
            whose frames differ in pixel spacing or orientation (see :mod:`app.writing.seg_source`).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    path = Path(path)
    segmentation_type = _check_type(segmentation_type)
    if not 0 < len(series_description) <= 64:
        raise ValueError(f"series_description must have 1 to 64 characters, got {len(series_description)}")
    # A bundle's channel_def names the background too (0: "background"); it is not a segment.
    specs = resolve_segments({k: v for k, v in segments.items() if int(k) != 0}, context=label_context)
    lps = _as_3d_lps(labels)
    pixels = _check_label_values(lps.array, specs, segmentation_type, path)

    datasets = _load_source(source, path)
    frames = source_frames(datasets)
    keys = labels.dicom.slice_keys(lps.shape[2]) if labels.dicom is not None else None
    matched = match_slices(lps, frames, keys=keys, tolerance_mm=tolerance_mm, path=path)
    if len(frames) > len(matched):
        logger.info(
            "%s: %d of %d source frames lie under no label slice",
            path,
            len(frames) - len(matched),
            len(frames),
        )
    source_images, frame_array = _frames_in_source_order(pixels, matched, path)
    _check_one_series(source_images, labels.dicom, path)
    source_images = prepare_source_images(source_images, matched)

    src0 = source_images[0]
    if series_number is None:
        series_number = default_series_number(src0.get("SeriesNumber"))
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=codes.DCM.ArtificialIntelligence, version=algorithm_version
    )
    descriptions = [_segment_description(number, spec, algorithm) for number, spec in specs.items()]
    series_uid = series_instance_uid or hd.UID()
    sop_uid = sop_instance_uid or hd.UID()
    try:
        seg = hd.seg.Segmentation(
            source_images=source_images,
            pixel_array=frame_array,
            segmentation_type=segmentation_type,
            segment_descriptions=descriptions,
            series_instance_uid=series_uid,
            series_number=series_number,
            sop_instance_uid=sop_uid,
            instance_number=1,
            manufacturer="unetseg",
            manufacturer_model_name=algorithm_name,
            software_versions=f"unetseg {__version__}",
            device_serial_number="0",
            content_label=CONTENT_LABEL,
            content_description=series_description,
            content_creator_name=content_creator_name,
            omit_empty_frames=not keep_empty_frames,
            series_description=series_description,
            specific_character_set=_character_set(src0),
        )
    except (AttributeError, ValueError) as exc:
        # highdicom validates the source metadata and our arguments; name what it refused and the source.
        source_file = dataset_path(src0) or f"SOP instance {src0.SOPInstanceUID}"
        raise OutputError(path, f"highdicom cannot build the SEG from source {source_file}: {exc}") from exc

    with atomic_write(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    written = WrittenSeg(
        path=path,
        series_instance_uid=str(series_uid),
        sop_instance_uid=str(sop_uid),
        series_number=int(series_number),
        segmentation_type=segmentation_type,
        number_of_frames=int(seg.NumberOfFrames),
        segments={number: spec.label for number, spec in specs.items()},
        source_series_instance_uid=str(src0.SeriesInstanceUID),
        source_sop_instance_uids=tuple(frame.sop_instance_uid for frame in matched),
    )
    logger.info(
        "wrote %s SEG %s: %d frames, segments %s, series %d",
        segmentation_type,
        path,
        written.number_of_frames,
        written.segments,
        written.series_number,
    )
    return written


def _check_type(segmentation_type: str) -> SegmentationType:
    value = str(segmentation_type).upper()
    if value not in ("BINARY", "LABELMAP"):
        raise ValueError(f"segmentation_type must be 'BINARY' or 'LABELMAP', got {segmentation_type!r}")
    return value  # type: ignore[return-value]


def _as_3d_lps(labels: Volume) -> Volume:
    """The labels in LPS, with a 2D ``(i, j)`` map made a one-slice ``(i, j, 1)`` volume (same affine)."""
    lps = labels.in_space("LPS")
    if lps.ndim == 2:
        return replace(lps, array=lps.array[:, :, None])
    return lps


def _check_label_values(
    array: np.ndarray, specs: Mapping[int, SegmentSpec], segmentation_type: str, path: Path
) -> np.ndarray:
    """The label array as uint8/uint16, after checking that its values and ``specs`` fit together."""
    if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)):
        raise OutputError(path, f"a label map must have an integer or bool dtype, got {array.dtype}")
    if not specs:
        raise OutputError(path, "no segments described; give at least one label value and its name")
    numbers = np.array(sorted(specs), dtype=np.int64)
    if numbers[0] < 1 or numbers[-1] > 65535:
        raise OutputError(path, f"segment numbers must be 1..65535 (0 is background), got {numbers.tolist()}")
    if segmentation_type == "BINARY" and not np.array_equal(numbers, np.arange(1, len(numbers) + 1)):
        raise OutputError(
            path,
            f"a BINARY SEG needs segment numbers 1..N, got {numbers.tolist()}; "
            "use segmentation_type='LABELMAP' or renumber the labels",
        )
    present = np.unique(array)
    undescribed = sorted(set(present.tolist()) - set(numbers.tolist()) - {0})
    if undescribed:
        raise OutputError(
            path,
            f"label values {undescribed} occur in the label map but have no segment description "
            f"(described: {numbers.tolist()}); add them to the segments / channel_def",
        )
    dtype = np.uint8 if numbers[-1] <= 255 else np.uint16
    return array.astype(dtype, copy=False)


def _load_source(source: DicomSource | Sequence[Dataset | str | Path], path: Path) -> list[Dataset]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    from app.loading.dicom.fileformat import has_dicom_preamble, read_dataset

    if isinstance(source, DicomSource):
        source = source.files
    if source is None or isinstance(source, str | Path):
        raise TypeError(
            f"source must be a DicomSource or a sequence of datasets or file paths, not {type(source).__name__}"
        )
    datasets = []
    for item in source:
        if isinstance(item, pydicom.Dataset):
            datasets.append(item)
            continue
        try:
            raw = not has_dicom_preamble(Path(item))  # a raw data set, as the reader accepts
            datasets.append(read_dataset(Path(item), raw=raw, stop_before_pixels=True))
        except (InvalidDicomError, OSError) as exc:
            raise InputError(item, f"cannot read the source DICOM file: {exc}") from exc
    if not datasets:
        raise OutputError(path, "no source images given")
    for ds in datasets:
        for keyword in _REQUIRED_SOURCE_UIDS:
            if not str(ds.get(keyword, "") or "").strip():
                raise InputError(
                    dataset_path(ds),
                    f"source image has no {keyword} (an anonymiser may have blanked it); a SEG must reference "
                    "its source images by UID, so fix the UIDs in the source series first",
                )
    return datasets


def _frames_in_source_order(
    pixels: np.ndarray, matched: Sequence[SourceFrame], path: Path
) -> tuple[list[Dataset], np.ndarray]:
    """The source images and the ``(frames, rows, columns)`` array in the order highdicom pairs them."""
    multi = [frame for frame in matched if frame.frame_number is not None]
    if not multi:
        return [frame.dataset for frame in matched], np.ascontiguousarray(pixels.transpose(2, 1, 0))
    instances = {frame.sop_instance_uid for frame in matched}
    if len(multi) != len(matched) or len(instances) != 1:
        raise OutputError(
            path,
            "the label slices lie on several multi-frame images or on a mix of single- and multi-frame "
            "images; a SEG can be derived from one multi-frame image or from single-frame images",
        )
    dataset = matched[0].dataset
    array = np.zeros(
        (int(dataset.get("NumberOfFrames", 1)), int(dataset.Rows), int(dataset.Columns)), pixels.dtype
    )
    for k, frame in enumerate(matched):
        array[cast(int, frame.frame_number) - 1] = pixels[:, :, k].T  # set for every multi-frame source
    return [dataset], array


def _character_set(dataset: Dataset) -> str | list[str] | None:
    """The source's SpecificCharacterSet for the copied patient names, or ``None`` for the default repertoire.

    Real files often carry an empty value, which means the default repertoire and which highdicom refuses.
    """
    value = dataset.get("SpecificCharacterSet")
    if not value:
        return None
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else str(value)


def _check_one_series(source_images: Sequence[Dataset], dicom: DicomSource | None, path: Path) -> None:
    series = {str(ds.SeriesInstanceUID) for ds in source_images}
    if len(series) != 1:
        raise OutputError(
            path, f"the label slices lie on images of {len(series)} series; expected one series"
        )
    expected = dicom.series_instance_uid if dicom is not None else None
    if expected and str(expected) not in series:
        raise OutputError(
            path,
            f"the label volume comes from series {expected} but the source images are series {series.pop()}",
        )


def _segment_description(number: int, spec: SegmentSpec, algorithm: Any) -> Any:
    import highdicom as hd

    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=spec.label,
        segmented_property_category=spec.property_category,
        segmented_property_type=spec.property_type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    if spec.property_type_modifier is not None:
        # highdicom 0.28 has no argument for the modifier; it is a Type 3 item nested in the type code item.
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            hd.sr.CodedConcept.from_code(spec.property_type_modifier)
        ]
    return description
