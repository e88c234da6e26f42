"""Polynomial decay with warm restarts: equal to PolynomialLR without restarts, restarts where asked, resumable."""

from __future__ import annotations

import pytest
import torch
from torch.optim.lr_scheduler import PolynomialLR

from app.engines.training.lr_schedule import PolyRestartFactor, poly_with_restarts


def lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, epochs: int) -> list[float]:
    """The rate each of ``epochs`` epochs trains at, stepping once per epoch as MONAI's LrScheduleHandler does."""
    out = []
    for _ in range(epochs):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def sgd(lr: float = 0.01) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_without_restarts_it_is_pytorch_polynomial_lr():
    ours = lrs(poly_with_restarts(sgd(), max_epochs=60), 60)
    reference = lrs(PolynomialLR(sgd(), total_iters=60, power=0.9), 60)
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-12)


def test_restart_repeats_the_single_cycle_run_then_restarts_and_decays_to_zero():
    single = lrs(poly_with_restarts(sgd(), max_epochs=60), 60)
    restarted = lrs(poly_with_restarts(sgd(), max_epochs=80, restarts=[[60, 0.25]]), 81)
    assert restarted[:60] == pytest.approx(single, rel=1e-12)
    assert restarted[60] == pytest.approx(0.0025)
    assert all(a > b for a, b in zip(restarted[60:80], restarted[61:80], strict=False))
    assert restarted[79] == pytest.approx(0.0025 * (1 / 20) ** 0.9)
    assert restarted[80] == 0.0


def test_restarts_outside_the_run_are_dropped():
    factor = PolyRestartFactor(max_epochs=1, restarts=[[60, 0.25], [0, 0.5]])
    assert factor.starts == [0] and factor.ends == [1]
    assert factor(0) == 1.0 and factor(1) == 0.0
    with pytest.raises(ValueError, match="max_epochs"):
        PolyRestartFactor(max_epochs=0)
    with pytest.raises(ValueError, match="factor"):
        PolyRestartFactor(max_epochs=10, restarts=[[5, 0.0]])


def test_state_dict_carries_the_schedule_to_a_resumed_run():
    first = poly_with_restarts(sgd(), max_epochs=30, restarts=[[20, 0.5]])
    lrs(first, 25)
    state = first.state_dict()
    assert state["lr_lambdas"][0]["starts"] == [0, 20]
    resumed = poly_with_restarts(sgd(), max_epochs=30, restarts=[[20, 0.5]])
    resumed.load_state_dict(state)
    resumed.optimizer.param_groups[0]["lr"] = first.optimizer.param_groups[0]["lr"]
    assert lrs(resumed, 5) == pytest.approx(lrs(first, 5))
