"""Shared fixtures: where the real data lives, the project root, and frozen copies of the hippocampus bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
HIPPO = ROOT / "bundles" / "hippocampus_mri_segmentation"
DEMO = ROOT / "app" / "demo" / "data"
#: toy channel counts for the bundles' ``network_def#features`` (seconds-long runs on CPU)
TOY_FEATURES = [4, 4, 8, 8, 16, 4]
#: test folders (mirroring app/) of tiny CPU unit tests that run with one torch thread
SINGLE_THREAD_FOLDERS = {"engines", "losses", "networks"}


@pytest.fixture(autouse=True)
def single_thread_torch(request):
    """One intra-op thread for the tests in :data:`SINGLE_THREAD_FOLDERS`: on a busy machine, torch's default thread
    pool spends most of each tiny forward pass waiting for its own threads (1 s instead of 4 ms for a toy U-Net on
    a shared 2-core box). Other tests keep torch's setting."""
    if request.path.parent.name not in SINGLE_THREAD_FOLDERS:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (present on developer machines and in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_data() -> Path:
    """The embedded demo data (``app/demo/data``: NIfTI cases with labels and the DICOM tree)."""
    return DEMO


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory) -> Path:
    """Configs and ``models/model.pt`` of the real hippocampus bundle, copied once for the session.

    The shipped weights are rewritten while a model trains; a copy taken mid-write does not load, so copy
    until the copy loads, and then every test of the session uses the same weights.
    """
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
    """The hippocampus bundle's configs with toy channels (``network_def#features``) and seeded random weights."""
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
def no_network_prefix() -> list[str]:
    """``unshare --net`` (a fresh network namespace: only a loopback that is down) to put before a command whose
    network use a test watches for, so that a regression is seen but its traffic cannot leave the machine;
    ``[]`` where namespaces are not permitted."""
    exe = shutil.which("unshare")
    for prefix in ([exe, "--net"], [exe, "--map-root-user", "--net"]) if exe else ():
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return []
