"""The batch runner: discover cases, load the bundle once, run every case in isolation, report as it goes.

Contract of :func:`run_batch`:

1. the bundle is validated and its metadata read (:func:`~app.inference.bundle_info.read_bundle_info`); OUT is
   created, the run log opened (:mod:`app.batch.run_log`: ``OUT/logs/run-*.log``) and the run journaled
   (:mod:`app.batch.journal`: ``OUT/journal.jsonl``); inputs are discovered with
   :func:`app.loading.discover_inputs` (a file whose header cannot be read is a recorded decision, not an
   error), and ``report.json`` / ``report.csv`` are written at once with every case ``pending``;
2. with ``resume``, complete cases (:mod:`app.batch.manifest`) are skipped before the model is loaded, so a
   fully complete batch loads nothing;
3. the bundle is loaded once (:func:`~app.inference.bundle.load_bundle`) and each remaining case runs through
   :func:`app.batch.case.run_case` inside :func:`app.batch.isolation.run_isolated`, **the one per-case error
   boundary**: whatever a case raises (``MemoryError`` included) fails that case alone, as ``refused`` (a
   user-fixable :class:`~app.errors.UnetsegError`) or ``internal`` (anything else; traceback in the run log);
4. each finished case is journaled at once and the report rewritten on a throttle
   (:class:`~app.batch.live_report.LiveReport`), so a killed process leaves a valid report of (nearly) all
   finished cases and a journal of all of them; the ``observer`` hears of every case as it starts and ends,
   and (local runs) of its sliding-window windows done of total while it runs;
5. at the end the report is written with ``state: "complete"``; with ``ref``, the scores each case computed
   against its reference while it ran are assembled (:mod:`app.batch.scoring`) and the report written again
   with them; last, ``report.html``
   (:mod:`app.batch.run_page`: per-case statistics, flags and previews, and the scores). KeyboardInterrupt / SystemExit
   (Ctrl-C; SIGTERM as the CLI maps it) end the batch: the report is written with ``state: "interrupted"``,
   the interrupted case's files are removed, and the exception goes on to the caller. Any other error outside
   the cases (a bundle that does not load, a bug in the runner) writes ``state: "aborted"`` with the reason,
   then propagates.

Errors raised (not per case): :class:`~app.errors.BundleError` for an unusable bundle,
:class:`~app.errors.InputError` for a missing input (checked before OUT is created, so a typo leaves no
empty OUT) or a malformed series rule, and
:class:`~app.errors.OutputError` when OUT cannot be written.
"""

from __future__ import annotations

import functools
import logging
import resource
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.batch.case import completion_key
from app.batch.config import BatchConfig
from app.batch.journal import RunJournal
from app.batch.live_report import LiveReport
from app.batch.manifest import completed_record
from app.batch.observer import BatchObserver
from app.batch.records import CaseRecord
from app.batch.report import run_provenance
from app.batch.run_log import run_log
from app.batch.run_page import write_run_page
from app.batch.scoring import References, RunScores, score_run
from app.batch.worker import CaseWorker, WorkerInfo
from app.bundle_metadata import scored_labels
from app.errors import InputError, OutputError
from app.inference.bundle_info import BundleInfo, read_bundle_info
from app.loading import Case, Decision, discover_inputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    """What a batch did: the records (in discovery order), decisions, the report dict, its files (JSON, CSV and
    the HTML page), the log and, with ``--ref``, the scores."""

    records: list[CaseRecord]
    decisions: list[Decision]
    report: dict[str, Any]
    report_json: Path
    report_csv: Path
    log: Path | None = None
    report_html: Path | None = None
    scores: RunScores | None = None
    #: discovery found no case at all in the inputs (not: this shard's part is empty)
    nothing_found: bool = False

    @property
    def failed(self) -> list[CaseRecord]:
        """Cases that failed, or produced only part of the requested outputs."""
        return [r for r in self.records if r.status in ("failed", "partial")]

    @property
    def exit_code(self) -> int:
        """0 when every case produced all its outputs (and every reference was scored), 2 when the inputs hold
        no case at all (a wrong folder must not look like success to a scheduler), else 1."""
        if self.nothing_found:
            return 2
        scored_ok = self.scores is None or self.scores.ok
        return 0 if not self.failed and scored_ok else 1


