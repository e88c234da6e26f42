"""Bundle loading: validation errors name the file, overrides by key, SaveImaged/CheckpointLoader removed by type."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.errors import BundleError
from app.inference.bundle_info import derive_label_context, read_bundle_info
from app.inference.options import InferenceOptions


def _copy(real_bundle: Path, dst: Path) -> Path:
    shutil.copytree(real_bundle, dst)
    return dst


def test_metadata_gives_labels_modality_and_context(real_bundle):
    info = read_bundle_info(real_bundle)
    assert info.labels == {0: "background", 1: "anterior", 2: "posterior"}
    assert info.segments == {1: "anterior", 2: "posterior"}
    assert info.modality == "MR"
    assert info.spatial_dims == 3
    assert info.label_context == "hippocampus"
    assert info.version == json.loads((real_bundle / "configs" / "metadata.json").read_text())["version"]
    assert len(info.weights_sha256) == 64


@pytest.mark.parametrize("missing", ["configs/metadata.json", "configs/inference.json", "models/model.pt"])
def test_missing_file_is_named(real_bundle, tmp_path, missing):
    bundle = _copy(real_bundle, tmp_path / "b")
    (bundle / missing).unlink()
    with pytest.raises(BundleError) as err:
        read_bundle_info(bundle)
    assert err.value.path == (bundle / missing).resolve()


def test_missing_channel_def_names_metadata(real_bundle, tmp_path):
    bundle = _copy(real_bundle, tmp_path / "b")
    meta_file = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    del meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="channel_def") as err:
        read_bundle_info(bundle)
    assert err.value.path.name == "metadata.json"


def test_label_context_from_name_or_folder():
    assert derive_label_context("Hippocampus MRI segmentation") == "hippocampus"
    assert derive_label_context("Abdomen CT", "spleen_ct_segmentation") == "spleen"
    assert derive_label_context("EM membranes", "em_2d") is None


def test_load_overrides_by_key_and_drops_save_and_checkpoint_loader(real_bundle):
    from monai.handlers import CheckpointLoader
    from monai.transforms import Invertd, SaveImaged

    from app.inference import load_bundle

    bundle = load_bundle(real_bundle, InferenceOptions(device="cpu", overlap=0.25, sw_batch_size=1))
    assert bundle.inferer.overlap == 0.25
    assert bundle.inferer.sw_batch_size == 1
    assert not any(isinstance(t, SaveImaged) for t in bundle.postprocessing.transforms)
    assert any(isinstance(t, Invertd) for t in bundle.postprocessing.transforms)
    assert not any(isinstance(h, CheckpointLoader) for h in bundle.handlers)
    assert str(bundle.device) == "cpu"


def test_truncated_weights_are_a_bundle_error(real_bundle, tmp_path):
    from app.inference import load_bundle

    bundle = _copy(real_bundle, tmp_path / "b")
    weights = bundle / "models" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(BundleError) as err:
        load_bundle(bundle, InferenceOptions(device="cpu"))
    assert err.value.path.name == "model.pt"


def test_weights_of_another_network_are_a_bundle_error(real_bundle, tmp_path):
    import torch

    from app.inference import load_bundle

    bundle = _copy(real_bundle, tmp_path / "b")
    torch.save({"conv.weight": torch.zeros(1)}, bundle / "models" / "model.pt")
    with pytest.raises(BundleError, match="does not fit") as err:
        load_bundle(bundle, InferenceOptions(device="cpu"))
    assert err.value.path.name == "model.pt"
