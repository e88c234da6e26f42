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


def test_a_mix_of_pictures_and_physical_grids_is_logged(caplog):
    with caplog.at_level("WARNING", logger="app.evaluation.units"):
        assert units_of([Path("a.png"), Path("b.nii.gz")]) == PHYSICAL
    assert "mix PNG/TIFF pictures" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="app.evaluation.units"):
        units_of([Path("a.png"), Path("b.tif")])
    assert not caplog.text


@pytest.mark.parametrize(("name", "expected"), [("a.png", PIXELS), ("a.nii.gz", PHYSICAL)])
def test_the_ignite_report_handler_takes_the_units_from_the_label_files(tmp_path, name, expected):
    """SegmentationReportHandler holds its cases in memory: the label's source file decides the units."""
    import json
    from types import SimpleNamespace

    import torch
    from monai.data import MetaTensor

    from app.engines.evaluation.report_handler import SegmentationReportHandler

    handler = SegmentationReportHandler(tmp_path / "out", labels={1: "cell"}, spatial_dims=2, worst=0)
    label = torch.zeros(1, 16, 16)
    label[0, 4:8, 4:8] = 1
    source = {"filename_or_obj": f"/data/{name}"}
    item = {
        "pred": MetaTensor(label.clone(), meta=dict(source)),
        "label": MetaTensor(label, meta=dict(source)),
    }
    engine = SimpleNamespace(state=SimpleNamespace(output=[item]))
    handler._reset(engine)
    handler._collect(engine)
    handler._write(engine)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["provenance"]["units"] == expected.as_dict()
    assert f"HD95 ({expected.distance})" in (tmp_path / "out" / "report.html").read_text()
