"""Label values a case's maps hold but the label list does not name: found and reported, never scored.

A value missing from ``--labels`` (or the bundle's ``channel_def``) is the usual symptom of a label-map mismatch,
e.g. a reference from another mapping than the model's (TotalSegmentator / nnU-Net ids recoded): the listed
label then scores as ``missed`` or ``false_positive`` with Dice 0, and nothing else would say why.

Contract: :meth:`UnlistedValues.of_arrays` takes one case's prediction and reference label arrays (non-negative
integers, :func:`app.evaluation.case.label_array`) and the label list; a value is *unlisted* when it is
neither a listed value nor 0 (background). It costs one table look-up pass per array (and a count of the few
unlisted voxels, when there are any). :meth:`UnlistedValues.of_counts` does the same from voxel counts already
taken (a failed case's :class:`~app.evaluation.case.ReferenceStats`). :meth:`UnlistedSummary.of` sums the
cases of a run: per side and value, the voxels and the cases holding it (``summary.json`` ``unlisted_values``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Side = Literal["prediction", "reference"]
SIDES: tuple[Side, ...] = ("prediction", "reference")

#: what the values mean, said wherever they are listed
NOT_SCORED = "label values found in the label maps but not in the label list; not scored"

_LOOKUP_MAX = 1 << 16  # integer maps up to this value use a look-up table; larger ones np.unique


@dataclass(frozen=True)
class UnlistedValues:
    """The unlisted values of one case's maps, each with its voxel count (ascending by value).

    Attributes:
        case_id: the case.
        prediction: ``(value, voxels)`` found in the prediction.
        reference: ``(value, voxels)`` found in the reference.
    """

    case_id: str
    prediction: tuple[tuple[int, int], ...] = ()
    reference: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of_arrays(
        cls, case_id: str, pred: np.ndarray, ref: np.ndarray, listed: Collection[int]
    ) -> UnlistedValues:
        """The values of ``pred`` and ``ref`` that are neither in ``listed`` nor 0."""
        return cls(case_id, _unlisted_counts(pred, listed), _unlisted_counts(ref, listed))

    @classmethod
    def of_counts(
        cls,
        case_id: str,
        listed: Collection[int],
        *,
        prediction: Mapping[int, int] | None = None,
        reference: Mapping[int, int] | None = None,
    ) -> UnlistedValues:
        """The same from voxel counts by value already taken (a side without counts has none)."""

        def pick(counts: Mapping[int, int] | None) -> tuple[tuple[int, int], ...]:
            keep = set(listed) | {0}
            return tuple(
                (int(v), int(n)) for v, n in sorted((counts or {}).items()) if v not in keep and n > 0
            )

        return cls(case_id, pick(prediction), pick(reference))

    @property
    def found(self) -> bool:
        """Whether either map holds an unlisted value."""
        return bool(self.prediction or self.reference)

    def text(self) -> str:
        """``"prediction 3 (812 voxels); reference 3 (1624 voxels)"`` (empty when nothing was found): the
        ``unlisted_values`` column of ``metrics.csv``."""
        parts = []
        for side in SIDES:
            values = getattr(self, side)
            if values:
                parts.append(f"{side} " + ", ".join(f"{v} ({n} voxels)" for v, n in values))
        return "; ".join(parts)


@dataclass(frozen=True)
class UnlistedValue:
    """One unlisted value of one side over a run: its voxels summed over the cases holding it."""

    side: Side
    value: int
    voxels: int
    case_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "voxels": self.voxels,
            "cases": len(self.case_ids),
            "case_ids": list(self.case_ids),
        }


@dataclass(frozen=True)
class UnlistedSummary:
    """The unlisted values of a run, prediction side first, each side by value."""

    values: tuple[UnlistedValue, ...] = field(default=())

    @classmethod
    def of(cls, cases: Iterable[UnlistedValues]) -> UnlistedSummary:
        totals: dict[tuple[Side, int], tuple[int, list[str]]] = {}
        for case in cases:
            for side in SIDES:
                for value, voxels in getattr(case, side):
                    count, ids = totals.get((side, value), (0, []))
                    totals[(side, value)] = (count + voxels, [*ids, case.case_id])
        order = sorted(totals, key=lambda key: (SIDES.index(key[0]), key[1]))
        return cls(tuple(UnlistedValue(s, v, totals[s, v][0], tuple(totals[s, v][1])) for s, v in order))

    def __bool__(self) -> bool:
        return bool(self.values)

    def line(self) -> str:
        """One line for the console: ``"label values not in the label list (not scored): reference 3 (1624 voxels
        in 2 cases)"``; empty when there are none."""
        if not self.values:
            return ""
        parts = []
        for side in SIDES:
            entries = [u for u in self.values if u.side == side]
            if entries:
                parts.append(
                    f"{side} "
                    + ", ".join(
                        f"{u.value} ({u.voxels} voxels in {len(u.case_ids)} "
                        f"case{'s' if len(u.case_ids) != 1 else ''})"
                        for u in entries
                    )
                )
        return "label values not in the label list (not scored): " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The ``unlisted_values`` entry of ``summary.json``."""
        return {
            "note": NOT_SCORED,
            **{side: [u.to_dict() for u in self.values if u.side == side] for side in SIDES},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnlistedSummary:
        """The inverse of :meth:`to_dict`."""
        return cls(
            tuple(
                UnlistedValue(side, int(e["value"]), int(e["voxels"]), tuple(e["case_ids"]))
                for side in SIDES
                for e in data.get(side, ())
            )
        )


def _unlisted_counts(array: np.ndarray, listed: Collection[int]) -> tuple[tuple[int, int], ...]:
    """``(value, voxels)`` of the values of a non-negative integer ``array`` outside ``listed`` and 0.

    A boolean look-up table indexed by the array finds the unlisted voxels in one pass without the int64 copy
    ``np.bincount`` makes (0.17 s against 4.5 s on a 512x512x256 uint8 map); only those voxels are counted.
    """
    if array.size == 0:
        return ()
    top = int(array.max())
    keep = [v for v in set(listed) | {0} if 0 <= v <= top]
    if np.issubdtype(array.dtype, np.integer) and top < _LOOKUP_MAX:
        unlisted = np.ones(top + 1, dtype=bool)
        unlisted[keep] = False
        mask = unlisted[array]
    else:
        mask = ~np.isin(array, keep)
    if not mask.any():
        return ()
    values, counts = np.unique(array[mask], return_counts=True)
    return tuple((int(v), int(n)) for v, n in zip(values, counts, strict=True))
