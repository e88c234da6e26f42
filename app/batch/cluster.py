"""Cases on a Ray cluster: N actors, each a :class:`~app.batch.worker.CaseWorker` (the bundle loaded once),
fed one case at a time by the driver, which keeps the report (``--cluster ray``).

Contract of :func:`run_on_ray`:

* **the runtime**: with ``config.address`` ``None`` a local Ray runtime is started for the run (``num_cpus`` =
  workers x threads per worker, no dashboard, usage statistics off) and shut down after it; with an address
  (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) that cluster is joined and left running. A runtime already
  initialised in this process (``ray.is_initialized()``) is used as it is and left running;
* **the workers**: ``config.workers`` actors (default: the cluster's CPUs // threads per worker), each
  reserving ``threads_per_worker`` CPUs (default 1) and running the network with that many threads; INPUT
  and OUT must be on a file system every node sees (:doc:`docs/scale_out.md`);
* **the same per-case contract as the local run**: each case runs through the same function and error
  boundary in the worker, which writes its outputs straight into OUT; ``started`` and ``finished`` are called
  on the driver as cases are handed out and come back (the runner journals and reports there);
* **faults**: a worker process that dies in the middle of a case (killed, out of memory) is restarted by Ray
  (``max_restarts=-1``; it loads the bundle again) and the case is tried once more; a second death fails the
  case as ``internal`` with the reason. A bundle that does not load on a worker raises that worker's error
  (:class:`~app.errors.BundleError`) on the driver, as the local run does. KeyboardInterrupt kills the actors.

Returns the :class:`~app.batch.worker.WorkerInfo` of each worker at the end of the run (device, runtime, log
file, peak memory).
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.batch.config import BatchConfig
from app.batch.records import CaseRecord
from app.batch.worker import CaseWorker, WorkerInfo
from app.errors import InputError
from app.loading import Case

logger = logging.getLogger(__name__)

_USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
#: how many times a case is started on a worker that then dies, before it is recorded as failed
MAX_ATTEMPTS = 2


def import_ray() -> Any:
    """Ray, or an :class:`~app.errors.InputError` that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise InputError(
            None,
            '--cluster ray needs Ray: pip install "unetseg[ray]" (or pip install "ray>=2.60")',
        ) from exc
    return ray


def run_on_ray(
    todo: Sequence[tuple[Case, CaseRecord]],
    config: BatchConfig,
    *,
    started: Callable[[CaseRecord, str], None],
    finished: Callable[[CaseRecord], None],
) -> list[WorkerInfo]:
    """Run ``todo`` on Ray actors (contract in the module docstring)."""
    ray = import_ray()
    threads = config.threads_per_worker or 1
    owned = _connect(ray, config, threads)
    actors: list[Any] = []
    try:
        workers = config.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        remote = ray.remote(CaseWorker).options(num_cpus=threads, max_restarts=-1, max_task_retries=0)
        actors = [remote.remote(config, threads) for _ in range(workers)]
        infos: list[WorkerInfo] = ray.get([actor.describe.remote() for actor in actors])
        for info in infos:
            info.raise_error()
        logger.info(
            "%d Ray worker(s) x %d thread(s) on %s", workers, threads, sorted({i.host for i in infos})
        )
        _schedule(ray, actors, infos, todo, started, finished, Path(config.out))
        # described again at the end: their peak memory over the run (a restarted worker: since its restart)
        return [_describe_restarted(ray, actor) for actor in actors]
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if owned:
            ray.shutdown()


