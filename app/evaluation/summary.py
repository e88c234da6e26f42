"""Per-label summary statistics over cases.

Contract: :func:`summarise` takes :class:`~app.evaluation.result.LabelResult` objects (any order, any number
of cases) and returns a JSON-ready dict::

    {"n_cases": 3,
     "labels": {"anterior": {"label": 1, "n": 3,
                             "flags": {"ok": 2, "both_empty": 0, "missed": 1, ...},
                             "metrics": {"dice": {"n": 3, "mean": .., "median": .., "std": ..,
                                                  "p5": .., "p95": ..}, ...}}, ...}}

Every result counts, whatever its flag (:mod:`app.evaluation.policy`): a miss enters the Dice statistics as
0 and the distance statistics as the worst case, so it cannot silently raise an average. ``std`` is the
sample standard deviation (``ddof=1``; 0 for a single case); percentiles interpolate linearly. Labels are
keyed by name, in label-value order; a name shared by two values is keyed ``"name (value)"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from app.evaluation.policy import FLAGS
from app.evaluation.result import METRICS, LabelResult


def describe(values: Iterable[float]) -> dict[str, float | int]:
    """n, mean, median, std (ddof=1), 5th and 95th percentiles of ``values`` (all 0 when there are none)."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return {"n": 0, "mean": 0.0, "median": 0.0, "std": 0.0, "p5": 0.0, "p95": 0.0}
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
        "p5": float(np.percentile(array, 5)),
        "p95": float(np.percentile(array, 95)),
    }


def summarise(results: Iterable[LabelResult]) -> dict[str, Any]:
    """Per-label statistics of every metric and counts of every flag (see the module docstring)."""
    results = list(results)
    by_label: dict[tuple[int, str], list[LabelResult]] = {}
    for result in results:
        by_label.setdefault((result.label, result.name), []).append(result)
    names = [name for _, name in by_label]
    labels: dict[str, Any] = {}
    for (value, name), group in sorted(by_label.items()):
        key = name if names.count(name) == 1 else f"{name} ({value})"
        labels[key] = {
            "label": value,
            "n": len(group),
            "flags": {flag: sum(r.flag == flag for r in group) for flag in FLAGS},
            "metrics": {metric: describe(getattr(r, metric) for r in group) for metric in METRICS},
        }
    return {"n_cases": len({r.case_id for r in results}), "labels": labels}


def summarise_em(rows: Iterable[Mapping[str, Any]], cell_value: int) -> dict[str, Any]:
    """Statistics of the per-case EM scores (:func:`app.evaluation.em.em_scores` rows, worst-case rows of
    failed cases included): ``{"cell_label": v, "n": .., "flags": {..}, "metrics": {score: describe(..)}}``."""
    from app.evaluation.em import EM_SCORES

    rows = list(rows)
    flags = sorted({str(row["flag"]) for row in rows})
    return {
        "cell_label": int(cell_value),
        "n": len(rows),
        "flags": {flag: sum(row["flag"] == flag for row in rows) for flag in flags},
        "metrics": {name: describe(float(row[name]) for row in rows) for name in EM_SCORES},
    }
