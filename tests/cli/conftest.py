"""Fixtures for the command-line tests: the real bundle frozen for the session, a toy bundle, the demo run."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HIPPO = REPO / "bundles" / "hippocampus_mri_segmentation"
DEMO = REPO / "app" / "demo" / "data"
TOY_FEATURES = [4, 4, 8, 8, 16, 4]


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory) -> Path:
    """Configs and weights of the real bundle, copied until the copy loads (the weights change while training)."""
    import torch

    if not (HIPPO / "models" / "model.pt").is_file():
        pytest.skip("the hippocampus bundle has no models/model.pt yet")
    dst = tmp_path_factory.mktemp("hippo_bundle")
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
def toy_bundle(tmp_path_factory) -> Path:
    """The real configs with toy channels (``network_def#features``) and seeded random weights."""
    import torch
    from monai.bundle import ConfigParser

    dst = tmp_path_factory.mktemp("toy_bundle")
    shutil.copytree(HIPPO / "configs", dst / "configs")
    config_file = dst / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    config["network_def"]["features"] = TOY_FEATURES
    config_file.write_text(json.dumps(config, indent=4))
    parser = ConfigParser()
    parser.read_config(str(config_file))
    torch.manual_seed(0)
    (dst / "models").mkdir()
    torch.save(parser.get_parsed_content("network_def").state_dict(), dst / "models" / "model.pt")
    return dst


@pytest.fixture(scope="session")
def demo_run(real_bundle, tmp_path_factory):
    """``unetseg demo`` run once for the session: ``(exit code, stdout, OUT)``."""
    from app.cli.main import main

    out = tmp_path_factory.mktemp("demo") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["demo", "--out", str(out), "--bundle", str(real_bundle), "--device", "cpu"])
    return code, stdout.getvalue(), out


@pytest.fixture(scope="session")
def demo_data() -> Path:
    return DEMO
