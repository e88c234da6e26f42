"""Real DICOM series in forms the reader must not take at face value (reviewer's findings on DICOM input).

Each test modifies a copy of a real series from ``../shared/data`` with pydicom: MONOCHROME1 pixels, files
without the Part 10 preamble, and files cut short as an interrupted copy leaves them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.loading import load_volume

#: 4 slices of 256 x 256, unsigned, BitsStored 12, no rescale
SIEMENS = ("dicom2nifti-suite", "siemens", "anatomical", "001")


@pytest.fixture
def siemens(shared_data: Path, tmp_path: Path) -> Path:
    """A writable copy of the real Siemens MR series (files IM-0001-011[2-5]-0001.dcm, slice order = name order)."""
    folder = tmp_path / "siemens"
    shutil.copytree(shared_data.joinpath(*SIEMENS), folder)
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_monochrome1_is_inverted_with_a_warning(siemens: Path) -> None:
    """MONOCHROME1 shows its lowest value white: read as stored, a model trained on MONOCHROME2-like images sees
    inverted contrast. SimpleITK/GDCM (and MONAI's ITK reader) invert within the stored range; so do we."""
    stored = load_volume(siemens).array
    for path in siemens.iterdir():
        ds = pydicom.dcmread(path)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(path)
    volume = load_volume(siemens)
    np.testing.assert_array_equal(volume.array, 4095 - stored)  # BitsStored 12
    (warning,) = volume.warnings
    assert "MONOCHROME1" in warning and "inverted within 0..4095" in warning
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(siemens)))
    reference = sitk.GetArrayFromImage(reader.Execute()).transpose(2, 1, 0)
    np.testing.assert_array_equal(np.sort(volume.array, axis=None), np.sort(reference, axis=None))
