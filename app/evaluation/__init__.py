"""evaluation stage: Dice, Hausdorff and surface metrics of label maps, with an explicit empty-mask policy.

Public API:

* :func:`evaluate_case` (``pred: Volume, ref: Volume, labels`` -> ``list[LabelResult]``): one case.
* :func:`evaluate_batch`: a batch of label arrays plus affine(s), for Ignite handlers.
* :func:`score_case` (``pred: Volume, ref: Volume`` -> :class:`CaseScore`): one case as a value, its
  user-caused problems recorded rather than raised (``infer --ref`` on the label maps it holds).
* :meth:`EvaluationRun.from_scores`: a run's scores completed by the empty-mask policy and summarised.
* :func:`evaluate_folders`: files or folders in, a typed :class:`EvaluationRun` out (``unetseg evaluate``);
  the reports are the reporting stage's (:mod:`app.reporting.evaluation_reports`).
* :func:`summarise`: per-label statistics as a typed :class:`Summary`; :class:`LabelResult`,
  :class:`CaseFailure`: the records.
* :data:`POLICY_TEXT`: the empty-mask policy (:mod:`app.evaluation.policy`).

Modules: ``geometry`` (spacing, volume, diagonal), ``overlap`` (counts, Dice/IoU/precision/recall),
``surface`` (surface distances and HD/HD95/ASSD/NSD), ``policy``, ``result``, ``case``, ``batch``,
``summary``, ``grid`` (same-grid check, resampling), ``io`` (label files -> Volume), ``pairing``,
``labels`` (``--labels`` / bundle channel_def), ``scoring`` (one case -> :class:`CaseScore`), ``run``
(scores -> :class:`EvaluationRun`), ``runner`` (folders -> :class:`EvaluationRun`), ``unlisted`` (label values
found but not in the label list: reported, not scored).
"""

from app.evaluation.batch import evaluate_batch
from app.evaluation.case import evaluate_case
from app.evaluation.policy import POLICY_TEXT
from app.evaluation.result import CaseFailure, LabelResult
from app.evaluation.run import EvaluationRun
from app.evaluation.runner import evaluate_folders
from app.evaluation.scoring import CaseScore, score_case
from app.evaluation.summary import Summary, summarise

__all__ = [
    "POLICY_TEXT",
    "CaseFailure",
    "CaseScore",
    "EvaluationRun",
    "LabelResult",
    "Summary",
    "evaluate_batch",
    "evaluate_case",
    "evaluate_folders",
    "score_case",
    "summarise",
]