def run_batch(config: BatchConfig, observer: BatchObserver | None = None) -> BatchResult:
    """Run the batch described by ``config`` (contract in the module docstring)."""
    started = datetime.now(timezone.utc)
    info = read_bundle_info(config.bundle)
    _check_inputs(config)
    _prepare_out(config.out)
    observer = observer or BatchObserver()
    with run_log(config.out) as log_path, RunJournal(config.out, config.journal_name) as journal:
        cases, decisions = discover_inputs(
            config.inputs,
            modality=config.required_modality(info.modality),
            filters=config.series_filters,
            pictures=info.spatial_dims == 2,
            exclude=(config.out,),
        )
        logger.info("%d case(s) discovered, %d discovery decision(s)", len(cases), len(decisions))
        discovered = [case.case_id for case in cases]
        if config.shard is not None:
            shard = config.shard
            cases = [case for case in cases if shard.takes(case.case_id)]
            logger.info("shard %s: %d case(s) of this shard", shard, len(cases))
        journal.start(
            config.command_line or config.canonical_command(),
            [case.case_id for case in cases],
            decisions,
            discovered=discovered,
        )
        records = [CaseRecord.of(case, config.inputs) for case in cases]
        # --ref: the reference files, found once for the local worker and the scores at the end
        references = References.of(config.ref) if config.ref is not None else None
        run = _RunInfo(info, config, started, log_path)
        live = LiveReport(config.out, records, decisions, run.provenance, journal, stem=config.report_stem)
        live.write("running")
        try:
            pairs = list(zip(cases, records, strict=True))
            todo = _resume(cases, records, info, config) if config.resume else pairs
            observer.started(records)
            for record in records:
                if record.status == "skipped":
                    live.case_done(record)
                    observer.case_done(record)
            if todo:
                _run_cases(todo, run, live, observer, references)
        except (KeyboardInterrupt, SystemExit):
            live.write("interrupted")
            _write_page_after_stop(live.report, config)
            logger.warning("batch interrupted; report %s", config.out / f"{config.report_stem}.json")
            raise
        except BaseException as exc:
            live.write("aborted", abort_reason=f"{type(exc).__name__}: {exc}")
            _write_page_after_stop(live.report, config)
            raise
        report_json, report_csv = live.write("complete")
        scores = None
        if references is not None:
            scores = score_run(
                records,
                references,
                config.out,
                scored_labels(info.labels, info.picture_scale),
                tolerance_mm=config.tolerance_mm,
                inputs={
                    "bundle": str(info.path),
                    "images": ", ".join(map(str, config.inputs)) + " (each case's input, read again)",
                },
            )
            live.evaluation = scores.to_dict()
            report_json, report_csv = live.write("complete")
        report_html = write_run_page(
            live.report,
            config.out,
            config.report_stem,
            progress=functools.partial(observer.report_progress, f"{config.report_stem}.html"),
        )
    report = live.report
    counts = report["counts"]
    logger.info(
        "batch done: %d ok, %d partial, %d skipped, %d failed; report %s (written %d times in %.2f s)",
        counts["ok"],
        counts["partial"],
        counts["skipped"],
        counts["failed"],
        report_json,
        live.writes,
        live.write_seconds,
    )
    observer.finished()
    if not discovered:
        logger.warning(
            "no case found in %s (%d discovery decision(s) in the report)",
            ", ".join(map(str, config.inputs)),
            len(decisions),
        )
    return BatchResult(
        records,
        decisions,
        report,
        report_json,
        report_csv,
        log_path,
        report_html,
        scores,
        nothing_found=not discovered,
    )


def _write_page_after_stop(report: dict[str, Any], config: BatchConfig) -> None:
    """The run page of an interrupted or aborted run, so OUT never shows an earlier run's page beside this run's
    report; its failure is logged, never raised over the stop."""
    try:
        write_run_page(report, config.out, config.report_stem)
    except Exception:  # noqa: BLE001 - the stop's own exception must reach the caller
        logger.exception("the run page of the stopped run could not be written")


