"""Fixtures for the loading tests: real-data folders and a writer of small synthetic DICOM slices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID-424242"


@pytest.fixture(scope="session")
def d2n(shared_data: Path) -> Path:
    """dicom2nifti's reader conformance suite (see its SOURCE.md)."""
    return shared_data / "dicom2nifti-suite"


def write_slice(
    path: Path,
    pixels: np.ndarray,
    *,
    position: Sequence[float],
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    study_uid: str,
    series_uid: str,
    modality: str = "CT",
    series_number: int = 1,
    description: str = "",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    slope: float | None = None,
    intercept: float | None = None,
    bits_stored: int | None = None,
    thickness: float | None = None,
    sop_class_uid: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write one classic single-frame image; ``pixels`` is ``(rows, columns)`` (DICOM order), int16 or uint16."""
    uid = generate_uid()
    sop_class = sop_class_uid or (MRImageStorage if modality == "MR" else CTImageStorage)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study_uid, "frame-of-reference"])
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.ImageType = list(image_type)
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    rows, columns = pixels.shape
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored or 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


SeriesWriter = Callable[..., list[Path]]


@pytest.fixture
def write_series(tmp_path: Path) -> SeriesWriter:
    """``write_series(folder, n, ...)``: ``n`` slices along the normal of ``orientation``, one file each.

    Slice ``k`` is filled with ``k * 100 + (j * columns + i) % 50`` (so slices and pixels are distinguishable), at
    ``origin + k * spacing * normal``. Keyword arguments not listed go to :func:`write_slice`.
    """

    def write(
        folder: str | Path,
        n: int = 4,
        *,
        rows: int = 8,
        columns: int = 6,
        spacing: float = 2.0,
        origin: Sequence[float] = (-10.0, -20.0, 30.0),
        orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
        study_uid: str | None = None,
        series_uid: str | None = None,
        dtype: type = np.int16,
        **kwargs: Any,
    ) -> list[Path]:
        folder = tmp_path / folder
        study_uid = study_uid or generate_uid()
        series_uid = series_uid or generate_uid()
        o = np.asarray(orientation, dtype=float)
        normal = np.cross(o[:3], o[3:])
        base = (np.arange(rows * columns).reshape(rows, columns) % 50).astype(dtype)
        paths = []
        for k in range(n):
            position = np.asarray(origin) + k * spacing * normal
            paths.append(
                write_slice(
                    folder / f"slice{k:03d}.dcm",
                    (base + k * 100).astype(dtype),
                    position=position,
                    orientation=orientation,
                    study_uid=study_uid,
                    series_uid=series_uid,
                    **kwargs,
                )
            )
        return paths

    return write


@pytest.fixture
def slice_writer() -> Callable[..., Path]:
    """:func:`write_slice`, for tests that build slices one by one."""
    return write_slice


@pytest.fixture
def patient_identifiers() -> tuple[str, str]:
    """PatientName and PatientID written into every synthetic slice (must never reach logs or decisions)."""
    return PATIENT_NAME, PATIENT_ID
