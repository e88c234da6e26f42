"""Issue 18 item 3: feedback during long work. A line per finished case as it finishes (piped too), a
partial case's reason printed once, and windows done of total inside a long case (throttled lines when piped)."""

from __future__ import annotations

import shutil

from app.batch import BatchConfig, run_batch
from app.batch.observer import BatchObserver
from app.batch.records import CaseRecord
from app.cli.console import ConsoleObserver


class Recorder(BatchObserver):
    def __init__(self):
        self.events = []

    def case_started(self, record, where="local"):
        self.events.append(("started", record.case_id))

    def case_progress(self, record, done, total):
        self.events.append(("progress", record.case_id, done, total))

    def case_done(self, record):
        self.events.append(("done", record.case_id))


def test_the_batch_reports_windows_done_of_total_while_a_case_runs(toy_bundle, demo_data, tmp_path):
    images = sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[:2]
    recorder = Recorder()
    run_batch(
        BatchConfig(inputs=tuple(images), bundle=toy_bundle, out=tmp_path / "out", device="cpu"), recorder
    )
    for image in images:
        case = image.name.removesuffix(".nii.gz")
        events = recorder.events
        start, end = events.index(("started", case)), events.index(("done", case))
        progress = [e[2:] for e in events[start:end] if e[0] == "progress"]
        assert progress and all(e[1] == case for e in events[start:end] if e[0] == "progress")
        assert progress[0][0] == 0 and progress[-1][0] == progress[-1][1] > 0, progress
        assert progress[-1][1] % 2 == 0  # the bundle's left-right flip runs the window twice


def test_console_shows_progress_of_long_cases_only_in_throttled_lines_when_piped(capsys):
    now = [0.0]
    console = ConsoleObserver([], progress_after_s=3.0, line_every_s=10.0, clock=lambda: now[0])
    record = CaseRecord("c1", "nifti", "c1.nii.gz", ["c1.nii.gz"])
    console.started([record])
    console.case_started(record)
    for t, done in ((1.0, 10), (2.9, 20), (3.5, 30), (9.0, 40), (13.6, 50), (14.0, 60), (24.0, 400)):
        now[0] = t
        console.case_progress(record, done, 400)
    record.status, record.timings_s["total"] = "ok", 24.5
    console.case_done(record)
    console.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "      ... c1: windows 30/400, 4 s",  # after 3 s, not before
        "      ... c1: windows 50/400, 14 s",  # then at most one line per 10 s
        "      ... c1: windows 400/400, 24 s",
        "[1/1] ok         24.5 s  c1  c1.nii.gz",
    ]


def test_piped_run_prints_each_case_as_it_finishes_and_a_partial_reason_once(
    unetseg_cli, toy_bundle, demo_data, tmp_path
):
    import pydicom

    series = tmp_path / "tree" / "no_for_uid"
    shutil.copytree(demo_data / "dicom" / "study_2" / "series_3", series)
    for path in series.glob("*.dcm"):
        dataset = pydicom.dcmread(path)
        del dataset.FrameOfReferenceUID
        dataset.save_as(path)
    image = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    shutil.copy(image, tmp_path / "tree" / image.name)

    result = unetseg_cli(
        "infer", tmp_path / "tree", "--bundle", toy_bundle, "--out", tmp_path / "out", "--device", "cpu"
    )

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    # one line per case, in the order they finish; the details of a case (reason, warnings, what to check in
    # the toy bundle's random labels) are indented under it
    case_lines = [line for line in lines if not line.startswith("    ")]
    assert [line[:6] for line in case_lines[:2]] == ["[1/2] ", "[2/2] "]
    partial = next(i for i, line in enumerate(lines) if " partial " in line)
    assert lines[partial].endswith("  no_for_uid (#3 T1 hippocampus crop hippocampus_045)")
    assert lines[partial + 1].startswith("    DICOM SEG not written")
    assert (result.stdout + result.stderr).count("DICOM SEG not written") == 1
    assert result.stderr.splitlines()[-1].startswith("unetseg infer: exit code 1:")
