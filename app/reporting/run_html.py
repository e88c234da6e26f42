"""``OUT/report.html`` of an ``unetseg infer`` run: what a person reads to decide which results to trust.

Contract: :func:`render_run_html` is a pure function of the run report (``report.json``'s content,
:func:`app.batch.report.build_report`), the cases' preview PNGs and, with ``--ref``, the evaluation summary
(:func:`app.evaluation.summary.summarise`); it returns one self-contained page (inline CSS, pictures as base64
PNG, a few lines of inline script that sort the table when a heading is clicked; nothing is loaded from
elsewhere). Sections: the run's provenance and counts; the sortable table of every case (status, reason,
per-label volume or, for membrane/cell pictures, membrane fraction and cells, flags, warnings, Dice with
``--ref``), flagged cases first; the flagged cases with their previews; the other finished cases with their
previews (at most ``max_previews`` pictures in all, the rest named); the failed cases with their reason; with
``--ref`` the scores per label. Every text from data is HTML-escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from app.evaluation.summary import Summary
from app.evaluation.units import PHYSICAL, Units
from app.reporting.html import BASE_CSS

_CSS = (
    BASE_CSS
    + """
th,td{text-align:left;vertical-align:top}table.cases th{cursor:pointer}td.n{text-align:right}
.status-failed,.status-partial{color:#b00000;font-weight:600}.flag{color:#b05000}
tr.flagged td:first-child{border-left:4px solid #e08000}
"""
)

#: sorts the case table by the clicked column (numbers numerically); the page works without it too
_SORT = """
document.querySelectorAll('table.cases th').forEach(function(th,col){th.addEventListener('click',function(){
var body=th.closest('table').tBodies[0],rows=Array.from(body.rows),up=th.dataset.dir!=='up';th.dataset.dir=up?'up':'down';
rows.sort(function(a,b){var x=a.cells[col].dataset.v||a.cells[col].textContent,y=b.cells[col].dataset.v||b.cells[col].textContent;
var p=parseFloat(x),q=parseFloat(y);var c=(!isNaN(p)&&!isNaN(q))?p-q:x.localeCompare(y);return up?c:-c;});
rows.forEach(function(r){body.appendChild(r);});});});
"""


def render_run_html(
    report: Mapping[str, Any],
    previews: Mapping[str, bytes],
    *,
    evaluation_summary: Summary | None = None,
    evaluation_page: tuple[str, str] | None = None,
    evaluation_units: Units = PHYSICAL,
    max_previews: int = 100,
) -> str:
    """The page (module docstring). ``previews``: case id -> PNG bytes (cases without one get no picture);
    ``evaluation_page``: ``(style, body)`` of the evaluation's own page, embedded whole as the scores section
    (instead of the summary table alone); ``evaluation_units``: the units of the summary table's distances and
    volumes."""
    cases = list(report.get("cases") or [])
    failed = [c for c in cases if c["status"] == "failed"]
    done = [c for c in cases if c["status"] in ("ok", "partial", "skipped")]
    flagged = [c for c in done if _flags(c)]
    others = [c for c in done if not _flags(c)]
    pending = [c for c in cases if c["status"] == "pending"]
    label_names = _label_names(cases)
    dice = ((report.get("evaluation") or {}).get("dice")) or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>unetseg run report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>unetseg run report</h1>",
        _header(report),
        "<h2>Cases</h2>",
        f'<p class="meta">{len(flagged)} flagged (check these first), {len(others)} without flags, '
        f"{len(failed)} failed, {len(pending)} not finished. Click a heading to sort.</p>",
        _case_table(flagged + others + failed + pending, label_names, dice),
    ]
    shown = 0
    for title, group in (("Flagged cases", flagged), ("Cases without flags", others)):
        if not group:
            continue
        parts.append(f"<h2>{title}</h2>")
        missing = []
        for case in group:
            png = previews.get(case["case_id"])
            if png is None or shown >= max_previews:
                missing.append(case["case_id"])
                continue
            shown += 1
            parts.append(f"<h3>{escape(case['case_id'])} &mdash; {escape(case['status'])}</h3>")
            if _flags(case):
                parts.append(
                    "<ul>" + "".join(f'<li class="flag">{escape(f)}</li>' for f in _flags(case)) + "</ul>"
                )
            for warning in case.get("warnings") or []:
                parts.append(f'<p class="meta">warning: {escape(warning)}</p>')
            parts.append(f'<div class="figs">{_img(png, "preview of " + case["case_id"])}</div>')
        if missing:
            parts.append(
                f'<p class="meta">No picture here for {len(missing)} case(s) (no preview.png, --no-preview, '
                f"or past the {max_previews} pictures a page holds): {escape(', '.join(missing))}</p>"
            )
    if failed:
        parts += [
            "<h2>Failed cases</h2>",
            "<table><tr><th>case</th><th>failure</th><th>reason</th><th>input</th></tr>",
            *(
                f"<tr><td>{escape(c['case_id'])}</td><td>{escape(c.get('failure') or '')}</td>"
                f"<td>{escape(c['reason'])}</td><td>{escape(c['input'])}</td></tr>"
                for c in failed
            ),
            "</table>",
        ]
    if evaluation_page is not None:
        style, body = evaluation_page
        parts += [
            '<section id="scores"><h2>Scores against the reference (--ref)</h2>',
            f"<style>{style}</style>",
            body,
            "</section>",
        ]
    elif evaluation_summary is not None:
        from app.reporting.html import summary_table

        parts += [
            "<h2>Scores against the reference (--ref)</h2>",
            summary_table(evaluation_summary, evaluation_units),
        ]
        failures = (report.get("evaluation") or {}).get("failures") or []
        if failures:
            parts.append(f'<p class="meta">{len(failures)} reference(s) without a usable prediction.</p>')
    parts += ["<script>", _SORT, "</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def _flags(case: Mapping[str, Any]) -> list[str]:
    return [f["message"] for f in (case.get("statistics") or {}).get("flags") or []]


def _label_names(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for case in cases:
        for s in (case.get("statistics") or {}).get("labels") or []:
            names.setdefault(s["name"])
    return list(names)


def _header(report: Mapping[str, Any]) -> str:
    provenance = report.get("provenance") or {}
    bundle = provenance.get("bundle") or {}
    counts = report.get("counts") or {}
    rows = {
        "state": report.get("state", ""),
        "counts": ", ".join(f"{v} {k}" for k, v in counts.items()),
        "bundle": f"{bundle.get('name', '')} {bundle.get('version', '')} ({bundle.get('path', '')})"
        if bundle
        else "",
        "device": provenance.get("device", ""),
        "command": " ".join(provenance.get("command_line") or []),
        "started": provenance.get("started", provenance.get("rebuilt", "")),
        "finished": provenance.get("finished", ""),
        "unetseg": (provenance.get("versions") or {}).get("unetseg", ""),
        "rebuilt from": ", ".join(provenance.get("journals") or []),
    }
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows.items() if v)
    return f"<table>{body}</table>"


def describe_series(number: int | None, description: str | None) -> str:
    """``"#4 T1 MPRAGE"`` from a series' SeriesNumber and SeriesDescription; empty for neither (the run page and
    the console name a DICOM case so)."""
    parts = []
    if number is not None:
        parts.append(f"#{number}")
    if description:
        parts.append(str(description))
    return " ".join(parts)


def _source(case: Mapping[str, Any]) -> str:
    """The case's input relative to INPUT, with a DICOM series' number and description (``study_1/series_3
    (#3 T1)``): the name a person recognises behind an opaque case id."""
    series = case.get("series") or {}
    described = describe_series(series.get("series_number"), series.get("series_description"))
    source = case.get("source") or case.get("input") or ""
    return f"{source} ({described})" if described else source


def _case_table(
    cases: Sequence[Mapping[str, Any]], label_names: Sequence[str], dice: Mapping[str, Mapping[str, float]]
) -> str:
    cells_stats = any((c.get("statistics") or {}).get("cells") for c in cases)
    dice_names = list(dict.fromkeys(n for per_case in dice.values() for n in per_case))
    head = ["case", "source", "status", "reason", "flags", "warnings"]
    head += [f"{n} volume (mL)" for n in label_names] if not cells_stats else ["membrane fraction", "cells"]
    head += [f"Dice {n}" for n in dice_names]
    rows = ['<table class="cases"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)]
    rows.append("</tr></thead><tbody>")
    for case in cases:
        stats = case.get("statistics") or {}
        flags = _flags(case)
        cells = [
            escape(case["case_id"]),
            escape(_source(case)),
            f'<span class="status-{escape(case["status"])}">{escape(case["status"])}</span>',
            escape(case.get("reason") or ""),
            "<br>".join(escape(f) for f in flags),
            "<br>".join(escape(w) for w in case.get("warnings") or []),
        ]
        row = "".join(f"<td>{c}</td>" for c in cells)
        numbers: list[float | None] = []
        if cells_stats:
            entry = stats.get("cells") or {}
            numbers += [entry.get("membrane_fraction"), entry.get("cells")]
        else:
            by_name = {s["name"]: s for s in stats.get("labels") or []}
            numbers += [(by_name.get(n) or {}).get("volume_ml") for n in label_names]
        numbers += [dice.get(case["case_id"], {}).get(n) for n in dice_names]
        row += "".join(
            '<td class="n"></td>' if v is None else f'<td class="n" data-v="{float(v)!r}">{float(v):.4g}</td>'
            for v in numbers
        )
        rows.append(f'<tr class="{"flagged" if flags else ""}">{row}</tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
