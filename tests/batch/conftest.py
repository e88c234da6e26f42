"""Fixtures for the batch tests: a toy bundle (the real configs, toy channels, seeded random weights)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HIPPO = REPO / "bundles" / "hippocampus_mri_segmentation"
DEMO = REPO / "app" / "demo" / "data"
TOY_FEATURES = [4, 4, 8, 8, 16, 4]


def make_toy_bundle(dst: Path) -> Path:
    """The hippocampus bundle's configs with ``network_def#features`` set to toy channels, seeded weights."""
    import torch
    from monai.bundle import ConfigParser

    shutil.copytree(HIPPO / "configs", dst / "configs")
    config_file = dst / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    config["network_def"]["features"] = TOY_FEATURES
    config_file.write_text(json.dumps(config, indent=4))
    parser = ConfigParser()
    parser.read_config(str(config_file))
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    (dst / "models").mkdir()
    torch.save(network.state_dict(), dst / "models" / "model.pt")
    return dst


@pytest.fixture(scope="session")
def toy_bundle(tmp_path_factory) -> Path:
    return make_toy_bundle(tmp_path_factory.mktemp("toy_bundle"))


@pytest.fixture(scope="session")
def demo_data() -> Path:
    return DEMO
