"""``--ref``: score this run's NIfTI outputs against reference labels with the evaluation stage, reports in OUT.

Contract: references are label files named by case id (``<case_id>.nii.gz``, ``.nii``, ``.nrrd``, a DICOM
SEG ``<case_id>.dcm``, or a PNG/TIFF for picture inputs; :mod:`app.evaluation.pairing`). The references scored
are those of *this run's cases*: a reference whose case id names no case of the run (e.g. ``--ref`` at a whole
dataset's ``labelsTr`` while three images were segmented) is not a miss of this run; it is listed in
``not_in_run`` and left out of every mean. Only the NIfTI (or label picture) outputs of this run's ``ok`` and
``skipped`` (complete) cases are scored: they and the references of the run's cases are linked into
temporary folders and handed to :func:`app.evaluation.evaluate_folders`, so stale files from other runs in OUT
never count, and a case of this run that failed shows up in the reports as a reference without prediction
(a miss, by the evaluation policy). ``metrics.csv``, ``summary.json`` and ``report.html`` are written into
OUT (the overlays drawn on each case's input, read again for the few cases shown); the returned dict goes
into ``report.json``. ``unetseg evaluate`` keeps the plain policy: every
reference under ``--ref`` is scored, one without a prediction is a miss.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.batch.records import CaseRecord
from app.volume import Volume

if TYPE_CHECKING:
    from app.evaluation.runner import EvaluationRun

logger = logging.getLogger(__name__)

#: the evaluation's own page in OUT (overlays on the images, distributions); the run page embeds it
SCORES_PAGE = "scores.html"


def score_outputs(
    records: Sequence[CaseRecord],
    ref: Path,
    out: Path,
    labels: Mapping[int, str],
    *,
    tolerance_mm: float = 1.0,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the records' NIfTI outputs against ``ref``; write the evaluation reports into ``out``.

    Args:
        records: the run's case records.
        ref: folder of reference labels named by case id.
        out: the run's output folder.
        labels: label value -> name to score (background excluded).
        tolerance_mm: NSD tolerance.
        inputs: extra provenance for the evaluation reports.

    Returns:
        ``{"reports": {...paths}, "dice": {case_id: {label name: Dice}}, "mean_dice": {label name: mean},
        "failures": [...], "unused": [...], "not_in_run": [case ids], "ok": bool}``, plus
        ``"mean_em": {score: mean}`` for membrane/cell labels. When no reference names a case of the run,
        nothing is scored: ``"reports": None``, ``"ok": False`` and a ``"reason"``.

    Raises:
        OutputError: the reports cannot be written.
    """
    from app.evaluation import evaluate_folders
    from app.evaluation.pairing import pair_files
    from app.reporting.evaluation_reports import write_evaluation_reports

    run_ids = {record.case_id for record in records}
    with tempfile.TemporaryDirectory(prefix="unetseg-scoring-") as tmp:
        preds, refs = Path(tmp) / "pred", Path(tmp) / "ref"
        preds.mkdir()
        refs.mkdir()
        staged: dict[str, str] = {}
        for record in records:
            output = record.output("nifti") or record.output("picture")
            if record.status in ("ok", "skipped") and output is not None:
                suffix = ".nii.gz" if output.kind == "nifti" else Path(output.path).suffix
                link = preds / f"{record.case_id}_seg{suffix}"
                _link(Path(output.path).resolve(), link)
                staged[str(link)] = output.path
        pairing = pair_files(preds, Path(ref))
        not_in_run = sorted(p.case_id for p in pairing.pairs if p.case_id not in run_ids)
        ours = [p for p in pairing.pairs if p.case_id in run_ids]
        for pair in ours:
            _link(pair.ref.resolve(), refs / pair.ref.name)
        if not_in_run:
            logger.info(
                "%d reference(s) in %s name no case of this run; not scored: %s",
                len(not_in_run),
                ref,
                ", ".join(not_in_run),
            )
        if not ours:
            logger.warning("no reference in %s names a case of this run; nothing scored", ref)
            return _nothing_scored(ref, not_in_run)
        run = _named_as_in_out(
            evaluate_folders(preds, refs, labels=labels, tolerance_mm=tolerance_mm),
            staged,
            {str(preds): str(out), str(refs): str(ref)},
        )
        reports = write_evaluation_reports(
            run,
            out,
            inputs={
                "pred": f"{out}/<case_id>/<case_id>_seg.nii.gz",
                "ref": str(ref),
                "images": "each case's input, read again for the overlays",
                "references_not_in_run": len(not_in_run),
                **(inputs or {}),
            },
            image_source=functools.partial(_input_image, {r.case_id: r for r in records}),
            html_name=SCORES_PAGE,
        )
    dice: dict[str, dict[str, float]] = {}
    for result in run.results:
        dice.setdefault(result.case_id, {})[result.name] = round(float(result.dice), 4)
    mean_dice = {
        name: round(float(entry["metrics"]["dice"]["mean"]), 4)
        for name, entry in run.summary["labels"].items()
    }
    return {
        "ref": str(ref),
        "reports": {
            "metrics_csv": str(reports.metrics_csv),
            "summary_json": str(reports.summary_json),
            "report_html": str(reports.report_html),
        },
        "dice": dice,
        "mean_dice": mean_dice,
        **_em_means(run.summary),
        "failures": [{"case_id": f.case_id, "flag": f.flag, "message": f.message} for f in run.failures],
        "unused": [{"path": str(p), "reason": why} for p, why in run.unused],
        "not_in_run": not_in_run,
        "ok": run.ok,
    }


