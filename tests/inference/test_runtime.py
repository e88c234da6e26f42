"""Inference runtimes (app.inference.runtime): each backend's segmentation equals torch eager's on real cases,
the ONNX export is cached by the weights' hash, OpenVINO is imported with its telemetry declined, and disagreement is
refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from app.errors import BundleError
from app.evaluation.overlap import count
from app.inference.options import InferenceOptions
from app.inference.runtime import available_backends

ONNX_BACKENDS = [b for b in ("onnxruntime", "openvino") if b in available_backends()]
needs_onnx = pytest.mark.skipif(not ONNX_BACKENDS, reason="no ONNX runtime installed")


@pytest.fixture(scope="module")
def bundle_copy(real_bundle, tmp_path_factory):
    """A private copy of the real bundle, so that its export cache starts empty."""
    dst = tmp_path_factory.mktemp("runtime_bundle") / "hippocampus_mri_segmentation"
    shutil.copytree(real_bundle, dst)
    return dst


@pytest.fixture(scope="module")
def torch_labels(loaded_real, demo_cases, tmp_path_factory):
    from app.inference.predict import segment
    from app.loading import load_volume

    workdir = tmp_path_factory.mktemp("torch_labels")
    images = sorted((demo_cases / "images").glob("*.nii.gz"))[:2]
    return {p.name: (load_volume(p), segment(loaded_real, load_volume(p), workdir).array) for p in images}


def _dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    counts = count(a == label, b == label)
    total = counts.n_pred + counts.n_ref
    return 1.0 if total == 0 else 2.0 * counts.tp / total


@needs_onnx
@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_backend_segmentation_equals_torch_on_real_validation_cases(
    backend, bundle_copy, torch_labels, tmp_path
):
    from app.inference import load_bundle
    from app.inference.predict import segment

    bundle = load_bundle(bundle_copy, InferenceOptions(device="cpu", backend=backend))
    assert bundle.runtime.backend == backend
    assert 0 < bundle.runtime.max_abs_logit_diff < 1e-2
    print(f"{backend}: max |logit difference| on the check window {bundle.runtime.max_abs_logit_diff:.2e}")
    for name, (volume, expected) in torch_labels.items():
        labels = segment(bundle, volume, tmp_path).array
        for label in (1, 2):
            assert _dice(labels, expected, label) >= 0.999, (name, label)


@needs_onnx
def test_export_is_cached_in_the_user_cache_keyed_by_the_weights_hash(bundle_copy, tmp_path, monkeypatch):
    from app.inference import load_bundle

    monkeypatch.setenv("UNETSEG_CACHE_DIR", str(tmp_path / "cache"))
    bundle = load_bundle(bundle_copy, InferenceOptions(device="cpu", backend=ONNX_BACKENDS[0]))
    exports = sorted((tmp_path / "cache" / "exports").glob("*.onnx"))
    assert len(exports) == 1
    assert bundle.info.weights_sha256[:16] in exports[0].name and "40x56x40" in exports[0].name
    assert not (bundle_copy / "models" / "exports").exists()  # nothing written into the bundle
    stamp = exports[0].stat().st_mtime_ns
    load_bundle(bundle_copy, InferenceOptions(device="cpu", backend=ONNX_BACKENDS[-1]))
    assert exports[0].stat().st_mtime_ns == stamp  # reused, not exported again
    assert sorted((tmp_path / "cache" / "exports").glob("*.onnx")) == exports


def test_export_cache_folder_is_the_user_cache_unless_asked(tmp_path, monkeypatch):
    from app.inference.runtime.export import cache_dir

    bundle = tmp_path / "bundle"
    monkeypatch.delenv("UNETSEG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir(bundle) == tmp_path / "xdg" / "unetseg" / "exports"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir(bundle) == tmp_path / "home" / ".cache" / "unetseg" / "exports"
    monkeypatch.setenv("UNETSEG_CACHE_DIR", str(bundle / "models"))  # asked: beside the weights
    assert cache_dir(bundle) == bundle / "models" / "exports"
    assert (bundle / "models" / "exports").is_dir()


OPENVINO_IMPORT_CHECK = r"""
import json, os, sys
from app.inference.runtime.openvino_import import import_openvino
ov = import_openvino()
import openvino_telemetry
telemetry = openvino_telemetry.Telemetry()  # the instance openvino.tools.ovc made at import
print(json.dumps({"consent": telemetry.consent, "ci_after": os.environ.get("CI"), "same": import_openvino() is ov}))
"""


@pytest.mark.skipif("openvino" not in available_backends(), reason="OpenVINO not installed")
@pytest.mark.parametrize("ci_before", [None, "false"])
def test_openvino_is_imported_with_its_telemetry_declined_and_the_environment_restored(
    ci_before, repo_root, tmp_path, no_network_prefix
):
    """In a fresh process (so openvino is imported here, not earlier) with an empty HOME and no CI variables:
    the import declines consent, writes nothing under HOME, and leaves ``CI`` as it was. The whole-run check
    that nothing goes on the network is tests/cli/test_no_network.py."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env.update(
        HOME=str(tmp_path), PYTHONPATH=os.pathsep.join(filter(None, [str(repo_root), env.get("PYTHONPATH")]))
    )
    if ci_before is not None:
        env["CI"] = ci_before
    result = subprocess.run(
        [*no_network_prefix, sys.executable, "-c", OPENVINO_IMPORT_CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == {"consent": False, "ci_after": ci_before, "same": True}
    assert not (tmp_path / "intel").exists()


@needs_onnx
def test_a_backend_that_disagrees_is_refused_when_named_and_skipped_under_auto(bundle_copy, monkeypatch):
    from app.inference import load_bundle
    from app.inference.runtime import select

    monkeypatch.setattr(select, "AGREEMENT_ATOL", -1.0)  # nothing agrees any more
    with pytest.raises(BundleError, match="disagrees with torch"):
        load_bundle(bundle_copy, InferenceOptions(device="cpu", backend=ONNX_BACKENDS[0]))
    assert load_bundle(bundle_copy, InferenceOptions(device="cpu", backend="auto")).runtime.backend == "torch"


def test_auto_takes_the_fastest_installed_backend_and_its_window_batch(bundle_copy):
    from app.inference import load_bundle
    from app.inference.runtime.select import PREFERENCE, SW_BATCH_SIZE

    bundle = load_bundle(bundle_copy, InferenceOptions(device="cpu", backend="auto"))
    assert bundle.runtime.backend == next(b for b in PREFERENCE if b in available_backends())
    if bundle.runtime.backend != "torch":
        assert bundle.inferer.sw_batch_size == SW_BATCH_SIZE[bundle.runtime.backend]
    explicit = load_bundle(bundle_copy, InferenceOptions(device="cpu", backend="auto", sw_batch_size=3))
    assert explicit.inferer.sw_batch_size == 3 and explicit.runtime.sw_batch_size == 3


def test_unknown_options_are_refused_when_the_options_are_built():
    """Checked once, at the door: InferenceOptions names the option; load_bundle checks none of it again."""
    from app.errors import InputError

    for options, message in (
        ({"backend": "tensorrt"}, "backend must be one of"),
        ({"device": "gpu"}, "unknown device 'gpu'"),
        ({"overlap": 1.0}, "overlap must be in"),
        ({"sw_batch_size": 0}, "sw batch size must be"),
        ({"num_threads": 0}, "threads must be"),
    ):
        with pytest.raises(InputError, match=message):
            InferenceOptions(**options)
    assert InferenceOptions(device=" CUDA:1 ").device == "cuda:1"
