"""The EM cross-validation folds (configs/folds.json, scripts/make_split.py --em_folds) and the fold driver
(scripts/em_cv.py): contiguous held-out blocks covering the labelled slices once, and no training slice in or next
to its fold's held-out block."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDS_FILE = ROOT / "bundles" / "em_membrane_segmentation" / "configs" / "folds.json"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_split():
    return _load("make_split")


@pytest.fixture(scope="module")
def em_cv():
    _load("em_calibrate")  # em_cv imports it by name, as it does when run from scripts/
    return _load("em_cv")


@pytest.fixture(scope="module")
def shipped():
    return json.loads(FOLDS_FILE.read_text())


def test_shipped_folds_are_the_seeded_split(make_split, shipped):
    assert shipped["folds"] == make_split.em_folds(
        shipped["n_slices"], len(shipped["folds"]), shipped["seed"]
    )
    assert shipped["n_slices"] == 24 and len(shipped["folds"]) == 5


def test_held_out_blocks_are_contiguous_and_cover_every_labelled_slice_once(shipped):
    held = [fold["held_out"] for fold in shipped["folds"]]
    assert sorted(s for block in held for s in block) == list(range(24))
    for block in held:
        assert block == list(range(block[0], block[-1] + 1))
        assert len(block) in (4, 5)


def test_no_training_slice_is_held_out_or_next_to_the_held_out_block(shipped):
    for fold in shipped["folds"]:
        training, held = set(fold["training"]), set(fold["held_out"])
        assert not training & held
        assert all(abs(t - h) >= 2 for t in training for h in held), (
            "a training slice touches the held-out block"
        )
        # every other slice trains: only the one-slice gap on each side is left out
        neighbours = {h + d for h in held for d in (-1, 1)} - held
        assert set(fold["gap"]) == {s for s in neighbours if 0 <= s < 24}
        assert training | held | set(fold["gap"]) == set(range(24))


def test_the_seed_only_moves_the_short_blocks(make_split):
    a, b = make_split.em_folds(24, 5, seed=1), make_split.em_folds(24, 5, seed=7)
    assert sorted(len(f["held_out"]) for f in a) == sorted(len(f["held_out"]) for f in b) == [4, 5, 5, 5, 5]
    assert make_split.em_folds(24, 5, seed=1) == a  # fixed by the seed
    assert [len(f["held_out"]) for f in make_split.em_folds(10, 5, seed=3)] == [2] * 5
    with pytest.raises(ValueError, match="k <= n_slices"):
        make_split.em_folds(3, 5, seed=0)


def test_make_split_writes_the_folds_file(make_split, tmp_path, monkeypatch, shipped):
    out = tmp_path / "folds.json"
    monkeypatch.setattr(sys, "argv", ["make_split.py", "--em_folds", "5", "--out", str(out)])
    make_split.main()
    assert json.loads(out.read_text()) == shipped


def test_fold_datalist_and_training_command(em_cv, shipped, tmp_path):
    fold = shipped["folds"][1]
    path = em_cv.write_fold_datalist(tmp_path / "fold1", fold)
    datalist = json.loads(path.read_text())
    assert [i["label"] for i in datalist["training"]] == [f"train/label/{k}.png" for k in fold["training"]]
    assert [i["image"] for i in datalist["validation"]] == [f"train/image/{k}.png" for k in fold["held_out"]]
    command = em_cv.train_command(
        tmp_path / "fold1", Path("/data"), max_epochs=7, num_workers=3, num_threads=2
    )
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options["--datalist_file"] == str(path)
    assert options["--ckpt_dir"] == str(tmp_path / "fold1")
    assert options["--val_interval"] == options["--max_epochs"] == "7"  # validated once, after the last epoch
    assert "--init_checkpoint" not in options and "--learning_rate" not in options  # train.json's own
    warm = em_cv.train_command(
        tmp_path / "fold1",
        Path("/data"),
        max_epochs=7,
        num_workers=3,
        num_threads=2,
        init_checkpoint=Path("/earlier/fold1/checkpoint_epoch=120.pt"),
        learning_rate=5e-4,
    )
    options = dict(zip(warm[4::2], warm[5::2], strict=True))
    assert options["--init_checkpoint"] == "/earlier/fold1/checkpoint_epoch=120.pt"
    assert options["--learning_rate"] == "0.0005"


def test_a_warm_restart_loads_only_the_fold_network_and_is_off_by_default(tmp_path):
    """train.json's init_checkpoint: MONAI's CheckpointLoader of the network alone (a fresh optimizer and
    schedule), and no such handler unless a checkpoint is named."""
    import torch
    from monai.bundle import ConfigParser
    from monai.handlers import CheckpointLoader

    config = str(
        Path(__file__).resolve().parents[2]
        / "bundles"
        / "em_membrane_segmentation"
        / "configs"
        / "train.json"
    )

    def loaders(**overrides):
        parser = ConfigParser()
        parser.read_config(config)
        parser.update({"dataset_dir": str(tmp_path), "datalist_file": str(datalist), **overrides})
        return [h for h in parser.get_parsed_content("train#handlers") if isinstance(h, CheckpointLoader)]

    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": [], "validation": []}))
    assert loaders() == []
    parser = ConfigParser()
    parser.read_config(config)
    network = parser.get_parsed_content("network_def")
    checkpoint = tmp_path / "checkpoint_epoch=120.pt"
    torch.save({"network": network.state_dict(), "optimizer": {}}, checkpoint)
    (loader,) = loaders(init_checkpoint=str(checkpoint))
    assert loader.load_path == str(checkpoint) and list(loader.load_dict) == ["network"]


def test_export_packs_the_fold_networks_as_one_fp16_ensemble_state_dict(em_cv, tmp_path):
    import torch

    from app.networks.ensemble import EnsembleNetwork
    from app.networks.unet import ClassicUNet

    tiny = (4, 8, 8, 16, 16, 4)
    torch.manual_seed(0)
    folds = [ClassicUNet(2, 1, 2, features=tiny) for _ in range(5)]
    for i, net in enumerate(folds):
        (tmp_path / f"fold{i}").mkdir()
        for epoch in (3, 12):  # the last epoch is exported, whatever else is there
            state = net.state_dict() if epoch == 12 else {}
            torch.save(
                {"network": state, "optimizer": {}}, tmp_path / f"fold{i}" / f"checkpoint_epoch={epoch}.pt"
            )
    em_cv.export(tmp_path, tmp_path / "model.pt")
    packed = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in packed.values() if v.is_floating_point())
    ensemble = EnsembleNetwork(ClassicUNet(2, 1, 2, features=tiny), 5)
    ensemble.load_state_dict(packed, strict=True)
    for i, net in enumerate(folds):
        for name, value in net.state_dict().items():
            loaded = ensemble.members[i].state_dict()[name]
            assert loaded.dtype == value.dtype
            assert torch.equal(loaded, value.half().to(value.dtype)), name
        single = torch.load(tmp_path / f"fold{i}_fp16.pt", weights_only=True)
        assert single.keys() == net.state_dict().keys()


def test_the_bundle_ships_the_fold_ensemble_of_the_architecture_train_json_trains():
    """inference.json and evaluate.json load models/model.pt as the ensemble of one member per fold, each of
    train.json's architecture; single.json turns either back into one network (a train.json run's model)."""
    import torch
    from monai.bundle import ConfigParser

    from app.networks.ensemble import EnsembleNetwork
    from app.networks.unet import ClassicUNet

    configs = ROOT / "bundles" / "em_membrane_segmentation" / "configs"
    member = json.loads((configs / "train.json").read_text())["network_def"]
    n_folds = len(json.loads(FOLDS_FILE.read_text())["folds"])
    for files in (["inference.json"], ["train.json", "evaluate.json"]):
        definition = json.loads((configs / files[-1]).read_text())["network_def"]
        assert definition["member"] == member and definition["n_members"] == n_folds, files
        parser = ConfigParser()
        parser.read_config([str(configs / f) for f in files])
        network = parser.get_parsed_content("network_def")
        assert isinstance(network, EnsembleNetwork) and len(network.members) == n_folds, files
        assert parser.get_parsed_content("model_file").endswith("/models/model.pt"), files
        parser = ConfigParser()
        parser.read_config([str(configs / f) for f in [*files, "single.json"]])
        assert isinstance(parser.get_parsed_content("network_def"), ClassicUNet), files
        assert parser.get_parsed_content("model_file").endswith("/models/train/model.pt"), files
    # the shipped weights: fp16 (half the file), every member's tensors present, upcast to fp32 at load
    packed = torch.load(
        ROOT / "bundles" / "em_membrane_segmentation" / "models" / "model.pt", weights_only=True
    )
    assert {v.dtype for v in packed.values() if v.is_floating_point()} == {torch.float16}
    network.load_state_dict(packed, strict=True)
    assert {p.dtype for p in network.parameters()} == {torch.float32}


def _resolved(command: list[str]):
    """The ``monai.bundle run`` workflow of a fold command: its ``--id value`` pairs parsed by fire and merged over
    the config file by monai.bundle, as ``monai.bundle run`` does."""
    from fire.parser import DefaultParseValue
    from monai.bundle import create_workflow

    overrides = {
        key.lstrip("-"): DefaultParseValue(value)
        for key, value in zip(command[4::2], command[5::2], strict=True)
    }
    return create_workflow(config_file=overrides.pop("config_file"), **overrides)


@pytest.mark.parametrize("budget", [None, 1234.0])
def test_training_command_time_budget_reaches_the_bundle(em_cv, tmp_path, budget):
    """The fold command's overrides, parsed by fire and merged by monai.bundle as ``monai.bundle run`` does: no
    budget given means none in force (not train.json's default 3540 s, which a plain ``None`` override left in
    force: it stopped a 120-epoch warm restart at epochs 79-99)."""
    command = em_cv.train_command(
        tmp_path / "fold1", Path("/data"), max_epochs=7, num_workers=0, num_threads=1, time_budget_s=budget
    )
    workflow = _resolved(command)
    assert workflow.parser.get_parsed_content("time_budget_s") == budget
    assert workflow.parser.get_parsed_content("max_epochs") == 7


def test_recipe_overrides_reach_every_fold_as_resolved_config(em_cv, tmp_path):
    """``--override id=value`` (a variant of the recipe, e.g. plain cross-entropy) lands in the fold's resolved
    train.json: the loss loses its Dice term and the weight map its class balance and border term."""
    with pytest.raises(SystemExit):  # argparse's error exit, before any fold starts
        em_cv.main(["train", "--out_dir", str(tmp_path), "--override", "no_equals_sign"])
    with pytest.raises(SystemExit):  # the recipe's own ids have their own options; twice would be ambiguous
        em_cv.main(["train", "--out_dir", str(tmp_path), "--override", "max_epochs=3"])
    assert not (tmp_path / "fold0").exists()
    with pytest.raises(ValueError, match="max_epochs"):
        em_cv.train_command(tmp_path, Path("/data"), 7, 0, 1, overrides={"max_epochs": "3"})
    command = em_cv.train_command(
        tmp_path / "fold0",
        Path("/data"),
        max_epochs=7,
        num_workers=0,
        num_threads=1,
        overrides={"lambda_dice": "0", "w0": "0", "train#weight_transforms#0#balance_power": "0"},
    )
    workflow = _resolved(command)
    loss = workflow.parser.get_parsed_content("loss")
    assert (loss.lambda_ce, loss.lambda_dice) == (1.0, 0)
    weight_map = workflow.parser.get_parsed_content("train#weight_transforms")[0]
    label = np.zeros((1, 32, 32), dtype=np.int64)
    label[0, 4:14, 4:28] = 1
    label[0, 16:28, 4:28] = 1  # two cells two pixels apart: the border term would peak in the gap
    weights = np.asarray(weight_map({"label": label})["weight"])
    np.testing.assert_allclose(weights, 1.0)


def test_pixel_error_bound_finds_each_slice_s_own_threshold_and_the_best_common_one():
    """Two slices whose p(cell) separates cell from membrane at different levels: each slice's best threshold
    classifies it exactly (oracle 0), and no common threshold does both."""
    calibrate = _load("em_calibrate")
    rng = np.random.default_rng(0)
    labels, probabilities = {}, {}
    for k, (membrane_p, cell_p) in {0: (0.12, 0.38), 1: (0.52, 0.78)}.items():
        cell = rng.random((64, 48)) > 0.3  # labels in PIL's (H, W); probabilities in PILReader's (W, H)
        p = np.where(cell, cell_p, membrane_p).astype(np.float32)
        labels[k], probabilities[k] = cell, np.stack([1.0 - p, p]).transpose(0, 2, 1)
    bound = calibrate.pixel_error_bound(probabilities, labels)
    assert bound.oracle == {0: 0.0, 1: 0.0}
    assert bound.oracle_mean() == 0.0
    # 0.12 <= t < 0.38 is exact on slice 0 and calls all of slice 1 cell (its membrane fraction wrong);
    # 0.52 <= t < 0.78 the reverse (slice 0's cell fraction wrong); membrane is the smaller class, so the
    # lowest scanned threshold of the first range wins
    membrane_1 = float((~labels[1]).mean())
    assert membrane_1 < float(labels[0].mean())
    assert bound.global_threshold == 0.15
    assert bound.global_error == pytest.approx(membrane_1 / 2, abs=1e-9)


def test_error_rings_put_a_shifted_membrane_next_to_the_boundary_and_a_false_one_farther():
    """error_rings: a membrane drawn one pixel off the annotated one is wrong only next to the annotated boundary
    (ring 1); a membrane drawn through the middle of a cell is wrong farther away; the rings sum to the pixel
    error."""
    from app.evaluation.em import pixel_error

    calibrate = _load("em_calibrate")
    truth = np.ones((32, 32), bool)
    truth[:, 15:17] = False  # a 2-px membrane between two cells
    shifted = np.ones_like(truth)
    shifted[:, 16:18] = False  # the same membrane one pixel to the right: 2 x 32 pixels wrong
    rings = calibrate.error_rings(shifted, truth)
    assert rings.tolist() == pytest.approx([64 / 1024, 0.0, 0.0])
    false = truth.copy()
    false[:, 5] = False  # a membrane drawn 10 px inside the left cell: distance 10 from the annotated one
    rings = calibrate.error_rings(false, truth)
    assert rings.tolist() == pytest.approx([0.0, 0.0, 32 / 1024])
    both = shifted & false
    assert calibrate.error_rings(both, truth).sum() == pytest.approx(pixel_error(both, truth))
    # the boundary: the 2 membrane columns and the cell column on each side of them, 4 x 32 pixels
    assert calibrate.boundary_fraction(truth) == pytest.approx(128 / 1024)
    # a label of one class has no boundary: its wrong pixels are all "farther"
    all_cell = np.ones_like(truth)
    assert calibrate.boundary_fraction(all_cell) == 0.0
    assert calibrate.error_rings(truth, all_cell).tolist() == pytest.approx([0.0, 0.0, 64 / 1024])


def test_mean_maps_averages_each_slice_across_runs_and_refuses_runs_over_other_slices():
    """mean_maps: the cross-run ensemble of out-of-fold maps, slice by slice; runs that predicted different
    slices cannot be averaged (one of them would not be out-of-fold over the same set)."""
    calibrate = _load("em_calibrate")
    a = {0: np.full((2, 4, 4), 0.2, np.float32), 1: np.full((2, 4, 4), 0.6, np.float32)}
    b = {0: np.full((2, 4, 4), 0.4, np.float32), 1: np.full((2, 4, 4), 1.0, np.float32)}
    mean = calibrate.mean_maps([a, b])
    assert sorted(mean) == [0, 1]
    assert mean[0] == pytest.approx(np.full((2, 4, 4), 0.3))
    assert mean[1] == pytest.approx(np.full((2, 4, 4), 0.8))
    with pytest.raises(SystemExit, match="same slices"):
        calibrate.mean_maps([a, {0: b[0]}])
