"""scripts/em_calibrate.py: the calibration slices never touch a predicting network's training slices, nor
validation, and the choice follows the stated rule."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "em_calibrate.py"


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("em_calibrate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_out_of_fold_slices_are_not_trained_on_nor_next_to_the_training_block(calibrate):
    datalist = json.loads((calibrate.BUNDLE / "configs" / "datalist.json").read_text())
    shipped_training = {int(Path(i["image"]).stem) for i in datalist["training"]}
    validation = {int(Path(i["image"]).stem) for i in datalist["validation"]}
    assert set(calibrate.VALIDATION) == validation
    predicted = set(calibrate.GAP)
    assert not predicted & shipped_training  # the gap slices are predicted by the shipped network
    for train, predict in calibrate.FOLDS:
        train, predict = set(train), set(predict)
        assert train <= shipped_training
        assert not predict & train
        assert not {k + d for k in train for d in (-1, 1)} & predict, (
            "a predicted slice touches the training block"
        )
        predicted |= predict
    assert not predicted & validation
    assert len(predicted) == 18


def test_choice_is_the_lowest_rand_error_within_the_pixel_slack(calibrate):
    rule = calibrate.Rule
    table = {
        rule(0.15): (0.10, 0.0871),
        rule(0.15, 0.9, 100): (0.075, 0.0873),
        rule(0.1, 0.9, 100): (0.068, 0.0871 + calibrate.PIXEL_SLACK + 1e-4),
    }
    assert calibrate.choose(table) == rule(0.15, 0.9, 100)


def test_folds_command_writes_the_datalists(calibrate, tmp_path, capsys):
    calibrate.main(["folds", "--out_dir", str(tmp_path), "--dataset_dir", "/data/isbi2012-em"])
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 2 and all("--datalist_file" in c for c in commands)
    fold0 = json.loads((tmp_path / "fold0" / "datalist.json").read_text())
    assert [i["image"] for i in fold0["training"]] == [f"train/image/{k}.png" for k in range(9)]
    assert [i["image"] for i in fold0["validation"]] == [f"train/image/{k}.png" for k in range(10, 18)]


def test_fold_networks_predict_their_held_out_slices_and_the_candidate_the_gap(calibrate, tmp_path):
    """Each fold's last checkpoint predicts only its out-of-fold slices; the gap slices go to ``weights`` (the
    shipped model when None); the result is cached and reused."""
    for i in range(2):
        (tmp_path / f"fold{i}").mkdir()
        for epoch in (9, 160, 20):
            (tmp_path / f"fold{i}" / f"checkpoint_epoch={epoch}.pt").touch()
    calls = []

    def predict(weights, slices):
        calls.append((weights, list(slices)))
        return {k: np.full((2, 3, 3), k, np.float32) for k in slices}

    candidate = tmp_path / "candidate.pt"
    probabilities = calibrate.calibration_probabilities(tmp_path, predict, candidate)
    assert calls == [
        (tmp_path / "fold0" / "checkpoint_epoch=160.pt", list(range(10, 18))),
        (tmp_path / "fold1" / "checkpoint_epoch=160.pt", list(range(0, 8))),
        (candidate, [18, 19]),
    ]
    assert sorted(probabilities) == [*range(0, 8), *range(10, 20)]
    cached = calibrate.calibration_probabilities(tmp_path, predict, candidate)
    assert len(calls) == 3 and all(np.array_equal(cached[k], probabilities[k]) for k in probabilities)


def test_nested_choice_ignores_the_fold_it_scores(calibrate):
    rule = calibrate.Rule
    a, b = rule(0.15, 0.9, 100), rule(0.1, 0.9, 100)
    folds = [[0, 1], [2, 3], [4]]
    # b wins by far on slices 0-1 and loses elsewhere: it is chosen pooled and whenever 0-1 are among the
    # slices the choice is made on; with fold 0 (slices 0-1) held out, a is chosen
    per_slice = {
        a: {0: (0.30, 0.08), 1: (0.30, 0.08), 2: (0.05, 0.08), 3: (0.05, 0.08), 4: (0.05, 0.08)},
        b: {0: (0.01, 0.08), 1: (0.01, 0.08), 2: (0.20, 0.08), 3: (0.20, 0.08), 4: (0.20, 0.08)},
    }
    assert calibrate.choose(calibrate._mean_table(per_slice, range(5))) == b
    assert calibrate.nested_choices(per_slice, folds) == [a, b, b]


def test_out_of_fold_probabilities_are_read_as_two_channels(calibrate, tmp_path):
    cells = {str(k): np.full((3, 4), 0.25, np.float16) for k in (1, 0)}
    np.savez_compressed(tmp_path / "oof_probabilities.npz", **cells)
    probabilities = calibrate.oof_probabilities(tmp_path)
    assert list(probabilities) == [0, 1]
    assert probabilities[0].shape == (2, 3, 4) and probabilities[0].dtype == np.float32
    np.testing.assert_allclose(probabilities[0][0], 0.75)
    with pytest.raises(SystemExit, match="missing"):
        calibrate.oof_probabilities(tmp_path / "nothing")


def test_shipping_decision_picks_the_run_then_compares_on_the_slices_neither_trained_on(calibrate):
    """decide: the candidate run by the rule criterion on nested (Rand, pixel); it ships only if, on slices 18-23,
    its fold networks have a lower Rand error than the shipped network and a pixel error within the slack."""
    unseen = list(calibrate.UNSEEN_BY_SHIPPED)
    assert unseen == [18, 19, 20, 21, 22, 23]

    def run(name, rand, pixel, unseen_rand, unseen_pixel):
        nested = {k: (rand, pixel, 0.9, 0.9, 0.05) for k in range(24)}
        nested |= {k: (unseen_rand, unseen_pixel, 0.9, 0.9, 0.05) for k in unseen}
        return calibrate.CrossValidation(Path(name), calibrate.SHIPPED_RULE, nested)

    shipped = {k: (0.07, 0.078, 0.95, 0.97, 0.05) for k in unseen}
    slack = calibrate.PIXEL_SLACK
    # the lower-Rand run is out of the pixel slack, so the other is the candidate; it beats the shipped network
    better, sloppy = run("a", 0.06, 0.083, 0.065, 0.079), run("b", 0.05, 0.090, 0.04, 0.090)
    assert calibrate.decide([sloppy, better], shipped) is better
    # ties or loses in Rand error on 18-23: not shipped, whatever its 24-slice score
    assert calibrate.decide([run("c", 0.03, 0.07, 0.07, 0.07)], shipped) is None
    # a lower Rand error but a pixel error above the shipped network's plus the slack: not shipped
    assert calibrate.decide([run("d", 0.05, 0.08, 0.06, 0.078 + slack + 1e-4)], shipped) is None


def test_all_scores_of_a_slice_are_the_app_s_scores_in_table_order(calibrate):
    """slice_scores(all_scores=True): the columns of ALL_SCORES, each the app's own score of the decided map."""
    from app.evaluation.em import adapted_rand_error, pixel_error, pixel_fscore_error
    from app.evaluation.em_thinned import v_info, v_rand

    truth = np.ones((40, 40), bool)
    truth[:, 19:21] = False  # two cells split by a 2-px membrane
    p_cell = np.where(truth, 0.9, 0.05).astype(np.float32)
    p_cell[5:9, 19:21] = 0.6  # a gap in the predicted membrane: the cells merge, 8 pixels wrong
    probabilities = {0: np.stack([1.0 - p_cell.T, p_cell.T])}  # PILReader's axis order, as oof_probabilities
    (scores,) = calibrate.slice_scores(
        calibrate.Rule(0.5), probabilities, {0: truth}, all_scores=True
    ).values()
    cell = p_cell > 0.5
    expected = (adapted_rand_error, pixel_error, v_rand, v_info, pixel_fscore_error)
    assert len(calibrate.ALL_SCORES) == len(scores) == len(expected)
    assert scores == pytest.approx([f(cell, truth) for f in expected])
    assert scores[1] == pytest.approx(8 / 1600) and scores[4] == pytest.approx(8 / (2 * 1520 + 8))
