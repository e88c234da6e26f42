"""``OUT/report.html`` of a run, written from the run report and the files in OUT.

Contract of :func:`write_run_page`: reads each finished case's ``preview.png`` (the record's ``preview`` output)
and, when the report has an evaluation, its ``summary.json``, renders the page with
:func:`app.reporting.run_html.render_run_html` and writes it atomically as ``OUT/<stem>.html`` (``report.html``;
a shard's ``report-shard-K-of-N.html``). With ``--ref`` this page replaces the evaluation's own
``report.html``: the scores join the run's page. A missing or unreadable picture or summary is logged and left
out; it never fails the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.reporting.atomic import write_atomic

logger = logging.getLogger(__name__)


def write_run_page(report: Mapping[str, Any], out: str | Path, stem: str = "report") -> Path:
    """Write ``OUT/<stem>.html`` (module docstring); return its path.

    Raises:
        OutputError: the page cannot be written.
    """
    from app.reporting.run_html import render_run_html

    out = Path(out)
    previews: dict[str, bytes] = {}
    for case in report.get("cases") or []:
        output = next((o for o in case.get("outputs") or [] if o["kind"] == "preview"), None)
        if output is None:
            continue
        try:
            previews[case["case_id"]] = Path(output["path"]).read_bytes()
        except OSError as exc:
            logger.warning("case %s: preview not shown (%s)", case["case_id"], exc)
    summary = None
    reports = (report.get("evaluation") or {}).get("reports") or {}
    if reports.get("summary_json"):
        try:
            summary = json.loads(Path(reports["summary_json"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("scores not shown in the run page: %s (%s)", reports["summary_json"], exc)
    page = render_run_html(report, previews, evaluation_summary=summary)
    path = write_atomic(out / f"{stem}.html", page)
    logger.info("run page %s (%d pictures)", path, len(previews))
    return path
