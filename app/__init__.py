"""unetseg: MONAI U-Net bundles plus a clinical segmentation application.

Stages of the data flow, one sub-package each::

    loading/     DICOM folders, NIfTI/NRRD, PNG/TIFF  -> Volume
    transforms/  MONAI-style dictionary transforms used by the bundles (weight map)
    losses/      the U-Net paper's weighted loss
    networks/    the classic U-Net
    inference/   bundle loading and the Ignite evaluator run
    writing/     Volume/labels -> NIfTI, DICOM SEG
    evaluation/  Dice, Hausdorff and surface metrics
    reporting/   CSV/JSON/HTML reports and provenance

Importing ``app`` is cheap: nothing heavy (torch, MONAI, pydicom) is imported here.
"""

__version__ = "0.1.0"
