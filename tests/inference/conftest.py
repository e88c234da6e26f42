"""Fixtures for the inference tests: a frozen copy of the real hippocampus bundle, loaded once per session."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HIPPO = REPO / "bundles" / "hippocampus_mri_segmentation"
DEMO_CASES = REPO / "app" / "demo" / "data" / "hippocampus"


def snapshot_bundle(dst: Path) -> Path:
    """Copy configs and models/model.pt of the real bundle into ``dst``.

    The shipped weights are rewritten while a model trains; a copy taken mid-write does not load, so copy
    until the copy loads, and then every test of the session uses the same weights.
    """
    import torch

    if not (HIPPO / "models" / "model.pt").is_file():
        pytest.skip("the hippocampus bundle has no models/model.pt yet")
    shutil.copytree(HIPPO / "configs", dst / "configs")
    (dst / "models").mkdir()
    for attempt in range(5):
        shutil.copyfile(HIPPO / "models" / "model.pt", dst / "models" / "model.pt")
        try:
            torch.load(dst / "models" / "model.pt", map_location="cpu", weights_only=True)
            return dst
        except (RuntimeError, EOFError, OSError):
            time.sleep(2 * (attempt + 1))
    pytest.fail("models/model.pt did not load after 5 copies")


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory) -> Path:
    return snapshot_bundle(tmp_path_factory.mktemp("hippo_bundle"))


@pytest.fixture(scope="session")
def loaded_real(real_bundle):
    from app.inference import load_bundle

    return load_bundle(real_bundle, device="cpu")


@pytest.fixture(scope="session")
def demo_cases() -> Path:
    return DEMO_CASES
