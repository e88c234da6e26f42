"""The console shows one line per case (its reason indented under it), never the engine's logs: a case that
fails inside the bundle's engine (a MONAI transform raising) or a run stopped mid-case leaves Ignite's and
the bundle's StatsHandler tracebacks in ``OUT/logs`` only; the recorded reason names the root cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: ``unetseg infer`` in a fresh process whose bundle's NormalizeIntensityd raises ``$RAISE`` for the file
#: named ``$FAIL`` (an allocation error chained under MONAI's "applying transform <... object at 0x...>")
_SCRIPT = """
import os, sys
from monai.transforms import NormalizeIntensityd
from app.cli.main import main

real = NormalizeIntensityd.__call__

def call(self, data, *args, **kwargs):
    if os.environ["FAIL"] in str(data["image"].meta.get("filename_or_obj", "")):
        if os.environ["RAISE"] == "interrupt":
            raise KeyboardInterrupt("signal 15")
        raise RuntimeError("can't allocate memory: you tried to allocate 25035263056 bytes")
    return real(self, data, *args, **kwargs)

NormalizeIntensityd.__call__ = call
sys.exit(main(sys.argv[1:]))
"""


def _infer(repo_root, toy_bundle, demo_data, out, fail: str, kind: str) -> subprocess.CompletedProcess:
    images = demo_data / "hippocampus" / "images"
    argv = ["infer", str(images), "--bundle", str(toy_bundle), "--out", str(out), "--device", "cpu"]
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, *argv, "--no-preview"],
        cwd=repo_root,
        env={**os.environ, "FAIL": fail, "RAISE": kind, "PYTHONPATH": str(repo_root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _no_engine_logs(console: str) -> None:
    for text in ("Traceback", "ignite", "Exception:", "applying transform <", "Engine run"):
        assert text not in console, console


def test_a_case_failing_inside_the_engine_prints_one_line_and_its_root_cause(
    repo_root, toy_bundle, demo_data, tmp_path
):
    out = tmp_path / "out"
    result = _infer(repo_root, toy_bundle, demo_data, out, "hippocampus_035", "error")

    assert result.returncode == 1, result.stderr
    _no_engine_logs(result.stdout + result.stderr)
    case_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(case_lines) == 3, result.stdout
    failed = result.stdout.splitlines().index(next(line for line in case_lines if " failed " in line))
    reason = result.stdout.splitlines()[failed + 1]
    assert reason.startswith("    internal error: RuntimeError: applying transform NormalizeIntensityd"), (
        reason
    )
    assert "you tried to allocate 25035263056 bytes" in reason and "0x" not in reason, reason
    report = json.loads((out / "report.json").read_text())
    (case,) = (c for c in report["cases"] if c["status"] == "failed")
    assert case["reason"] == reason.strip()
    # the engine's own account of the failure is kept, in the run log
    log = next((out / "logs").glob("run-*.log")).read_text()
    assert "ERROR ignite.engine.engine.SupervisedEvaluator: " in log
    assert "Traceback (most recent call last)" in log and "25035263056" in log


def test_a_run_stopped_mid_case_prints_no_traceback(repo_root, toy_bundle, demo_data, tmp_path):
    out = tmp_path / "out"
    result = _infer(repo_root, toy_bundle, demo_data, out, "hippocampus_035", "interrupt")

    assert result.returncode == 130, result.stderr
    _no_engine_logs(result.stdout + result.stderr)
    assert "unetseg infer: interrupted; finished work is kept" in result.stderr
    assert json.loads((out / "report.json").read_text())["state"] == "interrupted"
    log = next((out / "logs").glob("run-*.log")).read_text()
    assert "Engine run is terminating due to exception: signal 15" in log
