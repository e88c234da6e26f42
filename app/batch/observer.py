"""What a batch tells whoever watches it: the cases, each one as it starts and as it finishes.

:class:`BatchObserver` is the do-nothing base; the CLI's console (progress bar, a line per finished case) and
the cluster driver subclass it. The runner calls, in order: :meth:`~BatchObserver.started` once with every
record (skipped ones already marked), :meth:`~BatchObserver.case_started` / :meth:`~BatchObserver.case_done`
around each case it runs (``case_done`` also for each case skipped by ``--resume``), with
:meth:`~BatchObserver.case_progress` in between while a local case's sliding window runs, and
:meth:`~BatchObserver.report_progress` while the run's page is written, and :meth:`~BatchObserver.finished` once
at the end of a run that was not interrupted. Observers must not raise:
they only watch.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.batch.records import CaseRecord


class BatchObserver:
    """Watches a batch (module docstring); every method does nothing by default."""

    def started(self, records: Sequence[CaseRecord]) -> None:
        """The batch has its case list (in discovery order)."""

    def case_started(self, record: CaseRecord, where: str = "local") -> None:
        """A case starts running on ``where`` (``"local"``, or a cluster worker's host and number)."""

    def case_progress(self, record: CaseRecord, done: int, total: int) -> None:
        """A running case's sliding window has run ``done`` of ``total`` windows (local runs; called often:
        throttle any output)."""

    def case_done(self, record: CaseRecord) -> None:
        """A case finished (ok, partial, failed) or was skipped as complete."""

    def report_progress(self, what: str, done: int, total: int) -> None:
        """The run's report ``what`` (e.g. ``report.html``) is being written: ``done`` of ``total`` steps."""

    def finished(self) -> None:
        """Every case has been tried and the report written."""
