"""Evaluate prediction files against reference files: the folder-level entry point.

Contract: :func:`evaluate_folders` pairs files by case id (:mod:`app.evaluation.pairing`), reads each pair
(:mod:`app.evaluation.io`), optionally resamples the prediction onto the reference grid, scores it
(:func:`app.evaluation.case.evaluate_case`) and returns an :class:`EvaluationRun`; it writes nothing and
imports nothing from reporting. The reports (``metrics.csv``, ``summary.json``, ``report.html``) are the
reporting stage's: :func:`app.reporting.evaluation_reports.write_evaluation_reports`, which re-reads the few
cases it draws through :meth:`EvaluationRun.case_volumes`. When the labels name exactly a membrane and a cell
class (:func:`app.evaluation.em.em_cell_value`, e.g. the EM bundle's), each case also gets the ISBI 2012 scores
of :func:`app.evaluation.em.em_scores` (:attr:`EvaluationRun.em_rows`, ``summary["em"]``).
Per-case problems that a user can cause (:class:`~app.errors.UnetsegError`) are caught here, in one place:
the case is recorded as a :class:`~app.evaluation.result.CaseFailure` with worst-case results (see
:mod:`app.evaluation.policy`) and the run goes on, unless ``fail_fast``. The same function serves ``unetseg
evaluate``, ``unetseg infer --ref`` and a bundle's evaluate config.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import InputError, UnetsegError
from app.evaluation.case import ReferenceStats, both_empty, evaluate_case, failed_case, label_array
from app.evaluation.em import em_cell_value, em_scores, em_worst_case
from app.evaluation.grid import resample_nearest, same_grid
from app.evaluation.io import read_image, read_label
from app.evaluation.pairing import Pair, pair_files
from app.evaluation.result import CaseFailure, CaseVolumes, LabelResult
from app.evaluation.summary import summarise, summarise_em
from app.volume import Volume

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationRun:
    """What :func:`evaluate_folders` did.

    Attributes:
        results: one :class:`~app.evaluation.result.LabelResult` per case and label (failed cases: worst case).
        summary: :func:`~app.evaluation.summary.summarise` of ``results`` (plus ``"em"`` for EM labels).
        failures: references without a usable prediction, with the reason.
        unused: files that were not used, with the reason.
        pairs: the reference/prediction pairs, in case-id order.
        em_rows: per-case EM scores (empty unless the labels are a membrane and a cell class).
        pred, ref: what was evaluated; resample: predictions off the reference grid were resampled.
        labels: the label values and names asked for (``None``: those seen in the data).
        tolerance_mm: the NSD tolerance.
        seconds: how long the scoring took.
    """

    results: list[LabelResult]
    summary: dict[str, Any]
    failures: list[CaseFailure] = field(default_factory=list)
    unused: list[tuple[Path, str]] = field(default_factory=list)
    pairs: tuple[Pair, ...] = ()
    em_rows: list[dict[str, Any]] = field(default_factory=list)
    pred: Path | None = None
    ref: Path | None = None
    resample: bool = False
    labels: dict[int, str] | None = None
    tolerance_mm: float = 1.0
    seconds: float = 0.0

    def case_volumes(
        self,
        case_id: str,
        image_path: Path | None = None,
        image_source: Callable[[str], Volume] | None = None,
    ) -> CaseVolumes | None:
        """Re-read one case (reference, prediction and its image when given) for a picture; ``None`` when it
        cannot be read (logged)."""
        pair = next((p for p in self.pairs if p.case_id == case_id), None)
        if pair is None:
            return None
        return _case_volumes(pair, image_path, self.resample, image_source)

    @property
    def ok(self) -> bool:
        """Whether every reference was scored from a usable prediction."""
        return not self.failures


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
    results: list[LabelResult] = []
    cell_value = em_cell_value(labels)
    em_rows: list[dict[str, Any]] = []  # EM scores per case, when the labels are membrane and cell
    failures: list[CaseFailure] = []
    failed_refs: list[tuple[ReferenceStats, CaseFailure]] = []
    for number, pair in enumerate(pairing.pairs, start=1):
        try:
            ref_volume = read_label(pair.ref)
        except UnetsegError as exc:
            if fail_fast:
                raise
            logger.warning("case %s: reference unusable: %s", pair.case_id, exc)
            failures.append(CaseFailure(pair.case_id, "error", str(exc), pair.ref, scored=False))
            continue
        if pair.pred is None:
            if fail_fast:
                raise InputError(pair.ref, "has no prediction file (expected one with the same case id)")
            failure = CaseFailure(
                pair.case_id, "no_prediction", "no prediction file for this reference", None
            )
            failed_refs.append((ReferenceStats.of(ref_volume, pair.case_id), failure))
            failures.append(failure)
            continue
        try:
            pred_volume = _prediction(pair, ref_volume, resample)
            results.extend(
                evaluate_case(
                    pred_volume, ref_volume, labels, tolerance_mm=tolerance_mm, case_id=pair.case_id
                )
            )
            if cell_value is not None:
                scores = em_scores(label_array(pred_volume), label_array(ref_volume), cell_value)
                em_rows.append({"case_id": pair.case_id, "flag": "ok", **scores})
        except UnetsegError as exc:
            if fail_fast:
                raise
            logger.warning("case %s: %s", pair.case_id, exc)
            failure = CaseFailure(pair.case_id, "error", str(exc), pair.pred)
            failed_refs.append((ReferenceStats.of(ref_volume, pair.case_id), failure))
            failures.append(failure)
        if number % 50 == 0:
            logger.info("evaluated %d of %d cases", number, len(pairing.pairs))

    label_map = dict(labels) if labels is not None else _seen_labels(results, failed_refs)
    results = _complete(results, failed_refs, label_map, tolerance_mm)
    summary = summarise(results)
    if cell_value is not None:
        # a reference without a usable prediction scores the worst, as in the Dice tables
        em_rows += [em_worst_case(failure.case_id, failure.flag) for _, failure in failed_refs]
        summary["em"] = summarise_em(em_rows, cell_value)
    elapsed = time.perf_counter() - started
    logger.info("scored %d cases (%d failures) in %.1f s", len(pairing.pairs), len(failures), elapsed)
    return EvaluationRun(
        results,
        summary,
        failures,
        list(pairing.unused),
        pairs=tuple(pairing.pairs),
        em_rows=em_rows,
        pred=Path(pred),
        ref=Path(ref),
        resample=resample,
        labels=dict(labels) if labels is not None else None,
        tolerance_mm=tolerance_mm,
        seconds=elapsed,
    )


def _prediction(pair: Pair, ref: Volume, resample: bool) -> Volume:
    if pair.pred is None:
        raise InputError(pair.ref, "has no prediction")
    pred = read_label(pair.pred)
    if resample and not same_grid(pred, ref):
        logger.info("case %s: resampling %s onto the reference grid", pair.case_id, pair.pred)
        pred = resample_nearest(pred, ref)
    return pred


def _seen_labels(
    results: list[LabelResult], failed: list[tuple[ReferenceStats, CaseFailure]]
) -> dict[int, str]:
    values = {r.label for r in results} | {v for stats, _ in failed for v in stats.counts if v > 0}
    names = {r.label: r.name for r in results}
    return {v: names.get(v, f"label_{v}") for v in sorted(values)}


def _complete(
    results: list[LabelResult],
    failed: list[tuple[ReferenceStats, CaseFailure]],
    labels: Mapping[int, str],
    tolerance_mm: float,
) -> list[LabelResult]:
    """Add worst-case results of failed cases and both-empty results of labels a case never contained."""
    complete = list(results)
    for stats, failure in failed:
        complete.extend(
            failed_case(stats, labels, flag=failure.flag, message=failure.message, tolerance_mm=tolerance_mm)
        )
    present = {(r.case_id, r.label) for r in complete}
    for case_id in dict.fromkeys(r.case_id for r in results):
        for value, name in labels.items():
            if (case_id, value) not in present:
                complete.append(both_empty(case_id, value, name, tolerance_mm=tolerance_mm))
    return sorted(complete, key=lambda r: (r.case_id, r.label))


def _case_volumes(
    pair: Pair,
    image_path: Path | None,
    resample: bool,
    image_source: Callable[[str], Volume] | None = None,
) -> CaseVolumes | None:
    """Re-read one case for its overlay picture; ``None`` when it cannot be read (logged)."""
    try:
        ref = read_label(pair.ref)
        pred = _prediction(pair, ref, resample) if pair.pred is not None else None
        image = read_image(image_path) if image_path is not None else None
    except UnetsegError as exc:
        logger.warning("case %s: no overlay picture: %s", pair.case_id, exc)
        return None
    if image is None and image_source is not None:
        try:
            image = image_source(pair.case_id).in_space("RAS")
        except UnetsegError as exc:
            logger.warning("case %s: overlay without its image: %s", pair.case_id, exc)
    if image is not None and not same_grid(image, ref):
        logger.warning(
            "case %s: image %s is not on the reference grid; drawing on the reference",
            pair.case_id,
            image_path,
        )
        image = None
    return CaseVolumes(ref=ref, pred=pred, image=image)
