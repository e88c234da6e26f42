"""The run report kept current while a batch runs: journal each finished case, rewrite the report on a throttle.

Contract of :class:`LiveReport`:

* :meth:`LiveReport.case_done` appends the case to ``OUT/journal.jsonl`` (:mod:`app.batch.journal`) at once,
  and rewrites ``report.json`` / ``report.csv`` atomically (:func:`app.batch.report.write_run_report`) when
  the last rewrite is older than ``interval_s``;
* the pause between two rewrites is at least ``cost_factor`` times the last rewrite's duration, so the
  report's share of the run stays under ``1 / (1 + cost_factor)`` however many cases there are (a report of
  100,000 cases takes seconds to write; rewriting it after every case would dominate a run of small cases);
* :meth:`LiveReport.write` writes now (the start of the run, the end, an interruption).

The report's ``state`` says which it is: ``"running"`` (cases still ``pending``), ``"complete"``,
``"interrupted"`` (the run was stopped; the finished cases are in it) or ``"aborted"`` (the run could not
start its cases, e.g. the bundle did not load; ``abort_reason`` says why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from app.batch.journal import RunJournal
from app.batch.records import CaseRecord
from app.batch.report import build_report, write_run_report
from app.loading import Decision

logger = logging.getLogger(__name__)

State = Literal["running", "complete", "interrupted", "aborted"]


class LiveReport:
    """The report of one run while it runs (module docstring).

    Args:
        out: the output folder.
        records: every case of the run, in discovery order (pending ones included); the runner fills them in.
        decisions: the discovery decisions.
        provenance: called at each write for the provenance block (it holds the current end time).
        journal: an open :class:`~app.batch.journal.RunJournal` of ``out``.
        interval_s: the least time between two rewrites while cases finish.
        cost_factor: the least pause between two rewrites, in units of the last rewrite's duration.
        stem: the report's file name without suffix (``report``; a shard's ``report-shard-K-of-N``).
    """

    def __init__(
        self,
        out: Path,
        records: Sequence[CaseRecord],
        decisions: Sequence[Decision],
        provenance: Callable[[], Mapping[str, Any]],
        journal: RunJournal,
        *,
        interval_s: float = 5.0,
        cost_factor: float = 50.0,
        stem: str = "report",
    ):
        self.out = Path(out)
        self.records = records
        self.decisions = decisions
        self.provenance = provenance
        self.journal = journal
        self.interval_s = interval_s
        self.cost_factor = cost_factor
        self.stem = stem
        self.evaluation: Mapping[str, Any] | None = None
        self.report: dict[str, Any] = {}
        self.write_seconds = 0.0
        self.writes = 0
        self._next_write = 0.0

    def case_done(self, record: CaseRecord) -> None:
        """Journal ``record`` now; rewrite the report if the throttle allows."""
        self.journal.case_done(record)
        if time.monotonic() >= self._next_write:
            self.write("running")

    def write(self, state: State, **extra: Any) -> tuple[Path, Path]:
        """Rewrite ``report.json`` and ``report.csv`` now with the given ``state``; return their paths."""
        started = time.monotonic()
        self.report = build_report(self.records, self.decisions, self.provenance(), self.evaluation)
        self.report["state"] = state
        self.report.update(extra)
        paths = write_run_report(self.report, self.out, self.stem)
        elapsed = time.monotonic() - started
        self.write_seconds += elapsed
        self.writes += 1
        self._next_write = time.monotonic() + max(self.interval_s, self.cost_factor * elapsed)
        logger.debug("report (%s) written in %.3f s", state, elapsed)
        return paths
