"""``report.html``: one self-contained page (inline CSS, pictures as base64 PNG, no scripts, no links out).

Contract: :func:`render_html` is a pure function of its arguments returning the page text. Every piece of
text that comes from data (case ids, label names, paths, messages) is HTML-escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from app.evaluation.result import CaseFailure, LabelResult
from app.evaluation.summary import EmSummary, Summary
from app.evaluation.units import PHYSICAL, Units
from app.evaluation.unlisted import UnlistedSummary

#: unused files shown as rows (failed cases are all shown; summary.json lists every unused file)
UNUSED_ROWS = 100
#: (field, heading, number format) of the summary and case tables; ``{distance}`` and ``{volume}`` in a heading are
#: the run's :class:`~app.evaluation.units.Units`
METRIC_COLUMNS = (
    ("dice", "Dice", "{:.3f}"),
    ("iou", "IoU", "{:.3f}"),
    ("precision", "Precision", "{:.3f}"),
    ("recall", "Recall", "{:.3f}"),
    ("hd_mm", "HD ({distance})", "{:.2f}"),
    ("hd95_mm", "HD95 ({distance})", "{:.2f}"),
    ("assd_mm", "ASSD ({distance})", "{:.2f}"),
    ("nsd", "NSD", "{:.3f}"),
    ("volume_pred_ml", "Vol pred ({volume})", "{:.3f}"),
    ("volume_ref_ml", "Vol ref ({volume})", "{:.3f}"),
    ("volume_diff_ml", "Vol diff ({volume})", "{:+.3f}"),
)


def _columns(units: Units, keys: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    return [
        (key, heading.format(distance=units.distance, volume=units.volume), fmt)
        for key, heading, fmt in METRIC_COLUMNS
        if keys is None or key in keys
    ]


#: the look every unetseg page shares (this evaluation page and the run page of app.reporting.run_html)
BASE_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;
color:#222;line-height:1.4;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;margin-top:32px;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:20px 0 6px}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px}th{background:#f3f3f3}
.figs img{max-width:100%;margin:4px 8px 4px 0;border:1px solid #eee}
"""
#: this page's own rules, scoped to its ``div.evaluation`` so that they hold where the page is embedded (the run
#: page embeds it whole) and change nothing around it
_CSS = (
    BASE_CSS
    + """
.evaluation th,.evaluation td{text-align:right}.evaluation td.l,.evaluation th.l{text-align:left}
.evaluation tr.group td{background:#fafafa;font-weight:600;text-align:left}
.flag-missed,.flag-false_positive,.flag-no_prediction,.flag-error{color:#b00000;font-weight:600}
.flag-both_empty{color:#1f5fa0}
.policy{white-space:pre-wrap;font-size:.85em;background:#f8f8f8;padding:8px;border:1px solid #eee}
details summary{cursor:pointer;color:#245;margin:8px 0}code{font-size:.9em}
"""
)


@dataclass(frozen=True)
class CaseFigure:
    """An overlay picture of one case for the report."""

    case_id: str
    mean_dice: float
    results: Sequence[LabelResult]
    png: bytes


