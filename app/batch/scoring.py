"""``--ref``: each case's prediction scored against its reference label while the case runs, the run's
scores assembled and reported in OUT at the end.

Contract: references are label files named by case id (``<case_id>.nii.gz``, ``.nii``, ``.nrrd``, a DICOM
SEG ``<case_id>.dcm``, or a PNG/TIFF for picture inputs), found in the ``--ref`` folder by the evaluation
stage's own rules (:func:`app.evaluation.pairing.reference_files`, :class:`References`). While a case runs,
:func:`score_prediction` scores the label map the case holds in memory (in the form its output file stores:
RAS, label pictures at the bundle's ``picture_scale``) with :func:`app.evaluation.scoring.score_case`; its
:class:`~app.evaluation.scoring.CaseScore` travels with the case's record (from a Ray worker too). No output
is read back to be scored, except the outputs of cases complete from an earlier run (``--resume``), which were
never in this process's memory. At the end :func:`score_run` assembles the scores of *this run's cases*: a
reference whose case id names no case of the run (e.g. ``--ref`` at a whole dataset's ``labelsTr`` while three
images were segmented) is listed in ``not_in_run`` and left out of every mean; a case of the run that failed
is a reference without prediction (a miss, by the evaluation policy); a case's output without a reference is
listed as unused. ``metrics.csv``, ``summary.json`` and ``scores.html`` are written into OUT (the overlays
drawn on each case's input, read again for the few cases shown); the returned :class:`RunScores` goes into
``report.json``. ``unetseg evaluate`` keeps the plain policy: every reference under ``--ref`` is scored, one
without a prediction is a miss.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.batch.records import CaseRecord
from app.evaluation.pairing import IMAGE_SUFFIXES, Pair, match_id, reference_files
from app.evaluation.result import CaseFailure
from app.evaluation.run import EvaluationRun
from app.evaluation.runner import score_pair
from app.evaluation.scoring import CaseScore
from app.evaluation.unlisted import UnlistedSummary
from app.volume import Volume

logger = logging.getLogger(__name__)

#: the evaluation's own page in OUT (overlays on the images, distributions); the run page embeds it
SCORES_PAGE = "scores.html"

_SCORED = ("ok", "partial", "skipped")  # statuses whose label map exists


@dataclass(frozen=True)
class References:
    """The reference label files of a ``--ref`` folder by case id, and the files not used (with the reason)."""

    folder: Path
    by_case: Mapping[str, Path]
    unused: tuple[tuple[Path, str], ...] = ()

    @classmethod
    def of(cls, folder: str | Path) -> References:
        """The folder scanned as :func:`app.evaluation.pairing.reference_files` does (top level and one down)."""
        by_case, unused = reference_files(Path(folder))
        return cls(Path(folder), by_case, tuple(unused))

    def get(self, case_id: str) -> Path | None:
        """The reference of ``case_id``; a case of nnU-Net's layout (image ``<case>_0000``) finds ``<case>``."""
        found = match_id(case_id, self.by_case, IMAGE_SUFFIXES)
        return None if found is None else self.by_case[found]


