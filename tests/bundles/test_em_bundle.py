"""The EM membrane bundle: metrics, weight map on real labels, configs, a short training, inference, PNG I/O."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

EM = Path(__file__).resolve().parents[2] / "bundles" / "em_membrane_segmentation"
CONFIGS = EM / "configs"
TOY_FEATURES = [4, 4, 8, 8, 16, 4]


@pytest.fixture(scope="module")
def em_data(shared_data) -> Path:
    path = shared_data / "isbi2012-em"
    if not path.is_dir():
        pytest.skip(f"ISBI 2012 data not found at {path}")
    return path


@pytest.fixture
def em_train_overrides(em_data, tmp_path):
    """train.json as a seconds-long run: 2 real training slices, 1 validation slice, toy network."""
    return {
        "bundle_root": str(EM),
        "dataset_dir": str(em_data),
        "ckpt_dir": str(tmp_path / "models"),
        "output_dir": str(tmp_path / "eval"),
        "train#dataset#data": "$@train_datalist[:2]",
        "validate#dataset#data": "$@val_datalist[:1]",
        "network_def#features": TOY_FEATURES,
        "max_epochs": 1,
        "val_interval": 1,
    }


def _cells(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 127


# --- metrics (app.evaluation.em) on hand-made cases -------------------------------------------------------


def _two_cells(gap: int = 1) -> np.ndarray:
    """20x20 image, membrane frame of 1 px, two cells side by side separated by ``gap`` membrane columns."""
    cell = np.zeros((20, 20), bool)
    cell[1:19, 1:9] = True
    cell[1:19, 9 + gap : 19] = True
    return cell


def test_pixel_and_rand_error_on_hand_made_cells():
    from app.evaluation.em import adapted_rand_error, cell_components, pixel_error

    truth = _two_cells()
    assert pixel_error(truth, truth) == 0.0
    assert adapted_rand_error(truth, truth) == 0.0
    assert cell_components(truth).max() == 2
    # a diagonal contact does not join cells (4-connectivity)
    diagonal = np.zeros((4, 4), bool)
    diagonal[0, 0] = diagonal[1, 1] = True
    assert cell_components(diagonal).max() == 2

    merged = truth.copy()
    merged[5, 9] = True  # one pixel of membrane lost: the two cells become one
    assert pixel_error(merged, truth) == pytest.approx(1 / 400)
    for mode in ("unassigned", "segment", "thinned"):  # no way of counting membranes undoes a merge
        assert adapted_rand_error(merged, truth, membrane=mode) > 0.3  # two cells merged: F = 2/3 of pairs

    thick = truth.copy()
    thick[:, 8] = thick[:, 10] = False  # membrane 3 px wide instead of 1: same cells, thinner
    assert pixel_error(thick, truth) == pytest.approx(36 / 400)
    # singletons: the 36 pixels split off their cells (recall 0.78), nothing is merged (precision 1)
    assert adapted_rand_error(thick, truth) == pytest.approx(1 - 2 * 0.7787 / 1.7787, abs=1e-3)
    assert adapted_rand_error(thick, truth, membrane="segment") > 0.05  # one segment that joins both cells
    assert adapted_rand_error(thick, truth, membrane="thinned") == 0.0
    with pytest.raises(ValueError, match="membrane must be one of"):
        adapted_rand_error(thick, truth, membrane="ignored")


def test_pixel_fscore_error_is_the_leaderboard_s_cell_pixel_f_score_by_hand():
    """The ISBI leaderboard's pixel error (Fiji PixelError: 1 - F-score, positives = label > 0 = cell interior),
    on the hand-made cells, next to the 1 - accuracy pixel error of the same maps."""
    from app.evaluation.em import pixel_error, pixel_fscore_error

    truth = _two_cells()  # 18 x 8 + 18 x 9 = 306 cell pixels, 94 membrane
    assert np.count_nonzero(truth) == 306
    assert pixel_fscore_error(truth, truth) == 0.0
    merged = truth.copy()
    merged[5, 9] = True  # one false-positive cell pixel: P = 306/307, R = 1
    assert pixel_fscore_error(merged, truth) == pytest.approx(1 - 2 * (306 / 307) / (1 + 306 / 307))
    assert pixel_fscore_error(merged, truth) == pytest.approx(1 / 613)
    thick = truth.copy()
    thick[:, 8] = thick[:, 10] = False  # 36 cell pixels lost: P = 1, R = 270/306
    assert pixel_fscore_error(thick, truth) == pytest.approx(36 / 576)  # 0.0625
    assert pixel_error(thick, truth) == pytest.approx(36 / 400)  # 0.09: the two definitions differ
    # cell interior is the positive class: with membrane positive the same map would score 36/224
    assert pixel_fscore_error(~thick, ~truth) == pytest.approx(36 / 224)
    # edge cases: no shared cell pixel is the worst, also no cell pixel at all (F = 0/0: Fiji reports the worst)
    empty = np.zeros_like(truth)
    assert pixel_fscore_error(empty, empty) == 1.0
    assert pixel_fscore_error(empty, truth) == pixel_fscore_error(truth, empty) == 1.0
    # where cells are the minority the F form is the larger error: 1 wrong pixel of 100, 9 true cell pixels
    few = np.zeros((10, 10), bool)
    few[0, :9] = True
    more = few.copy()
    more[0, 9] = True
    assert pixel_error(more, few) == pytest.approx(0.01)
    assert pixel_fscore_error(more, few) == pytest.approx(1 / 19)
    with pytest.raises(ValueError, match="same shape"):
        pixel_fscore_error(truth, truth[:10])


def _reference_foreground_restricted_rand_error(pred_cell: np.ndarray, true_cell: np.ndarray) -> float:
    """The ISBI 2012 reference formula, written independently of app.evaluation.em (Fiji's
    trainableSegmentation RandError.adaptedRandIndexStats3DN2): contingency counts p_ij over the truth's cell
    pixels; the proposal's zero component (membrane) pruned from the column sums and the pair count, each of its
    pixels entering only as a singleton term aux / n."""
    from scipy import ndimage

    four = ndimage.generate_binary_structure(2, 1)
    true_labels, n_true = ndimage.label(true_cell, structure=four)
    pred_labels, n_pred = ndimage.label(pred_cell, structure=four)
    n = true_labels.size
    p = np.zeros((n_true + 1, n_pred + 1))
    np.add.at(p, (true_labels.ravel(), pred_labels.ravel()), 1)
    a = p[1:, :].sum(axis=1)
    b = p[1:, 1:].sum(axis=0)
    aux = p[1:, 0].sum()
    sum_a = (a**2).sum()
    sum_b = (b**2).sum() + aux / n
    sum_ab = (p[1:, 1:] ** 2).sum() + aux / n
    precision, recall = sum_ab / sum_b, sum_ab / sum_a
    return 1.0 - 2 * precision * recall / (precision + recall)


def test_rand_error_matches_the_challenge_reference_formula_on_a_real_slice(em_data):
    from scipy import ndimage

    from app.evaluation.em import adapted_rand_error

    truth = _cells(em_data / "train" / "label" / "3.png")
    rng = np.random.default_rng(0)
    thicker = ndimage.binary_erosion(truth)  # membranes 2 px wider: only splits of single pixels
    gaps = truth.copy()
    rows, cols = np.nonzero(~truth)
    pick = rng.choice(rows.size, size=rows.size // 50, replace=False)
    gaps[rows[pick], cols[pick]] = True  # 2% of the membrane pixels opened: merges
    for pred in (truth, thicker, gaps, ndimage.binary_dilation(truth)):
        expected = _reference_foreground_restricted_rand_error(pred, truth)
        assert adapted_rand_error(pred, truth) == pytest.approx(expected, abs=2e-3)
    assert adapted_rand_error(thicker, truth) < adapted_rand_error(thicker, truth, membrane="segment")


def test_rand_error_ignores_true_membrane_and_rejects_bad_shapes():
    from app.evaluation.em import adapted_rand_error

    truth = _two_cells(gap=3)
    pred = truth.copy()
    pred[:, 9:12] = True  # wrong on true membrane pixels only, but it joins the two cells: a merge
    assert adapted_rand_error(pred, truth) > 0.3
    pred = truth.copy()
    pred[19, 0] = True  # an isolated extra cell pixel on true membrane: ignored
    assert adapted_rand_error(pred, truth) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        adapted_rand_error(truth, truth[:10])


def test_monai_metric_adapter_gives_per_image_values():
    from app.engines.evaluation.em_metrics import EMSegmentationMetric

    truth = torch.from_numpy(_two_cells()).float()
    merged = truth.clone()
    merged[5, 9] = 1.0
    onehot = lambda m: torch.stack([1 - m, m])[None]  # noqa: E731
    metric = EMSegmentationMetric(score="pixel_error")
    values = metric(y_pred=torch.cat([onehot(truth), onehot(merged)]), y=torch.cat([onehot(truth)] * 2))
    assert values[:, 0].tolist() == pytest.approx([0.0, 1 / 400])
    assert float(metric.aggregate()) == pytest.approx(0.5 / 400)
    v_rand = EMSegmentationMetric(score="v_rand")(y_pred=onehot(truth), y=onehot(truth))
    assert float(v_rand) == pytest.approx(1.0)  # the leaderboard's F-score: 1 is best
    with pytest.raises(ValueError, match="unknown EM score"):
        EMSegmentationMetric(score="warping_error")


# --- inferer and handler pieces -----------------------------------------------------------------------------


def test_mirrored_sliding_window_returns_the_input_grid():
    from app.engines.inferers.overlap_tile import MirroredSlidingWindowInferer

    image = torch.rand(1, 1, 100, 90)
    inferer = MirroredSlidingWindowInferer(margin=8, roi_size=(64, 64), overlap=0.5, mode="gaussian")
    out = inferer(image, lambda x: torch.cat([x, 2 * x], dim=1))  # a stub network with known output
    assert out.shape == (1, 2, 100, 90)
    torch.testing.assert_close(out[:, :1], image)
    torch.testing.assert_close(out[:, 1:], 2 * image)
    with pytest.raises(ValueError, match="margin"):
        MirroredSlidingWindowInferer(margin=200, roi_size=(64, 64))(image, lambda x: x)


def test_time_budget_stops_at_an_epoch_boundary():
    from ignite.engine import Engine

    from app.engines.training.handlers import StopOnTimeBudget

    engine = Engine(lambda e, batch: None)
    StopOnTimeBudget(seconds=0.0).attach(engine)
    engine.run([0, 1, 2], max_epochs=5)
    assert engine.state.epoch == 1 and engine.state.iteration == 3
    unlimited = Engine(lambda e, batch: None)
    StopOnTimeBudget(seconds=None).attach(unlimited)
    unlimited.run([0, 1], max_epochs=3)
    assert unlimited.state.epoch == 3


# --- the bundle -------------------------------------------------------------------------------------------


def test_metadata_validates_offline_and_names_the_classes(verify_metadata):
    result = verify_metadata(CONFIGS / "metadata.json")
    assert result.returncode == 0, result.stderr
    assert "verified with no error" in result.stdout + result.stderr
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"] == {"0": "membrane", "1": "cell"}
    assert "non-commercial" in meta["intended_use"].lower()


def test_datalist_split_is_contiguous_with_a_gap():
    datalist = json.loads((CONFIGS / "datalist.json").read_text())
    index = lambda items: sorted(int(Path(i["image"]).stem) for i in items)  # noqa: E731
    train, val = index(datalist["training"]), index(datalist["validation"])
    assert train == list(range(18)) and val == list(range(20, 24))
    assert all(Path(i["image"]).name == Path(i["label"]).name for i in datalist["training"])
    assert len(datalist["testing"]) == 30


@pytest.mark.parametrize(
    ("files", "workflow_type"),
    [(["train.json"], "train"), (["inference.json"], "infer"), (["train.json", "evaluate.json"], "train")],
)
def test_configs_pass_monai_property_checks(files, workflow_type, em_train_overrides, em_data, init_workflow):
    # the checks instantiate every property, datasets included: keep them to a couple of slices
    override = (
        em_train_overrides
        if workflow_type == "train"
        else {"bundle_root": str(EM), "datalist": [{"image": str(em_data / "test" / "image" / "0.png")}]}
    )
    if "evaluate.json" in files:  # evaluates the shipped fold ensemble: the toy width goes to its member
        override = dict(override)
        override["network_def#member#features"] = override.pop("network_def#features")
    workflow = init_workflow([CONFIGS / f for f in files], workflow_type, **override)
    assert workflow.check_properties() in (None, [])
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "run"):
        assert key in workflow.parser, key


def test_inference_and_evaluation_apply_the_same_decision_rule():
    """The label rule (seeded watershed on p(cell)) is the same in inference.json and evaluate.json, so the
    evaluated numbers are those of what inference writes."""
    from monai.bundle import ConfigParser

    from app.transforms.watershed import SeededWatershedd

    def rule(files: list[str], key: str) -> dict:
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / f) for f in files])
        parser.update({"bundle_root": str(EM)})
        found = [t for t in parser.get_parsed_content(key).transforms if isinstance(t, SeededWatershedd)]
        assert len(found) == 1, files
        t = found[0]
        return {"threshold": t.threshold, "seeds": t.seed_threshold, "min": t.min_seed_size, "ch": t.channel}

    inference = rule(["inference.json"], "postprocessing")
    assert inference == rule(["train.json", "evaluate.json"], "validate#postprocessing")
    assert inference == {"threshold": 0.15, "seeds": 0.9, "min": 100, "ch": 1}


def test_multi_gpu_overlay_parses_and_turns_the_time_budget_off():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")])
    for key in ("train#sampler", "validate#sampler", "train#trainer#train_handlers", "finalize"):
        assert key in parser, key
    assert parser["time_budget_s"] is None  # ranks must not decide to stop on their own clocks


def test_multi_gpu_config_trains_with_torchrun_gloo_on_cpu(em_data, tmp_path, torchrun):
    overrides = {
        "--dataset_dir": str(em_data),
        "--ckpt_dir": str(tmp_path / "models"),
        "--output_dir": str(tmp_path / "eval"),
        "--train#dataset#data": "$@train_datalist[:4]",
        "--validate#dataset#data": "$@val_datalist[:2]",
        "--network_def#features": json.dumps(TOY_FEATURES),
        "--max_epochs": "1",
        "--val_interval": "1",
    }
    result = torchrun([CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json"], overrides, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()
    assert (tmp_path / "models" / "model.pt").is_file()


def test_weight_map_is_cached_and_deformed_with_the_label(em_train_overrides):
    from monai.bundle import ConfigParser
    from monai.transforms import Randomizable

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"bundle_root": str(EM)})
    transforms = parser.get_parsed_content("train#preprocessing").transforms
    names = [type(t).__name__ for t in transforms]
    first_random = next(i for i, t in enumerate(transforms) if isinstance(t, Randomizable))
    assert names.index("UNetWeightMapd") < first_random
    spatial = [t for t in transforms if type(t).__name__ in ("Rand2DElasticd", "RandFlipd", "RandRotate90d")]
    assert len(spatial) == 4 and all("weight" in t.keys for t in spatial)
    elastic = next(t for t in transforms if type(t).__name__ == "Rand2DElasticd")
    modes = dict(zip(elastic.keys, elastic.mode, strict=True))
    assert modes == {"image": "bilinear", "label": "nearest", "weight": "bilinear"}
    assert elastic.rand_2d_elastic.deform_grid.spacing == [256, 256]
    assert elastic.rand_2d_elastic.deform_grid.magnitude == [10.0, 10.0]


def test_weight_map_on_a_real_label_slice(em_data):
    """High weights in one-pixel gaps between cells; w_c alone far from any border."""
    from monai.bundle import ConfigParser
    from scipy import ndimage

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"bundle_root": str(EM)})
    deterministic = parser.get_parsed_content("train#deterministic_transforms")
    item = {"image": str(em_data / "train/image/0.png"), "label": str(em_data / "train/label/0.png")}
    for transform in deterministic:
        item = transform(item)
    margin = parser.get_parsed_content("mirror_margin")
    crop = (0, slice(margin, -margin), slice(margin, -margin))
    label = item["label"][crop].numpy().astype(int)
    weight = item["weight"][crop].numpy()
    assert label.shape == weight.shape == (512, 512)
    np.testing.assert_array_equal(label.T * 255, np.asarray(Image.open(em_data / "train/label/0.png")))

    w_cell = label.size / (2 * np.count_nonzero(label == 1))
    w_membrane = label.size / (2 * np.count_nonzero(label == 0))
    cells, _ = ndimage.label(label == 1, structure=ndimage.generate_binary_structure(2, 1))
    distance = ndimage.distance_transform_edt(cells == 0)
    # cell pixels carry w_c only; membrane pixels far (> 30 px) from every cell carry w_c + ~0
    np.testing.assert_allclose(weight[label == 1], w_cell, rtol=1e-5)
    far = (label == 0) & (distance > 30)
    if far.any():
        np.testing.assert_allclose(weight[far], w_membrane, atol=1e-3)
    # narrow gaps: runs of g = 1..3 membrane pixels along a row or a column between two different cells, where
    # 2 <= d1 + d2 <= g + 1, so w_c + w0 exp(-(g+1)^2 / 50) <= w <= w_c + w0 exp(-4 / 50)
    found = 0
    for g in (1, 2, 3):
        gap = _gap_pixels(label == 0, cells, g) | _gap_pixels((label == 0).T, cells.T, g).T
        found += gap.sum()
        low = w_membrane + 10.0 * np.exp(-((g + 1) ** 2) / (2 * 5.0**2))
        high = w_membrane + 10.0 * np.exp(-4 / (2 * 5.0**2))
        assert np.all((weight[gap] >= low - 1e-4) & (weight[gap] <= high + 1e-4)), g
    assert found > 100
    assert w_membrane + 8.0 < weight.max() <= w_membrane + 10.0 * np.exp(-4 / 50) + 1e-4


def _gap_pixels(membrane: np.ndarray, cells: np.ndarray, width: int) -> np.ndarray:
    """Membrane pixels in runs of exactly ``width`` along axis 1 that separate two different cells."""
    gap = np.zeros_like(membrane)
    n = membrane.shape[1]
    for x in range(1, n - width):
        left, right = cells[:, x - 1], cells[:, x + width]
        run = membrane[:, x : x + width].all(axis=1) & (left > 0) & (right > 0) & (left != right)
        gap[run, x : x + width] = True
    return gap


def test_short_training_on_two_real_slices(em_train_overrides, tmp_path, run_workflow):
    workflow = run_workflow([CONFIGS / "train.json"], "train", **em_train_overrides)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1
    assert trainer.state.iteration == 1  # 2 slices, batch size 2 (each giving 2 patches)
    assert np.isfinite(float(trainer.state.output[0]["loss"]))
    metrics = workflow.parser.get_parsed_content("validate#evaluator").state.metrics
    for name in (
        "val_rand_error",
        "val_rand_error_thinned",
        "val_pixel_error",
        "val_pixel_fscore_error",
        "val_v_rand",
        "val_v_info",
    ):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert (tmp_path / "models" / "model.pt").is_file()
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()


def test_inference_on_a_real_slice_gives_its_size_in_0_255_and_matches_the_label(
    em_data, tmp_path, run_workflow
):
    """Golden end-to-end check with the shipped weights on validation slice 20 (never trained on)."""
    source = em_data / "train" / "image" / "20.png"
    out_dir = tmp_path / "out"
    run_workflow(
        [CONFIGS / "inference.json"],
        "infer",
        bundle_root=str(EM),
        datalist=[{"image": str(source)}],
        output_dir=str(out_dir),
    )
    written = out_dir / "20_seg.png"
    assert written.is_file()
    seg = Image.open(written)
    assert seg.mode == "L" and seg.size == Image.open(source).size
    seg = np.asarray(seg)
    assert set(np.unique(seg)) <= {0, 255}
    from app.evaluation.em import adapted_rand_error, pixel_error

    truth = _cells(em_data / "train" / "label" / "20.png")
    assert pixel_error(seg > 127, truth) < 0.12
    assert adapted_rand_error(seg > 127, truth, membrane="thinned") < 0.2


def test_png_round_trip_through_the_bundle_reader_and_writer(em_data, tmp_path):
    """Label PNG -> bundle loader (0/1) -> bundle writer -> PIL: the same pixels, the same orientation."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"bundle_root": str(EM), "output_dir": str(tmp_path)})
    loader = parser.get_parsed_content("preprocessing").transforms[0]
    writer = parser.get_parsed_content("postprocessing").transforms[-1]
    source = em_data / "train" / "label" / "3.png"
    item = loader({"image": str(source)})
    item["pred"] = (item["image"] > 127).float()  # a 0/1 class map, as after argmax
    writer(item)
    back = Image.open(tmp_path / "3_seg.png")
    assert back.mode == "L"
    np.testing.assert_array_equal(np.asarray(back), np.asarray(Image.open(source)))


