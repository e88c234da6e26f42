"""One batch worker: the bundle loaded once, then cases run one at a time through the same per-case function
and error boundary as the local runner. The Ray cluster runner (:mod:`app.batch.cluster`) makes each worker a
Ray actor; nothing here imports Ray, so the class is also usable (and tested) in-process.

Contract of :class:`CaseWorker`:

* ``__init__`` loads the bundle once with ``threads`` CPU threads (``None``: all) and, unless given the run's
  ``log``, opens the worker's own log file under ``OUT/logs/`` (tracebacks of this worker's internal errors). A bundle that does not load is kept as
  :attr:`CaseWorker.error` and reported by :meth:`describe` (Ray cannot carry our exception types across
  processes through an actor's constructor), so the driver can raise it as the local runner would;
* :meth:`run` runs one case exactly as :func:`app.batch.runner.run_batch` does locally
  (:func:`app.batch.case.run_case` inside :func:`app.batch.isolation.run_isolated`), writing straight into
  OUT with the same atomic writers, and returns the filled record (with ``--ref``, its
  :class:`~app.evaluation.scoring.CaseScore` against the reference the worker found for it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import resource
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.batch.case import run_case
from app.batch.config import BatchConfig
from app.batch.isolation import run_isolated
from app.batch.records import CaseRecord
from app.batch.run_log import run_log
from app.batch.scoring import References
from app.errors import BundleError, InputError, OutputError, UnetsegError
from app.loading import Case

logger = logging.getLogger(__name__)

_ERRORS: dict[str, type[UnetsegError]] = {
    cls.__name__: cls for cls in (UnetsegError, InputError, BundleError, OutputError)
}


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker reports about itself: where it runs, on what, and what went wrong loading the bundle."""

    host: str
    pid: int
    device: str
    runtime: dict[str, Any] | None
    log: str
    error: tuple[str, str | None, str] | None = None  # (UnetsegError subclass name, path, reason)
    node: str = ""  # the Ray node id when the worker is a Ray actor
    peak_rss_mb: float = 0.0  # the worker process's peak resident memory when it described itself

    def raise_error(self) -> None:
        """Raise the bundle-loading error this worker met, as the local runner would have raised it."""
        if self.error is not None:
            name, path, reason = self.error
            raise _ERRORS.get(name, UnetsegError)(path, f"{reason} (on worker {self.host} pid {self.pid})")


class CaseWorker:
    """A worker process's state for a whole batch (module docstring)."""

    def __init__(
        self,
        config: BatchConfig,
        threads: int | None,
        *,
        log: Path | None = None,
        references: References | None = None,
    ):
        from app.inference.bundle import load_bundle

        self.config = config
        self._stack = contextlib.ExitStack()
        self.log = log if log is not None else self._stack.enter_context(run_log(config.out))
        self.workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="unetseg-worker-")))
        self.bundle: Any = None
        self.error: tuple[str, str | None, str] | None = None
        # --ref: each case is scored as it is segmented, against its reference; the local runner hands over the
        # references it found, a Ray worker finds them once on its own node
        if references is None and config.ref is not None:
            references = References.of(config.ref)
        self.references = references
        try:
            self.bundle = load_bundle(config.bundle, config.inference_options(threads))
        except UnetsegError as exc:
            self.error = (type(exc).__name__, str(exc.path) if exc.path else None, exc.reason)
            logger.error("worker could not load the bundle: %s", exc)

    def describe(self) -> WorkerInfo:
        bundle = self.bundle
        return WorkerInfo(
            host=socket.gethostname(),
            pid=os.getpid(),
            device=str(bundle.device) if bundle is not None else "not loaded",
            runtime=asdict(bundle.runtime) if bundle is not None and bundle.runtime is not None else None,
            log=str(self.log),
            error=self.error,
            node=_ray_node_id(),
            peak_rss_mb=round(self.peak_memory_mb(), 1),
        )

    def run(
        self, case: Case, record: CaseRecord, progress: Callable[[int, int], None] | None = None
    ) -> CaseRecord:
        """Run one case (the local runner's function and error boundary); return its filled record.
        ``progress(done, total)``: the case's sliding-window windows as they run (local runs)."""
        if self.bundle is None:
            raise RuntimeError("the worker has no bundle; describe() says why")
        reference = self.references.get(case.case_id) if self.references is not None else None
        work = functools.partial(
            run_case,
            case,
            record,
            self.bundle,
            self.config,
            self.workdir,
            progress=progress,
            reference=reference,
        )
        return run_isolated(case, record, work, run_log=self.log)

    def peak_memory_mb(self) -> float:
        """This worker process's peak resident memory so far (MB)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def close(self) -> None:
        self._stack.close()


def _ray_node_id() -> str:
    """The Ray node this process runs on, when it is a Ray worker (Ray already imported), else empty."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    return str(ray.get_runtime_context().get_node_id())
