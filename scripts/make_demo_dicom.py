"""Regenerate the demo's DICOM tree (``app/demo/data/dicom``) from the three hippocampus NIfTI cases.

    python scripts/make_demo_dicom.py [--out app/demo/data/dicom]

MR Image Storage, one file per slice, geometry from the NIfTI affine via :class:`app.volume.Volume` (LPS),
fixed name-based UIDs under ``2.25`` and a fake patient; see :mod:`app.demo.dicom_tree` for the contract.
The output is deterministic: running it again gives identical bytes (``tests/cli/test_demo.py`` checks that
the committed tree is what this script makes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.demo.dicom_tree import DEMO_SERIES, DICOM_TREE, build_demo_tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DICOM_TREE, help=f"tree root (default {DICOM_TREE})")
    args = parser.parse_args(argv)
    folders = build_demo_tree(args.out)
    for series, folder in zip(DEMO_SERIES, folders, strict=True):
        n = len(list(folder.glob("*.dcm")))
        print(f"{series.case}: {n} slices in {folder} (case id {series.case_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
