"""The batch runner: discover cases, load the bundle once, run every case in isolation, report.

Contract of :func:`run_batch`:

1. the bundle is validated and its metadata read (:func:`~app.inference.bundle.read_bundle_info`); inputs are
   discovered with :func:`app.loading.discover_inputs` (default DICOM modality: the bundle's);
2. with ``resume``, complete cases (:mod:`app.batch.manifest`) are skipped before the model is loaded, so a
   fully complete batch loads nothing;
3. the bundle is loaded once (:func:`~app.inference.bundle.load_bundle`) and each remaining case runs through
   :func:`app.batch.case.run_case`, with a tqdm progress bar on stderr (off when stderr is not a terminal);
4. **per-case isolation happens here and only here**: :class:`~app.errors.UnetsegError` (input, bundle and
   output problems a user can cause), plus pydicom's and nibabel's decode errors (turned into
   :class:`~app.errors.InputError` naming the case's input), are caught per case, recorded as ``failed`` with
   the reason, and the batch goes on. Anything else is a bug and stops the run;
5. ``OUT/report.json`` and ``OUT/report.csv`` are written (:mod:`app.batch.report`), then, with ``ref``, the
   outputs are scored (:mod:`app.batch.scoring`) and the report is written again with the scores.

Errors raised (not per case): :class:`~app.errors.BundleError` for an unusable bundle,
:class:`~app.errors.InputError` for a missing input or a malformed series rule, and
:class:`~app.errors.OutputError` when OUT cannot be written.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.batch.case import fingerprint, run_case
from app.batch.config import BatchConfig
from app.batch.manifest import completed_record
from app.batch.records import CaseRecord
from app.batch.report import build_report, run_provenance, write_run_report
from app.bundle_metadata import scored_labels
from app.errors import InputError, OutputError, UnetsegError
from app.inference.bundle import BundleInfo, read_bundle_info
from app.loading import Case, Decision, discover_inputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    """What a batch did: the records (in discovery order), decisions, the report dict and its files."""

    records: list[CaseRecord]
    decisions: list[Decision]
    report: dict[str, Any]
    report_json: Path
    report_csv: Path

    @property
    def failed(self) -> list[CaseRecord]:
        """Cases that failed, or produced only part of the requested outputs."""
        return [r for r in self.records if r.status in ("failed", "partial")]

    @property
    def exit_code(self) -> int:
        """0 when every case produced all its outputs (and every reference was scored), else 1."""
        evaluation = self.report.get("evaluation")
        scored_ok = evaluation is None or evaluation.get("ok", True)
        return 0 if not self.failed and scored_ok else 1


def run_batch(config: BatchConfig) -> BatchResult:
    """Run the batch described by ``config`` (contract in the module docstring)."""
    started = datetime.now(timezone.utc)
    info = read_bundle_info(config.bundle)
    _prepare_out(config.out)
    cases, decisions = discover_inputs(
        config.inputs,
        modality=config.required_modality(info.modality),
        filters=config.series_filters,
        pictures=info.spatial_dims == 2,
    )
    logger.info("%d case(s) discovered, %d discovery decision(s)", len(cases), len(decisions))
    records = [CaseRecord.of(case) for case in cases]
    todo = _resume(cases, records, info, config) if config.resume else list(zip(cases, records, strict=True))

    device = "not loaded (nothing to run)"
    runtime: dict[str, Any] | None = None
    if todo:
        from app.inference.bundle import load_bundle

        bundle = load_bundle(
            info.path,
            device=config.device,
            overlap=config.overlap,
            sw_batch_size=config.sw_batch_size,
            backend=config.backend,
            skip_empty=config.skip_empty,
            resample_float32=config.resample_float32,
            num_threads=config.num_threads,
        )
        device = str(bundle.device)
        runtime = asdict(bundle.runtime)
        with tempfile.TemporaryDirectory(prefix="unetseg-infer-") as workdir:
            for case, record in _progress(todo):
                _run_isolated(case, record, bundle, config, Path(workdir))

    provenance = run_provenance(
        bundle={
            "path": str(info.path),
            "name": info.name,
            "version": info.version,
            "weights_sha256": info.weights_sha256,
            "labels": {str(k): v for k, v in info.labels.items()},
            "label_context": info.label_context,
        },
        device=device,
        command_line=config.command_line,
        options={**_options(config, info), "runtime": runtime},
        started=started,
        finished=datetime.now(timezone.utc),
    )
    report = build_report(records, decisions, provenance)
    report_json, report_csv = write_run_report(report, config.out)
    if config.ref is not None:
        from app.batch.scoring import score_outputs

        evaluation = score_outputs(
            records,
            config.ref,
            config.out,
            scored_labels(info.labels, info.picture_scale),
            tolerance_mm=config.tolerance_mm,
            inputs={"bundle": str(info.path)},
        )
        report = build_report(records, decisions, provenance, evaluation)
        report_json, report_csv = write_run_report(report, config.out)
    counts = report["counts"]
    logger.info(
        "batch done: %d ok, %d partial, %d skipped, %d failed; report %s",
        counts["ok"],
        counts["partial"],
        counts["skipped"],
        counts["failed"],
        report_json,
    )
    return BatchResult(records, decisions, report, report_json, report_csv)


def _run_isolated(case: Case, record: CaseRecord, bundle: Any, config: BatchConfig, workdir: Path) -> None:
    """The one place where a case's failure is caught, recorded, and the batch goes on."""
    decode_errors = _decode_errors()
    started = time.perf_counter()
    try:
        run_case(case, record, bundle, config, workdir)
    except UnetsegError as exc:
        _fail(record, exc)
    except decode_errors as exc:
        _fail(record, InputError(case.source, f"cannot decode {case.kind} data: {type(exc).__name__}: {exc}"))
    record.timings_s.setdefault("total", time.perf_counter() - started)
    if record.status == "ok":
        logger.info("case %s: ok in %.1f s", case.case_id, record.timings_s["total"])


