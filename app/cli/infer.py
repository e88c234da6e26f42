"""``unetseg infer INPUT... --bundle DIR --out OUT``: segment every image found in INPUT with a MONAI bundle.

INPUT: any mix of NIfTI/NRRD files, folders of them, DICOM series folders and DICOM trees. Per case,
``OUT/<case_id>/<case_id>_seg.nii.gz`` and, for DICOM input, ``OUT/<case_id>/<case_id>_seg.dcm`` (DICOM SEG),
``OUT/<case_id>/statistics.json`` (per-label statistics and plausibility flags) and ``preview.png``, then
``OUT/<case_id>/case.json``; for the run, ``OUT/report.json``, ``OUT/report.csv`` and ``OUT/report.html`` (cases
with previews, flagged ones first); with ``--ref``, also ``metrics.csv``, ``summary.json`` and ``scores.html`` (the
evaluation's page, also embedded in ``report.html``).

Exit codes: :data:`EXIT_CODES` (listed by ``--help``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.exit_codes import codes, epilog
from app.cli.text import some_names
from app.loading.options import DEFAULT_MAX_BYTES, ReadOptions

if TYPE_CHECKING:
    from app.batch import BatchConfig, BatchResult


#: exit codes of ``unetseg infer`` (``--help`` epilog, README; printed with their meaning when non-zero)
EXIT_CODES = codes(
    {
        1: "some case failed or is partial (all were tried; reasons on the lines above and in report.json), or a "
        "reference of this run's cases could not be scored",
        2: "input error: an input, reference or option to fix (the message names it), or the inputs hold no case "
        "at all",
    }
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "infer",
        epilog=epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="segment NIfTI/NRRD/DICOM inputs with a MONAI bundle; NIfTI + DICOM SEG out, run report",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders (any depth)")
    parser.add_argument("--bundle", required=True, type=Path, metavar="DIR", help="MONAI bundle folder")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT", help="output folder")
    add_config_arguments(parser)
    parser.add_argument(
        "--max-input-gib",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**30,
        metavar="GIB",
        help="refuse an input whose header declares more voxel data than this, before reading it "
        f"(default {DEFAULT_MAX_BYTES / 2**30:g})",
    )
    parser.add_argument(
        "--strict-orientation",
        action="store_true",
        help="refuse a NIfTI whose qform and sform disagree (default: follow the sform and warn)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from app.batch import run_batch

    config = batch_config(args)
    from app.cli.console import ConsoleObserver

    console = ConsoleObserver(config.inputs)
    try:
        result = run_batch(config, console)
    finally:
        console.close()
    print_summary(result)
    return result.exit_code


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`~app.batch.config.BatchConfig` field with a :class:`~app.batch.config.Flag`, in
    field order (those of a ``group`` in their own ``--help`` section); the value lands under the field's name."""
    from app.batch.config import config_flags

    targets: dict[str | None, argparse.ArgumentParser | argparse._ArgumentGroup] = {None: parser}
    for f, flag in config_flags():
        if flag.group not in targets:
            targets[flag.group] = parser.add_argument_group(flag.group)
        target = targets[flag.group]
        if isinstance(f.default, bool):
            action = "store_false" if f.default else "store_true"
            target.add_argument(flag.word, dest=f.name, action=action, help=flag.help)
        elif isinstance(f.default, tuple):
            target.add_argument(
                flag.word, dest=f.name, action="append", metavar=flag.metavar, type=flag.type, help=flag.help
            )
        else:
            target.add_argument(
                flag.word,
                dest=f.name,
                default=None,
                type=flag.type,
                choices=flag.choices,
                metavar=flag.metavar,
                help=flag.help,
            )


def batch_config(args: argparse.Namespace) -> BatchConfig:
    """The run's one options object from the parsed arguments (checked by :class:`BatchConfig` itself)."""
    from app.batch.config import BatchConfig

    return BatchConfig.from_flags(
        vars(args), inputs=tuple(args.inputs), bundle=args.bundle, out=args.out, read=read_options(args)
    )


def read_options(args: argparse.Namespace) -> ReadOptions:
    """The readers' options from ``--max-input-gib`` and ``--strict-orientation``."""
    from app.errors import InputError

    if not args.max_input_gib > 0:
        raise InputError(None, f"--max-input-gib must be > 0, got {args.max_input_gib:g}")
    return ReadOptions(max_bytes=int(args.max_input_gib * 2**30), strict_orientation=args.strict_orientation)


def print_summary(result: BatchResult) -> None:
    """After the per-case lines: Dice per case (with ``--ref``), the counts, the report and log paths."""
    scored = result.scores
    dice = scored.dice if scored is not None else {}
    for record in result.records:
        scores = dice.get(record.case_id)
        if scores:
            print(
                f"{record.case_id}: "
                + ", ".join(f"Dice {name} {value:.3f}" for name, value in scores.items())
            )
    if result.nothing_found:
        skipped = [d for d in result.decisions if d.action == "skipped"]
        reasons = "; ".join(dict.fromkeys(d.reason for d in skipped))
        print(
            "no case found in the inputs"
            + (
                f": {len(skipped)} skipped ({reasons[:300]})"
                if skipped
                else " (no NIfTI, NRRD, PNG/TIFF or DICOM image files)"
            )
        )
    skipped_series = [d for d in result.decisions if d.action == "skipped" and d.subject == "series"]
    if skipped_series and not result.nothing_found:
        why = Counter(d.reason for d in skipped_series)
        listed = "; ".join(f"{reason} ({n})" for reason, n in why.most_common(3))
        more = f"; {len(why) - 3} more reasons" if len(why) > 3 else ""
        print(
            f"{len(skipped_series)} DICOM series not taken: {listed}{more} "
            f"(each with its folder in {result.report_json} discovery)"
        )
    counts = result.report["counts"]
    print(
        f"{counts['cases']} case(s): {counts['ok']} ok, {counts['partial']} partial, {counts['skipped']} skipped, "
        f"{counts['failed']} failed; "
        f"report {result.report_json}, {result.report_csv}"
    )
    if result.report_html is not None:
        flagged = [r for r in result.records if r.flags]
        print(f"{len(flagged)} case(s) flagged for a look; page with previews: {result.report_html}")
    internal = [r for r in result.records if r.failure == "internal"]
    if internal and result.log is not None:
        print(f"{len(internal)} case(s) failed with an internal error; tracebacks in {result.log}")
    if scored is None:
        return
    em = scored.mean_em
    if em:
        print(
            f"EM scores (mean): adapted Rand error {em['rand_error']:.4f}, pixel error {em['pixel_error']:.4f} "
            f"(all scores in em_metrics.csv)"
        )
    reports = scored.reports
    if reports:
        print(f"scores: {reports['metrics_csv']}, {reports['summary_json']}, {reports['report_html']}")
    for failure in scored.failures:
        print(f"not scored: {failure.case_id}: {failure.flag}: {failure.message}")
    if scored.unlisted:
        print(
            f"{scored.unlisted.line()}; per case in metrics.csv (unlisted_values). Do the references use "
            "the bundle's channel_def label values?"
        )
    if scored.reason:
        print(f"nothing scored: {scored.reason}")
    if scored.not_in_run:
        print(not_in_run_line(list(scored.not_in_run), scored.ref))


def not_in_run_line(case_ids: list[str], ref: str) -> str:
    """The one line about references whose case is not in this run (not scored, not averaged)."""
    named = some_names(case_ids, " (all in report.json evaluation.not_in_run)")
    return (
        f"{len(case_ids)} reference(s) in {ref} name no case of this run and were not scored or averaged: "
        f"{named}"
    )