class _RunInfo:
    """What the provenance of this run needs; ``device`` and ``runtime`` are set once the bundle is loaded."""

    def __init__(self, info: BundleInfo, config: BatchConfig, started: datetime, log_path: Path):
        self.info, self.config, self.started, self.log_path = info, config, started, log_path
        self.device = "not loaded (nothing to run)"
        self.runtime: dict[str, Any] | None = None
        self.worker_logs: list[str] = []
        self.nodes: list[str] = []
        self.workers: list[dict[str, Any]] = []

    def provenance(self) -> dict[str, Any]:
        info = self.info
        return run_provenance(
            bundle={
                "path": str(info.path),
                "name": info.name,
                "version": info.version,
                "weights_sha256": info.weights_sha256,
                "labels": {str(k): v for k, v in info.labels.items()},
                "label_context": info.label_context,
            },
            device=self.device,
            command_line=self.config.command_line or self.config.canonical_command(),
            options={**_options(self.config, info), "runtime": self.runtime, "ray_nodes": self.nodes},
            workers=self.workers,
            driver_peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            started=self.started,
            finished=datetime.now(timezone.utc),
            log=str(self.log_path),
            worker_logs=self.worker_logs,
        )


def _run_cases(
    todo: list[tuple[Case, CaseRecord]],
    run: _RunInfo,
    live: LiveReport,
    observer: BatchObserver,
    references: References | None,
) -> None:
    """Run each case inside the error boundary, here or on Ray workers, reporting each as it finishes (a Ray
    worker finds the ``references`` on its own node)."""
    config = run.config

    def started(record: CaseRecord, where: str) -> None:
        observer.case_started(record, where)

    def finished(record: CaseRecord) -> None:
        live.case_done(record)
        observer.case_done(record)

    if config.cluster == "ray":
        from app.batch.cluster import run_on_ray

        infos = run_on_ray(todo, config, started=started, finished=finished)
        run.device = ", ".join(sorted({f"{i.device} on {i.host}" for i in infos}))
        run.runtime = infos[0].runtime if infos else None
        run.worker_logs = [i.log for i in infos]
        run.nodes = sorted({i.node for i in infos})
        run.workers = [_worker_summary(i) for i in infos]
        return
    worker = CaseWorker(config, config.num_threads, log=run.log_path, references=references)
    try:
        info = worker.describe()
        info.raise_error()
        run.device, run.runtime = info.device, info.runtime
        for case, record in todo:
            started(record, "local")
            worker.run(case, record, progress=functools.partial(observer.case_progress, record))
            finished(record)
        run.workers = [_worker_summary(worker.describe())]
    finally:
        worker.close()


def _worker_summary(info: WorkerInfo) -> dict[str, Any]:
    """Where a worker ran and its peak memory, for the provenance (its log is listed with the logs)."""
    return {"host": info.host, "pid": info.pid, "node": info.node, "peak_rss_mb": info.peak_rss_mb}


def _resume(
    cases: list[Case], records: list[CaseRecord], info: BundleInfo, config: BatchConfig
) -> list[tuple[Case, CaseRecord]]:
    """Mark complete cases ``skipped`` (their earlier outputs recorded); return the cases still to run."""
    todo = []
    for case, record in zip(cases, records, strict=True):
        done, why = completed_record(Path(config.out) / case.case_id, completion_key(info, case, config))
        if done is None:
            logger.info("case %s: running (%s)", case.case_id, why)
            todo.append((case, record))
            continue
        record.status = "skipped"
        record.reason = "complete from an earlier run (case.json and its outputs verified)"
        record.outputs, record.seg = list(done.outputs), done.seg
        record.statistics, record.warnings = done.statistics, list(done.warnings)
        logger.info("case %s: skipped, %s", case.case_id, record.reason)
    return todo


def _check_inputs(config: BatchConfig) -> None:
    """Every INPUT exists, checked before OUT is created: a typo leaves no empty OUT behind (``ref`` is
    checked by :class:`BatchConfig`)."""
    for path in config.inputs:
        if not Path(path).exists():
            raise InputError(path, "input does not exist")


def _prepare_out(out: Path) -> None:
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out, f"cannot create the output folder: {exc.strerror or exc}") from exc


def _options(config: BatchConfig, info: BundleInfo) -> dict[str, Any]:
    """The run's options for the report: the configuration's, with the modality rule resolved for this bundle."""
    return {**config.options(), "modality": config.required_modality(info.modality)}