def _fail(record: CaseRecord, exc: UnetsegError) -> None:
    record.status, record.reason = "failed", f"{type(exc).__name__}: {exc}"
    logger.warning("case %s failed: %s", record.case_id, record.reason)


def _decode_errors() -> tuple[type[BaseException], ...]:
    """pydicom's and nibabel's "this file is not what it claims" errors (readers normally convert them)."""
    from nibabel.filebasedimages import ImageFileError
    from pydicom.errors import InvalidDicomError

    return (InvalidDicomError, ImageFileError)


def _resume(
    cases: list[Case], records: list[CaseRecord], info: BundleInfo, config: BatchConfig
) -> list[tuple[Case, CaseRecord]]:
    """Mark complete cases ``skipped`` (their earlier outputs recorded); return the cases still to run."""
    todo = []
    for case, record in zip(cases, records, strict=True):
        done, why = completed_record(Path(config.out) / case.case_id, fingerprint(info, case.kind, config))
        if done is None:
            logger.info("case %s: running (%s)", case.case_id, why)
            todo.append((case, record))
            continue
        record.status = "skipped"
        record.reason = "complete from an earlier run (case.json and its outputs verified)"
        record.outputs, record.seg = list(done.outputs), done.seg
        logger.info("case %s: skipped, %s", case.case_id, record.reason)
    return todo


def _progress(items: list[tuple[Case, CaseRecord]]) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc="unetseg infer", unit="case", file=sys.stderr, disable=None, dynamic_ncols=True)


def _prepare_out(out: Path) -> None:
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out, f"cannot create the output folder: {exc.strerror or exc}") from exc


def _options(config: BatchConfig, info: BundleInfo) -> dict[str, Any]:
    return {
        "inputs": [str(p) for p in config.inputs],
        "out": str(config.out),
        "device": config.device,
        "formats": sorted(config.formats),
        "seg_type": config.seg_type,
        "overlap": config.overlap,
        "sw_batch_size": config.sw_batch_size,
        "backend": config.backend,
        "skip_empty": config.skip_empty,
        "resample_float32": config.resample_float32,
        "num_threads": config.num_threads,
        "series_filters": list(config.series_filters),
        "modality": config.required_modality(info.modality),
        "resume": config.resume,
        "ref": str(config.ref) if config.ref else None,
        "tolerance_mm": config.tolerance_mm,
    }
