"""An infer run leaves what a person needs without a reference: statistics.json and preview.png per case, the
statistics and flags in report.json/report.csv, and report.html with the flagged cases first and their
previews embedded. Real bundle, real demo cases, one copy of a case in units far from the training images
(flagged), one file that is not an image (failed)."""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.batch import BatchConfig, run_batch
from app.batch.rebuild import rebuild_report
from app.evaluation.statistics import CaseStatistics


class _Page(HTMLParser):
    """The case table's rows (cell texts) and every embedded image."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self.headings: list[str] = []
        self._in_cases = self._in_cell = self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "cases":
            self._in_cases = True
        elif tag == "tr" and self._in_cases:
            self.rows.append([])
        elif tag in ("td", "th") and self._in_cases:
            self._in_cell = True
            if self.rows:
                self.rows[-1].append("")
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_cases = False
        elif tag in ("td", "th"):
            self._in_cell = False
        elif tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_cell and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data
        if self._in_h2:
            self.headings[-1] += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def inputs(demo_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("qa_inputs")
    images = demo_data / "hippocampus" / "images"
    for name in ("hippocampus_008.nii.gz", "hippocampus_035.nii.gz"):
        shutil.copyfile(images / name, root / name)
    source = nib.load(images / "hippocampus_035.nii.gz")
    scaled = np.asarray(source.dataobj, dtype=np.float32) * 1e4  # same anatomy, units far from training
    nib.save(nib.Nifti1Image(scaled, source.affine), root / "scaled_035.nii.gz")
    (root / "broken.nii.gz").write_text("not an image\n")
    return root


@pytest.fixture(scope="module")
def run(real_bundle, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa_out")
    result = run_batch(BatchConfig(inputs=(inputs,), bundle=real_bundle, out=out, device="cpu"))
    return result, out


def test_each_finished_case_has_statistics_and_preview(run):
    result, out = run
    ok = [r for r in result.records if r.status == "ok"]
    assert len(ok) == 3
    for record in ok:
        kinds = {o.kind for o in record.outputs}
        assert {"nifti", "statistics", "preview"} <= kinds
        on_disk = json.loads((out / record.case_id / "statistics.json").read_text())
        assert CaseStatistics.from_dict(on_disk) == record.statistics
        anterior = record.statistics.label("anterior")
        assert 0.5 < anterior.volume_ml < 5  # a hippocampus head, not noise
        assert (out / record.case_id / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "qa" in record.timings_s


def test_the_case_in_foreign_units_is_flagged_and_warned(run):
    result, _ = run
    by_id = {r.case_id: r for r in result.records}
    scaled = by_id["scaled_035"]
    assert {f.code for f in scaled.statistics.flags} == {"intensity"}
    assert any("image intensity far from the training images" in w for w in scaled.warnings)
    for clean in ("hippocampus_008", "hippocampus_035"):
        assert by_id[clean].statistics.flags == () and by_id[clean].warnings == []


def test_report_csv_has_the_statistics_columns(run):
    _, out = run
    with open(out / "report.csv", newline="") as handle:
        rows = {row["case_id"]: row for row in csv.DictReader(handle)}
    assert len(rows) == 4
    assert float(rows["hippocampus_035"]["anterior_volume_ml"]) > 0.5
    assert rows["hippocampus_035"]["anterior_centroid_ras_x_mm"] != ""
    assert rows["broken"]["anterior_volume_ml"] == ""  # a failed first-or-later case leaves its cells empty
    assert "mean intensity" in rows["scaled_035"]["flags"]


def test_report_html_lists_flagged_cases_first_with_previews(run):
    result, out = run
    assert result.report_html == out / "report.html"
    page = _parse(out / "report.html")
    header, *rows = page.rows
    assert header[:5] == ["case", "source", "status", "reason", "flags"]
    assert "anterior volume (mL)" in header
    assert [r[0] for r in rows][0] == "scaled_035"  # flagged first
    assert {r[0] for r in rows} == {"scaled_035", "hippocampus_008", "hippocampus_035", "broken"}
    assert [r[2] for r in rows][-1] == "failed"
    assert {r[0]: r[1] for r in rows}["broken"] == "broken.nii.gz"  # the input relative to INPUT
    volumes = {r[0]: r[header.index("anterior volume (mL)")] for r in rows}
    report = json.loads((out / "report.json").read_text())
    stats = {c["case_id"]: c["statistics"] for c in report["cases"]}
    assert float(volumes["hippocampus_008"]) == pytest.approx(
        stats["hippocampus_008"]["labels"][0]["volume_ml"], rel=1e-3
    )
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert page.headings[:2] == ["Cases", "Flagged cases"]
    assert "Failed cases" in page.headings
    assert "broken.nii.gz" in (out / "report.html").read_text()
    assert "http" not in (out / "report.html").read_text().replace("http://", "").replace("https://", "")


def test_report_rebuilt_from_out_keeps_statistics_and_the_page(run):
    _, out = run
    (out / "report.html").unlink()
    rebuilt = rebuild_report(out)
    cases = {c["case_id"]: c for c in rebuilt.report["cases"]}
    assert cases["scaled_035"]["statistics"]["flags"][0]["code"] == "intensity"
    page = _parse(out / "report.html")
    assert len(page.images) == 3


def test_no_preview_on_the_command_line(real_bundle, demo_data, tmp_path):
    out = tmp_path / "out"
    image = demo_data / "hippocampus" / "images" / "hippocampus_008.nii.gz"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli.main",
            "infer",
            str(image),
            "--bundle",
            str(real_bundle),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-preview",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "report.html" in done.stdout
    assert (out / "hippocampus_008" / "statistics.json").is_file()
    assert not (out / "hippocampus_008" / "preview.png").exists()
    report = json.loads((out / "report.json").read_text())
    assert "--no-preview" in report["provenance"]["command_line"]
    assert report["provenance"]["options"]["preview"] is False
    assert _parse(out / "report.html").images == []


def test_a_ct_series_given_to_the_mr_bundle_is_warned_about(real_bundle, shared_data):
    """With --modality any a CT runs through the MR bundle; the record says why its result is doubtful."""
    from app.batch.case_qa import input_warnings
    from app.inference.bundle_info import read_bundle_info
    from app.loading.load import load_volume

    ct = load_volume(shared_data / "totalseg-ct" / "example_ct_dicom")
    info = read_bundle_info(real_bundle)
    warnings = input_warnings(info, ct, ct.modality)
    assert warnings[0].endswith("modality CT, but the bundle was trained on MR images")
    assert any("field of view" in w for w in warnings)


def test_writing_the_run_page_reports_its_progress(toy_bundle, demo_data, tmp_path):
    from app.batch import BatchConfig, run_batch
    from app.batch.observer import BatchObserver

    class Steps(BatchObserver):
        def __init__(self):
            self.steps = []

        def report_progress(self, what, done, total):
            self.steps.append((what, done, total))

    images = sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[:2]
    steps = Steps()
    run_batch(BatchConfig(inputs=tuple(images), bundle=toy_bundle, out=tmp_path, device="cpu"), steps)
    # one step per preview picture, then the page: (0, 3), (1, 3), (2, 3), (3, 3)
    assert steps.steps == [("report.html", done, 3) for done in range(4)]


def test_the_console_line_of_a_flagged_case_says_what_to_check(run, capsys):
    from app.cli.console import ConsoleObserver

    result, _ = run
    scaled = next(r for r in result.records if r.case_id == "scaled_035")
    console = ConsoleObserver(())
    console.started([scaled])
    console.case_done(scaled)
    console.close()
    printed = capsys.readouterr().out
    assert any(line.strip().startswith("warning: ") for line in printed.splitlines())
    checks = [line.strip() for line in printed.splitlines() if line.strip().startswith("check the result: ")]
    assert checks == [f"check the result: {flag}" for flag in scaled.flags] and checks
