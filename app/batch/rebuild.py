"""``unetseg report OUT``: one run report rebuilt from what the runs left in OUT.

After ``--shard`` runs (each wrote its own report and journal), after a crash, or after runs on several
machines into one shared OUT, the files on disk are the truth:

* every ``OUT/<case_id>/case.json`` (:mod:`app.batch.manifest`) is a completed case (ok or partial), with
  its outputs; these win over anything a journal says about the same case;
* every ``OUT/journal*.jsonl`` (:mod:`app.batch.journal`) gives the last record of each case it saw (failed
  cases have no ``case.json``; they are known from here), and its ``run`` entries give the case ids each run
  meant to try and its discovery decisions;
* a case id a run meant to try, or the newest discovery of any journal found, but with neither is ``pending``
  (never finished): a file added to the archive after the shard it falls in had run is not lost from the count.

The report keeps the cases in the order the runs listed them; ``state`` is ``"complete"`` when nothing is
pending, else ``"incomplete"``. Written atomically as ``OUT/report.json``, ``OUT/report.csv`` and ``OUT/report.html``, like a run's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.batch.journal import read_journal_file
from app.batch.records import CaseRecord
from app.batch.report import build_report, write_run_report
from app.batch.run_page import write_run_page
from app.errors import InputError
from app.loading import Decision
from app.loading.cases import volume_kind
from app.reporting.provenance import PACKAGES, package_versions
from app.run_layout import MANIFEST_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuiltReport:
    """The rebuilt report, its files, and what it was rebuilt from."""

    report: dict[str, Any]
    report_json: Path
    report_csv: Path
    journals: tuple[Path, ...]
    manifests: int
    report_html: Path | None = None


def rebuild_report(out: str | Path) -> RebuiltReport:
    """Rebuild ``OUT/report.json`` and ``OUT/report.csv`` (module docstring).

    Raises:
        InputError: OUT is not a folder, or holds neither journals nor ``case.json`` files.
        OutputError: a report file cannot be written.
    """
    out = Path(out)
    if not out.is_dir():
        raise InputError(out, "not a folder; give the OUT folder of earlier unetseg infer runs")
    journals = tuple(sorted(out.glob("journal*.jsonl")))
    order: dict[str, None] = {}
    records: dict[str, CaseRecord] = {}
    decisions: dict[tuple[str, str, str], Decision] = {}
    runs: list[dict[str, Any]] = []
    for path in journals:
        content = read_journal_file(path)
        for run in content.runs:
            runs.append(
                {"journal": path.name, "started": run.get("started"), "command_line": run.get("command_line")}
            )
            order.update(dict.fromkeys(run.get("case_ids") or []))
        if content.runs:  # its newest run's discovery: every case id it found, this shard's or another's
            order.update(dict.fromkeys(content.runs[-1].get("discovered") or []))
            for item in content.runs[-1].get("discovery") or []:
                decision = Decision(**item)
                decisions[(decision.action, decision.subject, decision.path)] = decision
        for case_id, record in content.records.items():
            order.setdefault(case_id, None)
            records[case_id] = record
    manifests = 0
    for manifest in sorted(out.glob(f"*/{MANIFEST_NAME}")):
        try:
            record = CaseRecord.from_dict(json.loads(manifest.read_text(encoding="utf-8"))["record"])
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            logger.warning("%s: unreadable, not used (%s: %s)", manifest, type(exc).__name__, exc)
            continue
        manifests += 1
        order.setdefault(record.case_id, None)
        records[record.case_id] = record
    if not order:
        raise InputError(out, "holds no journal*.jsonl and no */case.json: nothing to rebuild a report from")
    # a case that never finished has no record: its input and kind are in the discovery decision that took it
    taken = {d.case_id: d for d in decisions.values() if d.action == "taken" and d.case_id}
    cases = [records.get(case_id) or _never_finished(case_id, taken.get(case_id)) for case_id in order]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    provenance = {
        "tool": "unetseg report",
        "versions": package_versions(PACKAGES),
        "rebuilt": now,
        "journals": [p.name for p in journals],
        "case_json_files": manifests,
        "runs": runs,
    }
    report = build_report(cases, list(decisions.values()), provenance)
    report["state"] = "complete" if report["counts"]["pending"] == 0 else "incomplete"
    report_json, report_csv = write_run_report(report, out)
    report_html = write_run_page(report, out)
    logger.info(
        "rebuilt %s from %d journal(s) and %d case.json file(s)", report_json, len(journals), manifests
    )
    return RebuiltReport(report, report_json, report_csv, journals, manifests, report_html)


def _never_finished(case_id: str, taken: Decision | None) -> CaseRecord:
    """The record of a case no run finished, with its input and kind from the decision that took it (if the
    journal kept one)."""
    reason = "never finished (no record in OUT)"
    if taken is None:
        return CaseRecord(case_id, "", "", [], reason=reason)
    kind = "dicom" if taken.subject == "series" else volume_kind(Path(taken.path)) or ""
    return CaseRecord(case_id, kind, taken.path, [], reason=reason)
