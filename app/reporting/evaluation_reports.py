"""The reports of an evaluation run: :func:`write_evaluation_reports` turns an
:class:`~app.evaluation.runner.EvaluationRun` into ``metrics.csv``, ``summary.json`` (``em_metrics.csv`` for EM
labels) and the HTML page, with the run's provenance and the worst cases' overlay pictures.

Reporting reads evaluation's results, never the reverse: :func:`app.evaluation.evaluate_folders` scores and
returns, and every caller that wants files (``unetseg evaluate``, ``unetseg infer --ref``) calls this next.
Overlay pictures re-read only the cases they show (:meth:`EvaluationRun.case_volumes`), with their images paired
from ``images`` by case id (``_0000`` allowed) or given by ``image_source``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.evaluation.pairing import pair_images
from app.evaluation.result import CaseVolumes
from app.evaluation.run import EvaluationRun
from app.reporting.provenance import build_provenance
from app.reporting.report import ReportPaths, write_reports
from app.volume import Volume


def write_evaluation_reports(
    run: EvaluationRun,
    out: str | Path,
    *,
    images: str | Path | None = None,
    image_source: Callable[[str], Volume] | None = None,
    inputs: Mapping[str, Any] | None = None,
    worst: int = 10,
    html_name: str = "report.html",
) -> ReportPaths:
    """Write the reports of ``run`` into ``out`` (module docstring).

    Args:
        run: the scored run.
        out: the report folder (created).
        images: an image file or folder for the overlay pictures, paired by case id.
        image_source: the image of a case by case id, for cases ``images`` has none for (a batch reads its inputs
            again, only for the few cases shown); may raise :class:`~app.errors.UnetsegError` (that overlay is
            then drawn without the image).
        inputs: extra provenance (e.g. the bundle path), recorded with the run's own.
        worst: number of worst cases (by mean Dice) with overlay pictures.
        html_name: the page's file name in ``out``.

    Raises:
        OutputError: the report folder cannot be written.
    """
    files = (
        {"pred": str(run.pred), "ref": str(run.ref)} if run.pred is not None or run.ref is not None else {}
    )
    provenance = build_provenance(
        inputs={
            **files,
            "images": str(images) if images else None,
            "resample": run.resample,
            "worst": worst,
            **({"n_pairs": len(run.pairs)} if run.pairs else {}),
            **(inputs or {}),
        },
        tolerance_mm=run.tolerance_mm,
        labels=run.labels,
        timings_s={"evaluate": run.seconds},
        units=run.units,
    )
    image_paths = pair_images(Path(images), [p.case_id for p in run.pairs]) if images else {}

    def volumes(case_id: str) -> CaseVolumes | None:
        return run.case_volumes(case_id, image_paths.get(case_id), image_source)

    return write_reports(
        run.results,
        out,
        provenance=provenance,
        volumes=volumes,
        failures=run.failures,
        unused=run.unused,
        worst=worst,
        summary=run.summary,
        em_rows=run.em_rows,
        html_name=html_name,
    )
