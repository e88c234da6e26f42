"""A two-node Ray cluster on this one machine (two raylets on loopback, started with `ray start`), joined by
`unetseg infer --cluster ray --address 127.0.0.1:PORT` in a subprocess; the cluster is stopped afterwards.

Runs after tests/batch/test_cluster.py has shut its in-process runtime down (`ray stop` ends every Ray
process of this machine)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys

import ray  # noqa: F401  (the test extra installs Ray; fail loudly if it is missing)
from http_helpers import free_port


def test_infer_on_a_two_node_cluster(toy_bundle, demo_data, repo_root, tmp_path):
    ray_cli = shutil.which("ray") or str(sys.executable).replace("python", "ray")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(repo_root), "RAY_USAGE_STATS_ENABLED": "0"}
    # the cluster's own token (Ray's token authentication), given to every process that joins it
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    run = {"env": env, "capture_output": True, "text": True, "timeout": 180}
    head = subprocess.run(
        [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], **run
    )
    assert head.returncode == 0, head.stderr
    try:
        worker = subprocess.run([ray_cli, "start", f"--address=127.0.0.1:{port}", *common], **run)
        assert worker.returncode == 0, worker.stderr
        out = tmp_path / "out"
        argv = [
            str(demo_data / "dicom"),
            str(demo_data / "hippocampus" / "images"),
            "--bundle",
            str(toy_bundle),
        ]
        argv += ["--out", str(out), "--device", "cpu", "--backend", "torch"]
        argv += ["--cluster", "ray", "--address", f"127.0.0.1:{port}", "--workers", "2"]
        infer = subprocess.run([sys.executable, "-m", "app.cli.main", "infer", *argv], cwd=repo_root, **run)
        assert infer.returncode == 0, infer.stdout + infer.stderr
        assert "Traceback" not in infer.stderr
        report = json.loads((out / "report.json").read_text())
        assert report["state"] == "complete"
        assert report["counts"]["cases"] == report["counts"]["ok"] == 6
        assert len(report["provenance"]["options"]["ray_nodes"]) == 2, "both raylets ran workers"
        assert all((out / c["case_id"] / "case.json").is_file() for c in report["cases"])
    finally:
        stop = subprocess.run([ray_cli, "stop", "--force"], **run)
        assert stop.returncode == 0, stop.stderr
