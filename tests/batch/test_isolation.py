"""A batch that never loses a case: whatever one case raises fails it alone, the report is always on disk,
an interruption leaves no half-finished case, and a bundle that does not fit an input refuses it up front."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.batch import BatchConfig, run_batch
from app.batch.journal import read_journal
from app.loading.cases import Case

HIPPO_IMAGES = "hippocampus/images"


def _hippo(demo_data: Path, name: str) -> Path:
    return demo_data / HIPPO_IMAGES / name


@pytest.fixture(scope="module")
def hostile_run(toy_bundle, demo_data, tmp_path_factory):
    """Real cases mixed with one of each kind of bad case, run as one batch; ``Case.load`` of one file raises
    an unexpected exception (as a decoder bug would) and another a MemoryError."""
    root = tmp_path_factory.mktemp("hostile")
    images = sorted((demo_data / HIPPO_IMAGES).glob("*.nii.gz"))
    shutil.copyfile(images[0], root / "good_a.nii.gz")
    shutil.copyfile(images[1], root / "good_z.nii.gz")
    shutil.copyfile(images[0], root / "bug.nii.gz")
    shutil.copyfile(images[1], root / "oom.nii.gz")
    # an allocation bomb: a 352-byte header declaring 4000^3 float32 voxels
    header = nib.Nifti1Header()
    header.set_data_shape((4000, 4000, 4000))
    header.set_data_dtype(np.float32)
    (root / "bomb.nii").write_bytes(header.binaryblock + b"\0" * 4)
    # a truncated .nii.gz
    data = (root / "good_a.nii.gz").read_bytes()
    (root / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    shutil.copytree(demo_data / "dicom" / "study_2" / "series_3", root / "dicom_good")

    real_load = Case.load

    def load(self, *args, **kwargs):
        if self.source.name == "bug.nii.gz":
            raise ValueError("simulated decoder bug")
        if self.source.name == "oom.nii.gz":
            raise MemoryError("Unable to allocate 238. GiB for an array")
        return real_load(self, *args, **kwargs)

    out = tmp_path_factory.mktemp("hostile_out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Case, "load", load)
        result = run_batch(BatchConfig(inputs=(root,), bundle=toy_bundle, out=out, device="cpu"))
    return result, out


def test_every_case_is_tried_and_reported_with_its_reason(hostile_run):
    result, out = hostile_run
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "complete"
    by_input = {Path(c["input"]).name: c for c in report["cases"]}
    assert set(by_input) >= {"good_a.nii.gz", "good_z.nii.gz", "bug.nii.gz", "oom.nii.gz", "bomb.nii"}
    for name in ("good_a.nii.gz", "good_z.nii.gz", "dicom_good"):
        assert by_input[name]["status"] == "ok", by_input[name]
        case_dir = out / by_input[name]["case_id"]
        assert (case_dir / "case.json").is_file()
    bug, oom = by_input["bug.nii.gz"], by_input["oom.nii.gz"]
    assert bug["status"] == oom["status"] == "failed"
    assert bug["failure"] == oom["failure"] == "internal"
    assert bug["reason"].startswith("internal error: ValueError: simulated decoder bug (traceback in ")
    assert oom["reason"].startswith("internal error: MemoryError: Unable to allocate")
    # every reader refuses a declared size over the limit before allocating, and names the file
    for name in ("bomb.nii", "truncated.nii.gz"):
        case = by_input[name]
        assert case["status"] == "failed" and case["failure"] == "refused", case
        assert name in case["reason"], case
    assert "exceed" in by_input["bomb.nii"]["reason"], by_input["bomb.nii"]
    assert result.exit_code == 1
    assert report["counts"]["pending"] == 0


def test_internal_errors_leave_their_traceback_in_the_run_log_not_the_report(hostile_run):
    result, out = hostile_run
    assert result.log is not None and result.log.parent == out / "logs"
    log = result.log.read_text()
    assert "Traceback (most recent call last)" in log
    assert "ValueError: simulated decoder bug" in log and "MemoryError" in log
    report = json.loads((out / "report.json").read_text())
    assert report["provenance"]["log"] == str(result.log)
    assert all("Traceback" not in c["reason"] for c in report["cases"])


def test_the_journal_holds_every_finished_case(hostile_run):
    result, out = hostile_run
    journaled = read_journal(out)
    assert set(journaled) == {r.case_id for r in result.records}
    for record in result.records:
        assert journaled[record.case_id].status == record.status


def test_csv_names_the_failure_kind(hostile_run):
    _, out = hostile_run
    import csv

    rows = list(csv.DictReader((out / "report.csv").open()))
    failures = {Path(r["input"]).name: r["failure"] for r in rows}
    assert failures["bug.nii.gz"] == "internal" and failures["good_a.nii.gz"] == ""


def test_an_interrupted_batch_keeps_finished_cases_and_leaves_no_file_of_the_interrupted_one(
    toy_bundle, demo_data, tmp_path, monkeypatch
):
    """Ctrl-C (KeyboardInterrupt) in the middle of the second case, after its NIfTI was written."""
    import app.batch.case as case_module

    images = sorted((demo_data / HIPPO_IMAGES).glob("*.nii.gz"))[:3]
    out = tmp_path / "out"
    real_write = case_module.write_manifest
    calls = []

    def write_manifest(case_dir, record, fingerprint):
        calls.append(record.case_id)
        if len(calls) == 2:  # all outputs of the second case are at their final paths; case.json is not
            raise KeyboardInterrupt
        return real_write(case_dir, record, fingerprint)

    monkeypatch.setattr(case_module, "write_manifest", write_manifest)
    with pytest.raises(KeyboardInterrupt):
        run_batch(BatchConfig(inputs=tuple(images), bundle=toy_bundle, out=out, device="cpu"))
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "interrupted"
    statuses = [c["status"] for c in report["cases"]]
    assert statuses == ["ok", "pending", "pending"]
    # the page beside the report is this run's, not missing (or an earlier run's)
    assert "<th>state</th><td>interrupted</td>" in (out / "report.html").read_text()
    second = report["cases"][1]["case_id"]
    assert not any((out / second).glob("*.nii.gz")), "the interrupted case left an output at a final path"
    assert not list(out.rglob(".tmp-*"))
    # --resume finishes the job: the first case is skipped, the other two run
    monkeypatch.setattr(case_module, "write_manifest", real_write)
    again = run_batch(
        BatchConfig(inputs=tuple(images), bundle=toy_bundle, out=out, device="cpu", resume=True)
    )
    assert [r.status for r in again.records] == ["skipped", "ok", "ok"]
    assert json.loads((out / "report.json").read_text())["state"] == "complete"


def test_an_error_outside_the_cases_still_writes_the_report(toy_bundle, demo_data, tmp_path, monkeypatch):
    import app.inference.bundle as bundle_module

    def broken(*args, **kwargs):
        raise RuntimeError("runtime library failed to initialise")

    monkeypatch.setattr(bundle_module, "load_bundle", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_batch(
            BatchConfig(inputs=(_hippo(demo_data, "hippocampus_035.nii.gz"),), bundle=toy_bundle, out=out)
        )
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "aborted"
    assert report["abort_reason"] == "RuntimeError: runtime library failed to initialise"
    assert report["counts"]["pending"] == 1


def test_a_2d_bundle_refuses_3d_volumes_before_any_engine_starts(repo_root, demo_data, tmp_path):
    """The EM bundle (2D) given a folder of 3D NIfTI volumes: each refused with a reason naming both."""
    em = repo_root / "bundles" / "em_membrane_segmentation"
    folder = tmp_path / "volumes"
    folder.mkdir()
    for image in sorted((demo_data / HIPPO_IMAGES).glob("*.nii.gz"))[:2]:
        shutil.copyfile(image, folder / image.name)
    out = tmp_path / "out"
    result = run_batch(BatchConfig(inputs=(folder,), bundle=em, out=out, device="cpu", backend="torch"))
    assert [r.status for r in result.records] == ["failed", "failed"]
    for record in result.records:
        assert record.failure == "refused"
        assert "a 3D nifti volume of shape" in record.reason
        assert "segments 2D images (spatial_dims 2)" in record.reason
        assert record.input in record.reason
        assert "inference" not in record.timings_s
    assert json.loads((out / "report.json").read_text())["state"] == "complete"


def test_a_3d_bundle_refuses_a_2d_image(toy_bundle, demo_data, tmp_path):
    image = nib.load(_hippo(demo_data, "hippocampus_035.nii.gz"))
    slice_2d = nib.Nifti1Image(np.asarray(image.dataobj)[:, :, 10], image.affine)
    path = tmp_path / "slice.nii.gz"
    nib.save(slice_2d, path)
    result = run_batch(BatchConfig(inputs=(path,), bundle=toy_bundle, out=tmp_path / "out", device="cpu"))
    (record,) = result.records
    assert record.status == "failed" and record.failure == "refused"
    assert "a 2D image of shape (35, 47)" in record.reason and "segments 3D volumes" in record.reason


def test_a_report_cut_short_by_a_kill_is_still_valid_json(tmp_path):
    """The journal reader skips a line cut short by a kill."""
    from app.batch.journal import JOURNAL_NAME
    from app.batch.records import CaseRecord

    record = CaseRecord("a", "nifti", "a.nii.gz", ["a.nii.gz"], status="ok")
    line = json.dumps({"type": "case", "record": record.to_dict()})
    (tmp_path / JOURNAL_NAME).write_text(line + "\n" + line[: len(line) // 2])
    assert list(read_journal(tmp_path)) == ["a"]


def test_sigkill_after_the_first_case_leaves_a_valid_report_and_resume_completes_it(
    toy_bundle, shared_data, repo_root, tmp_path
):
    """A real ``unetseg infer`` process, killed with SIGKILL once its first case is journaled."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from app.batch.journal import JOURNAL_NAME

    images = sorted((shared_data / "msd-hippocampus" / "imagesTr").glob("*.nii.gz"))[:8]
    out = tmp_path / "out"
    argv = [*map(str, images), "--bundle", str(toy_bundle), "--out", str(out), "--device", "cpu"]
    argv += ["--backend", "torch", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "infer", *argv],
        cwd=repo_root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            journal = out / JOURNAL_NAME
            if journal.is_file() and '"type":"case"' in journal.read_text():
                break
            time.sleep(0.05)
        assert process.poll() is None, "the batch ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    journaled = read_journal(out)
    assert 1 <= len(journaled) < len(images)
    report = json.loads((out / "report.json").read_text())  # valid JSON: written atomically
    assert report["state"] == "running"
    assert report["counts"]["cases"] == len(images)

    result = run_batch(
        BatchConfig(
            inputs=tuple(images), bundle=toy_bundle, out=out, device="cpu", backend="torch", resume=True
        )
    )
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "complete"
    assert report["counts"]["ok"] + report["counts"]["skipped"] == len(images)
    assert report["counts"]["skipped"] >= len(journaled)
    assert result.exit_code == 0
    assert not [p for p in out.rglob(".tmp-*") if p.parent != out], (
        "a killed writer's temporary file was kept"
    )