def _named_as_in_out(
    run: EvaluationRun, staged: Mapping[str, str], folders: Mapping[str, str]
) -> EvaluationRun:
    """``run`` with its failures and unused files named as the user knows them (the outputs in OUT, the
    reference folder) instead of by the temporary staging folders, before any report is written."""

    def named(text: str) -> str:
        for tmp, real in folders.items():
            text = text.replace(tmp, real)
        return text

    return dataclasses.replace(
        run,
        failures=[
            dataclasses.replace(
                f,
                message=named(f.message),
                path=Path(staged.get(str(f.path), named(str(f.path)))) if f.path is not None else None,
            )
            for f in run.failures
        ],
        unused=[(Path(staged.get(str(p), named(str(p)))), why) for p, why in run.unused],
    )


def _input_image(records: Mapping[str, CaseRecord], case_id: str) -> Volume:
    """The image a case was segmented from, read again (its overlay in the report); a DICOM case's series is
    picked out of its folder by SeriesInstanceUID.

    Raises:
        InputError: the input is gone or cannot be read.
    """
    from app.loading import load_volume

    record = records[case_id]
    if record.kind == "dicom" and record.series:
        uid = record.series["series_instance_uid"]
        return load_volume(record.input, filters=[f"SeriesInstanceUID={uid}"])
    if record.kind == "picture":
        from app.evaluation.io import read_image

        return read_image(record.input)
    return load_volume(record.input)


def _nothing_scored(ref: Path, not_in_run: list[str]) -> dict[str, Any]:
    """The evaluation entry of a run none of whose cases has a reference: not ok, nothing averaged."""
    return {
        "ref": str(ref),
        "reports": None,
        "dice": {},
        "mean_dice": {},
        "failures": [],
        "unused": [],
        "not_in_run": not_in_run,
        "ok": False,
        "reason": f"no reference in {ref} names a case of this run (reference files are named <case_id>.nii.gz)",
    }


def _em_means(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``{"mean_em": {score: mean}}`` when the run has EM scores (:mod:`app.evaluation.em`), else ``{}``."""
    em = summary.get("em")
    if em is None:
        return {}
    return {"mean_em": {name: round(float(stats["mean"]), 4) for name, stats in em["metrics"].items()}}


def _link(target: Path, link: Path) -> None:
    """A symbolic link, or a copy where the file system has none."""
    try:
        os.symlink(target, link)
    except OSError as exc:
        logger.debug("no symlink (%s); copying %s", exc, target)
        shutil.copyfile(target, link)
