"""The run report of a batch: ``OUT/report.json`` (everything) and ``OUT/report.csv`` (one row per case).

Contract: :func:`build_report` is a pure function of the case records, the discovery decisions, the run
provenance and the optional scoring summary; :func:`write_run_report` writes both files atomically.
``report.json`` holds:

* ``status``: ``"failed"`` when a case failed, else ``"partial"`` when a case missed a requested output, else
  ``"ok"``; ``counts`` per status (``pending``: not finished, while the run goes on or after it was stopped);
* ``state`` (set by :class:`app.batch.live_report.LiveReport`): ``"running"``, ``"complete"``,
  ``"interrupted"`` or ``"aborted"`` (then ``abort_reason``);
* ``provenance``: versions (unetseg, MONAI, torch, numpy, ...), the bundle (path, name, version, weights
  SHA-256), device, command line, options, start and end time (UTC) and total seconds;
* ``cases``: per case its id, input path and number of input files, chosen series (UIDs, number, description, modality), status,
  reason, failure (``refused`` or ``internal``), warnings, outputs (path, bytes, SHA-256), SEG UIDs, timings (load,
  inference, write, qa) and ``statistics`` (per-label statistics and plausibility flags,
  :mod:`app.evaluation.statistics`; also the statistics columns of ``report.csv``);
* ``discovery``: every decision of input discovery (taken/skipped, what, path, why);
* ``evaluation``: the report files and per-case, per-label Dice when ``--ref`` was given, else ``null``.

No patient name or ID is ever put in a record (only UIDs, SeriesNumber/Description, Modality and paths).
"""

from __future__ import annotations

import csv
import io
import json
import platform
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from app.batch.records import CaseRecord
from app.loading import Decision
from app.reporting.provenance import PACKAGES, jsonable, package_versions
from app.writing.atomic import atomic_write

REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"

#: the chosen DICOM series' fields, in CSV column order
SERIES_COLUMNS = (
    "study_instance_uid",
    "series_instance_uid",
    "series_number",
    "series_description",
    "modality",
)

CSV_COLUMNS = (
    "case_id",
    "status",
    "reason",
    "failure",
    "warnings",
    "kind",
    "input",
    "source",
    "n_input_files",
    "study_instance_uid",
    "series_instance_uid",
    "series_number",
    "series_description",
    "modality",
    "nifti",
    "picture",
    "seg",
    "seg_series_instance_uid",
    "load_s",
    "inference_s",
    "write_s",
)


def run_provenance(
    *,
    bundle: Mapping[str, Any],
    device: str,
    command_line: Sequence[str],
    options: Mapping[str, Any],
    started: datetime,
    finished: datetime,
    log: str | None = None,
    worker_logs: Sequence[str] = (),
    workers: Sequence[Mapping[str, Any]] = (),
    driver_peak_rss_mb: float | None = None,
) -> dict[str, Any]:
    """The provenance block of ``report.json`` (timestamps are given, so the function stays pure)."""
    return {
        "tool": "unetseg infer",
        "versions": package_versions(PACKAGES),
        "platform": platform.platform(),
        "bundle": dict(bundle),
        "device": device,
        "command_line": list(command_line) or list(sys.argv),
        "options": {k: jsonable(v) for k, v in options.items()},
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 3),
        "log": log,
        "worker_logs": list(worker_logs),
        "workers": [dict(w) for w in workers],
        "driver_peak_rss_mb": driver_peak_rss_mb,
    }


