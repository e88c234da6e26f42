"""Read the header of one DICOM file into a small, typed record (no pixels, no patient identifiers).

:func:`read_header` parses only the attributes the loader needs (``specific_tags``, ``stop_before_pixels``), so
patient names and IDs are never read, and a header costs well under a millisecond. Each file becomes an
:class:`InstanceHeader` with one :class:`FrameGeometry` per frame: a classic single-frame image has one frame
(``frame_number=None``); an enhanced multi-frame image has ``NumberOfFrames`` frames (1-based
``frame_number``) whose geometry and rescale come from the per-frame functional groups, then the shared ones,
then the top-level attributes.

Units: positions and spacings in mm, DICOM patient coordinates (LPS).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from pydicom.dataset import Dataset

from app.errors import InputError
from app.loading.dicom.fileformat import (
    Truncation,
    dataset_encoding,
    find_truncation,
    form_of,
    read_dataset,
)

logger = logging.getLogger(__name__)

#: the attributes read from every file (patient identifiers deliberately absent)
HEADER_KEYWORDS: tuple[str, ...] = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "InstanceNumber",
    "AcquisitionNumber",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "GantryDetectorTilt",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)

#: more frames than this in one file is treated as a corrupt header (checked before building per-frame records)
MAX_FRAMES = 100_000


@dataclass(frozen=True)
class FrameGeometry:
    """Geometry and rescale of one 2D image (a classic instance, or one frame of a multi-frame instance).

    ``position``: ImagePositionPatient (centre of the first transmitted pixel, mm, LPS); ``orientation``:
    ImageOrientationPatient (row cosine then column cosine); ``pixel_spacing``: PixelSpacing as stored,
    ``(row spacing, column spacing)`` = (step along ``j``, step along ``i``). ``None`` where absent; values that
    do not parse are NaN.
    """

    frame_number: int | None
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    rescale_slope: float
    rescale_intercept: float


@dataclass(frozen=True)
class InstanceHeader:
    """What the loader knows about one DICOM file before reading its pixels.

    UIDs are ``""`` where the file has none (anonymisers blank them); ``sop_class_uid`` and
    ``sop_instance_uid`` fall back to the file meta (MediaStorage...) values.
    ``attributes`` holds the string values of extra keywords asked for (series filters).
    ``truncated``: why the file is incomplete (it ends inside an element before its pixel data), ``None`` for a
    complete header; the attributes before the cut are kept, the element it cuts is dropped.
    ``raw``: the file has no Part 10 preamble (a raw data set, read with ``force=True``).
    """

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    acquisition_number: int | None
    image_type: tuple[str, ...]
    transfer_syntax_uid: str
    rows: int | None
    columns: int | None
    samples_per_pixel: int
    photometric_interpretation: str
    bits_allocated: int | None
    bits_stored: int | None
    pixel_representation: int
    number_of_frames: int
    gantry_tilt: float | None
    frames: tuple[FrameGeometry, ...]
    attributes: Mapping[str, str] = field(default_factory=dict)
    truncated: str | None = None
    raw: bool = False

    @property
    def is_multiframe(self) -> bool:
        return self.frames[0].frame_number is not None


def read_header(path: str | Path, extra_keywords: Sequence[str] = ()) -> InstanceHeader:
    """Parse the header of the DICOM file ``path`` (no pixel data), a Part 10 file or a raw data set.

    Any exception pydicom raises while parsing (``InvalidDicomError``, ``NotImplementedError`` for a VR that bit
    rot made unknown, ``BytesLengthException``, ``zlib.error`` from a deflated file that is not, ``MemoryError``
    from an absurd element length, ...) makes the file unreadable: pydicom's own errors have no common base
    class, and a header that cannot be parsed is an input problem whatever the parser trips over. Values are
    converted inside that guard (pydicom converts elements lazily, on first access), so building the record
    afterwards works on plain values.

    pydicom stops silently at the end of a file, so a file cut before its pixel data would parse as a shorter
    header; when the parse does not stop at Pixel Data, :func:`~app.loading.dicom.fileformat.find_truncation`
    checks where the file ends, and a cut file gets ``truncated`` (its parse error, if any, reads as truncation).

    Args:
        path: a DICOM Part 10 file, or a raw data set (no preamble).
        extra_keywords: further DICOM keywords whose values to keep in ``attributes`` (as strings).

    Raises:
        InputError: the file is not DICOM or its header cannot be parsed; the reason names the exception.
    """
    path = Path(path)
    keywords = list(dict.fromkeys((*HEADER_KEYWORDS, *extra_keywords)))
    cut: Truncation | None = None
    try:
        with open(path, "rb") as fh:
            form = form_of(fh)  # neither form: pydicom refuses it as not DICOM
            raw = form == "raw"
            try:
                ds = read_dataset(fh, raw=raw, stop_before_pixels=True, specific_tags=keywords)
            except Exception:
                cut = find_truncation(fh, dataset_encoding(path)) if form is not None else None
                if cut is None:
                    raise
                ds = Dataset()  # nothing usable: only the path and the truncation are known
            if cut is None and not _at_pixel_data(fh):
                implicit, little = ds.original_encoding
                cut = find_truncation(fh, (bool(implicit), little is not False))
            for dataset in (getattr(ds, "file_meta", None), ds):
                if cut is not None and dataset is not None and cut.tag in dataset:
                    del dataset[cut.tag]  # its value is cut short (a UID would make a series of its own)
        for dataset in (getattr(ds, "file_meta", None), ds):
            if dataset is not None:  # convert every element (and sequence item) now
                dataset.walk(lambda _, element: element.value)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is an unreadable header (docstring)
        logger.debug("%s: header parse failed", path, exc_info=True)
        text = (str(exc).strip().splitlines() or [""])[0]  # pydicom appends whole tracebacks to some messages
        raise InputError(
            path,
            f"cannot read the DICOM header ({type(exc).__name__}: {text}); the file is corrupt or not DICOM",
        ) from exc
    header = header_from_dataset(ds, path, extra_keywords)
    return replace(header, truncated=cut.reason if cut else None, raw=raw)


def _at_pixel_data(fh: BinaryIO) -> bool:
    """Whether a parse with ``stop_before_pixels`` stopped before the end of ``fh`` (at Pixel Data), rather than
    running out of file (pydicom seeks over skipped values, so a cut file can leave it past the end)."""
    return fh.tell() < os.fstat(fh.fileno()).st_size


def header_from_dataset(ds: Dataset, path: Path, extra_keywords: Sequence[str] = ()) -> InstanceHeader:
    """Build an :class:`InstanceHeader` from an already parsed dataset (see :func:`read_header`).

    Raises:
        InputError: NumberOfFrames out of range, or a functional groups attribute that is not a sequence.
    """
    meta = getattr(ds, "file_meta", None) or Dataset()
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    per_frame = _sequence(ds, "PerFrameFunctionalGroupsSequence", path)
    if not 0 < n_frames <= MAX_FRAMES:
        raise InputError(path, f"NumberOfFrames {n_frames} is outside 1..{MAX_FRAMES}")
    if per_frame is not None and len(per_frame) != n_frames:
        raise InputError(
            path,
            f"NumberOfFrames {n_frames} but {len(per_frame)} PerFrameFunctionalGroupsSequence items",
        )
    return InstanceHeader(
        path=path,
        sop_class_uid=_str(ds.get("SOPClassUID")) or _str(meta.get("MediaStorageSOPClassUID")),
        sop_instance_uid=_str(ds.get("SOPInstanceUID")) or _str(meta.get("MediaStorageSOPInstanceUID")),
        study_instance_uid=_str(ds.get("StudyInstanceUID")),
        series_instance_uid=_str(ds.get("SeriesInstanceUID")),
        frame_of_reference_uid=_str(ds.get("FrameOfReferenceUID")),
        modality=_str(ds.get("Modality")).upper(),
        series_number=_int(ds.get("SeriesNumber")),
        series_description=_str(ds.get("SeriesDescription")),
        instance_number=_int(ds.get("InstanceNumber")),
        acquisition_number=_int(ds.get("AcquisitionNumber")),
        image_type=tuple(str(v).strip().upper() for v in _multi(ds.get("ImageType"))),
        transfer_syntax_uid=_str(meta.get("TransferSyntaxUID")),
        rows=_int(ds.get("Rows")),
        columns=_int(ds.get("Columns")),
        samples_per_pixel=_int(ds.get("SamplesPerPixel")) or 1,
        photometric_interpretation=_str(ds.get("PhotometricInterpretation")).upper(),
        bits_allocated=_int(ds.get("BitsAllocated")),
        bits_stored=_int(ds.get("BitsStored")),
        pixel_representation=_int(ds.get("PixelRepresentation")) or 0,
        number_of_frames=n_frames,
        gantry_tilt=_float(ds.get("GantryDetectorTilt")),
        frames=_frames(ds, n_frames, path),
        attributes={kw: _attribute_text(ds.get(kw)) for kw in extra_keywords},
    )


def _sequence(ds: Dataset, keyword: str, path: Path) -> Sequence[Dataset] | None:
    """The sequence ``keyword`` of ``ds`` (``None`` if absent); refused when its value is not a sequence of items."""
    value = ds.get(keyword)
    if value is None:
        return None
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise InputError(path, f"{keyword} is not a sequence (VR {ds[keyword].VR}); the header is corrupt")
    if not all(isinstance(item, Dataset) for item in value):
        raise InputError(path, f"{keyword} holds items that are not datasets; the header is corrupt")
    return value


def _frames(ds: Dataset, n_frames: int, path: Path) -> tuple[FrameGeometry, ...]:
    per_frame = _sequence(ds, "PerFrameFunctionalGroupsSequence", path)
    shared_seq = _sequence(ds, "SharedFunctionalGroupsSequence", path)
    shared = shared_seq[0] if shared_seq else None
    if per_frame is None and shared is None:
        # classic image; a classic multi-frame image has no per-frame geometry: its frames have no position
        top = _frame_from(None, None, ds, frame_number=None, path=path)
        if n_frames == 1:
            return (top,)
        return tuple(replace(top, frame_number=i + 1, position=None) for i in range(n_frames))
    items = list(per_frame) if per_frame is not None else [None] * n_frames
    return tuple(_frame_from(item, shared, ds, frame_number=i + 1, path=path) for i, item in enumerate(items))


def _frame_from(
    item: Dataset | None, shared: Dataset | None, top: Dataset, frame_number: int | None, path: Path
) -> FrameGeometry:
    def lookup(sequence: str, keyword: str) -> Any:
        for group in (item, shared):
            items = _sequence(group, sequence, path) if group is not None else None
            if items:
                value = items[0].get(keyword)
                if value is not None:
                    return value
        return top.get(keyword)

    slope = _float(lookup("PixelValueTransformationSequence", "RescaleSlope"))
    intercept = _float(lookup("PixelValueTransformationSequence", "RescaleIntercept"))
    return FrameGeometry(
        frame_number=frame_number,
        position=_floats(lookup("PlanePositionSequence", "ImagePositionPatient")),
        orientation=_floats(lookup("PlaneOrientationSequence", "ImageOrientationPatient")),
        pixel_spacing=_floats(lookup("PixelMeasuresSequence", "PixelSpacing")),
        slice_thickness=_float(lookup("PixelMeasuresSequence", "SliceThickness")),
        spacing_between_slices=_float(lookup("PixelMeasuresSequence", "SpacingBetweenSlices")),
        rescale_slope=1.0 if slope is None else slope,
        rescale_intercept=0.0 if intercept is None else intercept,
    )


def _multi(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _floats(value: Any) -> tuple[float, ...] | None:
    values = _multi(value)
    return tuple(_to_float(v) for v in values) if values else None


def _float(value: Any) -> float | None:
    values = _multi(value)
    return _to_float(values[0]) if values else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and math.isfinite(number) else None


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _attribute_text(value: Any) -> str:
    """A filterable text for any attribute value: multi-values joined with backslash, as DICOM stores them."""
    return "\\".join(_str(v) for v in _multi(value))
