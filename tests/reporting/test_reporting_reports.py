"""Report files: CSV/JSON contents, HTML escaping and self-containment, atomic writes, overlay slices."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.errors import OutputError
from app.evaluation import evaluate_case, summarise
from app.evaluation.result import CaseFailure
from app.reporting import CaseVolumes, build_provenance, write_reports
from app.reporting.atomic import write_atomic
from app.reporting.figures import _busiest, _evaluated, distribution_png, overlay_png
from app.reporting.tables import COLUMNS
from app.volume import Volume


def case(shift: int, name: str = "case", spacing=(1.0, 1.0, 2.0)):
    ref = np.zeros((16, 14, 10), np.uint8)
    ref[3:9, 3:10, 2:8] = 1
    ref[9:13, 3:10, 2:8] = 2
    pred = np.roll(ref, shift, axis=0)
    affine = np.diag([*spacing, 1.0])
    return Volume(pred, affine, source=f"{name}_seg.nii.gz"), Volume(ref, affine, source=f"{name}.nii.gz")


@pytest.fixture
def run():
    labels = {1: "front <a>", 2: "back & side"}
    volumes, results = {}, []
    for shift, cid in ((0, "perfect"), (1, "shifted"), (3, "worse")):
        pred, ref = case(shift, cid)
        volumes[cid] = CaseVolumes(ref=ref, pred=pred)
        results += evaluate_case(pred, ref, labels, case_id=cid)
    return results, volumes


def test_write_reports_files(tmp_path, run):
    results, volumes = run
    failures = [CaseFailure("gone", "no_prediction", "no prediction file for this reference")]
    unused = [(Path("/p/stray.nii.gz"), "no reference with this case id")]
    provenance = build_provenance(
        inputs={"pred": "/p", "ref": "/r"},
        tolerance_mm=1.0,
        labels={1: "front <a>", 2: "back & side"},
        now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    paths = write_reports(
        results,
        tmp_path / "new" / "out",
        provenance=provenance,
        volumes=volumes,
        failures=failures,
        unused=unused,
        worst=2,
    )

    rows = list(csv.DictReader(paths.metrics_csv.open()))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 6
    assert [(r["case_id"], r["label"]) for r in rows][:2] == [("perfect", "1"), ("perfect", "2")]

    summary = json.loads(paths.summary_json.read_text())
    assert (
        summary["labels"]["front <a>"]["metrics"]["dice"]
        == summarise(results).to_dict()["labels"]["front <a>"]["metrics"]["dice"]
    )
    assert summary["failures"][0]["case_id"] == "gone"
    assert summary["unused_files"][0]["path"] == "/p/stray.nii.gz"
    assert summary["provenance"]["timestamp"] == "2025-01-02T03:04:05+00:00"
    assert "hd95_mm" in summary["provenance"]["definitions"]

    html = paths.report_html.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "front &lt;a&gt;" in html and "back &amp; side" in html and "<a>" not in html
    assert html.count("<h3>") == 2  # the two worst cases: worse, then shifted
    assert html.index("<h3>worse") < html.index("<h3>shifted")
    assert "<h3>perfect" not in html
    assert "<script" not in html and 'src="http' not in html


def test_report_html_shows_the_first_unused_files_and_counts_the_rest(tmp_path, run):
    from app.reporting.html import UNUSED_ROWS

    results, volumes = run
    unused = [
        (Path(f"/p/stray_{i:03d}.nii.gz"), "no reference with this case id") for i in range(UNUSED_ROWS + 5)
    ]
    provenance = build_provenance(
        inputs={"pred": "/p", "ref": "/r"}, tolerance_mm=1.0, labels={1: "a", 2: "b"}
    )
    paths = write_reports(results, tmp_path, provenance=provenance, volumes=volumes, unused=unused, worst=0)
    html = paths.report_html.read_text()
    assert f"stray_{UNUSED_ROWS - 1:03d}" in html and f"stray_{UNUSED_ROWS:03d}" not in html
    assert "5 more files" in html
    assert len(json.loads(paths.summary_json.read_text())["unused_files"]) == UNUSED_ROWS + 5


def test_overlay_and_distribution_pictures_are_pngs(run):
    results, volumes = run
    for png in (
        distribution_png(results, "dice", "Dice"),
        distribution_png(results, "hd95_mm", "HD95"),
        overlay_png(volumes["worse"].ref, volumes["worse"].pred, {1: "a", 2: "b"}, title="worse"),
    ):
        picture = Image.open(io.BytesIO(png))
        assert picture.format == "PNG" and picture.size[0] > 200


def test_overlay_of_2d_image_and_missing_prediction():
    ref = np.zeros((30, 20), np.uint8)
    ref[5:15, 5:12] = 1
    image = Volume(np.random.default_rng(0).random((30, 20)), np.eye(4))
    png = overlay_png(Volume(ref, np.eye(4)), None, {1: "x"}, image=image)
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_busiest_slice_is_the_one_with_most_disagreement():
    differ = np.zeros((5, 6, 7), bool)
    differ[1, 2, 3] = True
    differ[4, 2, 3:6] = True
    foreground = np.ones_like(differ)
    assert _busiest(differ, foreground, 0) == 4
    assert _busiest(differ, foreground, 1) == 2
    assert _busiest(differ, foreground, 2) in (3, 4, 5)
    assert _busiest(np.zeros_like(differ), np.zeros_like(differ), 2) == 3  # nothing: the middle


def test_unevaluated_values_compare_equal_across_dtypes():
    # a uint8 prediction and an int32 reference: background must not differ (no -1 -> 255 wrap-around)
    pred = _evaluated(np.array([0, 1, 2, 3], np.uint8), {1: "a", 2: "b"})
    ref = _evaluated(np.array([0, 1, 2, 7], np.int32), {1: "a", 2: "b"})
    np.testing.assert_array_equal(pred, [-1, 1, 2, -1])
    np.testing.assert_array_equal(pred, ref)


def test_distance_plot_keeps_worst_cases_visible(make_missed_results):
    png = distribution_png(make_missed_results, "hd95_mm", "HD95")
    assert Image.open(io.BytesIO(png)).format == "PNG"


@pytest.fixture
def make_missed_results():
    pred, ref = case(1)
    results = evaluate_case(pred, ref, {1: "a", 2: "b"}, case_id="c1")
    empty = pred.with_array(np.zeros_like(pred.array))
    return results + evaluate_case(empty, ref, {1: "a", 2: "b"}, case_id="c2")


def test_write_atomic_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "f.txt"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_text() == "two"
    assert os.listdir(tmp_path) == ["f.txt"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(OutputError):
        write_atomic(blocker / "f.txt", "x")
    assert sorted(os.listdir(tmp_path)) == ["f.txt", "not-a-folder"]


def test_unwritable_output_folder_is_an_output_error(tmp_path, run):
    results, _ = run
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError):
        write_reports(results, blocker / "out")


def test_provenance_versions_without_importing_torch():
    provenance = build_provenance(inputs={"paths": [Path("/a")]}, tolerance_mm=2.0)
    assert provenance["inputs"]["paths"] == ["/a"]
    assert provenance["versions"]["monai"] != "not installed"
    assert provenance["tolerance_mm"] == 2.0
    json.dumps(provenance)


def test_picture_units_reach_the_figure_the_tables_and_the_policy_note(tmp_path, run, monkeypatch):
    """A run of PNG/TIFF references (units px): the HD95 figure, the table headings and a note by the policy say
    pixels; a physical run shows no note."""
    import app.reporting.figures as figures
    from app.evaluation.units import PIXELS

    seen = []
    real = figures.distribution_png

    def spy(results, metric, title, *, unit="mm"):
        seen.append((metric, title, unit))
        return real(results, metric, title, unit=unit)

    monkeypatch.setattr(figures, "distribution_png", spy)
    results, _ = run
    provenance = build_provenance(inputs={}, tolerance_mm=1.0, units=PIXELS)
    html = write_reports(results, tmp_path / "px", provenance=provenance, worst=0).report_html.read_text()
    assert ("hd95_mm", "HD95 per label (px)", "px") in seen
    assert "HD95 (px)" in html and "Vol ref (1000 px)" in html and "read mm as px" in html
    assert "HD95 (mm)" not in html and "NSD tolerance 1 px" in html
    physical = write_reports(results, tmp_path / "mm", worst=0).report_html.read_text()
    assert "HD95 (mm)" in physical and "read mm as" not in physical


def test_run_page_summary_table_takes_the_units_it_is_given(run):
    from app.evaluation.units import PIXELS
    from app.reporting.run_html import render_run_html

    results, _ = run
    page = render_run_html({"cases": []}, {}, evaluation_summary=summarise(results), evaluation_units=PIXELS)
    assert "HD95 (px)" in page and "HD95 (mm)" not in page
