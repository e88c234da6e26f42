"""``OUT/journal.jsonl``: every finished case, appended as one JSON line the moment it finishes.

The journal is what makes the run report survive anything short of a lost disk: each line is written and
flushed to the operating system before the next case starts, so a process killed with SIGKILL (or the
out-of-memory killer) mid-batch leaves every finished case in the journal, and :func:`read_journal` turns it
back into records. ``report.json`` is rebuilt from it (:mod:`app.batch.live_report`) every few seconds and at
the end, so the report on disk lags the journal by at most that interval.

Format (one JSON object per line, appended across runs into the same OUT, e.g. a run and its ``--resume``):

* ``{"type": "run", "started": ISO-8601 UTC, "command_line": [...], "pid": N, "case_ids": [...],
  "discovered": [...], "discovery": [...]}`` when a run starts (the cases it will try, every case its discovery
  found, its discovery decisions);
* ``{"type": "case", "record": {...}}`` for each finished case (:meth:`CaseRecord.summary_dict`: the
  input files counted, not listed; ``case.json`` lists them).

A line cut short by a kill is skipped when read (it can only be the last line of a run). Flushing hands the
line to the kernel, which keeps it when the process dies; it is not ``fsync``-ed per line (that costs a disk
round trip per case and protects only against a power cut, which ``case.json`` files survive anyway).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from app.batch.records import CaseRecord
from app.errors import OutputError

logger = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"


class RunJournal:
    """Append-only writer of ``OUT/journal.jsonl`` (module docstring). Use as a context manager."""

    def __init__(self, out: str | Path, name: str = JOURNAL_NAME):
        self.path = Path(out) / name
        self._file: IO[str] | None = None

    def __enter__(self) -> RunJournal:
        try:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        except OSError as exc:
            raise OutputError(self.path, f"cannot open the run journal: {exc.strerror or exc}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def start(
        self,
        command_line: Sequence[str],
        case_ids: Sequence[str],
        decisions: Sequence[Any],
        *,
        discovered: Sequence[str] | None = None,
    ) -> None:
        """Record that a run starts, with the case ids it will try, every case id its discovery found (a
        ``--shard`` run tries only its part; default: ``case_ids``) and its discovery decisions, so that a report
        rebuilt from journals alone lists the cases that never finished, including those of a shard that ran
        before they were added, and how they were found."""
        self._append(
            {
                "type": "run",
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command_line": list(command_line),
                "pid": os.getpid(),
                "case_ids": list(case_ids),
                "discovered": list(case_ids if discovered is None else discovered),
                "discovery": [asdict(d) for d in decisions],
            }
        )

    def case_done(self, record: CaseRecord) -> None:
        """Append one finished case (ok, partial, failed or skipped) and hand it to the kernel."""
        self._append({"type": "case", "record": record.summary_dict()})

    def _append(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError("RunJournal used outside its `with` block")
        try:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(self.path, f"cannot append to the run journal: {exc.strerror or exc}") from exc


def read_journal(out: str | Path, name: str = JOURNAL_NAME) -> dict[str, CaseRecord]:
    """The last journaled record of each case id in ``OUT/<name>`` (empty when there is none).

    Lines that do not parse (a line cut short by a kill) are skipped with a log message.
    """
    return read_journal_file(Path(out) / name).records


@dataclass
class JournalContent:
    """What a journal holds: the last record of each case id, and the ``run`` entries in order."""

    records: dict[str, CaseRecord] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


def read_journal_file(path: Path) -> JournalContent:
    """Read one journal file (see :func:`read_journal`)."""
    content = JournalContent()
    records = content.records
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return content
    except OSError as exc:
        raise OutputError(path, f"cannot read the run journal: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if entry.get("type") == "case":
                record = CaseRecord.from_dict(entry["record"])
                records[record.case_id] = record
            elif entry.get("type") == "run":
                content.runs.append(entry)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            logger.info("%s:%d: skipped an unreadable journal line (%s)", path, number, type(exc).__name__)
    return content
