"""``OUT/report.html`` of a run, written from the run report and the files in OUT.

Contract of :func:`write_run_page`: reads each finished case's ``preview.png`` (the record's ``preview`` output)
and, when the report has an evaluation, its ``summary.json`` and its own page (``scores.html``: the scores,
their distributions and the worst cases' overlays on their images), renders the page with
:func:`app.reporting.run_html.render_run_html` and writes it atomically as ``OUT/<stem>.html`` (``report.html``;
a shard's ``report-shard-K-of-N.html``). With ``--ref`` the scores join the run's page: the evaluation page's
body is embedded in it as its last section. A missing or unreadable picture, summary or page is logged and left
out; it never fails the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.evaluation.summary import Summary
from app.evaluation.units import PHYSICAL, Units
from app.reporting.atomic import write_atomic

logger = logging.getLogger(__name__)


def write_run_page(
    report: Mapping[str, Any],
    out: str | Path,
    stem: str = "report",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``OUT/<stem>.html`` (module docstring); return its path. ``progress(done, total)`` is called as the
    pictures are read (one step each) and once the page is written (the last step).

    Raises:
        OutputError: the page cannot be written.
    """
    from app.reporting.run_html import render_run_html

    out = Path(out)
    previews: dict[str, bytes] = {}
    pictures = [
        (case["case_id"], output)
        for case in report.get("cases") or []
        for output in case.get("outputs") or []
        if output["kind"] == "preview"
    ]
    step = progress or (lambda done, total: None)
    step(0, len(pictures) + 1)
    for done, (case_id, output) in enumerate(pictures, start=1):
        try:
            previews[case_id] = Path(output["path"]).read_bytes()
        except OSError as exc:
            logger.warning("case %s: preview not shown (%s)", case_id, exc)
        step(done, len(pictures) + 1)
    summary, units = None, PHYSICAL
    reports = (report.get("evaluation") or {}).get("reports") or {}
    if reports.get("summary_json"):
        try:
            data = json.loads(Path(reports["summary_json"]).read_text(encoding="utf-8"))
            units = Units.of_provenance(data.get("provenance") or {})
            summary = Summary.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("scores not shown in the run page: %s (%s)", reports["summary_json"], exc)
    scores = None
    if (
        reports.get("report_html")
        and Path(reports["report_html"]).resolve() != (out / f"{stem}.html").resolve()
    ):
        try:
            scores = _body(Path(reports["report_html"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("score page not embedded in the run page: %s (%s)", reports["report_html"], exc)
    page = render_run_html(
        report, previews, evaluation_summary=summary, evaluation_page=scores, evaluation_units=units
    )
    path = write_atomic(out / f"{stem}.html", page)
    step(len(pictures) + 1, len(pictures) + 1)
    logger.info("run page %s (%d pictures)", path, len(previews))
    return path


def _body(page: str) -> tuple[str, str]:
    """``(style, body)`` of an HTML page: the text of its ``<style>`` element and what lies inside ``<body>``."""
    style = page.split("<style>", 1)[1].split("</style>", 1)[0] if "<style>" in page else ""
    if "<body>" not in page or "</body>" not in page:
        raise ValueError("not a complete HTML page")
    return style, page.split("<body>", 1)[1].rsplit("</body>", 1)[0]
