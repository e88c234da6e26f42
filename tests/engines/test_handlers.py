"""The bundles' Ignite handlers on tiny Engines with fake process functions (no bundle, no data)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from ignite.engine import Engine, Events
from ignite.handlers.tqdm_logger import ProgressBar
from monai.handlers import CheckpointSaver, StatsHandler, TensorBoardStatsHandler
from torch import nn

from app.engines.training import handlers
from app.engines.training.handlers import (
    EarlyStopOnValidation,
    FullStateCheckpointSaver,
    ResumeFromLatest,
    StopOnNonFiniteLoss,
    StopOnTimeBudget,
    handlers_for_rank,
    latest_checkpoint,
)


def loss_engine(losses, wrap=lambda loss: {"loss": loss}) -> Engine:
    """An engine whose k-th iteration outputs ``wrap(losses[k])``."""
    return Engine(lambda engine, batch: wrap(losses[engine.state.iteration - 1]))


# --- StopOnNonFiniteLoss ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_loss_terminates_at_that_iteration(bad):
    losses = [torch.tensor(0.5)] * 2 + [torch.tensor(bad)] + [torch.tensor(0.4)] * 10
    engine = loss_engine(losses)
    StopOnNonFiniteLoss().attach(engine)
    engine.run(range(5), max_epochs=2)
    assert engine.state.iteration == 3 and engine.state.epoch == 1
    assert engine.state.nonfinite_loss is True


def test_finite_losses_run_to_the_end():
    engine = loss_engine([torch.tensor(float(i)) for i in range(10)])
    StopOnNonFiniteLoss().attach(engine)
    engine.run(range(5), max_epochs=2)
    assert engine.state.iteration == 10 and engine.state.epoch == 2
    assert not getattr(engine.state, "nonfinite_loss", False)


def test_decollated_list_output_and_plain_floats():
    # MONAI's trainers decollate the batch: the output is a list of per-sample dicts that all hold the loss
    losses = [1.0, 2.0, float("nan"), 3.0]
    engine = loss_engine(
        losses, wrap=lambda loss: [{"loss": loss, "pred": None}, {"loss": loss, "pred": None}]
    )
    StopOnNonFiniteLoss().attach(engine)
    engine.run(range(4), max_epochs=1)
    assert engine.state.iteration == 3 and engine.state.nonfinite_loss


def test_custom_output_transform():
    engine = loss_engine([(0.1, "a"), (math.nan, "b"), (0.2, "c")], wrap=lambda out: out)
    StopOnNonFiniteLoss(output_transform=lambda out: out[0]).attach(engine)
    engine.run(range(3), max_epochs=1)
    assert engine.state.iteration == 2


def test_no_checkpoint_is_written_for_the_epoch_of_a_nan(tmp_path):
    net = nn.Linear(2, 1)
    losses = [torch.tensor(1.0)] * 3 + [torch.tensor(math.nan)] + [torch.tensor(1.0)] * 4
    engine = loss_engine(losses)
    StopOnNonFiniteLoss().attach(engine)  # attached before the saver, as in the bundles' handler lists
    FullStateCheckpointSaver(tmp_path, {"network": net}, n_saved=5).attach(engine)
    engine.run(range(2), max_epochs=4)  # the NaN is iteration 4 = epoch 2
    assert engine.state.epoch == 2 and engine.state.iteration == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt"]


# --- EarlyStopOnValidation -------------------------------------------------------------------------------------


def trainer_with_validator(scores):
    """A trainer that runs a validator after each epoch; the validator's metric follows ``scores``."""
    validator = Engine(lambda engine, batch: None)
    run = iter(scores)

    @validator.on(Events.EPOCH_STARTED)
    def set_metric(engine):
        engine.state.metrics = {"val_dice": next(run)}

    trainer = Engine(lambda engine, batch: None)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: validator.run([0]))
    return trainer, validator


def test_early_stop_after_patience_validations_without_improvement():
    trainer, validator = trainer_with_validator([0.5, 0.6, 0.6, 0.55, 0.9, 0.9, 0.9, 0.9])
    EarlyStopOnValidation(validator, "val_dice", patience=2).attach(trainer)
    trainer.run(range(3), max_epochs=8)
    # epoch 1 sets the best (0.5), epoch 2 improves (0.6), epochs 3 and 4 do not: stop after epoch 4
    assert trainer.state.epoch == 4
    assert trainer.state.iteration == 12


