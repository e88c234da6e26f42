"""The per-case, per-label result record that every evaluation entry point returns.

Contract: one :class:`LabelResult` per (case, label). Scores are in [0, 1], distances in mm, volumes in mL,
counts in voxels; no field is ever NaN (the empty cases are fixed by :mod:`app.evaluation.policy`, and
``flag`` says which rule produced the numbers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.evaluation.policy import Flag
from app.volume import Volume

#: the numeric fields summarised per label, in report order
METRICS: tuple[str, ...] = (
    "dice",
    "iou",
    "precision",
    "recall",
    "hd_mm",
    "hd95_mm",
    "assd_mm",
    "nsd",
    "volume_pred_ml",
    "volume_ref_ml",
    "volume_diff_ml",
)


@dataclass(frozen=True)
class LabelResult:
    """Metrics of one label of one case.

    Attributes:
        case_id: the case identifier (file stem without extension and ``_seg`` suffix).
        label: the label value in the label maps.
        name: the label's name (from ``--labels``, a bundle's channel_def, or ``label_<value>``).
        flag: the empty-mask policy class (``ok``, ``both_empty``, ``missed``, ``false_positive``,
            ``no_prediction``, ``error``).
        dice, iou, precision, recall: overlap scores in [0, 1].
        hd_mm, hd95_mm, assd_mm: Hausdorff, 95th-percentile Hausdorff and average symmetric surface
            distance in mm (see :mod:`app.evaluation.surface` for the definitions).
        nsd: normalised surface Dice at ``tolerance_mm``.
        tolerance_mm: the NSD tolerance.
        volume_pred_ml, volume_ref_ml: structure volumes in mL; ``volume_diff_ml`` = pred - ref.
        tp, fp, fn: voxel counts.
        message: why a ``no_prediction`` / ``error`` result has worst-case values; empty otherwise.
        unlisted_values: the case's label values that the label list does not name, not scored (e.g.
            ``"reference 3 (1624 voxels)"``, :meth:`app.evaluation.unlisted.UnlistedValues.text`), on every
            row of the case; empty when there are none.
    """

    case_id: str
    label: int
    name: str
    flag: Flag
    dice: float
    iou: float
    precision: float
    recall: float
    hd_mm: float
    hd95_mm: float
    assd_mm: float
    nsd: float
    tolerance_mm: float
    volume_pred_ml: float
    volume_ref_ml: float
    volume_diff_ml: float
    tp: int
    fp: int
    fn: int
    message: str = ""
    unlisted_values: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a flat dict (CSV row / JSON object), in declaration order."""
        return asdict(self)


@dataclass(frozen=True)
class CaseFailure:
    """A case that could not be scored normally: listed in every report, never dropped.

    Attributes:
        case_id: the case.
        flag: ``no_prediction`` (no prediction file), or ``error`` (a file could not be used).
        message: what went wrong and how to fix it.
        path: the file concerned (``None`` for a missing prediction).
        scored: whether worst-case results were recorded for it (``False`` when its reference is unreadable).
    """

    case_id: str
    flag: Flag
    message: str
    path: Path | None = None
    scored: bool = True


@dataclass(frozen=True)
class CaseVolumes:
    """The voxels of one case for its overlay picture (``image`` on the reference grid, or ``None``)."""

    ref: Volume
    pred: Volume | None = None
    image: Volume | None = None