@dataclass(frozen=True)
class RunScores:
    """What ``--ref`` scored, for ``report.json`` (:meth:`to_dict`) and the console.

    Attributes:
        ref: the reference folder.
        reports: ``metrics_csv``, ``summary_json``, ``report_html`` paths; ``None`` when nothing was scored.
        dice: case id -> label name -> Dice (4 decimals).
        mean_dice: label name -> mean Dice over the scored cases, misses included.
        mean_em: EM score -> mean (membrane/cell labels only).
        failures: references without a usable prediction, with the reason.
        unused: files not used, with the reason.
        not_in_run: case ids of references naming no case of this run.
        unlisted: label values found in the label maps but not among the scored labels (not scored).
        ok: every reference of the run's cases was scored from a usable prediction.
        reason: why nothing was scored (empty otherwise).
    """

    ref: str
    reports: Mapping[str, str] | None
    dice: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    mean_dice: Mapping[str, float] = field(default_factory=dict)
    mean_em: Mapping[str, float] | None = None
    failures: tuple[CaseFailure, ...] = ()
    unused: tuple[tuple[Path, str], ...] = ()
    not_in_run: tuple[str, ...] = ()
    unlisted: UnlistedSummary = field(default_factory=UnlistedSummary)
    ok: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The ``evaluation`` entry of ``report.json``."""
        data: dict[str, Any] = {
            "ref": self.ref,
            "reports": dict(self.reports) if self.reports is not None else None,
            "dice": {case: dict(scores) for case, scores in self.dice.items()},
            "mean_dice": dict(self.mean_dice),
        }
        if self.mean_em is not None:
            data["mean_em"] = dict(self.mean_em)
        data.update(
            failures=[{"case_id": f.case_id, "flag": f.flag, "message": f.message} for f in self.failures],
            unused=[{"path": str(path), "reason": why} for path, why in self.unused],
            not_in_run=list(self.not_in_run),
            unlisted_values=self.unlisted.to_dict(),
            ok=self.ok,
        )
        if self.reason:
            data["reason"] = self.reason
        return data


def score_prediction(
    case_id: str, labels: Volume, ref_path: Path, scored: Mapping[int, str], tolerance_mm: float
) -> CaseScore:
    """Score a case's label map (as its output file stores it) against its reference file; never raises for an
    unreadable reference or a grid mismatch (:func:`app.evaluation.runner.score_pair`)."""
    return score_pair(Pair(case_id, ref_path, None), scored, tolerance_mm=tolerance_mm, prediction=labels)


def score_run(
    records: Sequence[CaseRecord],
    references: References,
    out: Path,
    labels: Mapping[int, str],
    *,
    tolerance_mm: float = 1.0,
    inputs: Mapping[str, Any] | None = None,
) -> RunScores:
    """Assemble the run's scores and write the evaluation reports into ``out`` (module docstring).

    Args:
        records: the run's case records (with the scores their cases computed).
        references: the ``--ref`` folder's reference files.
        out: the run's output folder.
        labels: label value -> name scored (background excluded; as the output files store them).
        tolerance_mm: NSD tolerance.
        inputs: extra provenance for the evaluation reports.

    Raises:
        OutputError: the reports cannot be written.
    """
    from app.reporting.evaluation_reports import write_evaluation_reports

    started = time.perf_counter()
    by_id = {record.case_id: record for record in records}
    unused = list(references.unused)
    pairs: list[Pair] = []
    scores: list[CaseScore] = []
    for cid, record in sorted(by_id.items()):
        output = _label_output(record)
        ref_path = references.get(cid)
        if ref_path is None:
            if output is not None:
                unused.append((output, "no reference with this case id"))
            continue
        pairs.append(Pair(cid, ref_path, output))
        scores.append(_case_score(record, ref_path, output, labels, tolerance_mm))
    scored_refs = {pair.ref for pair in pairs}
    not_in_run = sorted(cid for cid, path in references.by_case.items() if path not in scored_refs)
    if not_in_run:
        logger.info(
            "%d reference(s) in %s name no case of this run; not scored: %s",
            len(not_in_run),
            references.folder,
            ", ".join(not_in_run),
        )
    if not pairs:
        logger.warning("no reference in %s names a case of this run; nothing scored", references.folder)
        return RunScores(
            ref=str(references.folder),
            reports=None,
            not_in_run=tuple(not_in_run),
            reason=(
                f"no reference in {references.folder} names a case of this run (reference files are named "
                "<case_id>.nii.gz)"
            ),
        )
    seconds = time.perf_counter() - started + sum(r.timings_s.get("score", 0.0) for r in records)
    run = EvaluationRun.from_scores(
        scores,
        labels=labels,
        tolerance_mm=tolerance_mm,
        unused=unused,
        pairs=pairs,
        pred=Path(out),
        ref=references.folder,
        seconds=seconds,
    )
    reports = write_evaluation_reports(
        run,
        out,
        inputs={
            "pred": f"{out}/<case_id>/<case_id>_seg.nii.gz (each case scored as it was segmented)",
            "ref": str(references.folder),
            "images": "each case's input, read again for the overlays",
            "references_not_in_run": len(not_in_run),
            **(inputs or {}),
        },
        image_source=functools.partial(_input_image, by_id),
        html_name=SCORES_PAGE,
    )
    dice: dict[str, dict[str, float]] = {}
    for result in run.results:
        dice.setdefault(result.case_id, {})[result.name] = round(float(result.dice), 4)
    em = run.summary.em
    return RunScores(
        ref=str(references.folder),
        reports={
            "metrics_csv": str(reports.metrics_csv),
            "summary_json": str(reports.summary_json),
            "report_html": str(reports.report_html),
        },
        dice=dice,
        mean_dice={name: round(entry.metrics["dice"].mean, 4) for name, entry in run.summary.labels.items()},
        mean_em={name: round(stats.mean, 4) for name, stats in em.metrics.items()}
        if em is not None
        else None,
        failures=tuple(run.failures),
        unused=tuple(run.unused),
        not_in_run=tuple(not_in_run),
        unlisted=run.summary.unlisted,
        ok=run.ok,
    )


def _label_output(record: CaseRecord) -> Path | None:
    """The case's label map file in OUT (NIfTI or label picture), when the case has one."""
    output = record.output("nifti") or record.output("picture")
    return Path(output.path) if output is not None and record.status in _SCORED else None


def _case_score(
    record: CaseRecord, ref_path: Path, output: Path | None, labels: Mapping[int, str], tolerance_mm: float
) -> CaseScore:
    """The case's own score (computed while it ran), or, for a case complete from an earlier run, its output
    file scored now; a case without a label map is a reference without prediction."""
    if record.score is not None and record.status in ("ok", "partial"):
        return record.score
    why = f"no prediction: the case is {record.status}" + (f" ({record.reason})" if record.reason else "")
    return score_pair(Pair(record.case_id, ref_path, output), labels, tolerance_mm=tolerance_mm, missing=why)


def _input_image(records: Mapping[str, CaseRecord], case_id: str) -> Volume:
    """The image a case was segmented from, read again (its overlay in the report); a DICOM case's series is
    picked out of its folder by SeriesInstanceUID.

    Raises:
        InputError: the input is gone or cannot be read.
    """
    from app.loading import load_volume

    record = records[case_id]
    if record.kind == "dicom" and record.series is not None:
        uid = record.series.series_instance_uid
        return load_volume(record.input, filters=[f"SeriesInstanceUID={uid}"])
    if record.kind == "picture":
        from app.evaluation.io import read_image

        return read_image(record.input)
    return load_volume(record.input)