def render_html(
    *,
    summary: Summary,
    results: Sequence[LabelResult],
    provenance: Mapping[str, Any],
    distributions: Sequence[tuple[str, bytes]] = (),
    cases: Sequence[CaseFigure] = (),
    failures: Sequence[CaseFailure] = (),
    unused: Sequence[tuple[Path, str]] = (),
    worst: int = 10,
) -> str:
    """The report page (see the module docstring)."""
    units = Units.of_provenance(provenance)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Segmentation evaluation report</title>",
        f"<style>{_CSS}</style></head><body>",
        '<div class="evaluation">',
        "<h1>Segmentation evaluation report</h1>",
        f'<p class="meta">{escape(str(provenance.get("timestamp", "")))} &middot; '
        f"{summary.n_cases} cases &middot; NSD tolerance {float(provenance.get('tolerance_mm', 0)):g} {units.distance}"
        f" &middot; unetseg {escape(str(provenance.get('versions', {}).get('unetseg', '?')))}</p>",
        _inputs(provenance),
        "<h2>Summary per label</h2>",
        _summary_table(summary, units),
        '<p class="meta">Every case counts in every statistic: a missed or false-positive structure enters Dice'
        " as 0 and the distances as the worst case (the grid diagonal); see the policy below.</p>",
    ]
    if summary.em is not None:
        parts += ["<h2>EM membrane scores (ISBI 2012)</h2>", _em_table(summary.em)]
    if summary.unlisted:
        parts += ["<h2>Label values not in the label list</h2>", unlisted_table(summary.unlisted)]
    if failures or unused:
        parts += ["<h2>Failed and unused inputs</h2>", _failures_table(failures, unused)]
    if distributions:
        parts += ["<h2>Distributions</h2>", '<div class="figs">']
        parts += [_img(png, title) for title, png in distributions]
        parts.append("</div>")
    if cases:
        parts.append(f"<h2>Worst {len(cases)} cases by mean Dice</h2>")
        parts.append(
            '<p class="meta">Solid: reference, dashed: prediction, yellow: voxels where they disagree. '
            "Each plane shows its slice with the most disagreeing voxels.</p>"
        )
        for case in cases:
            parts += [
                f"<h3>{escape(case.case_id)} &mdash; mean Dice {case.mean_dice:.3f}</h3>",
                _case_table(case.results, units),
                f'<div class="figs">{_img(case.png, f"overlay of {case.case_id}")}</div>',
            ]
    elif worst:
        parts.append('<p class="meta">No case pictures: no scored case could be re-read for display.</p>')
    parts += [
        "<h2>All cases</h2>",
        f"<details><summary>Show all {len(results)} results (case &times; label)</summary>",
        _case_table(sorted(results, key=lambda r: (r.case_id, r.label)), units, with_case=True),
        "</details>",
        "<h2>Empty-mask policy</h2>",
        *(
            []
            if units == PHYSICAL
            else [
                f'<p class="meta">These references carry no physical spacing: in the policy and the definitions '
                f"below, read mm as {escape(units.distance)} and mL as {escape(units.volume)}.</p>"
            ]
        ),
        f'<div class="policy">{escape(str(provenance.get("policy", "")))}</div>',
        "<h2>Definitions</h2>",
        _key_values(provenance.get("definitions", {})),
        "<h2>Provenance</h2>",
        _key_values(
            {
                **provenance.get("versions", {}),
                **{f"time: {k}": f"{v} s" for k, v in provenance.get("timings_s", {}).items()},
            }
        ),
        "</div>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _inputs(provenance: Mapping[str, Any]) -> str:
    inputs = provenance.get("inputs", {})
    labels = provenance.get("labels", {})
    rows = {
        **inputs,
        "labels": labels
        if isinstance(labels, str)
        else ", ".join(f"{name} = {value}" for value, name in labels.items()),
    }
    return _key_values(rows)


def summary_table(summary: Summary, units: Units = PHYSICAL) -> str:
    """The per-label metrics table of an evaluation summary (also used by the run report of ``infer --ref``)."""
    return _summary_table(summary, units)


def _summary_table(summary: Summary, units: Units) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("n", "mean", "std", "median", "p5", "p95"))
    rows = [f'<table><tr><th class="l">label / metric</th>{head}</tr>']
    for name, entry in summary.labels.items():
        flags = ", ".join(
            f'<span class="flag-{escape(f)}">{n} {escape(f)}</span>' for f, n in entry.flags.items() if n
        )
        rows.append(
            f'<tr class="group"><td colspan="7">{escape(str(name))} (label {entry.label}): '
            f"{entry.n} cases &mdash; {flags}</td></tr>"
        )
        for key, heading, fmt in _columns(units):
            stats = entry.metrics[key]
            cells = "".join(
                f"<td>{fmt.format(v)}</td>"
                for v in (stats.mean, stats.std, stats.median, stats.p5, stats.p95)
            )
            rows.append(f'<tr><td class="l">{escape(heading)}</td><td>{stats.n}</td>{cells}</tr>')
    rows.append("</table>")
    return "".join(rows)


