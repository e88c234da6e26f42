"""The units of the distance and volume metrics of a run: :class:`Units`.

Contract: distances (HD, HD95, ASSD, the NSD tolerance) and volumes are computed from each reference's affine.
A NIfTI, NRRD or DICOM reference has a physical grid, so they are millimetres and millilitres. A PNG/TIFF picture
carries no physical spacing and is read at one unit per pixel (:mod:`app.loading.picture`), so the same numbers
are pixels and thousands of pixels (voxels of a multi-page stack). :func:`units_of` names them for the references
of a run; the metric keys (``hd95_mm``, ``volume_ref_ml``, ...) keep their names whatever the unit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.formats import file_kind

logger = logging.getLogger(__name__)

__all__ = ["PHYSICAL", "PIXELS", "Units", "units_of"]


@dataclass(frozen=True)
class Units:
    """How the distance and volume metrics of a run are to be read."""

    distance: str
    volume: str

    def as_dict(self) -> dict[str, str]:
        """The units as a provenance record stores them."""
        return {"distance": self.distance, "volume": self.volume}

    @classmethod
    def of_provenance(cls, provenance: Mapping[str, Any]) -> Units:
        """The units a provenance record names (``"units"``); physical when it names none (reports written before
        units were recorded)."""
        recorded = provenance.get("units")
        if isinstance(recorded, Mapping):
            return cls(distance=str(recorded["distance"]), volume=str(recorded["volume"]))
        return PHYSICAL


#: references with a physical grid (NIfTI, NRRD, DICOM)
PHYSICAL = Units(distance="mm", volume="mL")
#: PNG/TIFF references: one unit per pixel, volumes in thousands of pixels (voxels of a stack)
PIXELS = Units(distance="px", volume="1000 px")


def units_of(references: Iterable[Path]) -> Units:
    """:data:`PIXELS` when every reference is a PNG/TIFF picture, else :data:`PHYSICAL` (also for none). A mix is
    logged as a warning: its pictures' numbers are pixels reported as millimetres."""
    kinds = {file_kind(path) for path in references}
    if kinds == {"picture"}:
        return PIXELS
    if "picture" in kinds:
        logger.warning(
            "references mix PNG/TIFF pictures (no spacing: distances in pixels) with physical grids; the reports "
            "say mm and mL, which the pictures' numbers are not"
        )
    return PHYSICAL
