"""What ``unetseg infer`` and ``unetseg demo`` show while a batch runs: a progress bar and a line per case.

:class:`ConsoleObserver` is a :class:`~app.batch.observer.BatchObserver`: a tqdm bar on stderr with ETA and
cases per minute (shown when stderr is a terminal), and one line on stdout per finished case, as it finishes,
whether or not stdout is a terminal (so a piped or logged run shows its progress too)::

    [  3/20] ok       12.4 s  8f175593_4_cf899d56  study_1/series_4 (#4 T1 MPRAGE)

The source is shown relative to the INPUT it was found under (the case id stays free of patient data; the
mapping back to the input is this line, ``report.csv`` and ``case.json``). A case that runs longer than
:data:`PROGRESS_AFTER_S` shows its sliding-window windows done of total: on the bar in a terminal, else as a
line every :data:`PROGRESS_LINE_EVERY_S` seconds::

          ... 8f175593_4_cf899d56: windows 120/400, 13 s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.batch.observer import BatchObserver
from app.batch.records import CaseRecord
from app.batch.tracing import relative_source
from app.reporting.run_html import describe_series

#: a case shows its windows done of total once it has run this long (seconds)
PROGRESS_AFTER_S = 3.0
#: without a terminal, at most one progress line per this many seconds
PROGRESS_LINE_EVERY_S = 10.0


class ConsoleObserver(BatchObserver):
    """Progress bar plus one line per finished case (module docstring)."""

    def __init__(
        self,
        inputs: Sequence[Path],
        *,
        desc: str = "unetseg infer",
        progress_after_s: float = PROGRESS_AFTER_S,
        line_every_s: float = PROGRESS_LINE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.inputs = tuple(inputs)
        self.desc = desc
        self.total = 0
        self.done = 0
        self.progress_after_s = progress_after_s
        self.line_every_s = line_every_s
        self.clock = clock
        self._bar: Any = None
        self._report_bar: Any = None
        self._case_started = 0.0
        self._last_shown = 0.0
        self._started_at = 0.0

    def started(self, records: Sequence[CaseRecord]) -> None:
        from tqdm import tqdm

        self.total = len(records)
        self._started_at = self.clock()
        self._bar = tqdm(
            total=self.total, desc=self.desc, unit="case", file=sys.stderr, disable=None, dynamic_ncols=True
        )

    def case_started(self, record: CaseRecord, where: str = "local") -> None:
        self._case_started, self._last_shown = self.clock(), float("-inf")

    def case_progress(self, record: CaseRecord, done: int, total: int) -> None:
        """Windows done of total, once a case has run :attr:`progress_after_s`: on the bar in a terminal
        (twice a second at most), else a line every :attr:`line_every_s`."""
        now = self.clock()
        elapsed = now - self._case_started
        if elapsed < self.progress_after_s:
            return
        text = f"{record.case_id}: windows {done}/{total}"
        if self._bar is not None and not self._bar.disable:
            if now - self._last_shown >= 0.5 or done >= total:
                self._bar.set_postfix_str(text)
                self._last_shown = now
        elif now - self._last_shown >= self.line_every_s:
            print(f"      ... {text}, {elapsed:.0f} s", flush=True)
            self._last_shown = now

    def case_done(self, record: CaseRecord) -> None:
        if self._bar is not None and not self._bar.disable:
            self._bar.set_postfix_str("")
        self.done += 1
        width = len(str(self.total))
        seconds = record.timings_s.get("total")
        took = f"{seconds:6.1f} s" if seconds is not None else " " * 8
        source = record.source or relative_source(record.input, self.inputs)
        series = (
            describe_series(record.series.series_number, record.series.series_description)
            if record.series is not None
            else ""
        )
        line = f"[{self.done:>{width}}/{self.total}] {record.status:<8} {took}  {record.case_id}  {source}"
        if series:
            line += f" ({series})"
        if record.status != "ok" and record.reason:
            line += f"\n    {record.reason}"
        for warning in record.warnings:
            line += f"\n    warning: {warning}"
        for flag in record.flags:
            line += f"\n    check the result: {flag}"
        self._write(line)
        if self._bar is not None:
            minutes = (self.clock() - self._started_at) / 60
            if minutes > 0:
                self._bar.set_postfix_str(f"{self.done / minutes:.1f} cases/min", refresh=False)
            self._bar.update(1)

    def report_progress(self, what: str, done: int, total: int) -> None:
        """A second bar (terminal only) while the run's page is written: its pictures, then the page."""
        from tqdm import tqdm

        if self._report_bar is None and done < total:
            self._report_bar = tqdm(
                total=total, desc=f"writing {what}", unit="step", file=sys.stderr, disable=None, leave=False
            )
        if self._report_bar is not None:
            self._report_bar.update(done - self._report_bar.n)
            if done >= total:
                self._report_bar.close()
                self._report_bar = None

    def finished(self) -> None:
        self.close()

    def close(self) -> None:
        for bar in (self._bar, self._report_bar):
            if bar is not None:
                bar.close()
        self._bar = self._report_bar = None

    def _write(self, line: str) -> None:
        if self._bar is not None and not self._bar.disable:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)
