"""A scored run as one typed value: :class:`EvaluationRun`, assembled from its cases' :class:`CaseScore` objects.

Contract: :meth:`EvaluationRun.from_scores` takes the scores of a run's references in case order (any source:
files paired by ``unetseg evaluate``, the label maps a batch held in memory, an Ignite evaluator's batches) and
completes them the same way for all: a failure with a readable reference gets the worst-case results of
:mod:`app.evaluation.policy` (and the worst EM row), a label a scored case never contained gets its
``both_empty`` result, and the :class:`~app.evaluation.summary.Summary` is computed over every result. The label
values a case's maps hold but the label list does not name (never scored, :mod:`app.evaluation.unlisted`; a
failed case's from its reference's counts) are written on every row of that case (``unlisted_values``) and
summed over the run (:attr:`Summary.unlisted <app.evaluation.summary.Summary.unlisted>`). Reporting
renders the run (:mod:`app.reporting.evaluation_reports`); it re-reads the few cases it draws through
:meth:`EvaluationRun.case_volumes` (the files of :attr:`EvaluationRun.pairs`), unless the voxels are held in
:attr:`EvaluationRun.volumes`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.errors import UnetsegError
from app.evaluation.case import ReferenceStats, both_empty, failed_case
from app.evaluation.em import EmRow, em_cell_value, em_worst_case
from app.evaluation.grid import resample_nearest, same_grid
from app.evaluation.io import read_image, read_label
from app.evaluation.pairing import Pair
from app.evaluation.result import CaseFailure, CaseVolumes, LabelResult
from app.evaluation.scoring import CaseScore
from app.evaluation.summary import Summary, summarise, summarise_em
from app.evaluation.units import PHYSICAL, Units, units_of
from app.evaluation.unlisted import UnlistedSummary, UnlistedValues
from app.volume import Volume

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationRun:
    """A scored run.

    Attributes:
        results: one :class:`~app.evaluation.result.LabelResult` per case and label (failed cases: worst case).
        summary: the :class:`~app.evaluation.summary.Summary` of ``results`` (with the EM scores' for EM labels).
        failures: references without a usable prediction, with the reason.
        unused: files that were not used, with the reason.
        pairs: the reference/prediction files, in case-id order (for re-reading a case for its picture).
        em_rows: per-case EM scores (empty unless the labels are a membrane and a cell class).
        pred, ref: what was evaluated; resample: predictions off the reference grid were resampled.
        labels: the label values and names asked for (``None``: those seen in the data).
        tolerance_mm: the NSD tolerance.
        seconds: how long the scoring took.
        volumes: cases whose voxels are held in memory (an Ignite evaluator's), drawn without re-reading.
        units: the units of the distance and volume metrics (:mod:`app.evaluation.units`).
        unlisted: the cases whose maps hold label values not in ``labels`` (not scored), in case order.
    """

    results: list[LabelResult]
    summary: Summary
    failures: list[CaseFailure] = field(default_factory=list)
    unused: list[tuple[Path, str]] = field(default_factory=list)
    pairs: tuple[Pair, ...] = ()
    em_rows: list[EmRow] = field(default_factory=list)
    pred: Path | None = None
    ref: Path | None = None
    resample: bool = False
    labels: dict[int, str] | None = None
    tolerance_mm: float = 1.0
    seconds: float = 0.0
    volumes: Mapping[str, CaseVolumes] = field(default_factory=dict, repr=False, compare=False)
    units: Units = PHYSICAL
    unlisted: tuple[UnlistedValues, ...] = ()

    @classmethod
    def from_scores(
        cls,
        scores: Iterable[CaseScore],
        *,
        labels: Mapping[int, str] | None,
        tolerance_mm: float = 1.0,
        unused: Iterable[tuple[Path, str]] = (),
        pairs: Iterable[Pair] = (),
        pred: Path | None = None,
        ref: Path | None = None,
        resample: bool = False,
        seconds: float = 0.0,
        volumes: Mapping[str, CaseVolumes] | None = None,
        references: Iterable[Path] = (),
    ) -> EvaluationRun:
        """The run of ``scores`` (module docstring); ``labels`` ``None``: those seen in the results and in the
        failed cases' references. The units follow the reference files: ``pairs``' references, else
        ``references`` (the files of held-in-memory voxels), else physical."""
        scores = list(scores)
        pairs = tuple(pairs)
        reference_files = [p.ref for p in pairs] or list(references)
        scored = [r for s in scores for r in s.results]
        failed = [
            (s.reference, s.failure) for s in scores if s.failure is not None and s.reference is not None
        ]
        label_map = dict(labels) if labels is not None else _seen_labels(scored, failed)
        unlisted = _unlisted(scores, labels)
        results = _complete(scored, failed, label_map, tolerance_mm)
        if unlisted:
            notes = {case.case_id: case.text() for case in unlisted}
            results = [
                replace(r, unlisted_values=notes[r.case_id]) if r.case_id in notes else r for r in results
            ]
        em_summary = None
        em_rows: list[EmRow] = []
        cell_value = em_cell_value(labels)
        if cell_value is not None:
            # a reference without a usable prediction scores the worst, as in the Dice tables
            em_rows = [s.em for s in scores if s.em is not None]
            em_rows += [em_worst_case(failure.case_id, failure.flag) for _, failure in failed]
            em_summary = summarise_em(em_rows, cell_value)
        return cls(
            results,
            summarise(results, em=em_summary, unlisted=UnlistedSummary.of(unlisted)),
            [s.failure for s in scores if s.failure is not None],
            list(unused),
            pairs=pairs,
            em_rows=em_rows,
            pred=pred,
            ref=ref,
            resample=resample,
            labels=dict(labels) if labels is not None else None,
            tolerance_mm=tolerance_mm,
            seconds=seconds,
            volumes=dict(volumes or {}),
            units=units_of(reference_files) if reference_files else PHYSICAL,
            unlisted=unlisted,
        )

    def case_volumes(
        self,
        case_id: str,
        image_path: Path | None = None,
        image_source: Callable[[str], Volume] | None = None,
    ) -> CaseVolumes | None:
        """One case's voxels for a picture: those held in memory, or the case re-read (reference, prediction and
        its image when given); ``None`` when it cannot be read (logged)."""
        held = self.volumes.get(case_id)
        if held is not None:
            return held
        pair = next((p for p in self.pairs if p.case_id == case_id), None)
        if pair is None:
            return None
        return _case_volumes(pair, image_path, self.resample, image_source)

    @property
    def ok(self) -> bool:
        """Whether every reference was scored from a usable prediction."""
        return not self.failures


def read_prediction(pair: Pair, ref: Volume, resample: bool) -> Volume:
    """The prediction file of ``pair`` as a label map, resampled onto ``ref``'s grid when asked and needed.

    Raises:
        InputError: no prediction, or it cannot be read as a label map.
    """
    from app.errors import InputError

    if pair.pred is None:
        raise InputError(pair.ref, "has no prediction")
    pred = read_label(pair.pred)
    if resample and not same_grid(pred, ref):
        logger.info("case %s: resampling %s onto the reference grid", pair.case_id, pair.pred)
        pred = resample_nearest(pred, ref)
    return pred


def _unlisted(scores: list[CaseScore], labels: Mapping[int, str] | None) -> tuple[UnlistedValues, ...]:
    """The cases holding label values not in ``labels``: a scored case's as it found them, a failed case's from its
    reference's voxel counts (``labels`` ``None``: every value is scored, none is unlisted)."""
    if labels is None:
        return ()
    found = []
    for score in scores:
        case = score.unlisted
        if case is None and score.failure is not None and score.reference is not None:
            case = UnlistedValues.of_counts(score.case_id, labels, reference=score.reference.counts)
        if case is not None and case.found:
            found.append(case)
    return tuple(sorted(found, key=lambda case: case.case_id))


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
        pred = read_prediction(pair, ref, resample) if pair.pred is not None else None
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
