"""The demo's DICOM input: the three hippocampus NIfTI cases as MR Image Storage series in a 2-study tree.

``scripts/make_demo_dicom.py`` calls :func:`build_demo_tree` to (re)generate ``app/demo/data/dicom/``, which is
committed (about 120 small files): ``unetseg demo`` then starts from a real folder of DICOM files, exactly as
a user's export would look, and needs no writing step before inference. The output is byte-for-byte
deterministic (fixed UIDs, dates and file names), so a test can regenerate it and compare.

Layout (no DICOMDIR; a text file as clutter that discovery must skip)::

    dicom/README.txt
    dicom/study_1/series_3/IM_0001.dcm ...   hippocampus_008, SeriesNumber 3
    dicom/study_1/series_4/IM_0001.dcm ...   hippocampus_035, SeriesNumber 4
    dicom/study_2/series_3/IM_0001.dcm ...   hippocampus_045, SeriesNumber 3

Series contract (:func:`write_mr_series`):

* one file per slice ``k`` of the volume; the geometry comes from the volume's LPS affine
  (``Volume.in_space("LPS")``): ImageOrientationPatient = the unit columns 0 (along ``i``, a row) and 1 (along
  ``j``, a column), PixelSpacing = [spacing along ``j``, spacing along ``i``], ImagePositionPatient of slice
  ``k`` = affine @ (0, 0, k, 1), SliceThickness = SpacingBetweenSlices = spacing along ``k``. Pixel data is
  ``array[:, :, k].T`` (rows = ``j``, columns = ``i``). A volume whose ``k`` axis points against
  row x column is refused (the reader would stack it in the opposite order).
* pixels: the MSD crops are float32 after the challenge's resampling; scanners store integers, so values are
  rounded to uint16 (differences of at most 0.5 on intensities of hundreds to thousands, immaterial after the
  bundle's z-score normalisation). No rescale slope/intercept (the MR Image IOD has none).
* UIDs: ``2.25.<UUID>`` (ITU-T X.667 UUID-derived OIDs, no registered root needed) with name-based UUIDs:
  ``uuid5(NAMESPACE_OID, "unetseg-demo/<case>/<role>[/<k>]")``, see :func:`demo_uid`. A fixed fake patient
  (:data:`PATIENT_NAME`, :data:`PATIENT_ID`, no birth date, sex O) and fixed dates: nothing identifies anybody,
  and tests can check that these values never reach reports or file names.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.volume import Volume

logger = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data"
#: the committed tree (input of ``unetseg demo``) and the NIfTI cases it is made from
DICOM_TREE = DATA / "dicom"
HIPPOCAMPUS = DATA / "hippocampus"

PATIENT_NAME = "DEMO^HIPPO"
PATIENT_ID = "DEMO-HIPPO-0001"
STUDY_DATE = "20000101"
STUDY_TIME = "120000"
#: name prefix of every name-based UUID; change it (e.g. "-v2") to get a new, disjoint set of UIDs
UID_NAMESPACE = "unetseg-demo"


@dataclass(frozen=True)
class DemoSeries:
    """One series of the tree: the NIfTI case it comes from and its identity."""

    case: str
    study: int
    series_number: int

    @property
    def folder(self) -> Path:
        """Relative folder in the tree."""
        return Path(f"study_{self.study}") / f"series_{self.series_number}"

    @property
    def study_instance_uid(self) -> str:
        return demo_uid(f"study_{self.study}", "study")

    @property
    def series_instance_uid(self) -> str:
        return demo_uid(self.case, "series")

    @property
    def frame_of_reference_uid(self) -> str:
        # each crop is a different head: its own frame of reference
        return demo_uid(self.case, "frame-of-reference")

    @property
    def description(self) -> str:
        return f"T1 hippocampus crop {self.case}"

    @property
    def case_id(self) -> str:
        """The case id discovery gives this series (:func:`app.loading.cases.dicom_case_id`)."""
        from app.loading.cases import dicom_case_id

        return dicom_case_id(self.study_instance_uid, self.series_number, self.series_instance_uid)


DEMO_SERIES = (
    DemoSeries("hippocampus_008", study=1, series_number=3),
    DemoSeries("hippocampus_035", study=1, series_number=4),
    DemoSeries("hippocampus_045", study=2, series_number=3),
)

README_TEXT = """\
unetseg demo input: a DICOMDIR-less folder tree of MR Image Storage series (one file per slice).

