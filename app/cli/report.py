"""``unetseg report OUT``: rebuild one run report from the ``case.json`` files and run journals in OUT.

For after ``--shard K/N`` runs (each wrote its own report), a crash, or runs from several machines into one OUT.
Writes ``OUT/report.json``, ``OUT/report.csv`` and ``OUT/report.html``.

Exit codes: :data:`EXIT_CODES` (listed by ``--help``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.exit_codes import codes, epilog

#: exit codes of ``unetseg report`` (``--help`` epilog, README; printed with their meaning when non-zero)
EXIT_CODES = codes(
    {
        1: "some case failed, is partial or never finished",
        2: "OUT holds nothing to rebuild from (or another input error)",
    }
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        epilog=epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="rebuild OUT/report.json from the case.json files and journals in OUT (after shards or a crash)",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="the output folder of earlier infer runs")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from app.batch.rebuild import rebuild_report

    rebuilt = rebuild_report(args.out)
    counts = rebuilt.report["counts"]
    print(
        f"{counts['cases']} case(s): {counts['ok']} ok, {counts['partial']} partial, {counts['failed']} failed, "
        f"{counts['pending']} never finished; from {len(rebuilt.journals)} journal(s) and "
        f"{rebuilt.manifests} case.json file(s)"
    )
    print(f"report {rebuilt.report_json}, {rebuilt.report_csv}, {rebuilt.report_html}")
    bad = counts["failed"] + counts["partial"] + counts["pending"]
    return 0 if bad == 0 else 1