def build_report(
    records: Sequence[CaseRecord],
    decisions: Sequence[Decision],
    provenance: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``report.json`` content (see the module docstring)."""
    counts = {
        status: sum(r.status == status for r in records)
        for status in ("ok", "partial", "skipped", "failed", "pending")
    }
    return {
        "status": "failed" if counts["failed"] else "partial" if counts["partial"] else "ok",
        "counts": {"cases": len(records), **counts},
        "provenance": dict(provenance),
        "cases": [r.summary_dict() for r in records],
        "discovery": [asdict(d) for d in decisions],
        "evaluation": dict(evaluation) if evaluation is not None else None,
    }


def csv_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per case; Dice columns ``dice_<label>`` are added when the report has an evaluation, and the
    statistics columns (:func:`statistics_columns`) for cases that have statistics."""
    dice = (report.get("evaluation") or {}).get("dice") or {}
    label_names = list(dict.fromkeys(name for per_case in dice.values() for name in per_case))
    rows = []
    for case in report["cases"]:
        series = case.get("series") or {}
        outputs = {o["kind"]: o["path"] for o in case.get("outputs") or []}
        timings = case.get("timings_s") or {}
        row = {
            "case_id": case["case_id"],
            "status": case["status"],
            "reason": case["reason"],
            "failure": case.get("failure", ""),
            "warnings": " | ".join(case.get("warnings") or []),
            "kind": case["kind"],
            "input": case["input"],
            "source": case.get("source", ""),
            "n_input_files": case.get("n_input_files", 0),
            **{k: series.get(k, "") for k in SERIES_COLUMNS},
            "nifti": outputs.get("nifti", ""),
            "picture": outputs.get("picture", ""),
            "seg": outputs.get("seg", ""),
            "seg_series_instance_uid": (case.get("seg") or {}).get("series_instance_uid", ""),
            "load_s": timings.get("load", ""),
            "inference_s": timings.get("inference", ""),
            "write_s": timings.get("write", ""),
            "flags": " | ".join(f["message"] for f in (case.get("statistics") or {}).get("flags") or []),
            **statistics_columns(case.get("statistics")),
        }
        for name in label_names:
            value = dice.get(case["case_id"], {}).get(name)
            row[f"dice_{name}"] = "" if value is None else round(float(value), 4)
        rows.append(row)
    return rows


def statistics_columns(statistics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The CSV columns of one case's statistics (:class:`~app.evaluation.statistics.CaseStatistics` as a dict):
    per label ``<name>_voxels``, ``_volume_ml``, ``_components``, ``_largest_component_share``,
    ``_centroid_ras_{x,y,z}_mm``, ``_bbox_min_ras_{x,y,z}_mm``, ``_bbox_max_ras_{x,y,z}_mm`` and ``_intensity_{mean,
    std,median,p5,p95}`` (plus ``intensity_unit``); for membrane/cell pictures ``membrane_fraction``, ``cells``
    and ``cell_area_{mean,median,p5,p95}_px``. Empty cells where a value is missing (an empty label)."""
    if not statistics:
        return {}
    row: dict[str, Any] = {"intensity_unit": statistics.get("intensity_unit", "")}
    space = str(statistics.get("space", "RAS")).lower()
    for s in statistics.get("labels") or []:
        name = s["name"]
        row[f"{name}_voxels"] = s["voxels"]
        row[f"{name}_volume_ml"] = _rounded(s.get("volume_ml"), 4)
        row[f"{name}_components"] = s["components"]
        row[f"{name}_largest_component_share"] = _rounded(s.get("largest_component_share"), 4)
        for key in ("centroid", "bbox_min", "bbox_max"):
            point = s.get(f"{key}_{space}_mm")
            for axis, letter in enumerate("xyz"):
                row[f"{name}_{key}_{space}_{letter}_mm"] = "" if point is None else point[axis]
        intensity = s.get("intensity") or {}
        for key in ("mean", "std", "median", "p5", "p95"):
            row[f"{name}_intensity_{key}"] = _rounded(intensity.get(key), 4)
    cells = statistics.get("cells")
    if cells:
        row["membrane_fraction"] = _rounded(cells["membrane_fraction"], 4)
        row["cells"] = cells["cells"]
        for key in ("mean", "median", "p5", "p95"):
            row[f"cell_area_{key}_px"] = _rounded(cells.get(f"cell_area_{key}_px"), 2)
    return row


def _rounded(value: Any, digits: int) -> Any:
    return "" if value is None else round(float(value), digits)


def write_run_report(report: Mapping[str, Any], out: str | Path, stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.csv`` (default ``report.json``, ``report.csv``) into ``out``
    atomically; return their paths.

    Raises:
        OutputError: a file cannot be written.
    """
    out = Path(out)
    json_path, csv_path = out / f"{stem}.json", out / f"{stem}.csv"
    with atomic_write(json_path) as tmp:
        tmp.write_text(dumps_report(report), encoding="utf-8")
    rows = csv_rows(report)
    buffer = io.StringIO()
    # every row's columns (a failed first case has no statistics columns; a later ok case has)
    extra = dict.fromkeys(c for row in rows for c in row if c not in CSV_COLUMNS)
    columns = list(CSV_COLUMNS) + list(extra)
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(csv_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return json_path, csv_path


def dumps_report(report: Mapping[str, Any]) -> str:
    """``report`` as JSON: indented, with each case and each discovery decision on one compact line.

    The same JSON value as ``json.dumps(report, indent=2)``, laid out so that a person can still read it and
    100,000 cases write in seconds: ``indent`` makes :mod:`json` fall back to its pure-Python encoder, ten
    times slower than the C encoder used here for each line.
    """
    rows = {key: report[key] for key in ("cases", "discovery") if isinstance(report.get(key), list)}
    marks = {key: f"\0{key}-{secrets.token_hex(8)}" for key in rows}
    head = json.dumps({k: marks.get(k, v) for k, v in report.items()}, indent=2)
    for key, items in rows.items():
        body = ",\n".join("    " + json.dumps(item, separators=(", ", ": ")) for item in items)
        head = head.replace(json.dumps(marks[key]), "[\n" + body + "\n  ]" if items else "[]", 1)
    return head + "\n"
