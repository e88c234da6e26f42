"""Every branch of the empty-mask policy, and summaries that never drop a miss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.evaluation import evaluate_case, summarise
from app.evaluation.case import ReferenceStats, failed_case
from app.evaluation.policy import FLAGS, POLICY_TEXT, classify, fixed_values

SPACING = (0.5, 1.0, 3.0)
SHAPE = (20, 10, 8)
# the worst-case distance: the field-of-view diagonal ||(20 * 0.5, 10 * 1, 8 * 3)|| = ||(10, 10, 24)||
DIAGONAL = math.sqrt(10**2 + 10**2 + 24**2)


def maps():
    """Reference has labels 1 and 2; prediction has 1 and 3. Label 4 is in neither."""
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[2:8, 2:8, 2:6] = 1
    ref[12:18, 2:8, 2:6] = 2
    pred = np.zeros(SHAPE, dtype=np.uint8)
    pred[2:8, 2:8, 2:6] = 1
    pred[12:18, 2:8, 2:6] = 3
    return pred, ref


@pytest.fixture
def results(make_volume):
    pred, ref = maps()
    labels = {1: "same", 2: "missed", 3: "extra", 4: "absent"}
    return {r.name: r for r in evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), labels)}


def test_classify_every_combination():
    assert classify(pred_empty=True, ref_empty=True) == "both_empty"
    assert classify(pred_empty=True, ref_empty=False) == "missed"
    assert classify(pred_empty=False, ref_empty=True) == "false_positive"
    assert classify(pred_empty=False, ref_empty=False) == "ok"
    with pytest.raises(ValueError):
        fixed_values("ok", 1.0)


def test_perfect_label_is_ok(results):
    r = results["same"]
    assert r.flag == "ok"
    assert (r.dice, r.iou, r.precision, r.recall, r.nsd) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (r.hd_mm, r.hd95_mm, r.assd_mm) == (0.0, 0.0, 0.0)


def test_both_empty(results):
    r = results["absent"]
    assert r.flag == "both_empty"
    assert (r.dice, r.iou, r.precision, r.recall, r.nsd) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (r.hd_mm, r.hd95_mm, r.assd_mm) == (0.0, 0.0, 0.0)
    assert (r.tp, r.fp, r.fn, r.volume_pred_ml, r.volume_ref_ml) == (0, 0, 0, 0.0, 0.0)


def test_missed(results):
    r = results["missed"]
    assert r.flag == "missed"
    assert (r.dice, r.iou, r.precision, r.recall, r.nsd) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert r.hd_mm == r.hd95_mm == r.assd_mm == pytest.approx(DIAGONAL)
    # 6 * 6 * 4 = 144 voxels of 1.5 mm^3 = 0.216 mL missed
    assert (r.tp, r.fp, r.fn) == (0, 0, 144)
    assert r.volume_ref_ml == pytest.approx(0.216) and r.volume_diff_ml == pytest.approx(-0.216)


def test_false_positive(results):
    r = results["extra"]
    assert r.flag == "false_positive"
    assert (r.dice, r.iou, r.precision, r.recall, r.nsd) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert r.hd_mm == r.hd95_mm == r.assd_mm == pytest.approx(DIAGONAL)
    assert (r.tp, r.fp, r.fn) == (0, 144, 0)


def test_no_value_is_ever_nan(results):
    for r in results.values():
        for key, value in r.as_dict().items():
            if isinstance(value, float):
                assert math.isfinite(value), (r.name, key)


def test_failed_case_gets_worst_values_for_every_label(make_volume):
    _, ref = maps()
    stats = ReferenceStats.of(make_volume(ref, SPACING), "c1")
    results = failed_case(stats, {1: "a", 2: "b", 4: "absent"}, flag="no_prediction", message="no file")
    assert [r.flag for r in results] == ["no_prediction"] * 3
    assert all(r.dice == 0.0 and r.hd95_mm == pytest.approx(DIAGONAL) for r in results)
    assert results[0].fn == 144 and results[2].fn == 0
    assert results[0].message == "no file"
    with pytest.raises(ValueError):
        failed_case(stats, {1: "a"}, flag="missed", message="")


def test_summary_counts_flags_and_keeps_misses_in_the_statistics(make_volume):
    # Three cases of one label: perfect, perfect, missed. Mean Dice = (1 + 1 + 0) / 3, not 1.
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[2:8, 2:8, 2:6] = 1
    cases = [(ref, "c1"), (ref, "c2"), (np.zeros_like(ref), "c3")]
    results = []
    for pred, cid in cases:
        results += evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), {1: "s"}, case_id=cid)
    summary = summarise(results)
    entry = summary.labels["s"]
    assert summary.n_cases == 3 and entry.n == 3
    assert entry.flags == {
        "ok": 2,
        "both_empty": 0,
        "missed": 1,
        "false_positive": 0,
        "no_prediction": 0,
        "error": 0,
    }
    dice = entry.metrics["dice"]
    assert dice.n == 3
    assert dice.mean == pytest.approx(2 / 3)
    assert dice.median == pytest.approx(1.0)
    assert dice.std == pytest.approx(np.std([1, 1, 0], ddof=1))
    assert dice.p5 == pytest.approx(np.percentile([1, 1, 0], 5))
    assert entry.metrics["hd95_mm"].mean == pytest.approx(DIAGONAL / 3)


def test_policy_text_names_every_flag():
    for flag in FLAGS:
        assert flag in POLICY_TEXT
    assert "NaN" in POLICY_TEXT
