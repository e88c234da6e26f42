"""The batch hook, label parsing and bundle labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.errors import BundleError, InputError
from app.evaluation import evaluate_batch, evaluate_case
from app.evaluation.labels import labels_from_bundle, parse_labels


def test_batch_hook_matches_case_by_case(make_volume):
    rng = np.random.default_rng(0)
    ref = np.zeros((2, 12, 10, 8), np.int64)
    ref[:, 2:9, 2:8, 2:6] = 1
    ref[:, 9:11, 2:8, 2:6] = 2
    pred = ref.copy()
    pred[0] = np.roll(pred[0], 1, axis=0)
    pred[1][rng.random(pred[1].shape) < 0.05] = 0
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    labels = {1: "a", 2: "b"}
    # MONAI layout: (B, 1, ...) torch tensors
    results = evaluate_batch(
        torch.from_numpy(pred[:, None]), torch.from_numpy(ref[:, None]), affine, labels, case_ids=["x", "y"]
    )
    expected = []
    for i, cid in enumerate(["x", "y"]):
        v = make_volume(ref[i], spacing=(0.8, 0.8, 2.0))
        expected += evaluate_case(v.with_array(pred[i]), v, labels, case_id=cid)
    assert results == expected


def test_batch_hook_one_hot_and_per_item_affines():
    ref = np.zeros((1, 3, 6, 6, 6), np.float32)  # one-hot, 3 channels
    ref[0, 0] = 1
    ref[0, 0, 1:4, 1:4, 1:4] = 0
    ref[0, 1, 1:4, 1:4, 1:4] = 1
    results = evaluate_batch(ref, ref, np.eye(4)[None], {1: "one", 2: "two"})
    assert [r.flag for r in results] == ["ok", "both_empty"]
    assert results[0].case_id == "batch_0" and results[0].dice == 1.0
    with pytest.raises(ValueError, match="affine"):
        evaluate_batch(ref, ref, np.eye(3), {1: "one"})
    with pytest.raises(ValueError, match="shape"):
        evaluate_batch(ref[:, :1], ref[:, :1, :5], np.eye(4), {1: "one"})


def test_parse_labels():
    assert parse_labels("anterior=1, posterior=2") == {1: "anterior", 2: "posterior"}
    assert parse_labels("membrane=0") == {0: "membrane"}
    for bad in ("anterior", "a=x", "a=1,b=1", "a=1,a=2", "a=-1", " , "):
        with pytest.raises(InputError):
            parse_labels(bad)


def write_bundle(root, channel_def):
    (root / "configs").mkdir(parents=True)
    metadata = {"network_data_format": {"outputs": {"pred": {"channel_def": channel_def}}}}
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=4))
    return root


def test_labels_from_bundle_skip_background(tmp_path):
    bundle = write_bundle(tmp_path / "hippo", {"0": "background", "1": "anterior", "2": "posterior"})
    assert labels_from_bundle(bundle) == {1: "anterior", 2: "posterior"}
    em = write_bundle(tmp_path / "em", {"0": "membrane", "1": "cell"})
    assert labels_from_bundle(em) == {0: "membrane", 1: "cell"}


def test_bundle_errors_name_the_metadata_file(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        labels_from_bundle(tmp_path)
    broken = write_bundle(tmp_path / "b", {"0": "background"})
    with pytest.raises(BundleError, match="only background") as info:
        labels_from_bundle(broken)
    assert info.value.path == broken / "configs" / "metadata.json"
    (tmp_path / "c" / "configs").mkdir(parents=True)
    (tmp_path / "c" / "configs" / "metadata.json").write_text("{}")
    with pytest.raises(BundleError, match="channel_def"):
        labels_from_bundle(tmp_path / "c")