def _isolated(source: Path, raised: BaseException):
    from app.batch.isolation import run_isolated
    from app.batch.records import CaseRecord

    def work():
        raise raised

    case = Case("c1", "nifti", source)
    return run_isolated(case, CaseRecord.of(case), work)


def test_an_internal_failure_names_its_root_cause_without_memory_addresses(tmp_path):
    """MONAI re-raises a transform's error as "applying transform <... object at 0x...>" from the cause."""

    class Spacingd:
        pass

    transform = Spacingd()
    try:
        try:
            raise RuntimeError(
                "[enforce fail] can't allocate memory:\n you tried to allocate 25035263056 bytes"
            )
        except RuntimeError as cause:
            raise RuntimeError(f"applying transform {transform}") from cause
    except RuntimeError as exc:
        raised = exc
    record = _isolated(tmp_path / "c1.nii.gz", raised)
    assert record.failure == "internal"
    assert record.reason.startswith(
        "internal error: RuntimeError: applying transform Spacingd: caused by RuntimeError: [enforce fail] "
        "can't allocate memory: you tried to allocate 25035263056 bytes (traceback in "
    ), record.reason
    assert "0x" not in record.reason


def test_every_failure_reason_is_one_line(tmp_path):
    """nibabel's truncation message holds a newline; a refusal's reason is a console line like any other."""
    from nibabel.filebasedimages import ImageFileError

    from app.errors import InputError

    source = tmp_path / "c1.nii.gz"
    damaged = "Expected 4000 bytes, got 10 bytes from object\n - could the file be damaged?"
    for raised in (InputError(source, damaged), ImageFileError(damaged)):
        record = _isolated(source, raised)
        assert record.failure == "refused"
        assert "\n" not in record.reason and "object - could the file be damaged?" in record.reason, (
            record.reason
        )


