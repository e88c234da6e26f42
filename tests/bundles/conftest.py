"""Helpers to run the real bundle configs in-process on a few real cases, with a toy network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HIPPO = Path(__file__).resolve().parents[2] / "bundles" / "hippocampus_mri_segmentation"
TOY_FEATURES = [4, 4, 8, 8, 16, 4]  # keep in step with the test module


def _init_workflow(config_files, workflow_type: str, **override):
    """Build and initialise a ``ConfigWorkflow`` for ``config_files`` (paths), with the bundle's own
    ``metadata.json`` (beside the first config file) and no logging config."""
    from monai.bundle import ConfigWorkflow

    files = [Path(f) for f in config_files]
    workflow = ConfigWorkflow(
        config_file=[str(f) for f in files],
        meta_file=str(files[0].parent / "metadata.json"),
        logging_file=None,
        workflow_type=workflow_type,
        **override,
    )
    workflow.initialize()
    return workflow


def _run_workflow(config_files, workflow_type: str, **override):
    """Initialise, run and finalise a ``ConfigWorkflow``; return it (its parser stays usable)."""
    workflow = _init_workflow(config_files, workflow_type, **override)
    workflow.run()
    workflow.finalize()
    return workflow


@pytest.fixture(scope="session")
def init_workflow():
    """``init_workflow(config_files, workflow_type, **override)`` -> an initialised ``ConfigWorkflow``."""
    return _init_workflow


@pytest.fixture(scope="session")
def run_workflow():
    """``run_workflow(config_files, workflow_type, **override)`` -> the finished ``ConfigWorkflow``."""
    return _run_workflow


@pytest.fixture(scope="session")
def verify_metadata(repo_root):
    """``verify_metadata(meta_file)`` -> the finished ``python -m monai.bundle verify_metadata`` run, checked
    offline against the repository's schema (the command skips its download when the file exists)."""

    def run(meta_file: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "monai.bundle",
                "verify_metadata",
                "--meta_file",
                str(meta_file),
                "--filepath",
                str(repo_root / "bundles" / "schema" / "meta_schema.json"),
            ],
            capture_output=True,
            text=True,
            cwd=repo_root,
            timeout=120,
        )

    return run


@pytest.fixture(scope="session")
def torchrun(repo_root):
    """``torchrun(config_files, overrides)``: run ``monai.bundle run`` under ``torchrun --standalone
    --nproc_per_node=2`` on CPU (gloo) and return the finished process.

    ``--standalone`` lets torchrun pick a free rendezvous port itself (a port chosen by the test can be taken
    by the time the workers bind it). The run has its own process group, killed whole on a timeout, so no DDP
    worker outlives a hang.
    """

    def run(config_files, overrides: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
        config = "[" + ",".join(f"'{f}'" for f in config_files) + "]"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            config,
            "--logging_file",
            "None",
            *[x for kv in overrides.items() for x in kv],
        ]
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.Popen(
            cmd,
            cwd=repo_root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"torchrun timed out:\n{stderr[-4000:]}")
        return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)

    return run


@pytest.fixture(scope="session")
def hippo_bundle() -> Path:
    return HIPPO


@pytest.fixture
def hippo_train_overrides(shared_data, tmp_path):
    """Overrides that make train.json a seconds-long run: 4 real training cases, 2 validation cases, toy net."""
    return {
        "bundle_root": str(HIPPO),
        "dataset_dir": str(shared_data / "msd-hippocampus"),
        "ckpt_dir": str(tmp_path / "models"),
        "output_dir": str(tmp_path / "eval"),
        "train#dataset#data": "$@train_datalist[:4]",
        "validate#dataset#data": "$@val_datalist[:2]",
        "network_def#features": TOY_FEATURES,
        "num_workers": 0,
        "max_epochs": 1,
        "val_interval": 1,
    }
