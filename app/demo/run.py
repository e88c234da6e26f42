"""``unetseg demo``: the embedded DICOM tree -> batch inference with the hippocampus bundle -> scored report.

Contract of :func:`run_demo`: input is the committed tree :data:`app.demo.dicom_tree.DICOM_TREE` (3 MR series
in 2 studies, made from the real validation cases in ``app/demo/data/hippocampus``); the bundle is the one in
the source checkout (``<repo>/bundles/hippocampus_mri_segmentation``) unless ``bundle`` names another folder
(an installed layout). The reference labels are copied to ``OUT/reference/<case_id>.nii.gz``, the names that
``--ref`` pairs by, and the batch runs exactly as ``unetseg infer DICOM_TREE --bundle B --out OUT
--formats nifti,seg --ref OUT/reference`` would.
"""

from __future__ import annotations

from pathlib import Path

from app.batch import BatchConfig, BatchResult, run_batch
from app.batch.observer import BatchObserver
from app.demo.dicom_tree import DICOM_TREE, references_by_case_id
from app.errors import BundleError, InputError

#: the hippocampus bundle in a source checkout, relative to the repository root
BUNDLE_IN_REPO = Path("bundles") / "hippocampus_mri_segmentation"


def default_bundle() -> Path:
    """``<repo>/bundles/hippocampus_mri_segmentation`` beside the ``app`` package.

    Raises:
        BundleError: not there (an installed package has no bundles folder; give ``--bundle``).
    """
    path = Path(__file__).resolve().parents[2] / BUNDLE_IN_REPO
    if not path.is_dir():
        raise BundleError(
            path, "the demo bundle is not beside the installed package; pass --bundle DIR (the bundle folder)"
        )
    return path


def run_demo(
    out: str | Path,
    *,
    bundle: str | Path | None = None,
    device: str = "auto",
    observer: BatchObserver | None = None,
) -> BatchResult:
    """Run the demo into ``out`` (see the module docstring); return the batch result.

    Raises:
        BundleError: no usable bundle. InputError: the demo data are missing. OutputError: OUT not writable.
    """
    if not DICOM_TREE.is_dir():
        raise InputError(DICOM_TREE, "the demo DICOM tree is missing; run scripts/make_demo_dicom.py")
    out = Path(out)
    bundle_dir = Path(bundle) if bundle is not None else default_bundle()
    reference = references_by_case_id(out / "reference")
    config = BatchConfig(
        inputs=(DICOM_TREE,),
        bundle=bundle_dir,
        out=out,
        device=device,
        formats=frozenset({"nifti", "seg"}),
        ref=reference,
        command_line=("unetseg", "demo", "--out", str(out), "--bundle", str(bundle_dir), "--device", device),
    )
    return run_batch(config, observer)
