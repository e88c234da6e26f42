"""One case's scores as a value: what :func:`score_case` found for a prediction against its reference.

Contract: :func:`score_case` scores one prediction :class:`~app.volume.Volume` (in memory: a batch scores the
label map it has just predicted; ``unetseg evaluate`` the file it read) against its reference volume and returns
a :class:`CaseScore`; it never raises for a problem the user can cause (:class:`~app.errors.UnetsegError`, e.g.
a prediction off the reference grid): that case becomes a :class:`~app.evaluation.result.CaseFailure`, to be
scored at its worst (:mod:`app.evaluation.policy`), unless ``fail_fast``. :func:`no_prediction`,
:func:`unusable_prediction` and :func:`unusable_reference` are the other ways a reference enters a run.
:class:`CaseScore` is a small frozen value (a Ray worker sends it back with its case's record);
:meth:`app.evaluation.run.EvaluationRun.from_scores` assembles a run from them.
A scored case also records the label values of its maps that ``labels`` does not name, with their voxel counts
(:class:`~app.evaluation.unlisted.UnlistedValues`; not scored, but reported: a label-map mismatch shows as such).
When the labels name exactly a membrane and a cell class (:func:`app.evaluation.em.em_cell_value`), each
scored case also gets its ISBI 2012 scores (:class:`~app.evaluation.em.EmRow`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app.errors import UnetsegError
from app.evaluation.case import ReferenceStats, evaluate_case, label_array
from app.evaluation.em import EmRow, em_cell_value, em_scores
from app.evaluation.result import CaseFailure, LabelResult
from app.evaluation.unlisted import UnlistedValues
from app.volume import Volume

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseScore:
    """What scoring one reference gave.

    Attributes:
        case_id: the case.
        ref: the reference file (empty when it was not a file, e.g. an Ignite evaluator's batch).
        results: one :class:`~app.evaluation.result.LabelResult` per label (empty for a failure).
        em: the case's EM scores (membrane/cell labels only; ``None`` for a failure, whose worst-case row the
            assembly adds).
        failure: why the case could not be scored normally; ``None`` when it was.
        reference: what the worst-case results of a failure need from its reference (``None`` when the
            reference itself is unusable: such a case is listed, not scored).
        unlisted: the label values of a scored case's maps that ``labels`` does not name, with their voxel
            counts (:mod:`app.evaluation.unlisted`); ``None`` for a failure (the assembly takes a failed case's
            from ``reference``) or when every value was scored (``labels`` ``None``).
    """

    case_id: str
    ref: str = ""
    results: tuple[LabelResult, ...] = ()
    em: EmRow | None = None
    failure: CaseFailure | None = None
    reference: ReferenceStats | None = None
    unlisted: UnlistedValues | None = None


def score_case(
    case_id: str,
    pred: Volume,
    ref: Volume,
    labels: Mapping[int, str] | None,
    *,
    tolerance_mm: float = 1.0,
    ref_path: Path | None = None,
    pred_path: Path | None = None,
    fail_fast: bool = False,
) -> CaseScore:
    """Score ``pred`` against ``ref`` (module docstring).

    Args:
        case_id: the case.
        pred: the predicted label map, on the reference grid.
        ref: the reference label map.
        labels: label value -> name; ``None``: every non-zero value in either map.
        tolerance_mm: NSD tolerance in mm.
        ref_path: the reference's file, recorded with the score.
        pred_path: the prediction's file, named when it is unusable (``None``: it is in memory).
        fail_fast: raise a per-case error instead of recording it.

    Raises:
        UnetsegError: only with ``fail_fast``.
    """
    reference = str(ref_path) if ref_path is not None else ""
    try:
        results = evaluate_case(pred, ref, labels, tolerance_mm=tolerance_mm, case_id=case_id)
        pred_labels, ref_labels = label_array(pred), label_array(ref)
        unlisted = None
        if labels is not None:
            unlisted = UnlistedValues.of_arrays(case_id, pred_labels, ref_labels, labels)
            if unlisted.found:
                logger.info(
                    "case %s: label values not in the label list (not scored): %s", case_id, unlisted.text()
                )
        cell_value = em_cell_value(labels)
        em = None
        if cell_value is not None:
            em = EmRow(case_id, "ok", em_scores(pred_labels, ref_labels, cell_value))
    except UnetsegError as exc:
        if fail_fast:
            raise
        return unusable_prediction(case_id, ref, exc, ref_path=ref_path, pred_path=pred_path)
    return CaseScore(case_id, reference, results=tuple(results), em=em, unlisted=unlisted)


def unusable_prediction(
    case_id: str,
    ref: Volume,
    error: UnetsegError,
    *,
    ref_path: Path | None = None,
    pred_path: Path | None = None,
) -> CaseScore:
    """A prediction that cannot be scored (unreadable, off the reference grid): the worst case, with the reason."""
    logger.warning("case %s: %s", case_id, error)
    return CaseScore(
        case_id,
        str(ref_path) if ref_path is not None else "",
        failure=CaseFailure(case_id, "error", str(error), pred_path),
        reference=ReferenceStats.of(ref, case_id),
    )


def no_prediction(case_id: str, ref: Volume, ref_path: Path | None = None, message: str = "") -> CaseScore:
    """A reference without a prediction: a miss of every label it holds (``message``: why, if known)."""
    return CaseScore(
        case_id,
        str(ref_path) if ref_path is not None else "",
        failure=CaseFailure(
            case_id, "no_prediction", message or "no prediction file for this reference", None
        ),
        reference=ReferenceStats.of(ref, case_id),
    )


def unusable_reference(case_id: str, ref_path: Path, error: UnetsegError) -> CaseScore:
    """A reference that cannot be read: listed with the reason, not scored (there is nothing to score against)."""
    logger.warning("case %s: reference unusable: %s", case_id, error)
    return CaseScore(
        case_id, str(ref_path), failure=CaseFailure(case_id, "error", str(error), ref_path, scored=False)
    )
