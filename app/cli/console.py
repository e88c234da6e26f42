"""What ``unetseg infer`` and ``unetseg demo`` show while a batch runs: a progress bar and a line per case.

:class:`ConsoleObserver` is a :class:`~app.batch.observer.BatchObserver`: a tqdm bar on stderr with ETA and
cases per minute (shown when stderr is a terminal), and one line on stdout per finished case, as it finishes,
whether or not stdout is a terminal (so a piped or logged run shows its progress too)::

    [  3/20] ok       12.4 s  8f175593_4_cf899d56  study_1/series_4 (#4 T1 MPRAGE)

The source is shown relative to the INPUT it was found under (the case id stays free of patient data; the
mapping back to the input is this line, ``report.csv`` and ``case.json``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.batch.observer import BatchObserver
from app.batch.records import CaseRecord
from app.batch.tracing import describe_series, relative_source


class ConsoleObserver(BatchObserver):
    """Progress bar plus one line per finished case (module docstring)."""

    def __init__(self, inputs: Sequence[Path], *, desc: str = "unetseg infer"):
        self.inputs = tuple(inputs)
        self.desc = desc
        self.total = 0
        self.done = 0
        self._bar: Any = None

    def started(self, records: Sequence[CaseRecord]) -> None:
        from tqdm import tqdm

        self.total = len(records)
        self._bar = tqdm(
            total=self.total, desc=self.desc, unit="case", file=sys.stderr, disable=None, dynamic_ncols=True
        )

    def case_done(self, record: CaseRecord) -> None:
        self.done += 1
        width = len(str(self.total))
        seconds = record.timings_s.get("total")
        took = f"{seconds:6.1f} s" if seconds is not None else " " * 8
        source = record.source or relative_source(record.input, self.inputs)
        series = describe_series(record.series)
        line = f"[{self.done:>{width}}/{self.total}] {record.status:<8} {took}  {record.case_id}  {source}"
        if series:
            line += f" ({series})"
        if record.status != "ok" and record.reason:
            line += f"\n    {record.reason}"
        for warning in record.warnings:
            line += f"\n    warning: {warning}"
        self._write(line)
        if self._bar is not None:
            self._bar.update(1)

    def finished(self) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _write(self, line: str) -> None:
        if self._bar is not None and not self._bar.disable:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)
