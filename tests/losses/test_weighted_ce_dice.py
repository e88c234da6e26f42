"""WeightedCEDiceLoss: sum(w * CE) / sum(w) + Dice, the weight map riding in target channel 1."""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceLoss, SoftclDiceLoss
from torch.nn import functional as F

from app.losses.weighted_ce_dice import WeightedCEDiceLoss

SHAPES = {"2d": (2, 3, 6, 7), "3d": (2, 3, 4, 5, 6)}  # (B, C, *spatial): C = 3 classes


def make_case(shape, seed=0, weight=None):
    """Random logits, labels covering every class, and a positive weight map (or the given constant)."""
    g = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    logits = torch.randn(shape, generator=g)
    label = torch.randint(0, c, (b, 1, *spatial), generator=g)
    if weight is None:
        w = torch.rand((b, 1, *spatial), generator=g) * 5 + 0.1
    else:
        w = torch.full((b, 1, *spatial), float(weight))
    return logits, label, w


def target(label, weight):
    return torch.cat([label.float(), weight.float()], dim=1)


@pytest.mark.parametrize("dims", SHAPES)
def test_uniform_weight_ce_only_equals_cross_entropy(dims):
    logits, label, ones = make_case(SHAPES[dims], weight=1.0)
    expected = F.cross_entropy(logits, label[:, 0])
    loss = WeightedCEDiceLoss(lambda_dice=0.0)
    torch.testing.assert_close(loss(logits, target(label, ones)), expected)
    # a label without weight channel is the same unweighted cross-entropy
    torch.testing.assert_close(loss(logits, label.float()), expected)
    # any constant weight too: sum(c * ce) / sum(c) = mean(ce)
    torch.testing.assert_close(loss(logits, target(label, 7.0 * ones)), expected)


def test_two_pixel_case_by_hand():
    # pixel 0: logits (0, ln 3), label 1 -> p = 3 / 4, CE = ln(4 / 3), weight 3
    # pixel 1: logits (0, 0),    label 0 -> p = 1 / 2, CE = ln 2,     weight 1
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(3.0), 0.0]]]])  # (1, 2, 1, 2)
    y = torch.tensor([[[[1.0, 0.0]], [[3.0, 1.0]]]])  # (1, 2, 1, 2): label channel, weight channel
    loss = WeightedCEDiceLoss(lambda_dice=0.0)(logits, y)
    expected = (3 * math.log(4 / 3) + math.log(2)) / 4  # 0.3890
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # lambda_ce scales it
    assert float(WeightedCEDiceLoss(lambda_ce=2.5, lambda_dice=0.0)(logits, y)) == pytest.approx(
        2.5 * expected
    )


@pytest.mark.parametrize("dims", SHAPES)
def test_weighted_ce_is_weighted_mean_of_pixel_ce(dims):
    logits, label, w = make_case(SHAPES[dims], seed=1)
    log_p = torch.log_softmax(logits.double(), dim=1)
    ce = -log_p.gather(1, label)  # (B, 1, *spatial): -log p_label per pixel
    expected = (w.double() * ce).sum() / w.double().sum()
    loss = WeightedCEDiceLoss(lambda_dice=0.0)(logits, target(label, w))
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    # it differs from the unweighted mean (the weights are not constant)
    assert float(loss) != pytest.approx(float(ce.mean()), rel=1e-3)
    # normalising by sum(w) makes it invariant to the weights' scale
    torch.testing.assert_close(WeightedCEDiceLoss(lambda_dice=0.0)(logits, target(label, 10 * w)), loss)


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("include_background", [False, True])
def test_dice_term_is_monai_dice(dims, include_background):
    logits, label, w = make_case(SHAPES[dims], seed=2)
    ce_only = WeightedCEDiceLoss(lambda_dice=0.0)(logits, target(label, w))
    dice = DiceLoss(include_background=include_background, to_onehot_y=True, softmax=True, batch=True)(
        logits, label
    )
    loss = WeightedCEDiceLoss(lambda_ce=0.5, lambda_dice=2.0, include_background=include_background)
    torch.testing.assert_close(loss(logits, target(label, w)), 0.5 * ce_only + 2.0 * dice)
    # the Dice term ignores the weight map
    dice_only = WeightedCEDiceLoss(lambda_ce=0.0, include_background=include_background)
    torch.testing.assert_close(
        dice_only(logits, target(label, w)), dice_only(logits, target(label, 1 + 0 * w))
    )


@pytest.mark.parametrize("dims", SHAPES)
def test_perfect_confident_prediction_is_near_zero(dims):
    _, label, w = make_case(SHAPES[dims], seed=3)
    onehot = F.one_hot(label[:, 0], 3).movedim(-1, 1).float()
    confident = 30.0 * (2 * onehot - 1)  # +30 on the true class, -30 elsewhere
    loss = WeightedCEDiceLoss()(confident, target(label, w))
    assert 0 <= float(loss) < 1e-4
    # the opposite prediction is heavily penalised
    wrong = WeightedCEDiceLoss()(-confident, target(label, w))
    assert float(wrong) > 10


