"""``unetseg evaluate``: score predicted label maps against references and write the reports.

Every reference is scored; one without a prediction is a miss (Dice 0, worst-case distances), said in one
line on stderr, as are label values found in the maps but not in the label list (not scored). Exit codes:
:data:`EXIT_CODES` (listed by ``--help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.exit_codes import codes, epilog
from app.cli.text import some_names

#: exit codes of ``unetseg evaluate`` (``--help`` epilog, README; printed with their meaning when non-zero)
EXIT_CODES = codes(
    {
        1: "unexpected error",
        2: "some reference was not scored from a usable prediction (a missing prediction counts as a miss; "
        "reports written), a single pair could not be evaluated, or another input error",
    }
)
#: unused files printed one per line; the rest are counted (summary.json and report.html list them all)
UNUSED_PRINTED = 20


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        epilog=epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="score predictions against reference labels; write metrics.csv, summary.json, report.html",
        description="Pair predictions with references by case id (file name without extension; a '_seg' "
        "suffix on predictions and a folder per case are fine), compute Dice, IoU, precision, recall, "
        "Hausdorff, HD95, ASSD, NSD and volumes per label, and write the reports.",
    )
    parser.add_argument(
        "--pred", required=True, type=Path, metavar="P", help="prediction label file or folder"
    )
    parser.add_argument("--ref", required=True, type=Path, metavar="R", help="reference label file or folder")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the reports")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--bundle", type=Path, metavar="DIR", help="take label names from a MONAI bundle")
    names.add_argument(
        "--labels", metavar="NAME=V,...", help="label names and values, e.g. anterior=1,posterior=2"
    )
    parser.add_argument(
        "--resample", action="store_true", help="put predictions on the reference grid (nearest neighbour)"
    )
    parser.add_argument(
        "--tolerance-mm",
        type=float,
        default=1.0,
        metavar="MM",
        help="NSD tolerance (default 1.0; in pixels for PNG/TIFF references, which carry no spacing)",
    )
    parser.add_argument(
        "--worst",
        type=int,
        default=10,
        metavar="N",
        help="overlay pictures of the N worst cases (default 10)",
    )
    parser.add_argument(
        "--images", type=Path, metavar="DIR", help="images for the overlays, paired by case id"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from app.errors import InputError
    from app.evaluation.labels import bundle_metadata, labels_from_bundle, parse_labels
    from app.evaluation.runner import evaluate_folders
    from app.reporting.evaluation_reports import write_evaluation_reports

    if args.tolerance_mm < 0:
        raise InputError(None, f"--tolerance-mm must be >= 0, got {args.tolerance_mm}")
    if args.worst < 0:
        raise InputError(None, f"--worst must be >= 0, got {args.worst}")
    for option, path in (("--pred", args.pred), ("--ref", args.ref), ("--images", args.images)):
        if path is not None and not path.exists():
            raise InputError(path, f"{option}: no such file or folder")
    labels = None
    inputs: dict[str, str] = {}
    if args.bundle is not None:
        labels = labels_from_bundle(args.bundle)
        metadata = bundle_metadata(args.bundle)
        inputs = {"bundle": str(args.bundle), "bundle_version": str(metadata.get("version", "unknown"))}
    elif args.labels is not None:
        labels = parse_labels(args.labels)
    result = evaluate_folders(
        args.pred,
        args.ref,
        labels=labels,
        tolerance_mm=args.tolerance_mm,
        resample=args.resample,
        fail_fast=args.pred.is_file() and args.ref.is_file(),
    )
    reports = write_evaluation_reports(result, args.out, images=args.images, worst=args.worst, inputs=inputs)
    for name, entry in result.summary.labels.items():
        dice, hd95 = entry.metrics["dice"], entry.metrics["hd95_mm"]
        flags = ", ".join(f"{n} {flag}" for flag, n in entry.flags.items() if n and flag != "ok")
        print(
            f"{name}: Dice {dice.mean:.3f} +/- {dice.std:.3f} (median {dice.median:.3f}), "
            f"HD95 median {hd95.median:.2f} {result.units.distance}, n={entry.n}"
            + (f" [{flags}]" if flags else "")
        )
    em = result.summary.em
    if em is not None:
        means = {name: stats.mean for name, stats in em.metrics.items()}
        print(
            f"EM (n={em.n}): adapted Rand error {means['rand_error']:.4f} (predicted membrane as one segment "
            f"{means['rand_error_membrane_segment']:.4f}, thinned {means['rand_error_thinned']:.4f}), "
            f"pixel error {means['pixel_error']:.4f} (1 - accuracy; the ISBI leaderboard's, 1 - F-score of cell "
            f"pixels: {means['pixel_fscore_error']:.4f}), V_rand {means['v_rand']:.4f}, V_info {means['v_info']:.4f} "
            "(thinned; higher is better)"
        )
    if result.summary.unlisted:
        print(
            f"{result.summary.unlisted.line()}; per case in metrics.csv (unlisted_values). Prediction and "
            "reference may use different label maps: check --labels against both",
            file=sys.stderr,
        )
    missing = [f.case_id for f in result.failures if f.flag == "no_prediction"]
    if missing:
        print(missing_predictions_line(missing), file=sys.stderr)
    for failure in result.failures:
        if failure.flag != "no_prediction":
            print(f"failed: {failure.case_id}: {failure.flag}: {failure.message}", file=sys.stderr)
    for path, reason in result.unused[:UNUSED_PRINTED]:
        print(f"unused: {path}: {reason}", file=sys.stderr)
    if len(result.unused) > UNUSED_PRINTED:
        more = len(result.unused) - UNUSED_PRINTED
        print(f"unused: {more} more files, all listed in {reports.summary_json}", file=sys.stderr)
    extra = f", {reports.em_metrics_csv}" if reports.em_metrics_csv is not None else ""
    print(f"wrote {reports.metrics_csv}{extra}, {reports.summary_json}, {reports.report_html}")
    return 0 if result.ok else InputError.exit_code


def missing_predictions_line(case_ids: list[str]) -> str:
    """One line for every reference without a prediction: they count as misses (the policy of ``evaluate``)."""
    named = some_names(case_ids)
    return (
        f"{len(case_ids)} reference(s) have no prediction and count as misses (Dice 0, worst-case distances; "
        f"flag no_prediction in metrics.csv and summary.json): {named}"
    )