def test_early_stop_min_delta():
    scores = [0.500, 0.505, 0.510, 0.515, 0.520, 0.525]
    trainer, validator = trainer_with_validator(scores)
    EarlyStopOnValidation(validator, "val_dice", patience=2, min_delta=0.01).attach(trainer)
    trainer.run(range(1), max_epochs=6)
    assert trainer.state.epoch == 3  # +0.005 per epoch never beats min_delta 0.01
    trainer, validator = trainer_with_validator(scores)
    EarlyStopOnValidation(validator, "val_dice", patience=2).attach(trainer)
    trainer.run(range(1), max_epochs=6)
    assert trainer.state.epoch == 6  # every epoch improves


def test_early_stop_watches_the_validator_not_the_trainer():
    # a trainer that never validates: the handler never fires (on the trainer it would read the trainer's
    # metrics, which have no "val_dice") and training runs to the end
    validator = Engine(lambda engine, batch: None)
    trainer = Engine(lambda engine, batch: None)
    EarlyStopOnValidation(validator, "val_dice", patience=1).attach(trainer)
    trainer.run(range(2), max_epochs=3)
    assert trainer.state.epoch == 3


# --- StopOnTimeBudget ------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now


def timed_engine(monkeypatch, epoch_seconds, epoch_length=4):
    """An engine whose epoch k takes ``epoch_seconds[k - 1]`` seconds of a fake monotonic clock."""
    clock = FakeClock()
    monkeypatch.setattr(handlers, "time", SimpleNamespace(monotonic=clock.monotonic))

    def step(engine, batch):
        clock.now += epoch_seconds[engine.state.epoch - 1] / epoch_length

    return Engine(step), clock, range(epoch_length)


def test_time_budget_predicts_the_next_epoch_from_the_longest(monkeypatch):
    engine, clock, data = timed_engine(monkeypatch, [5, 20, 5, 5, 5, 5, 5, 5, 5, 5])
    clock.now = 0.0  # time before STARTED does not count: set here, started at 0 anyway
    StopOnTimeBudget(50).attach(engine)
    engine.run(data, max_epochs=10)
    # after epoch: 1: 5 + 5 <= 50; 2: 25 + 20 <= 50; 3: 30 + 20 = 50, not over; 4: 35 + 20 > 50 -> stop
    assert engine.state.epoch == 4
    assert clock.now == pytest.approx(35.0)


def test_time_budget_clock_starts_at_started(monkeypatch):
    engine, clock, data = timed_engine(monkeypatch, [10] * 10)
    budget = StopOnTimeBudget(35)
    budget.attach(engine)
    clock.now = 5000.0  # a long set-up before run() must not eat the budget
    engine.run(data, max_epochs=10)
    assert engine.state.epoch == 3  # 10 + 10, 20 + 10, 30 + 10 > 35


def test_time_budget_none_disables(monkeypatch):
    engine, _, data = timed_engine(monkeypatch, [1000] * 5)
    disabled, enabled = StopOnTimeBudget(None), StopOnTimeBudget(10)
    disabled.attach(engine)
    assert not engine.has_event_handler(disabled, Events.EPOCH_COMPLETED)
    other = Engine(lambda e, b: None)
    enabled.attach(other)
    assert other.has_event_handler(enabled, Events.EPOCH_COMPLETED)
    engine.run(data, max_epochs=5)
    assert engine.state.epoch == 5


def test_time_budget_generous_budget_runs_all_epochs(monkeypatch):
    engine, _, data = timed_engine(monkeypatch, [10] * 5)
    StopOnTimeBudget(10_000).attach(engine)
    engine.run(data, max_epochs=5)
    assert engine.state.epoch == 5


# --- handlers_for_rank -----------------------------------------------------------------------------------------