study_1/series_3  hippocampus_008    study_1/series_4  hippocampus_035    study_2/series_3  hippocampus_045

Made by scripts/make_demo_dicom.py from app/demo/data/hippocampus (MSD Task04, CC-BY-SA 4.0; see its
SOURCE.md). Fake patient DEMO^HIPPO, fixed dates and UIDs. This text file is clutter on purpose: input
discovery must skip it.
"""


def demo_uid(*parts: str) -> str:
    """``2.25.<int of uuid5(NAMESPACE_OID, "unetseg-demo/<parts joined by />")>``: deterministic, at most 44 chars."""
    name = "/".join((UID_NAMESPACE, *parts))
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def build_demo_tree(out: str | Path, source: str | Path = HIPPOCAMPUS) -> list[Path]:
    """Write the tree described in the module docstring under ``out``; return the series folders.

    Args:
        out: the tree's root (created; existing files of the same names are overwritten).
        source: the folder with ``images/<case>.nii.gz``.
    """
    from app.loading.nifti import read_nifti

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text(README_TEXT, encoding="utf-8")
    folders = []
    for series in DEMO_SERIES:
        volume = read_nifti(Path(source) / "images" / f"{series.case}.nii.gz")
        folder = root / series.folder
        write_mr_series(volume, folder, series)
        folders.append(folder)
    return folders


def write_mr_series(volume: Volume, folder: Path, series: DemoSeries) -> list[Path]:
    """Write ``volume`` as one MR Image Storage file per slice into ``folder`` (contract above)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

    lps = volume.in_space("LPS")
    if lps.ndim != 3:
        raise ValueError(f"{volume.source}: a series needs a 3D volume, got shape {lps.shape}")
    axes = lps.affine[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    row_cosine, column_cosine = axes[:, 0] / spacing[0], axes[:, 1] / spacing[1]
    if float(np.cross(row_cosine, column_cosine) @ axes[:, 2]) <= 0:
        raise ValueError(f"{volume.source}: the k axis points against row x column; flip k first")
    pixels = np.clip(np.rint(lps.array), 0, np.iinfo(np.uint16).max).astype(np.uint16)

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(lps.shape[2]):
        sop_uid = UID(demo_uid(series.case, "image", str(k)))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = STUDY_TIME
        ds.AccessionNumber = ""
        ds.Modality = "MR"
        ds.Manufacturer = "unetseg demo (converted from NIfTI)"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = f"unetseg demo study {series.study}"
        ds.SeriesDescription = series.description
        ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.BodyPartExamined = "BRAIN"
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
        ds.MRAcquisitionType = "3D"
        ds.SliceThickness = ds.SpacingBetweenSlices = _ds(spacing[2])
        ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "", "", ""
        ds.StudyInstanceUID = series.study_instance_uid
        ds.SeriesInstanceUID = series.series_instance_uid
        ds.StudyID = str(series.study)
        ds.SeriesNumber, ds.InstanceNumber = series.series_number, k + 1
        position = lps.affine[:3, 3] + axes[:, 2] * k
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_cosine, *column_cosine)]
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(position[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = lps.shape[1], lps.shape[0]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(pixels[:, :, k].T).tobytes()
        path = folder / f"IM_{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    logger.info("wrote %d MR slices of %s to %s", len(paths), series.case, folder)
    return paths


def _ds(value: float) -> str:
    """A Decimal String value (at most 16 characters), exact for the demo's whole-mm geometry."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def references_by_case_id(out: str | Path, series: Sequence[DemoSeries] = DEMO_SERIES) -> Path:
    """Copy each series' reference label to ``out/<case_id>.nii.gz`` (the name ``--ref`` pairs by); return ``out``."""
    import shutil

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for s in series:
        shutil.copyfile(HIPPOCAMPUS / "labels" / f"{s.case}.nii.gz", folder / f"{s.case_id}.nii.gz")
    return folder
