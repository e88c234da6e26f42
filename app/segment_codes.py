"""What a label value means, in DICOM coded terms: :class:`SegmentSpec` and the table of known channel names.

A DICOM SEG segment needs a SegmentLabel (free text) plus a Segmented Property Category (CID 7150) and
Type (CID 7151) as coded concepts. Bundles only give a channel name (``channel_def``, e.g.
``{1: "anterior", 2: "posterior"}``), so :func:`resolve_segment` maps names to codes with a small table.

Every code here is taken from pydicom's code dictionaries (``pydicom.sr.codedict.codes``) by keyword, never
typed in by hand, so a code that does not exist cannot slip in (the tests assert the values):

=====================================  ========================  =============================  ==============
name (lower case; ``_``/``-`` = space)  category (CID 7150)        type                           type modifier
=====================================  ========================  =============================  ==============
hippocampus                             Anatomical Structure       Hippocampus (SCT 5366008)
hippocampus anterior / anterior ...     Anatomical Structure       Hippocampus                    Anterior (CID 2)
hippocampus posterior / posterior ...   Anatomical Structure       Hippocampus                    Posterior (CID 2)
spleen, liver                           Anatomical Structure       Spleen / Liver
cell                                    Anatomical Structure       Cell (SCT 4421005, CID 8135)
=====================================  ========================  =============================  ==============

Short channel names need their anatomical *context*: ``resolve_segment("anterior", context="hippocampus")``
tries "hippocampus anterior" first. Without context, "anterior" alone is not anatomy and falls back.

**Fallback** for any other name (including "membrane": pydicom has no code for a cell membrane): category
Tissue (SCT 85756007) and type Tissue (SCT 85756007), the generic pair 3D Slicer uses for unnamed segments;
the channel name is kept in SegmentLabel, which is what viewers display.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.sr.coding import Code

logger = logging.getLogger(__name__)

#: SegmentLabel is an LO element: at most 64 characters.
MAX_LABEL_LENGTH = 64


@dataclass(frozen=True)
class SegmentSpec:
    """The meaning of one label value.

    Attributes:
        label: SegmentLabel shown by viewers (1..64 characters), e.g. the bundle's channel name.
        property_category: Segmented Property Category code (CID 7150), e.g. SCT "Anatomical Structure".
        property_type: Segmented Property Type code (CID 7151), e.g. SCT "Hippocampus".
        property_type_modifier: optional modifier of the type (e.g. SCT "Anterior", CID 2), or ``None``.
    """

    label: str
    property_category: Code
    property_type: Code
    property_type_modifier: Code | None = None

    def __post_init__(self) -> None:
        if not self.label or not self.label.strip():
            raise ValueError("SegmentSpec.label must not be empty")
        if len(self.label) > MAX_LABEL_LENGTH:
            raise ValueError(f"SegmentSpec.label {self.label!r} is longer than {MAX_LABEL_LENGTH} characters")


def normalize_name(name: str) -> str:
    """Lower case, ``_`` and ``-`` as spaces, single spaces: ``"Anterior_Hippocampus"`` -> ``"anterior hippocampus"``."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


#: normalized name -> SCT keywords of pydicom's code dictionary (category, type, type modifier)
_KNOWN: dict[str, tuple[str, str, str | None]] = {
    "hippocampus": ("AnatomicalStructure", "Hippocampus", None),
    "spleen": ("AnatomicalStructure", "Spleen", None),
    "liver": ("AnatomicalStructure", "Liver", None),
    "cell": ("AnatomicalStructure", "Cell", None),
    **{
        name: ("AnatomicalStructure", "Hippocampus", side.capitalize())
        for side in ("anterior", "posterior")
        for name in (f"hippocampus {side}", f"{side} hippocampus")
    },
}


def known_names() -> frozenset[str]:
    """The normalized names :func:`known_segments` knows, without loading pydicom's code dictionaries (about
    55 MB resident), for callers that only need the names."""
    return frozenset(_KNOWN)


@lru_cache(maxsize=1)
def known_segments() -> dict[str, tuple[Code, Code, Code | None]]:
    """The table of known names: normalized name -> (category, type, type modifier)."""
    from pydicom.sr.codedict import codes

    sct = codes.SCT
    return {
        name: (getattr(sct, category), getattr(sct, kind), getattr(sct, modifier) if modifier else None)
        for name, (category, kind, modifier) in _KNOWN.items()
    }


def fallback_codes() -> tuple[Code, Code]:
    """(category, type) for names not in the table: SCT Tissue / SCT Tissue."""
    from pydicom.sr.codedict import codes

    return codes.SCT.Tissue, codes.SCT.Tissue


def resolve_segment(name: str, *, context: str | None = None) -> SegmentSpec:
    """A :class:`SegmentSpec` for a channel name, using the table above or the documented fallback.

    Args:
        name: the channel name; kept verbatim as the SegmentLabel.
        context: anatomy the bundle segments (e.g. ``"hippocampus"``); tried as a prefix and as a suffix of
            ``name`` before ``name`` alone.
    """
    table = known_segments()
    key = normalize_name(name)
    candidates = [key]
    if context:
        ctx = normalize_name(context)
        candidates = [f"{ctx} {key}", f"{key} {ctx}", key]
    for candidate in candidates:
        if candidate in table:
            category, type_, modifier = table[candidate]
            return SegmentSpec(name, category, type_, modifier)
    category, type_ = fallback_codes()
    logger.info("segment %r: no coded concept known; using the generic Tissue/Tissue codes", name)
    return SegmentSpec(name, category, type_)


def resolve_segments(
    segments: Mapping[int, SegmentSpec | str], *, context: str | None = None
) -> dict[int, SegmentSpec]:
    """Resolve every string value of ``segments`` with :func:`resolve_segment`; keys sorted ascending."""
    return {
        int(value): spec if isinstance(spec, SegmentSpec) else resolve_segment(spec, context=context)
        for value, spec in sorted(segments.items())
    }