def test_handlers_for_rank(tmp_path):
    net = nn.Linear(2, 1)
    stop = StopOnNonFiniteLoss()
    stats = StatsHandler(name="test_stats")
    full = FullStateCheckpointSaver(tmp_path, {"network": net})
    saver = CheckpointSaver(save_dir=str(tmp_path), save_dict={"network": net})
    board = TensorBoardStatsHandler(summary_writer=SimpleNamespace(), output_transform=lambda x: None)
    bar = ProgressBar()
    budget = StopOnTimeBudget(10)
    all_handlers = [stop, stats, full, saver, board, bar, budget]
    rank0 = handlers_for_rank(all_handlers, 0)
    assert rank0 == all_handlers and rank0 is not all_handlers
    for rank in (1, 3):
        assert handlers_for_rank(all_handlers, rank) == [stop, stats, budget]
    assert handlers_for_rank([], 1) == []


# --- checkpoints: latest_checkpoint, FullStateCheckpointSaver, ResumeFromLatest --------------------------------


def test_latest_checkpoint_is_numeric(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for name in [
        "checkpoint_epoch=2.pt",
        "checkpoint_epoch=10.pt",
        "checkpoint_epoch=9.pt",
        "model.pt",
        "x.pt.tmp",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint_epoch=10.pt"  # not "9" > "10" as text


def train_engine(net, optimizer):
    def step(engine, batch):
        optimizer.zero_grad()
        loss = net(batch).square().mean()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return Engine(step)


def test_save_then_resume_full_state(tmp_path):
    data = [torch.full((1, 2), float(i)) for i in range(3)]
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    first = train_engine(net, opt)
    FullStateCheckpointSaver(tmp_path, {"network": net, "optimizer": opt}, n_saved=2).attach(first)
    first.run(data, max_epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt", "checkpoint_epoch=2.pt"]

    torch.manual_seed(1)
    net2 = nn.Linear(2, 1)
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.01, momentum=0.9)
    second = train_engine(net2, opt2)
    started = {}
    ResumeFromLatest(tmp_path, {"network": net2, "optimizer": opt2}).attach(second)
    second.add_event_handler(Events.STARTED, lambda e: started.update(epoch=e.state.epoch))
    second.add_event_handler(Events.STARTED, lambda e: started.update(weight=net2.weight.detach().clone()))
    second.run(data, max_epochs=3)
    assert started["epoch"] == 2  # the trainer's own state came back
    torch.testing.assert_close(
        started["weight"], torch.load(tmp_path / "checkpoint_epoch=2.pt")["network"]["weight"]
    )
    assert second.state.epoch == 3 and second.state.iteration == 9
    # resuming continues exactly the uninterrupted run (momentum included)
    first.run(data, max_epochs=3)
    torch.testing.assert_close(net2.weight, net.weight)


def test_a_resumed_run_keeps_n_saved_checkpoints_not_one_per_resume(tmp_path):
    data = [torch.ones(1, 2)]
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    (tmp_path / "model.pt").write_bytes(b"")  # not a trainer checkpoint: left alone
    for max_epochs in (2, 4, 5):  # interrupted twice, resumed each time
        engine = train_engine(net, opt)
        ResumeFromLatest(tmp_path, {"network": net}).attach(engine)
        FullStateCheckpointSaver(tmp_path, {"network": net}, n_saved=2).attach(engine)
        engine.run(data, max_epochs=max_epochs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_epoch=4.pt",
        "checkpoint_epoch=5.pt",
        "model.pt",
    ]


def test_resume_disabled_or_empty_starts_fresh(tmp_path):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    data = [torch.ones(1, 2)]
    saving = train_engine(net, opt)
    FullStateCheckpointSaver(tmp_path, {"network": net}).attach(saving)
    saving.run(data, max_epochs=2)
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=2.pt"

    def start_epoch(resume: ResumeFromLatest) -> int:
        engine = train_engine(net, opt)
        resume.attach(engine)
        started = []
        engine.add_event_handler(Events.STARTED, lambda e: started.append(e.state.epoch))
        engine.run(data, max_epochs=3)
        assert engine.state.epoch == 3
        return started[0]

    assert start_epoch(ResumeFromLatest(tmp_path, {"network": net})) == 2  # enabled: one epoch left
    assert start_epoch(ResumeFromLatest(tmp_path, {"network": net}, enabled=False)) == 0  # checkpoint ignored
    assert start_epoch(ResumeFromLatest(tmp_path / "empty", {"network": net})) == 0  # none there: a warning
