"""V_rand and V_info after border thinning (app.evaluation.em_thinned): a contingency table written by hand, the
formulas on it, and the properties the challenge chose them for (perfect = 1, border width costs ~nothing,
merges and splits cost) on hand-made and real ISBI label slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from app.evaluation.em import EM_SCORES, HIGHER_IS_BETTER, SCORES, em_worst_case
from app.evaluation.em_thinned import (
    foreground_contingency,
    info_fscore,
    rand_fscore,
    thinned_cells,
    v_info,
    v_rand,
)

LABELS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "isbi2012-em" / "train" / "label"
FOUR = ndimage.generate_binary_structure(2, 1)


def _label_slice(k: int) -> np.ndarray:
    path = LABELS / f"{k}.png"
    if not path.is_file():
        pytest.skip(f"{path}: ISBI 2012 labels not present")
    return np.asarray(Image.open(path)) > 127


# truth:    1 1 1 1 2 2 2 0      (0 = membrane, not scored)
# proposal: 1 1 2 2 2 2 0 3      (0 = boundary: an unassigned singleton)
TRUE = np.array([[1, 1, 1, 1, 2, 2, 2, 0]])
PRED = np.array([[1, 1, 2, 2, 2, 2, 0, 3]])


def test_contingency_table_by_hand():
    table = foreground_contingency(PRED, TRUE)
    # n = 7 scored pixels; true 1 -> proposed 1 twice, proposed 2 twice; true 2 -> proposed 2 twice, once unassigned
    assert table.counts.tolist() == [[2, 2], [0, 2]]
    assert table.true_sizes.tolist() == [4, 3]
    assert table.unassigned == 1 and table.n == 7


def test_rand_fscore_by_hand():
    # sum p_ij^2 = (4 + 4 + 4 + 1 singleton) / 49; sum t_i^2 = (16 + 9) / 49; sum s_j^2 = (4 + 16 + 1) / 49
    # V_rand = 2 * 13 / (25 + 21) = 26 / 46
    assert rand_fscore(foreground_contingency(PRED, TRUE)) == pytest.approx(26 / 46)


def test_info_fscore_by_hand():
    def h(*p):  # entropy of a distribution given as counts out of 7
        q = np.array(p) / 7
        return float(-np.sum(q * np.log(q)))

    h_true = h(4, 3)
    h_pred = h(2, 4, 1)  # proposed 1, proposed 2, the singleton
    h_joint = h(2, 2, 2, 1)  # the four non-empty cells of the table, singleton included
    mutual = h_true + h_pred - h_joint
    assert info_fscore(foreground_contingency(PRED, TRUE)) == pytest.approx(2 * mutual / (h_true + h_pred))


def _two_cells(width: int) -> np.ndarray:
    """32 x 32 slice, two cells split by a vertical membrane ``width`` pixels wide."""
    cells = np.ones((32, 32), bool)
    cells[:, 16 - width // 2 : 16 - width // 2 + width] = False
    return cells


def test_perfect_prediction_scores_one_and_border_width_is_forgiven():
    truth = _two_cells(2)
    assert v_rand(truth, truth) == pytest.approx(1.0)
    assert v_info(truth, truth) == pytest.approx(1.0)
    thick = _two_cells(6)  # three times the true border: thinned to one line inside the true membrane
    assert v_rand(thick, truth) == pytest.approx(1.0)
    assert v_info(thick, truth) == pytest.approx(1.0)


def test_merge_and_split_cost():
    truth = _two_cells(2)
    merged = truth.copy()
    merged[10:14, 15:17] = True  # a gap in the membrane: one proposed cell over both true ones
    # each true cell holds half of the n pixels; one proposed segment: V_rand = 2 (1/4 + 1/4) / (1/2 + 1) = 2/3
    # (the gap pixels are true membrane and not scored)
    assert v_rand(merged, truth) == pytest.approx(2 / 3)
    assert v_info(merged, truth) == pytest.approx(0.0)  # H(S) = 0: a single proposed segment
    split = truth.copy()
    split[:, 6] = False  # a line through the left cell
    assert 0.0 < v_rand(split, truth) < 1.0
    assert 0.0 < v_info(split, truth) < 1.0


def test_thinning_keeps_cells_at_the_slice_edge_apart():
    truth = _label_slice(20)
    n_true = ndimage.label(truth, FOUR)[1]
    # no true cell is merged by thinning its own membrane (thinning may add enclosed bits on the membrane)
    thinned = thinned_cells(truth)
    true_labels = ndimage.label(truth, FOUR)[0]
    table = foreground_contingency(thinned, true_labels)
    assert table.unassigned == 0 and table.counts.shape[0] == n_true
    assert np.all((table.counts > 0).sum(axis=0) == 1), "a thinned cell covers two true cells"
    assert v_rand(truth, truth) == pytest.approx(1.0) and v_info(truth, truth) == pytest.approx(1.0)


def test_real_slice_thicker_membranes_cost_little_merges_cost_much():
    truth = _label_slice(20)
    eroded = ndimage.binary_erosion(truth, FOUR)  # every membrane two pixels thicker
    assert v_rand(eroded, truth) > 0.99 and v_info(eroded, truth) > 0.98
    assert SCORES["rand_error"](eroded, truth) > 0.04  # the old score charges the width
    opened = truth.copy()
    opened[:, 250:262] = True  # a band cut through every membrane it crosses: merges
    assert v_rand(opened, truth) < 0.9


def test_registered_scores_and_worst_case():
    assert {"v_rand", "v_info"} <= set(EM_SCORES) and HIGHER_IS_BETTER == {"v_rand", "v_info"}
    worst = em_worst_case("x", "no_prediction").scores
    assert worst["v_rand"] == worst["v_info"] == 0.0 and worst["rand_error"] == 1.0
    empty = np.zeros((8, 8), bool)
    assert v_rand(empty, empty) == 0.0 and v_info(empty, empty) == 0.0  # no true cell pixel to score
    with pytest.raises(ValueError, match="same shape"):
        v_rand(np.ones((4, 4), bool), np.ones((4, 5), bool))
