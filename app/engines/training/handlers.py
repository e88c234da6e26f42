"""Ignite handlers the bundles attach to MONAI's engines (each has ``attach(engine)``, as bundle configs expect).

* :class:`StopOnNonFiniteLoss`: stop training at the first NaN/inf loss, before any checkpoint of that epoch is
  written (epoch-level checkpoints never see the corrupted weights).
* :class:`ResumeFromLatest`: when enabled, load the newest full-state checkpoint in a folder at start-up.
* :class:`FullStateCheckpointSaver`: MONAI's ``CheckpointSaver`` for the network, optimizer, scheduler *and the
  trainer itself*, which a config cannot name inside the trainer's own handler list (a circular reference):
  these handlers add the engine they are attached to.
* :class:`EarlyStopOnValidation`: MONAI's ``EarlyStopHandler`` on a validator's key metric, stopping the trainer
  it is attached to (same reason).
* :class:`StopOnTimeBudget`: end training at an epoch boundary before a wall-clock budget runs out (CPU runs on a
  shared machine); Ignite's ``TimeLimit`` has no ``attach`` and stops mid-epoch.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader, CheckpointSaver, EarlyStopHandler

logger = logging.getLogger(__name__)

_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt$")


class StopOnNonFiniteLoss:
    """Terminate the engine when its loss output is NaN or infinite.

    Unlike Ignite's ``TerminateOnNan`` it has ``attach`` (bundle handler lists call it) and it also raises the
    engine's ``nonfinite_loss`` flag, which :class:`monai.handlers.CheckpointSaver` users can inspect.

    Args:
        output_transform: engine output -> loss value (default ``output["loss"]``).
    """

    def __init__(self, output_transform: Callable | None = None) -> None:
        self.output_transform = output_transform or (lambda out: out["loss"])

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):  # MONAI decollates batches into a list of dicts
            output = output[0]
        loss = self.output_transform(output)
        value = float(loss.detach().cpu()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            logger.error(
                "loss is %s at epoch %d iteration %d: stopping; the last checkpoint is left as it was",
                value,
                engine.state.epoch,
                engine.state.iteration,
            )
            engine.state.nonfinite_loss = True  # type: ignore[attr-defined]  # a flag for callers
            engine.terminate()


def epoch_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """The ``checkpoint_epoch=N.pt`` files of ``ckpt_dir``, oldest (smallest N) first."""
    found = [
        (int(m.group(1)), p)
        for p in Path(ckpt_dir).glob("checkpoint_epoch=*.pt")
        if (m := _EPOCH.search(p.name))
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """The ``checkpoint_epoch=N.pt`` with the largest N in ``ckpt_dir`` (``None`` if there is none)."""
    found = epoch_checkpoints(ckpt_dir)
    return found[-1] if found else None


class ResumeFromLatest:
    """At ``Events.STARTED``, restore ``load_dict`` from the newest full-state checkpoint in ``ckpt_dir``.

    Args:
        ckpt_dir: folder of MONAI ``CheckpointSaver`` files named ``checkpoint_epoch=N.pt``.
        load_dict: objects to restore, e.g. ``{"network": ..., "optimizer": ..., "lr_scheduler": ...}`` (the
            same dict :class:`FullStateCheckpointSaver` was given); the engine is added as ``"trainer"``.
        enabled: when False this handler does nothing (the config's ``resume`` switch).
        map_location: device for the loaded tensors.
    """

    def __init__(
        self,
        ckpt_dir: str | Path,
        load_dict: Mapping[str, object],
        enabled: bool = True,
        map_location: Any = "cpu",
    ) -> None:
        self.ckpt_dir = Path(ckpt_dir)
        self.load_dict = dict(load_dict)
        self.enabled = enabled
        self.map_location = map_location

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            self.load_dict["trainer"] = engine
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            logger.warning(
                "resume requested but %s holds no checkpoint_epoch=*.pt: starting fresh", self.ckpt_dir
            )
            return
        logger.info("resuming from %s", path)
        CheckpointLoader(load_path=str(path), load_dict=self.load_dict, map_location=self.map_location)(
            engine
        )


class FullStateCheckpointSaver:
    """Save ``save_dict`` plus the trainer's state every ``save_interval`` epochs as ``checkpoint_epoch=N.pt``.

    Keeps ``n_saved`` files; Ignite writes them atomically (temporary file, then rename). Ignite only counts the
    files its own run saved, so after each save the older ``checkpoint_epoch=N.pt`` files beyond ``n_saved`` are
    removed here too: a resumed run would otherwise leave the interrupted run's checkpoints behind, one set per
    resume.
    """

    def __init__(
        self, save_dir: str | Path, save_dict: Mapping[str, object], save_interval: int = 1, n_saved: int = 1
    ):
        self.save_dir = str(save_dir)
        self.save_dict = dict(save_dict)
        self.save_interval = save_interval
        self.n_saved = n_saved

    def attach(self, engine: Engine) -> None:
        CheckpointSaver(
            save_dir=self.save_dir,
            save_dict={**self.save_dict, "trainer": engine},
            save_interval=self.save_interval,
            n_saved=self.n_saved,
            epoch_level=True,
        ).attach(engine)
        # registered after the saver, so it runs once the new file is in place
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self._prune)

    def _prune(self, engine: Engine) -> None:
        for stale in epoch_checkpoints(self.save_dir)[: -self.n_saved]:
            stale.unlink(missing_ok=True)
            logger.info("removed %s (an earlier run's checkpoint; %d kept)", stale, self.n_saved)


class EarlyStopOnValidation:
    """Stop the trainer when ``validator``'s metric ``metric_name`` has not improved for ``patience`` validations.

    Args:
        validator: the evaluator run by the trainer's ``ValidationHandler``.
        metric_name: a key of ``validator.state.metrics`` where higher is better.
        patience: validations without improvement before stopping.
        min_delta: smallest change that counts as improvement.
    """

    def __init__(self, validator: Engine, metric_name: str, patience: int, min_delta: float = 0.0) -> None:
        self.validator = validator
        self.metric_name = metric_name
        self.patience = patience
        self.min_delta = min_delta

    def attach(self, engine: Engine) -> None:
        EarlyStopHandler(
            patience=self.patience,
            score_function=lambda e: e.state.metrics[self.metric_name],
            trainer=engine,
            min_delta=self.min_delta,
            epoch_level=True,
        ).attach(self.validator)


def handlers_for_rank(handlers: list, rank: int) -> list:
    """The handlers one DDP process should attach: rank 0 keeps all; other ranks drop the ones that write
    files or draw progress (checkpoints, TensorBoard, progress bar), which must happen once."""
    if rank == 0:
        return list(handlers)
    from ignite.handlers.tqdm_logger import ProgressBar
    from monai.handlers import TensorBoardStatsHandler

    writers = (FullStateCheckpointSaver, CheckpointSaver, TensorBoardStatsHandler, ProgressBar)
    return [h for h in handlers if not isinstance(h, writers)]


class StopOnTimeBudget:
    """Terminate the trainer at the end of an epoch when the next epoch would overrun ``seconds`` of wall time.

    The clock starts at ``Events.STARTED``; the next epoch's duration is predicted as the longest epoch so far
    (validation included when it runs inside the epoch). ``seconds=None`` disables it.

    Args:
        seconds: wall-clock budget for the whole run.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._start = 0.0
        self._last = 0.0
        self._longest = 0.0

    def attach(self, engine: Engine) -> None:
        if self.seconds is not None:
            engine.add_event_handler(Events.STARTED, self._started)
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _started(self, engine: Engine) -> None:
        self._start = self._last = time.monotonic()

    def __call__(self, engine: Engine) -> None:
        budget = math.inf if self.seconds is None else self.seconds
        now = time.monotonic()
        self._longest = max(self._longest, now - self._last)
        self._last = now
        if now - self._start + self._longest > budget:
            logger.warning(
                "time budget: %.0f s used of %.0f s, an epoch takes up to %.0f s: stopping after epoch %d",
                now - self._start,
                self.seconds,
                self._longest,
                engine.state.epoch,
            )
            engine.terminate()
