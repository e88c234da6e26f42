"""Whether a file is DICOM, and whether it is complete: the checks pydicom's parser does not make.

* :func:`is_dicom_file`: a DICOM Part 10 file (128-byte preamble, then ``DICM``), or a raw data set without
  them, as old PACS exports and ACR-NEMA-style archives hold. A raw data set is recognised as dcmtk and GDCM do,
  by its first element: a little-endian tag of group 0x0002 (file meta) or 0x0008 (identification, where every
  image data set starts), followed by a valid explicit VR or an implicit length that fits in the file. Text,
  pictures and archives fail this test; they are not DICOM.
* :func:`read_dataset`: ``pydicom.dcmread`` for both kinds (``force=True`` only for a raw data set, which has no
  file meta: its TransferSyntaxUID is then set from the encoding pydicom detected, so pixels decode).
* :func:`find_truncation`: pydicom stops silently at the end of a file, even inside an element (a value shorter
  than its length, a tag cut in half), so a file cut short by an interrupted copy parses as a shorter header.
  This walks the file's top-level elements (values skipped, not read) and says where the file ends inside one.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import data_element_generator, read_file_meta_info, read_preamble
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

logger = logging.getLogger(__name__)

_PREAMBLE_LENGTH = 128
#: groups a raw data set may start with: file meta, identification
_FIRST_GROUPS = frozenset({0x0002, 0x0008})
#: the two-letter value representations of DICOM PS3.5 (explicit VR)
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
#: Pixel Data, Float Pixel Data and Double Float Pixel Data, where ``stop_before_pixels`` stops
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_UNDEFINED_LENGTH = 0xFFFFFFFF


#: the two forms of a DICOM file: Part 10 (preamble, ``DICM``, file meta) and a raw data set (module docstring)
DicomForm = Literal["part10", "raw"]


def dicom_form(path: Path) -> DicomForm | None:
    """The form of the file ``path`` (:func:`form_of`), ``None`` when it is not DICOM or cannot be opened."""
    try:
        with open(path, "rb") as fh:
            return form_of(fh)
    except OSError as exc:
        logger.debug("cannot open %s: %s", path, exc)
        return None


def form_of(fh: BinaryIO) -> DicomForm | None:
    """The form of the open file ``fh`` from its first 132 bytes, ``None`` when it is neither; ``fh`` is left at
    its start, so the caller parses it without opening it again."""
    head = fh.read(_PREAMBLE_LENGTH + 4)
    size = os.fstat(fh.fileno()).st_size
    fh.seek(0)
    if len(head) == _PREAMBLE_LENGTH + 4 and head[_PREAMBLE_LENGTH:] == b"DICM":
        return "part10"
    if len(head) < 8:
        return None
    group, _element = struct.unpack("<HH", head[:4])
    if group not in _FIRST_GROUPS:
        return None
    if head[4:6] in _VRS:  # explicit VR
        return "raw"
    (length,) = struct.unpack("<I", head[4:8])  # implicit VR: a 4-byte length
    return "raw" if length == _UNDEFINED_LENGTH or length <= size - 8 else None


def has_dicom_preamble(path: Path) -> bool:
    """True when ``path`` is a DICOM Part 10 file (128-byte preamble then ``DICM``)."""
    return dicom_form(path) == "part10"


def is_dicom_file(path: Path) -> bool:
    """True for a Part 10 file or a raw DICOM data set (module docstring); ``False`` for anything else."""
    return dicom_form(path) is not None


def read_dataset(source: Path | BinaryIO, *, raw: bool, **kwargs: Any) -> Dataset:
    """``pydicom.dcmread(source, **kwargs)``; for a raw data set (``raw``) with ``force=True`` and the file meta's
    TransferSyntaxUID set from the encoding pydicom detected (implicit or explicit VR, little or big endian)."""
    ds = pydicom.dcmread(source, force=raw, **kwargs)
    if raw and "TransferSyntaxUID" not in (getattr(ds, "file_meta", None) or Dataset()):
        implicit, little = ds.original_encoding
        if "file_meta" not in ds.__dict__ or ds.file_meta is None:
            ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    return ds


def dataset_encoding(path: Path) -> tuple[bool, bool]:
    """``(implicit VR, little endian)`` of the data set from the file meta's TransferSyntaxUID, for a file whose
    data set pydicom could not parse; explicit VR little endian (the usual) when the meta cannot tell."""
    try:
        syntax = read_file_meta_info(path).get("TransferSyntaxUID")
    except Exception:  # noqa: BLE001 - no or broken file meta: the usual encoding is the best guess
        return False, True
    if syntax is None or not syntax.is_transfer_syntax:
        return False, True
    return bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)


@dataclass(frozen=True)
class Truncation:
    """Where a file ends inside an element: ``tag`` the top-level element it cuts (the last complete one when the
    cut falls in the next element's tag), ``size`` the file's length in bytes."""

    tag: int
    in_value: bool
    size: int

    @property
    def reason(self) -> str:
        name = keyword_for_tag(self.tag) or "private element"
        where = f"inside element ({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) {name}"
        if not self.in_value:
            where = (
                f"inside the tag of the element after ({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) {name}"
            )
        return (
            f"the file is truncated: it ends at byte {self.size}, {where}, before the pixel data (an interrupted "
            "copy or transfer); copy or export it again"
        )


def find_truncation(fh: BinaryIO, encoding: tuple[bool, bool]) -> Truncation | None:
    """Where the file ``fh`` ends inside a top-level element, or ``None`` when its elements end exactly at its end.

    Call it for a file whose parse reached the end without meeting Pixel Data (a complete file then holds no
    image, e.g. a structured report), or whose parse failed. ``encoding`` is ``(implicit VR, little endian)`` of
    the data set as pydicom detected it (``Dataset.original_encoding``); the file meta group is always explicit
    VR little endian. Values are skipped (``defer_size=0``), not read. A parser error at the end of the file (a
    cut length field or sequence item) is a truncation too; one before the end is other damage: ``None``.
    """
    size = os.fstat(fh.fileno()).st_size
    walk = _Walk(size)
    fh.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's complaints about what the cut left are the point here
        try:
            read_preamble(fh, True)
            meta = data_element_generator(
                fh, False, True, stop_when=lambda tag, vr, length: tag.group != 2, defer_size=0
            )
            body = data_element_generator(fh, encoding[0], encoding[1], defer_size=0)
            cut = walk.follow(meta, fh) or walk.follow(body, fh)
        except Exception:  # noqa: BLE001 - pydicom's errors have no common base (see read_header)
            logger.debug("walk of %s failed", getattr(fh, "name", "file"), exc_info=True)
            return Truncation(walk.last_tag, True, size) if fh.tell() >= size else None
    if cut is not None:
        return cut
    return Truncation(walk.last_tag, False, size) if walk.last_end < size else None


class _Walk:
    """The last complete top-level element met while following pydicom's element generators."""

    def __init__(self, size: int):
        self.size = size
        self.last_tag = 0
        self.last_end = 0

    def follow(self, elements: Iterable[Any], fh: BinaryIO) -> Truncation | None:
        """The first element that ends beyond the file (a value seeked over past its end), else ``None``."""
        for element in elements:
            tag = int(element.tag)
            end = fh.tell() if tag not in _PIXEL_TAGS else self.size
            if end > self.size:
                return Truncation(tag, True, self.size)
            self.last_tag, self.last_end = tag, end
        return None
