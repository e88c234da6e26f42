"""--cluster ray on a real Ray runtime in this process: the same outputs as the local run, bad cases reported,
and a worker killed mid-case replaced with the case retried once."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import threading

import nibabel as nib
import numpy as np
import pydicom
import pytest
import ray

from app.batch import BatchConfig, run_batch
from app.batch.observer import BatchObserver


@pytest.fixture(scope="module")
def ray_runtime():
    """A real local Ray runtime with 2 CPUs, as a user's laptop would have; stopped after the module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def six_cases(demo_data, tmp_path_factory):
    """3 DICOM series made from real MRI, 2 real NIfTI volumes and one broken file."""
    root = tmp_path_factory.mktemp("six")
    shutil.copytree(demo_data / "dicom", root / "dicom")
    for image in sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[:2]:
        shutil.copyfile(image, root / image.name)
    (root / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    return root


def _config(toy_bundle, root, out, **options):
    return BatchConfig(inputs=(root,), bundle=toy_bundle, out=out, device="cpu", backend="torch", **options)


def _comparable(out, case_id):
    record = json.loads((out / case_id / "case.json").read_text())["record"]
    record.pop("timings_s")
    for output in record["outputs"]:
        output["path"] = output["path"].replace(str(out), "OUT")
        if (
            output["kind"] == "seg"
        ):  # a SEG carries its creation time (ContentDate/Time): pixels compared below
            del output["sha256"], output["bytes"]
    if record.get("seg"):
        record["seg"]["path"] = record["seg"]["path"].replace(str(out), "OUT")
    return record


@pytest.fixture(scope="module")
def six_references(demo_data, tmp_path_factory):
    """Reference labels named by the six cases' ids (the DICOM series' by their hashes; ``broken`` too, a miss)."""
    from app.demo.dicom_tree import references_by_case_id

    refs = references_by_case_id(tmp_path_factory.mktemp("six_refs"))
    for label in sorted((demo_data / "hippocampus" / "labels").glob("*.nii.gz")):
        shutil.copyfile(label, refs / label.name)
    shutil.copyfile(label, refs / "broken.nii.gz")
    return refs


def test_ray_gives_the_local_outputs(ray_runtime, toy_bundle, six_cases, six_references, tmp_path):
    """Outputs, records and --ref scores (each computed on the worker that segmented the case) as the local run's."""
    local = run_batch(_config(toy_bundle, six_cases, tmp_path / "local", num_threads=1, ref=six_references))
    on_ray = run_batch(
        _config(
            toy_bundle,
            six_cases,
            tmp_path / "ray",
            cluster="ray",
            workers=2,
            threads_per_worker=1,
            ref=six_references,
        )
    )
    assert local.scores is not None and on_ray.scores is not None
    assert on_ray.scores.dice == local.scores.dice and len(on_ray.scores.dice) == 6
    assert on_ray.scores.failures == local.scores.failures and len(on_ray.scores.failures) == 1
    assert all(r.score is not None for r in on_ray.records if r.status == "ok")
    assert [r.case_id for r in local.records] == [r.case_id for r in on_ray.records]
    assert len(on_ray.records) == 6
    for a, b in zip(local.records, on_ray.records, strict=True):
        assert (a.status, a.failure, a.reason) == (b.status, b.failure, b.reason)
        if a.status != "ok":
            continue
        assert _comparable(tmp_path / "local", a.case_id) == _comparable(tmp_path / "ray", b.case_id)
        for kind in ("nifti", "seg"):
            out_a, out_b = a.output(kind), b.output(kind)
            if out_a is None:
                continue
            if kind == "nifti":
                np.testing.assert_array_equal(
                    np.asarray(nib.load(out_a.path).dataobj), np.asarray(nib.load(out_b.path).dataobj)
                )
            else:
                np.testing.assert_array_equal(
                    pydicom.dcmread(out_a.path).pixel_array, pydicom.dcmread(out_b.path).pixel_array
                )
    broken = next(r for r in on_ray.records if r.case_id == "broken")
    assert broken.status == "failed" and broken.failure == "refused" and "broken.nii.gz" in broken.reason
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert report["state"] == "complete" and report["counts"]["ok"] == 5
    assert report["provenance"]["options"]["cluster"] == "ray"
    assert len(report["provenance"]["worker_logs"]) == 2
    workers = report["provenance"]["workers"]
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2
    assert all(w["peak_rss_mb"] > 100 and w["pid"] != os.getpid() for w in workers), workers
    (local_worker,) = json.loads((tmp_path / "local" / "report.json").read_text())["provenance"]["workers"]
    assert local_worker["pid"] == os.getpid()


class _Killer(BatchObserver):
    """Kills the worker process a chosen case was handed to, shortly after it starts (mid-case)."""

    def __init__(self, case_id: str, times: int):
        self.case_id, self.times, self.kills = case_id, times, []

    def case_started(self, record, where="local"):
        if record.case_id == self.case_id and len(self.kills) < self.times:
            pid = int(where.rsplit(" ", 1)[1])
            self.kills.append(pid)
            threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()


@pytest.mark.parametrize("kills, expected", [(1, "ok"), (2, "failed")])
def test_a_worker_killed_mid_case_is_replaced_and_the_case_retried_once(
    ray_runtime, toy_bundle, six_cases, tmp_path, kills, expected
):
    victim = "hippocampus_008"
    killer = _Killer(victim, kills)
    result = run_batch(
        _config(toy_bundle, six_cases, tmp_path / "out", cluster="ray", workers=2, threads_per_worker=1),
        killer,
    )
    assert len(killer.kills) == kills
    by_id = {r.case_id: r for r in result.records}
    assert by_id[victim].status == expected, by_id[victim].reason
    if expected == "failed":
        assert by_id[victim].failure == "internal"
        assert "the worker process died 2 times while running this case" in by_id[victim].reason
    others = [r for r in result.records if r.case_id not in (victim, "broken")]
    assert all(r.status == "ok" for r in others)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["state"] == "complete" and report["counts"]["pending"] == 0


class _CtrlC(BatchObserver):
    """Ctrl-C on the driver as the first case comes back, while the other worker is mid-case."""

    def case_done(self, record):
        raise KeyboardInterrupt


def test_ctrl_c_on_the_driver_leaves_a_valid_report_and_no_partial_outputs(
    ray_runtime, toy_bundle, six_cases, tmp_path
):
    out = tmp_path / "out"
    config = _config(toy_bundle, six_cases, out, cluster="ray", workers=2, threads_per_worker=1)
    with pytest.raises(KeyboardInterrupt):
        run_batch(config, _CtrlC())
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "interrupted"
    assert (
        report["counts"]["pending"] >= 4
        and report["counts"]["pending"] + report["counts"]["ok"] + report["counts"]["failed"] == 6
    )
    for case in report["cases"]:
        case_dir = out / case["case_id"]
        if case["status"] == "pending":
            assert not case_dir.exists() or not any(case_dir.iterdir()), sorted(case_dir.iterdir())
        elif case["status"] == "ok":
            assert (case_dir / "case.json").is_file()
    again = run_batch(dataclasses.replace(config, resume=True))
    assert sorted(r.status for r in again.records).count("failed") == 1
    assert json.loads((out / "report.json").read_text())["counts"]["pending"] == 0


def test_resume_works_across_ray_and_local_runs(ray_runtime, toy_bundle, six_cases, tmp_path):
    out = tmp_path / "out"
    run_batch(_config(toy_bundle, six_cases, out, cluster="ray", workers=2))
    again = run_batch(BatchConfig(inputs=(six_cases,), bundle=toy_bundle, out=out, device="cpu", resume=True))
    assert sorted(r.status for r in again.records) == ["failed"] + ["skipped"] * 5


def test_cluster_ray_without_ray_names_the_extra(monkeypatch, toy_bundle, six_cases, tmp_path):
    import builtins

    from app.batch.cluster import import_ray
    from app.errors import InputError

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InputError, match=r"unetseg\[ray\]"):
        import_ray()