def unlisted_table(unlisted: UnlistedSummary) -> str:
    """The label values found in the maps but not in the label list (not scored), with where they were found."""
    rows = [
        '<p class="meta">These values are not scored. A listed label that scores as missed or false positive while'
        " its structure carries another value here usually means the prediction and the reference use different"
        " label maps (e.g. TotalSegmentator or nnU-Net ids against another mapping): check --labels or the"
        " bundle's channel_def against both. Each case's values are in the unlisted_values column of"
        " metrics.csv.</p>",
        '<table><tr><th class="l">found in</th><th>value</th><th>voxels</th><th>cases</th>'
        '<th class="l">case ids</th></tr>',
    ]
    for entry in unlisted.values:
        named = ", ".join(entry.case_ids[:UNUSED_ROWS])
        more = len(entry.case_ids) - UNUSED_ROWS
        rows.append(
            f'<tr><td class="l">{escape(entry.side)}</td><td>{entry.value}</td><td>{entry.voxels}</td>'
            f'<td>{len(entry.case_ids)}</td><td class="l">{escape(named)}'
            f"{f' and {more} more' if more > 0 else ''}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


EM_COLUMNS = (
    ("rand_error", "Adapted Rand error (ISBI: predicted membrane unassigned)"),
    ("rand_error_membrane_segment", "Adapted Rand error, predicted membrane as one segment"),
    ("rand_error_thinned", "Adapted Rand error, thinned borders"),
    ("pixel_error", "Pixel error (1 - accuracy)"),
    ("pixel_fscore_error", "Pixel error, 1 - F-score of cell pixels (ISBI leaderboard)"),
    ("v_rand", "V_rand, thinned borders (ISBI leaderboard; higher is better)"),
    ("v_info", "V_info, thinned borders (ISBI leaderboard; higher is better)"),
)


def _em_table(em: EmSummary) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("n", "mean", "std", "median", "p5", "p95"))
    flags = ", ".join(f"{int(n)} {escape(str(f))}" for f, n in em.flags.items() if n)
    rows = [
        f'<p class="meta">Cell interior = label {em.cell_label}, every other value membrane; cells are '
        "4-connected components; per 2D slice, averaged per case; errors are lower-is-better, the V scores "
        "higher-is-better; a case without a usable prediction scores the worst value (1.0 error, 0.0 V). "
        f"Cases: {flags}.</p>",
        f'<table><tr><th class="l">score</th>{head}</tr>',
    ]
    for key, heading in EM_COLUMNS:
        stats = em.metrics[key]
        cells = "".join(
            f"<td>{v:.4f}</td>" for v in (stats.mean, stats.std, stats.median, stats.p5, stats.p95)
        )
        rows.append(f'<tr><td class="l">{escape(heading)}</td><td>{stats.n}</td>{cells}</tr>')
    rows.append("</table>")
    return "".join(rows)


def _case_table(results: Sequence[LabelResult], units: Units, *, with_case: bool = False) -> str:
    columns = _columns(units, ("dice", "hd95_mm", "assd_mm", "nsd", "volume_pred_ml", "volume_ref_ml"))
    head = (
        '<th class="l">case</th>' if with_case else ""
    ) + '<th class="l">label</th><th class="l">flag</th>'
    head += "".join(f"<th>{escape(h)}</th>" for _, h, _ in columns)
    rows = [f"<table><tr>{head}</tr>"]
    for r in results:
        cells = ('<td class="l">' + escape(r.case_id) + "</td>") if with_case else ""
        cells += (
            f'<td class="l">{escape(r.name)}</td><td class="l flag-{escape(r.flag)}">{escape(r.flag)}</td>'
        )
        cells += "".join(f"<td>{fmt.format(getattr(r, key))}</td>" for key, _, fmt in columns)
        rows.append(f"<tr>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


def _failures_table(failures: Sequence[CaseFailure], unused: Sequence[tuple[Path, str]]) -> str:
    rows = [
        '<table><tr><th class="l">case / file</th><th class="l">status</th><th class="l">detail</th></tr>'
    ]
    for f in failures:
        status = f.flag + ("" if f.scored else " (not scored)")
        rows.append(
            f'<tr><td class="l">{escape(f.case_id)}</td><td class="l flag-{escape(f.flag)}">'
            f'{escape(status)}</td><td class="l">{escape(f.message)}</td></tr>'
        )
    for path, reason in unused[:UNUSED_ROWS]:
        rows.append(
            f'<tr><td class="l">{escape(str(path))}</td><td class="l">unused</td>'
            f'<td class="l">{escape(reason)}</td></tr>'
        )
    if len(unused) > UNUSED_ROWS:
        rows.append(
            f'<tr><td class="l">{len(unused) - UNUSED_ROWS} more files</td><td class="l">unused</td>'
            '<td class="l">all listed in summary.json</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _key_values(mapping: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th class="l">{escape(str(k))}</th><td class="l">{escape(str(v))}</td></tr>'
        for k, v in mapping.items()
    )
    return f"<table>{rows}</table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
