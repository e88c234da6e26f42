"""``unetseg convert INPUT OUT.nii.gz``: read a DICOM series (or NIfTI/NRRD) exactly as inference does, write NIfTI.

The volume comes from :func:`app.loading.discover_inputs` and :meth:`Case.load` (the same path as ``infer``), is
expressed in RAS with :meth:`Volume.in_space`, and is written by :func:`app.writing.nifti.write_nifti` (nibabel,
sform/qform code "scanner", atomic: temporary file in the output folder, then ``os.replace``).

INPUT must hold exactly one image series after the ``--modality``/``--filter`` rules; otherwise the error says
that nothing was found (and why files were skipped) or lists the series found so one can be selected.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.exit_codes import codes, epilog

#: exit codes of ``unetseg convert`` (``--help`` epilog, README; printed with their meaning when non-zero)
EXIT_CODES = codes(
    {2: "input error: nothing to convert, more than one volume (select one), or an unreadable input"}
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        epilog=epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="convert a DICOM series (or NIfTI/NRRD) to NIfTI, as the app reads it",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument(
        "input", type=Path, metavar="INPUT", help="DICOM folder or file, or a NIfTI/NRRD file"
    )
    parser.add_argument("output", type=Path, metavar="OUT.nii.gz", help="output NIfTI file (.nii or .nii.gz)")
    parser.add_argument("--modality", default=None, help="only series of this Modality (e.g. CT, MR)")
    parser.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="RULE",
        help="series rule Key=Value (exact, case-insensitive) or Key~Regex, e.g. SeriesDescription~T1; repeatable",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from app.errors import InputError
    from app.loading import discover_inputs
    from app.writing.nifti import write_nifti

    cases, decisions = discover_inputs([args.input], modality=args.modality, filters=args.filters)
    if not cases:
        skipped = list(dict.fromkeys(d.reason for d in decisions if d.action == "skipped"))
        why = f" ({'; '.join(skipped[:5])})" if skipped else ""
        raise InputError(
            args.input,
            f"no image volume found here{why}: nothing to convert; give a DICOM series folder or file, "
            "or a NIfTI/NRRD file",
        )
    if len(cases) > 1:
        found = ", ".join(c.case_id for c in cases[:10])
        raise InputError(
            args.input,
            f"{len(cases)} volumes found ({found}); convert writes one: select it with --modality/--filter "
            "or give its series folder",
        )
    volume = cases[0].load().in_space("RAS")
    written = write_nifti(volume, args.output)
    print(
        f"{written}: {cases[0].case_id} shape {volume.shape} spacing {tuple(round(float(s), 4) for s in volume.spacing)} mm"
    )
    return 0