@pytest.mark.parametrize("dims", SHAPES)
def test_gradients_flow_to_prediction_only_where_weighted(dims):
    logits, label, w = make_case(SHAPES[dims], seed=4)
    w[0] = 0.0  # the first sample carries no weight
    y_pred = logits.clone().requires_grad_(True)
    y = target(label, w)
    WeightedCEDiceLoss(lambda_dice=0.0)(y_pred, y).backward()
    assert y_pred.grad is not None and torch.isfinite(y_pred.grad).all()
    assert y_pred.grad[1].abs().sum() > 0
    assert torch.count_nonzero(y_pred.grad[0]) == 0  # zero weight: zero gradient
    # the analytic gradient of sum(w * ce) / sum(w): w * (softmax - onehot) / sum(w)
    onehot = F.one_hot(label[:, 0], 3).movedim(-1, 1).float()
    torch.testing.assert_close(y_pred.grad, w * (logits.softmax(1) - onehot) / w.sum())
    # with the Dice term every sample's logits get a gradient
    y_pred.grad = None
    WeightedCEDiceLoss()(y_pred, y).backward()
    assert y_pred.grad[0].abs().sum() > 0


@pytest.mark.parametrize(
    ("pred_shape", "target_shape"),
    [
        ((2, 3, 6, 7), (2, 3, 6, 7)),  # three target channels
        ((2, 3, 6, 7), (2, 2, 6, 8)),  # spatial mismatch
        ((2, 3, 6, 7), (1, 2, 6, 7)),  # batch mismatch
        ((2, 3, 4, 5, 6), (2, 2, 4, 5)),  # 3D prediction, 2D target
    ],
)
def test_shape_mismatch_raises(pred_shape, target_shape):
    with pytest.raises(ValueError, match="target must be"):
        WeightedCEDiceLoss()(torch.zeros(pred_shape), torch.zeros(target_shape))


def test_negative_lambdas_raise():
    with pytest.raises(ValueError):
        WeightedCEDiceLoss(lambda_ce=-1.0)
    with pytest.raises(ValueError):
        WeightedCEDiceLoss(lambda_dice=-0.1)
    with pytest.raises(ValueError):
        WeightedCEDiceLoss(lambda_cldice=-0.1)
    with pytest.raises(ValueError, match="cldice_channels"):
        WeightedCEDiceLoss(lambda_cldice=1.0, cldice_channels=[])


def _membrane_case():
    """A 2-class 2D case: a vertical membrane (class 0) 3 px wide through cells (class 1), and the logits of a
    prediction that is right everywhere except ``gap`` rows of the membrane, predicted as cell."""

    def logits_for(gap: int) -> torch.Tensor:
        membrane = label[:, 0] == 0
        membrane[:, 20 : 20 + gap] = False
        cell_logit = torch.where(membrane, -6.0, 6.0)
        return torch.stack([torch.zeros_like(cell_logit), cell_logit], 1)

    label = torch.ones(1, 1, 48, 48)
    label[..., 22:25] = 0
    return label, logits_for


def test_cldice_term_is_monai_soft_cldice_on_the_chosen_classes():
    logits, label, w = make_case(SHAPES["2d"], seed=3)
    base = WeightedCEDiceLoss()(logits, target(label, w))
    loss = WeightedCEDiceLoss(lambda_cldice=0.5, cldice_channels=[2, 0], cldice_iterations=4)(
        logits, target(label, w)
    )
    onehot = F.one_hot(label[:, 0], 3).movedim(-1, 1).float()
    expected = SoftclDiceLoss(iter_=4)(logits.softmax(1)[:, [2, 0]], onehot[:, [2, 0]])
    torch.testing.assert_close(loss, base + 0.5 * expected)
    with pytest.raises(ValueError, match="out of range"):
        WeightedCEDiceLoss(lambda_cldice=1.0, cldice_channels=[3])(logits, target(label, w))


def test_cldice_prices_a_gap_in_a_thin_membrane_by_its_skeleton():
    label, logits_for = _membrane_case()
    ones = torch.ones_like(label)
    plain = WeightedCEDiceLoss(lambda_ce=0.0, lambda_dice=0.0, lambda_cldice=1.0, cldice_channels=[0])
    assert float(plain(logits_for(0), target(label, ones))) < 0.01
    # 6 of 48 rows missing: the membrane's skeleton loses 1/8 of its length, the sensitivity drops by about that
    gap = float(plain(logits_for(6), target(label, ones)))
    assert 0.04 < gap < 0.1
    # the gradient pulls the missing membrane pixels towards class 0
    logits = logits_for(6).requires_grad_(True)
    plain(logits, target(label, ones)).backward()
    assert float(logits.grad[0, 1, 20:26, 23].max()) > 0
