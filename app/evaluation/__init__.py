"""evaluation stage: Dice, Hausdorff and surface metrics of label maps, with an explicit empty-mask policy.

Public API:

* :func:`evaluate_case` (``pred: Volume, ref: Volume, labels`` -> ``list[LabelResult]``): one case.
* :func:`evaluate_batch`: a batch of label arrays plus affine(s), for Ignite handlers.
* :func:`evaluate_folders`: files or folders in, a typed :class:`EvaluationRun` out (``unetseg evaluate``,
  ``infer --ref``); the reports are the reporting stage's (:mod:`app.reporting.evaluation_reports`).
* :func:`summarise`: per-label statistics; :class:`LabelResult`, :class:`CaseFailure`: the records.
* :data:`POLICY_TEXT`: the empty-mask policy (:mod:`app.evaluation.policy`).

Modules: ``geometry`` (spacing, volume, diagonal), ``overlap`` (counts, Dice/IoU/precision/recall),
``surface`` (surface distances and HD/HD95/ASSD/NSD), ``policy``, ``result``, ``case``, ``batch``,
``summary``, ``grid`` (same-grid check, resampling), ``io`` (label files -> Volume), ``pairing``,
``labels`` (``--labels`` / bundle channel_def), ``runner`` (folders -> reports).
"""

from app.evaluation.batch import evaluate_batch
from app.evaluation.case import evaluate_case
from app.evaluation.policy import POLICY_TEXT
from app.evaluation.result import CaseFailure, LabelResult
from app.evaluation.runner import EvaluationRun, evaluate_folders
from app.evaluation.summary import summarise

__all__ = [
    "POLICY_TEXT",
    "CaseFailure",
    "EvaluationRun",
    "LabelResult",
    "evaluate_batch",
    "evaluate_case",
    "evaluate_folders",
    "summarise",
]