def test_the_engines_logs_go_to_the_run_log_and_not_to_the_console(toy_bundle, tmp_path, caplog, capsys):
    """Ignite's engine logger and the bundle's StatsHandler (which MONAI gives a stdout handler of its own)."""
    import logging

    from app.batch.run_log import run_log
    from app.inference.bundle import load_bundle
    from app.inference.options import InferenceOptions

    with run_log(tmp_path) as path:
        bundle = load_bundle(toy_bundle, InferenceOptions(device="cpu"))
        (stats,) = (h.logger for h in bundle.handlers if type(h).__name__ == "StatsHandler")
        logging.getLogger("ignite.engine.engine.SupervisedEvaluator").error("Engine run is terminating")
        try:
            raise RuntimeError("applying transform")
        except RuntimeError:
            stats.exception("Exception: applying transform")
    printed = capsys.readouterr()
    assert "Exception" not in printed.out + printed.err
    # the root logger's handlers (the console, in the CLI) saw none of them
    assert not [r for r in caplog.records if r.name.startswith(("ignite", "monai.handlers"))]
    log = path.read_text()
    assert "ERROR ignite.engine.engine.SupervisedEvaluator: Engine run is terminating" in log
    assert f"ERROR {stats.name}: Exception: applying transform\nTraceback" in log
    assert logging.getLogger("ignite").propagate  # outside a run, as any library's logger
