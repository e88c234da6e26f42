"""The per-run log file ``OUT/logs/run-<UTC time>-<pid>.log``: everything unetseg logs during a run, and the
tracebacks of cases that failed with an internal error (which never go to the console).

:func:`run_log` is a context manager that attaches a file handler at INFO level to the ``app`` logger and to
:data:`app.batch.isolation.failure_log`, and removes it again afterwards; the console keeps whatever level
the CLI set. The loggers of the engine a case runs in (:data:`ENGINE_LOGGERS`: Ignite's engines, MONAI's
handlers such as the bundle's ``StatsHandler``) log to this file only while it is open: their tracebacks of a
failing or interrupted case are the run log's, and the console keeps its one line per case. The file is line-buffered by :class:`logging.FileHandler` (each record is flushed), so it is
complete up to the moment a process is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from app.batch.isolation import failure_log
from app.errors import OutputError

LOG_FOLDER = "logs"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the engine's loggers (``ignite.engine.engine.SupervisedEvaluator``, ``monai.handlers.StatsHandler``): sent to
#: the run log and kept from the console (no propagation to the root logger) while a run log is open
ENGINE_LOGGERS = ("ignite", "monai.handlers")


@contextlib.contextmanager
def run_log(out: str | Path) -> Iterator[Path]:
    """Log this run to a new file under ``OUT/logs/``; yield its path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = Path(out) / LOG_FOLDER / f"run-{stamp}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise OutputError(path, f"cannot create the run log: {exc.strerror or exc}") from exc
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT))
    app_logger = logging.getLogger("app")
    previous_level = app_logger.level
    if app_logger.getEffectiveLevel() > logging.INFO:
        app_logger.setLevel(logging.INFO)  # the file wants INFO; the console handler keeps its own level
    engine = [logging.getLogger(name) for name in ENGINE_LOGGERS]
    propagate = [logger.propagate for logger in engine]
    loggers = (app_logger, failure_log, *engine)
    for logger in loggers:
        logger.addHandler(handler)
    for logger in engine:
        logger.propagate = False
    try:
        yield path
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        for logger, previous in zip(engine, propagate, strict=True):
            logger.propagate = previous
        app_logger.setLevel(previous_level)
        handler.close()