def test_unetseg_infer_on_pngs_and_a_tiff_stack_equals_the_bundle_and_scores_em(
    em_data, tmp_path, run_workflow
):
    """`unetseg infer` with the EM bundle: a PNG slice and a 2-page TIFF stack of real validation slices give
    label pictures of the input's size in 0/255, identical to `monai.bundle run`'s, and --ref adds the EM
    scores."""
    import csv

    import tifffile

    from app.cli.main import main

    images, labels = em_data / "train" / "image", em_data / "train" / "label"
    inputs, refs = tmp_path / "in", tmp_path / "ref"
    inputs.mkdir()
    refs.mkdir()
    (inputs / "s20.png").write_bytes((images / "20.png").read_bytes())
    pages = [np.asarray(Image.open(images / f"{n}.png")) for n in (21, 22)]
    tifffile.imwrite(inputs / "stack.tif", np.stack(pages))
    (refs / "s20.png").write_bytes((labels / "20.png").read_bytes())
    tifffile.imwrite(
        refs / "stack.tif", np.stack([np.asarray(Image.open(labels / f"{n}.png")) for n in (21, 22)])
    )

    out = tmp_path / "out"
    argv = [
        "infer",
        str(inputs),
        "--bundle",
        str(EM),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--ref",
        str(refs),
    ]
    assert main([*argv, "--backend", "torch"]) == 0
    single = np.asarray(Image.open(out / "s20" / "s20_seg.png"))
    stack = tifffile.imread(out / "stack" / "stack_seg.tif")
    assert single.shape == (512, 512) and single.dtype == np.uint8 and set(np.unique(single)) == {0, 255}
    assert stack.shape == (2, 512, 512) and set(np.unique(stack)) == {0, 255}

    bundle_out = tmp_path / "bundle_out"
    run_workflow(
        [CONFIGS / "inference.json"],
        "infer",
        bundle_root=str(EM),
        datalist=[{"image": str(images / f"{n}.png")} for n in (20, 21, 22)],
        output_dir=str(bundle_out),
    )
    np.testing.assert_array_equal(single, np.asarray(Image.open(bundle_out / "20_seg.png")))
    for page, n in zip(stack, (21, 22), strict=True):
        np.testing.assert_array_equal(page, np.asarray(Image.open(bundle_out / f"{n}_seg.png")))

    summary = json.loads((out / "summary.json").read_text())
    assert summary["em"]["n"] == 2 and summary["em"]["flags"] == {"ok": 2}
    rows = {r["case_id"]: r for r in csv.DictReader((out / "em_metrics.csv").open())}
    from app.evaluation.em import adapted_rand_error

    expected = adapted_rand_error(single == 255, np.asarray(Image.open(labels / "20.png")) > 127)
    assert float(rows["s20"]["rand_error"]) == pytest.approx(expected)
    assert summary["labels"]["cell"]["label"] == 255
    report = json.loads((out / "report.json").read_text())
    assert report["evaluation"]["mean_em"]["rand_error"] == pytest.approx(
        summary["em"]["metrics"]["rand_error"]["mean"], abs=1e-4
    )
