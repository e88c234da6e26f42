"""The hippocampus bundle: configs, training, resume, NaN stop, inference on the input grid, DDP on CPU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

HIPPO = Path(__file__).resolve().parents[2] / "bundles" / "hippocampus_mri_segmentation"
CONFIGS = HIPPO / "configs"
TOY_FEATURES = [4, 4, 8, 8, 16, 4]


def test_metadata_validates_offline_and_names_the_labels(verify_metadata):
    result = verify_metadata(CONFIGS / "metadata.json")
    assert result.returncode == 0, result.stderr
    assert "verified with no error" in result.stdout + result.stderr
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"] == {
        "0": "background",
        "1": "anterior",
        "2": "posterior",
    }
    assert (
        "not for diagnosis" in meta["intended_use"].lower() or "research only" in meta["intended_use"].lower()
    )


@pytest.mark.parametrize(
    ("files", "workflow_type"),
    [(["train.json"], "train"), (["inference.json"], "infer"), (["train.json", "evaluate.json"], "train")],
)
def test_configs_pass_monai_property_checks(files, workflow_type, hippo_train_overrides, init_workflow):
    # the checks instantiate every property, datasets included: keep them to the overrides' few cases
    override = hippo_train_overrides if workflow_type == "train" else {}
    workflow = init_workflow([CONFIGS / f for f in files], workflow_type, **override)
    assert workflow.check_properties() in (None, [])
    parser = workflow.parser
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "run"):
        assert key in parser, key


def test_multi_gpu_overlay_parses_and_keeps_train_keys():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")])
    for key in (
        "train#sampler",
        "validate#sampler",
        "train#trainer#train_handlers",
        "finalize",
        "dist_backend",
    ):
        assert key in parser, key


def test_train_one_epoch_on_real_cases_writes_best_and_full_state(
    hippo_train_overrides, tmp_path, run_workflow
):
    workflow = run_workflow([CONFIGS / "train.json"], "train", **hippo_train_overrides)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1
    assert trainer.state.iteration == 2  # 4 cases, batch size 2
    assert np.isfinite(float(trainer.state.output[0]["loss"]))
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    assert 0.0 <= evaluator.state.metrics["val_mean_dice"] <= 1.0
    assert (tmp_path / "models" / "model.pt").is_file()
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()
    state = torch.load(tmp_path / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    assert {"network", "optimizer", "lr_scheduler", "trainer"} <= set(state)


def test_weight_map_is_cached_before_the_first_random_transform(hippo_train_overrides):
    """The weight map must be in the cached (deterministic) part, not recomputed every iteration."""
    from monai.bundle import ConfigParser
    from monai.transforms import Randomizable

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({k: v for k, v in hippo_train_overrides.items() if k in ("bundle_root", "dataset_dir")})
    transforms = parser.get_parsed_content("train#preprocessing").transforms
    names = [type(t).__name__ for t in transforms]
    first_random = next(i for i, t in enumerate(transforms) if isinstance(t, Randomizable))
    assert names.index("UNetWeightMapd") < first_random
    spatial = [
        t for t in transforms if type(t).__name__ in ("Rand3DElasticd", "RandFlipd", "RandSpatialCropd")
    ]
    assert spatial and all("weight" in t.keys for t in spatial)


def test_resume_continues_from_the_saved_epoch(hippo_train_overrides, tmp_path, run_workflow):
    run_workflow([CONFIGS / "train.json"], "train", **hippo_train_overrides)
    resumed = run_workflow(
        [CONFIGS / "train.json"], "train", **{**hippo_train_overrides, "max_epochs": 2, "resume": True}
    )
    trainer = resumed.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2
    assert trainer.state.iteration == 4  # 2 iterations restored + 2 new ones, not 2 from scratch
    from app.engines.training.handlers import latest_checkpoint

    assert latest_checkpoint(tmp_path / "models") == tmp_path / "models" / "checkpoint_epoch=2.pt"


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(hippo_train_overrides, tmp_path, run_workflow):
    run_workflow([CONFIGS / "train.json"], "train", **hippo_train_overrides)
    good = torch.load(tmp_path / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    nan_loss = "$lambda pred, target: pred.sum() * float('nan')"
    workflow = run_workflow(
        [CONFIGS / "train.json"],
        "train",
        **{**hippo_train_overrides, "max_epochs": 3, "resume": True, "loss": nan_loss},
    )
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert getattr(trainer.state, "nonfinite_loss", False)
    assert trainer.state.iteration == 3  # stopped at the first bad iteration after the resumed 2
    assert not (tmp_path / "models" / "checkpoint_epoch=2.pt").exists()
    kept = torch.load(tmp_path / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    for name, tensor in kept["network"].items():
        assert torch.isfinite(tensor).all(), name
        assert torch.equal(tensor, good["network"][name]), name


def _dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    a, b = a == label, b == label
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def test_inference_writes_labels_on_the_input_grid_and_matches_ground_truth(
    shared_data, tmp_path, run_workflow
):
    """Golden end-to-end check with the shipped weights on two validation cases (never trained on)."""
    data = shared_data / "msd-hippocampus"
    cases = ["hippocampus_008", "hippocampus_035"]
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    for case in cases:
        (in_dir / f"{case}.nii.gz").symlink_to(data / "imagesTr" / f"{case}.nii.gz")
    # a third input on a different grid: the first case in LPS orientation with 0.8 mm voxels along one axis
    src = nib.load(data / "imagesTr" / f"{cases[0]}.nii.gz")
    flipped = np.ascontiguousarray(src.get_fdata()[::-1, ::-1, :])
    affine = src.affine @ np.array(
        [[-1, 0, 0, src.shape[0] - 1], [0, -1, 0, src.shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float
    )
    nib.save(nib.Nifti1Image(flipped.astype(np.float32), affine), in_dir / "lps_case.nii.gz")

    out_dir = tmp_path / "out"
    run_workflow(
        [CONFIGS / "inference.json"],
        "infer",
        bundle_root=str(HIPPO),
        dataset_dir=str(in_dir),
        output_dir=str(out_dir),
    )
    for case in [*cases, "lps_case"]:
        seg_path = out_dir / case / f"{case}_seg.nii.gz"
        assert seg_path.is_file(), seg_path
        seg = nib.load(seg_path)
        source = nib.load(in_dir / f"{case}.nii.gz")
        assert seg.shape == source.shape
        np.testing.assert_allclose(seg.affine, source.affine, atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}
    for case in cases:
        pred = np.asarray(nib.load(out_dir / case / f"{case}_seg.nii.gz").dataobj)
        ref = np.asarray(nib.load(data / "labelsTr" / f"{case}.nii.gz").dataobj)
        for label in (1, 2):
            assert _dice(pred, ref, label) > 0.75, (case, label)
    # the reoriented copy, mapped back to the original voxel order, gives the same segmentation
    lps = np.asarray(nib.load(out_dir / "lps_case" / "lps_case_seg.nii.gz").dataobj)[::-1, ::-1, :]
    orig = np.asarray(nib.load(out_dir / cases[0] / f"{cases[0]}_seg.nii.gz").dataobj)
    for label in (1, 2):
        assert _dice(lps, orig, label) > 0.95


@pytest.mark.skipif(os.cpu_count() is None, reason="needs a CPU count")
def test_multi_gpu_config_trains_with_torchrun_gloo_on_cpu(shared_data, tmp_path, torchrun):
    overrides = [
        "--bundle_root",
        str(HIPPO),
        "--dataset_dir",
        str(shared_data / "msd-hippocampus"),
        "--ckpt_dir",
        str(tmp_path / "models"),
        "--output_dir",
        str(tmp_path / "eval"),
        "--train#dataset#data",
        "$@train_datalist[:4]",
        "--validate#dataset#data",
        "$@val_datalist[:2]",
        "--network_def#features",
        json.dumps(TOY_FEATURES),
        "--num_workers",
        "0",
        "--max_epochs",
        "1",
        "--val_interval",
        "1",
    ]
    pairs = dict(zip(overrides[::2], overrides[1::2], strict=True))
    result = torchrun([CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json"], pairs)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()
    assert (tmp_path / "models" / "model.pt").is_file()


def test_evaluate_config_writes_monai_and_unetseg_reports_that_agree(
    hippo_train_overrides, tmp_path, run_workflow
):
    """evaluate.json scores with MONAI's handlers (MetricsSaver) and with app.evaluation (one implementation
    shared with `unetseg evaluate`); on the same predictions the two Dice values must agree."""
    import csv

    overrides = {k: v for k, v in hippo_train_overrides.items() if k != "network_def#features"}
    overrides["ckpt_dir"] = str(HIPPO / "models")  # the shipped weights
    run_workflow([CONFIGS / "train.json", CONFIGS / "evaluate.json"], "train", **overrides)
    eval_dir = tmp_path / "eval"
    monai_rows = list(csv.reader((eval_dir / "val_mean_dice_raw.csv").read_text().splitlines()))
    ours = list(csv.DictReader((eval_dir / "report" / "metrics.csv").read_text().splitlines()))
    assert (eval_dir / "report" / "report.html").stat().st_size > 10_000
    assert len(ours) == 2 * 2  # two cases, two labels
    by_case = {}
    for row in ours:
        by_case.setdefault(row["case_id"], {})[row["name"]] = float(row["dice"])
    for row in monai_rows[1:]:
        case = row[0].split("/")[-1].removesuffix(".nii.gz")
        monai_anterior, monai_posterior = float(row[1]), float(row[2])
        assert by_case[case]["anterior"] == pytest.approx(monai_anterior, abs=1e-4)
        assert by_case[case]["posterior"] == pytest.approx(monai_posterior, abs=1e-4)
