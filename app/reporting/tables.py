"""``metrics.csv`` and ``summary.json`` contents (pure functions returning text).

Contract: :func:`metrics_csv` has one row per (case, label), columns in
:class:`~app.evaluation.result.LabelResult` field order, floats in Python's shortest round-trip form.
:func:`summary_json` holds the per-label summary, the failed and unused inputs, and the provenance record.
:func:`em_metrics_csv` has one row per case of the EM scores (membrane/cell label maps only).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from app.evaluation.em import EmRow
from app.evaluation.result import CaseFailure, LabelResult
from app.evaluation.summary import Summary

COLUMNS = tuple(f.name for f in fields(LabelResult))


def metrics_csv(results: Iterable[LabelResult]) -> str:
    """CSV text: a header and one row per result, sorted by case id and label value."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in sorted(results, key=lambda r: (r.case_id, r.label)):
        writer.writerow(result.as_dict())
    return buffer.getvalue()


def em_metrics_csv(rows: Iterable[EmRow]) -> str:
    """CSV text of per-case EM scores: ``case_id``, ``flag`` and :data:`app.evaluation.em.EM_SCORES`, by case id."""
    from app.evaluation.em import EM_SCORES

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=("case_id", "flag", *EM_SCORES), lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r.case_id):
        values = row.as_dict()
        writer.writerow({key: values[key] for key in writer.fieldnames})
    return buffer.getvalue()


def summary_json(
    summary: Summary,
    *,
    provenance: Mapping[str, Any],
    failures: Sequence[CaseFailure] = (),
    unused: Sequence[tuple[Path, str]] = (),
) -> str:
    """JSON text (4-space indents) of the summary plus failures, unused files and provenance."""
    document = {
        **summary.to_dict(),
        "failures": [
            {
                "case_id": f.case_id,
                "flag": f.flag,
                "message": f.message,
                "path": _path(f.path),
                "scored": f.scored,
            }
            for f in failures
        ],
        "unused_files": [{"path": str(path), "reason": reason} for path, reason in unused],
        "provenance": dict(provenance),
    }
    return json.dumps(document, indent=4, allow_nan=False) + "\n"


def _path(path: Path | None) -> str | None:
    return str(path) if path is not None else None