def _connect(ray: Any, config: BatchConfig, threads: int) -> bool:
    """Join or start the runtime; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    # Ray's documented opt-out of usage statistics is the variable RAY_USAGE_STATS_ENABLED=0, read by the
    # processes ray.init starts (they inherit this process's environment). It is set for the call alone.
    previous = os.environ.get(_USAGE_STATS)
    os.environ[_USAGE_STATS] = "0"
    try:
        if config.address:
            ray.init(address=config.address, **options)
        else:
            ray.init(num_cpus=(config.workers or 1) * threads, **options)
    finally:
        if previous is None:
            del os.environ[_USAGE_STATS]
        else:
            os.environ[_USAGE_STATS] = previous
    return True


def _schedule(
    ray: Any,
    actors: list[Any],
    infos: list[WorkerInfo],
    todo: Sequence[tuple[Case, CaseRecord]],
    started: Callable[[CaseRecord, str], None],
    finished: Callable[[CaseRecord], None],
    out: Path,
) -> None:
    """Keep every actor busy with one case; retry a case once when its worker dies; on Ctrl-C, abandon the
    cases in flight (:func:`_abandon`)."""
    queue = collections.deque(todo)
    attempts: collections.Counter[str] = collections.Counter()
    idle = list(range(len(actors)))
    in_flight: dict[Any, tuple[int, Case, CaseRecord, float]] = {}
    try:
        _hand_out(ray, actors, infos, queue, attempts, idle, in_flight, started, finished)
    except (KeyboardInterrupt, SystemExit):
        _abandon(ray, actors, out, in_flight)
        raise


def _hand_out(
    ray: Any,
    actors: list[Any],
    infos: list[WorkerInfo],
    queue: collections.deque[tuple[Case, CaseRecord]],
    attempts: collections.Counter[str],
    idle: list[int],
    in_flight: dict[Any, tuple[int, Case, CaseRecord, float]],
    started: Callable[[CaseRecord, str], None],
    finished: Callable[[CaseRecord], None],
) -> None:
    while queue or in_flight:
        while idle and queue:
            index = idle.pop()
            case, record = queue.popleft()
            attempts[case.case_id] += 1
            started(record, f"{infos[index].host} pid {infos[index].pid}")
            ref = actors[index].run.remote(case, record)
            in_flight[ref] = (index, case, record, time.perf_counter())
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        index, case, record, since = in_flight.pop(ref)
        idle.append(index)
        try:
            result: CaseRecord = ray.get(ref)
        except ray.exceptions.RayError as exc:
            # the worker process died (killed, out of memory) or its actor could not be reached: the case is
            # tried again on the restarted worker, once; then it is recorded.
            what = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            infos[index] = _describe_restarted(ray, actors[index])
            if attempts[case.case_id] < MAX_ATTEMPTS:
                logger.warning("case %s: its worker died (%s); trying it once more", case.case_id, what)
                queue.appendleft((case, record))
                continue
            record.status, record.failure = "failed", "internal"
            record.reason = (
                f"internal error: the worker process died {attempts[case.case_id]} times while running this "
                f"case (killed or out of memory?); last: {what}"
            )
            record.timings_s.setdefault("total", time.perf_counter() - since)
            logger.warning("case %s failed: %s", case.case_id, record.reason)
            finished(record)
            continue
        vars(record).update(vars(result))
        finished(record)


def _abandon(
    ray: Any, actors: list[Any], out: Path, in_flight: dict[Any, tuple[int, Case, CaseRecord, float]]
) -> None:
    """On Ctrl-C: stop the workers, wait (10 s at most) until their cases have ended, then remove what the cases
    in flight had written (no ``case.json`` vouches for it; ``--resume`` runs them again); their records go back
    to ``pending``."""
    for actor in actors:
        ray.kill(actor, no_restart=True)
    if in_flight:
        ray.wait(list(in_flight), num_returns=len(in_flight), timeout=10)
    for _, case, record, _ in in_flight.values():
        shutil.rmtree(Path(out) / case.case_id, ignore_errors=True)
        record.status, record.reason, record.seg = "pending", "interrupted before it finished", None
        record.outputs.clear()
        logger.warning("case %s: interrupted on its worker; its partial outputs were removed", case.case_id)


def _describe_restarted(ray: Any, actor: Any, timeout_s: float = 600.0) -> WorkerInfo:
    """The worker's info once Ray has restarted it (it reloads the bundle); polls while it is unavailable."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info: WorkerInfo = ray.get(actor.describe.remote())
            return info
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
