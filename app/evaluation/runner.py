"""Evaluate prediction files against reference files: the folder-level entry point.

Contract: :func:`evaluate_folders` pairs files by case id (:mod:`app.evaluation.pairing`), reads each pair
(:mod:`app.evaluation.io`), optionally resamples the prediction onto the reference grid, scores it
(:func:`score_pair`, which a batch also calls, with the label map it holds in memory) and returns an :class:`~app.evaluation.run.EvaluationRun`; it writes nothing and imports nothing from reporting.
The reports (``metrics.csv``, ``summary.json``, ``report.html``) are the reporting stage's:
:func:`app.reporting.evaluation_reports.write_evaluation_reports`. Per-case problems that a user can cause
(:class:`~app.errors.UnetsegError`) become a :class:`~app.evaluation.result.CaseFailure` with worst-case results
(see :mod:`app.evaluation.policy`) and the run goes on, unless ``fail_fast``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from app.errors import InputError, UnetsegError
from app.evaluation.io import read_label
from app.evaluation.pairing import Pair, pair_files
from app.evaluation.run import EvaluationRun, read_prediction
from app.evaluation.scoring import (
    CaseScore,
    no_prediction,
    score_case,
    unusable_prediction,
    unusable_reference,
)
from app.volume import Volume

logger = logging.getLogger(__name__)


def evaluate_folders(
    pred: str | Path,
    ref: str | Path,
    *,
    labels: Mapping[int, str] | None = None,
    tolerance_mm: float = 1.0,
    resample: bool = False,
    fail_fast: bool = False,
) -> EvaluationRun:
    """Score every reference under ``ref`` against its prediction under ``pred`` (module docstring).

    Args:
        pred: a prediction label file or folder.
        ref: a reference label file or folder.
        labels: label value -> name; ``None``: every non-zero value seen in the data, ``label_<value>``.
        tolerance_mm: NSD tolerance in mm.
        resample: put predictions that are not on their reference grid onto it (nearest neighbour)
            instead of failing them.
        fail_fast: raise the first per-case error instead of recording it.

    Raises:
        InputError: nothing to evaluate (no reference files), or any per-case error with ``fail_fast``.
    """
    started = time.perf_counter()
    pairing = pair_files(Path(pred), Path(ref))
    if not pairing.pairs:
        raise InputError(
            ref, "no reference label files found (.nii.gz, .nii, .nrrd, .png, .tif, .tiff, .dcm)"
        )
    scores: list[CaseScore] = []
    for number, pair in enumerate(pairing.pairs, start=1):
        scores.append(
            score_pair(pair, labels, tolerance_mm=tolerance_mm, resample=resample, fail_fast=fail_fast)
        )
        if number % 50 == 0:
            logger.info("evaluated %d of %d cases", number, len(pairing.pairs))
    elapsed = time.perf_counter() - started
    failures = sum(s.failure is not None for s in scores)
    logger.info("scored %d cases (%d failures) in %.1f s", len(pairing.pairs), failures, elapsed)
    return EvaluationRun.from_scores(
        scores,
        labels=labels,
        tolerance_mm=tolerance_mm,
        unused=pairing.unused,
        pairs=pairing.pairs,
        pred=Path(pred),
        ref=Path(ref),
        resample=resample,
        seconds=elapsed,
    )


def score_pair(
    pair: Pair,
    labels: Mapping[int, str] | None,
    *,
    tolerance_mm: float = 1.0,
    resample: bool = False,
    fail_fast: bool = False,
    prediction: Volume | None = None,
    missing: str = "",
) -> CaseScore:
    """Score one reference file against its prediction: ``prediction`` when it is held in memory (a batch's label
    map), else the file ``pair.pred`` (resampled onto the reference grid with ``resample``).

    A reference that cannot be read is listed, not scored; a reference without a prediction is a miss (``missing``:
    why, when the caller knows); a prediction that cannot be read or is off the grid scores the worst
    (:mod:`app.evaluation.scoring`).

    Raises:
        UnetsegError: only with ``fail_fast``, the first of these problems.
    """
    try:
        ref = read_label(pair.ref)
    except UnetsegError as exc:
        if fail_fast:
            raise
        return unusable_reference(pair.case_id, pair.ref, exc)
    if prediction is None and pair.pred is None:
        if fail_fast:
            raise InputError(pair.ref, "has no prediction file (expected one with the same case id)")
        return no_prediction(pair.case_id, ref, pair.ref, message=missing)
    if prediction is None:
        try:
            prediction = read_prediction(pair, ref, resample)
        except UnetsegError as exc:
            if fail_fast:
                raise
            return unusable_prediction(pair.case_id, ref, exc, ref_path=pair.ref, pred_path=pair.pred)
    return score_case(
        pair.case_id,
        prediction,
        ref,
        labels,
        tolerance_mm=tolerance_mm,
        ref_path=pair.ref,
        pred_path=pair.pred,
        fail_fast=fail_fast,
    )
