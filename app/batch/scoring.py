"""``--ref``: score this run's NIfTI outputs against reference labels with the evaluation stage, reports in OUT.

Contract: references are label files named by case id (``<case_id>.nii.gz``, ``.nii``, ``.nrrd``, a DICOM
SEG ``<case_id>.dcm``, or a PNG/TIFF for picture inputs; :mod:`app.evaluation.pairing`). Only the NIfTI (or
label picture) outputs of *this* run's ``ok`` and
``skipped`` (complete) cases are scored: they are linked into a temporary folder and handed to
:func:`app.evaluation.evaluate_folders`, so stale files from other runs in OUT never count, and a failed case
shows up in the reports as a reference without prediction. ``metrics.csv``, ``summary.json`` and
``report.html`` are written into OUT; the returned dict goes into ``report.json``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.batch.records import CaseRecord

logger = logging.getLogger(__name__)


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
        "failures": [...], "unused": [...]}``, plus ``"mean_em": {score: mean}`` for membrane/cell labels.

    Raises:
        InputError: no reference label files in ``ref``.
        OutputError: the reports cannot be written.
    """
    from app.evaluation import evaluate_folders

    with tempfile.TemporaryDirectory(prefix="unetseg-scoring-") as tmp:
        staged: dict[str, str] = {}
        for record in records:
            output = record.output("nifti") or record.output("picture")
            if record.status in ("ok", "skipped") and output is not None:
                suffix = ".nii.gz" if output.kind == "nifti" else Path(output.path).suffix
                link = Path(tmp) / f"{record.case_id}_seg{suffix}"
                _link(Path(output.path).resolve(), link)
                staged[str(link)] = output.path
        run = evaluate_folders(
            tmp,
            ref,
            out,
            labels=labels,
            tolerance_mm=tolerance_mm,
            inputs={"predictions": f"{out}/<case_id>/<case_id>_seg.nii.gz", **(inputs or {})},
        )
    dice: dict[str, dict[str, float]] = {}
    for result in run.results:
        dice.setdefault(result.case_id, {})[result.name] = round(float(result.dice), 4)
    mean_dice = {
        name: round(float(entry["metrics"]["dice"]["mean"]), 4)
        for name, entry in run.summary["labels"].items()
    }
    reports = run.reports
    return {
        "ref": str(ref),
        "reports": {
            "metrics_csv": str(reports.metrics_csv),
            "summary_json": str(reports.summary_json),
            "report_html": str(reports.report_html),
        }
        if reports is not None
        else None,
        "dice": dice,
        "mean_dice": mean_dice,
        **_em_means(run.summary),
        "failures": [
            {"case_id": f.case_id, "flag": f.flag, "message": f.message.replace(tmp, str(out))}
            for f in run.failures
        ],
        "unused": [{"path": staged.get(str(p), str(p)), "reason": why} for p, why in run.unused],
        "ok": run.ok,
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
