"""Per-label summary statistics over cases, as typed objects.

Contract: :func:`summarise` takes :class:`~app.evaluation.result.LabelResult` objects (any order, any number
of cases) and returns a :class:`Summary`; :func:`summarise_em` adds the statistics of the per-case EM scores
(:class:`~app.evaluation.em.EmRow`). :meth:`Summary.to_dict` is the JSON form of ``summary.json``::

    {"n_cases": 3,
     "labels": {"anterior": {"label": 1, "n": 3,
                             "flags": {"ok": 2, "both_empty": 0, "missed": 1, ...},
                             "metrics": {"dice": {"n": 3, "mean": .., "median": .., "std": ..,
                                                  "p5": .., "p95": ..}, ...}}, ...},
     "em": {"cell_label": 255, "n": 3, "flags": {"ok": 3}, "metrics": {"rand_error": {...}, ...}},
     "unlisted_values": {"note": "...", "prediction": [],
                         "reference": [{"value": 3, "voxels": 1624, "cases": 2, "case_ids": [..]}]}}

(``"em"`` only for membrane/cell labels; ``"unlisted_values"``: the label values found in the maps but not in
the label list, never scored, :mod:`app.evaluation.unlisted`.) Every result counts, whatever its flag (:mod:`app.evaluation.policy`):
a miss enters the Dice statistics as 0 and the distance statistics as the worst case, so it cannot silently
raise an average. ``std`` is the sample standard deviation (``ddof=1``; 0 for a single case); percentiles
interpolate linearly. Labels are keyed by name, in label-value order; a name shared by two values is keyed
``"name (value)"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from app.evaluation.policy import FLAGS
from app.evaluation.result import METRICS, LabelResult
from app.evaluation.unlisted import UnlistedSummary

if TYPE_CHECKING:
    from app.evaluation.em import EmRow


@dataclass(frozen=True)
class Stats:
    """n, mean, median, sample standard deviation and 5th / 95th percentiles of one score over cases."""

    n: int
    mean: float
    median: float
    std: float
    p5: float
    p95: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "mean": self.mean,
            "median": self.median,
            "std": self.std,
            "p5": self.p5,
            "p95": self.p95,
        }


@dataclass(frozen=True)
class ScoreTable:
    """Scores over cases: how many results, the count of each flag, and each score's :class:`Stats`."""

    n: int
    flags: Mapping[str, int]
    metrics: Mapping[str, Stats]

    def table_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "flags": dict(self.flags),
            "metrics": {name: stats.to_dict() for name, stats in self.metrics.items()},
        }


@dataclass(frozen=True)
class LabelSummary(ScoreTable):
    """One label over all cases: its value, and its metrics' table (in :data:`~app.evaluation.result.METRICS`
    order)."""

    label: int

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, **self.table_dict()}


@dataclass(frozen=True)
class EmSummary(ScoreTable):
    """The EM scores over cases, with the cell label value they were computed for."""

    cell_label: int

    def to_dict(self) -> dict[str, Any]:
        return {"cell_label": self.cell_label, **self.table_dict()}


@dataclass(frozen=True)
class Summary:
    """The summary of a run: the number of cases, a :class:`LabelSummary` per label name, the EM scores', and the
    label values found but not in the label list (not scored)."""

    n_cases: int
    labels: Mapping[str, LabelSummary] = field(default_factory=dict)
    em: EmSummary | None = None
    unlisted: UnlistedSummary = field(default_factory=UnlistedSummary)

    def mean(self, label: str, metric: str = "dice") -> float:
        """The mean of ``metric`` over the cases, for the label named ``label``."""
        return self.labels[label].metrics[metric].mean

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (module docstring)."""
        data: dict[str, Any] = {
            "n_cases": self.n_cases,
            "labels": {name: entry.to_dict() for name, entry in self.labels.items()},
        }
        if self.em is not None:
            data["em"] = self.em.to_dict()
        data["unlisted_values"] = self.unlisted.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """The inverse of :meth:`to_dict` (a ``summary.json`` read again; its other keys are ignored).

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not a summary written by :meth:`to_dict`.
        """

        def metrics(entry: Mapping[str, Any]) -> dict[str, Stats]:
            return {name: Stats(**stats) for name, stats in entry["metrics"].items()}

        em = data.get("em")
        unlisted = data.get("unlisted_values")
        return cls(
            n_cases=int(data["n_cases"]),
            labels={
                name: LabelSummary(
                    n=int(e["n"]), flags=dict(e["flags"]), metrics=metrics(e), label=int(e["label"])
                )
                for name, e in data["labels"].items()
            },
            em=(
                EmSummary(
                    n=int(em["n"]),
                    flags=dict(em["flags"]),
                    metrics=metrics(em),
                    cell_label=int(em["cell_label"]),
                )
                if em is not None
                else None
            ),
            unlisted=UnlistedSummary.from_dict(unlisted) if unlisted is not None else UnlistedSummary(),
        )


def describe(values: Iterable[float]) -> Stats:
    """n, mean, median, std (ddof=1), 5th and 95th percentiles of ``values`` (all 0 when there are none)."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return Stats(n=0, mean=0.0, median=0.0, std=0.0, p5=0.0, p95=0.0)
    return Stats(
        n=int(array.size),
        mean=float(array.mean()),
        median=float(np.median(array)),
        std=float(array.std(ddof=1)) if array.size > 1 else 0.0,
        p5=float(np.percentile(array, 5)),
        p95=float(np.percentile(array, 95)),
    )


def summarise(
    results: Iterable[LabelResult], em: EmSummary | None = None, unlisted: UnlistedSummary | None = None
) -> Summary:
    """Per-label statistics of every metric and counts of every flag (see the module docstring); ``em`` and
    ``unlisted`` are carried as given."""
    results = list(results)
    by_label: dict[tuple[int, str], list[LabelResult]] = {}
    for result in results:
        by_label.setdefault((result.label, result.name), []).append(result)
    names = [name for _, name in by_label]
    labels: dict[str, LabelSummary] = {}
    for (value, name), group in sorted(by_label.items()):
        key = name if names.count(name) == 1 else f"{name} ({value})"
        labels[key] = LabelSummary(
            label=value,
            n=len(group),
            flags={flag: sum(r.flag == flag for r in group) for flag in FLAGS},
            metrics={metric: describe(getattr(r, metric) for r in group) for metric in METRICS},
        )
    return Summary(
        n_cases=len({r.case_id for r in results}),
        labels=labels,
        em=em,
        unlisted=unlisted if unlisted is not None else UnlistedSummary(),
    )


def summarise_em(rows: Iterable[EmRow], cell_value: int) -> EmSummary:
    """Statistics of the per-case EM scores (:func:`app.evaluation.em.em_scores` rows, worst-case rows of
    failed cases included)."""
    from app.evaluation.em import EM_SCORES

    rows = list(rows)
    flags = sorted({row.flag for row in rows})
    return EmSummary(
        cell_label=int(cell_value),
        n=len(rows),
        flags={flag: sum(row.flag == flag for row in rows) for flag in flags},
        metrics={name: describe(float(row.scores[name]) for row in rows) for name in EM_SCORES},
    )
