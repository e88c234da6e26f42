"""Write the three report files of an evaluation: ``metrics.csv``, ``summary.json`` and ``report.html``.

Contract: :func:`write_reports` takes the :class:`~app.evaluation.result.LabelResult` objects of a run and
writes the files into ``out_dir`` (created if needed), each atomically. Overlay pictures need the voxels:
pass ``volumes``, a mapping or a callable from case id to :class:`CaseVolumes` (a callable lets a batch
runner re-read only the few cases shown instead of holding them all). Cases shown are the ``worst`` scored
cases by mean Dice over their labels (cases without a usable prediction are listed as failures instead).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import OutputError
from app.evaluation.em import EmRow
from app.evaluation.result import CaseFailure, CaseVolumes, LabelResult
from app.evaluation.summary import Summary, summarise
from app.evaluation.units import Units
from app.reporting.atomic import write_atomic
from app.reporting.html import CaseFigure, render_html
from app.reporting.provenance import build_provenance
from app.reporting.tables import em_metrics_csv, metrics_csv, summary_json

logger = logging.getLogger(__name__)

_FAILED = ("no_prediction", "error")


VolumeSource = Mapping[str, CaseVolumes] | Callable[[str], CaseVolumes | None]


@dataclass(frozen=True)
class ReportPaths:
    metrics_csv: Path
    summary_json: Path
    report_html: Path
    em_metrics_csv: Path | None = None


def write_reports(
    results: Sequence[LabelResult],
    out_dir: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    volumes: VolumeSource | None = None,
    failures: Sequence[CaseFailure] = (),
    unused: Sequence[tuple[Path, str]] = (),
    worst: int = 10,
    summary: Summary | None = None,
    em_rows: Sequence[EmRow] = (),
    html_name: str = "report.html",
) -> ReportPaths:
    """Write ``metrics.csv``, ``summary.json`` and ``report.html`` (``html_name``) into ``out_dir``.

    Args:
        results: every result of the run.
        out_dir: output folder (created with its parents).
        provenance: the run's provenance record (default: :func:`build_provenance` with no inputs and the
            results' tolerance).
        volumes: voxels for overlay pictures (see the module docstring); ``None``: no pictures.
        failures: failed cases, listed in the summary and the report.
        unused: files that were not used, with the reason.
        worst: how many cases get overlay pictures (0: none).
        summary: the :func:`~app.evaluation.summary.summarise` of ``results``, if already computed.
        em_rows: per-case EM scores (:class:`~app.evaluation.em.EmRow`), written
            to ``em_metrics.csv``; empty: no EM scores.
        html_name: the HTML page's file name (``infer --ref`` writes ``scores.html``, which its run page embeds).

    Raises:
        OutputError: ``out_dir`` cannot be created or written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out, f"cannot create the output folder: {exc.strerror or exc}") from exc
    results = list(results)
    summary = summary if summary is not None else summarise(results)
    if provenance is None:
        tolerance = results[0].tolerance_mm if results else 1.0
        provenance = build_provenance(inputs={}, tolerance_mm=tolerance)
    paths = ReportPaths(
        out / "metrics.csv",
        out / "summary.json",
        out / html_name,
        out / "em_metrics.csv" if em_rows else None,
    )
    write_atomic(paths.metrics_csv, metrics_csv(results))
    if paths.em_metrics_csv is not None:
        write_atomic(paths.em_metrics_csv, em_metrics_csv(em_rows))
    write_atomic(
        paths.summary_json, summary_json(summary, provenance=provenance, failures=failures, unused=unused)
    )

    from app.reporting.figures import distribution_png  # matplotlib: only when a report is written

    distributions = []
    if results:
        distance = Units.of_provenance(provenance).distance
        distributions = [
            ("Dice per label", distribution_png(results, "dice", "Dice per label")),
            (
                "HD95 per label",
                distribution_png(results, "hd95_mm", f"HD95 per label ({distance})", unit=distance),
            ),
        ]
    cases = _case_figures(results, volumes, worst) if volumes is not None and worst > 0 else []
    page = render_html(
        summary=summary,
        results=results,
        provenance=provenance,
        distributions=distributions,
        cases=cases,
        failures=failures,
        unused=unused,
        worst=worst,
    )
    write_atomic(paths.report_html, page)
    logger.info("reports written to %s (%d overlay pictures)", out, len(cases))
    return paths


def worst_cases(results: Sequence[LabelResult]) -> list[tuple[str, float]]:
    """Scored cases (not ``no_prediction``/``error``) as ``(case_id, mean Dice)``, worst first."""
    by_case: dict[str, list[LabelResult]] = {}
    for r in results:
        by_case.setdefault(r.case_id, []).append(r)
    ranked = [
        (cid, sum(r.dice for r in group) / len(group))
        for cid, group in by_case.items()
        if not all(r.flag in _FAILED for r in group)
    ]
    return sorted(ranked, key=lambda item: (item[1], item[0]))


def _case_figures(results: Sequence[LabelResult], volumes: VolumeSource, worst: int) -> list[CaseFigure]:
    from app.reporting.figures import overlay_png

    figures: list[CaseFigure] = []
    for cid, mean_dice in worst_cases(results):
        if len(figures) >= worst:
            break
        case = volumes.get(cid) if isinstance(volumes, Mapping) else volumes(cid)
        if case is None:
            logger.info("no voxels for case %s; no overlay picture", cid)
            continue
        group = sorted((r for r in results if r.case_id == cid), key=lambda r: r.label)
        labels = {r.label: r.name for r in group}
        png = overlay_png(
            case.ref, case.pred, labels, image=case.image, title=f"{cid}: mean Dice {mean_dice:.3f}"
        )
        figures.append(CaseFigure(case_id=cid, mean_dice=mean_dice, results=group, png=png))
    return figures
