"""Structured records of what input discovery took, skipped and why (for the batch report and the log)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

Action = Literal["taken", "skipped"]
Subject = Literal["file", "series", "input", "folder"]


@dataclass(frozen=True)
class Decision:
    """One decision of input discovery.

    Attributes:
        action: ``"taken"`` (became a case, or part of one) or ``"skipped"``.
        subject: what the decision is about: one ``"file"``, a DICOM ``"series"``, an ``"input"`` (a NIfTI or
            NRRD file given or found) or a ``"folder"`` left out whole (the run's OUT inside an input).
        path: the file, or for a series the folder holding its files.
        reason: human-readable why; never contains patient names or IDs.
        case_id: the case the decision belongs to, if any (see :mod:`app.loading.cases` for the scheme).
        n_files: number of files the decision covers.
    """

    action: Action
    subject: Subject
    path: str
    reason: str
    case_id: str | None = None
    n_files: int = 1

    def log(self, logger: logging.Logger, level: int = logging.INFO) -> Decision:
        """Log this decision at ``level`` and return it (so it can be logged and recorded in one step)."""
        case = f" [{self.case_id}]" if self.case_id else ""
        logger.log(level, "%s %s%s %s: %s", self.action, self.subject, case, self.path, self.reason)
        return self
