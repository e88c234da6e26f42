"""app.evaluation.units: which unit a run's distances and volumes are in, from its reference files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.evaluation.units import PHYSICAL, PIXELS, Units, units_of


@pytest.mark.parametrize(
    ("references", "expected"),
    [
        (["a.png", "b.PNG", "c.tif", "d.tiff"], PIXELS),  # pictures only: no spacing, one unit per pixel
        (["a.nii.gz", "b.nrrd"], PHYSICAL),
        (["a.png", "b.nii.gz"], PHYSICAL),  # a mix: the physical grid names the unit
        (["series/IM0001.dcm"], PHYSICAL),
        ([], PHYSICAL),
    ],
)
def test_units_follow_the_reference_files(references, expected):
    assert units_of(Path(r) for r in references) == expected


def test_units_round_trip_through_a_provenance_record():
    assert PIXELS.as_dict() == {"distance": "px", "volume": "1000 px"}
    assert Units.of_provenance({"units": PIXELS.as_dict()}) == PIXELS
    assert Units.of_provenance({"tolerance_mm": 1.0}) == PHYSICAL  # written before units were recorded
