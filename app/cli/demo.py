"""``unetseg demo [--out DIR]``: segment the embedded DICOM demo tree end to end and score it.

Three real MR cases (hippocampus, MSD Task04 validation split) stored as a DICOM folder tree in the package
are segmented with the hippocampus bundle; per case a NIfTI label map and a DICOM SEG are written, then the
run report and Dice/HD95 reports against the ground truth. Prints a short summary.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from app.cli.exit_codes import codes, epilog

#: exit codes of ``unetseg demo`` (``--help`` epilog, README; printed with their meaning when non-zero)
EXIT_CODES = codes({1: "a demo case failed or was not scored (reasons above and in OUT/report.json)"})


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        epilog=epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run the embedded end-to-end demo (DICOM in, NIfTI + SEG out, Dice report)",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: a new temporary folder unetseg-demo-* in the system's temp folder, "
        "printed at the start and the end)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        metavar="DIR",
        help="hippocampus bundle folder (default: bundles/hippocampus_mri_segmentation of the source checkout)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from app.cli.console import ConsoleObserver
    from app.demo.dicom_tree import DEMO_SERIES
    from app.demo.run import DICOM_TREE, run_demo

    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="unetseg-demo-"))
        print(
            f"unetseg demo: writing into {out} (a new temporary folder; --out DIR to choose one)", flush=True
        )
    console = ConsoleObserver((DICOM_TREE,), desc="unetseg demo")
    try:
        result = run_demo(out, bundle=args.bundle, device=args.device, observer=console)
    finally:
        console.close()
    names = {s.case_id: s.case for s in DEMO_SERIES}
    provenance = result.report["provenance"]
    bundle = provenance["bundle"]
    print(
        f"unetseg demo: {len(result.records)} DICOM series, bundle {bundle['name']} {bundle['version']}, device {provenance['device']}"
    )
    dice = result.scores.dice if result.scores is not None else {}
    for record in result.records:
        scores = ", ".join(f"{name} {value:.3f}" for name, value in (dice.get(record.case_id) or {}).items())
        detail = f"Dice {scores}" if scores else record.reason
        print(
            f"  {names.get(record.case_id, record.case_id):16s} {record.case_id}  {record.status:7s} {detail}"
        )
    if result.scores is not None and result.scores.mean_dice:
        print("  mean Dice: " + ", ".join(f"{k} {v:.3f}" for k, v in result.scores.mean_dice.items()))
    print(f"outputs: {out}/<case_id>/<case_id>_seg.nii.gz and _seg.dcm")
    print(f"reports: {result.report_json}, {result.report_csv}")
    if result.report_html is not None:
        print(f"open in a browser: {result.report_html} (cases, previews, scores with overlays on the MRI)")
    return result.exit_code
