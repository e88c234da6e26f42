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
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from app.errors import InputError
from app.loading import discover_inputs, load_volume
from app.loading.dicom.fileformat import has_dicom_preamble, is_dicom_file

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


def _make_raw(path: Path) -> None:
    """Rewrite ``path`` as a raw data set: implicit VR little endian, no preamble, no file meta."""
    ds = pydicom.dcmread(path)
    del ds.file_meta
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    path.write_bytes(buffer.getvalue())


def test_files_without_preamble_are_read_like_part_10_files(siemens: Path) -> None:
    """Old PACS exports hold raw data sets; pydicom (force), GDCM and dcm2niix read them. They were skipped
    without a trace: a series of them was in no case and no decision."""
    reference = load_volume(siemens)
    for path in siemens.iterdir():
        _make_raw(path)
    assert not any(has_dicom_preamble(p) for p in siemens.iterdir())
    cases, _ = discover_inputs([siemens])
    (case,) = cases
    volume = case.load()
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine, reference.affine)


def test_one_file_without_preamble_stays_in_its_stack(siemens: Path) -> None:
    reference = load_volume(siemens)
    _make_raw(sorted(siemens.iterdir())[-1])
    np.testing.assert_array_equal(load_volume(siemens).array, reference.array)  # 4 slices, not 3


def test_text_is_still_not_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.dcm").write_text("\x08\x00 looks like a group 8 tag for two bytes only")
    assert not is_dicom_file(tmp_path / "notes.dcm")


def _pixel_data_offset(path: Path) -> int:
    return path.read_bytes().rindex(b"\xe0\x7f\x10\x00")


@pytest.mark.parametrize(
    "which", [0, -1, 1]
)  # bottom and top of the stack (were dropped silently), mid-stack
@pytest.mark.parametrize("cut", ["300 bytes", "half the header", "right before Pixel Data"])
def test_a_truncated_file_fails_its_series_naming_it(siemens: Path, which: int, cut: str) -> None:
    """An interrupted copy leaves a file cut short. At the edge of the stack it was dropped as 'not an image' and
    the volume was one slice shorter; mid-stack the error named its neighbours ('missing slice') but not it."""
    path = sorted(siemens.iterdir())[which]
    data = path.read_bytes()
    end = {"300 bytes": 300, "half the header": _pixel_data_offset(path) // 2}.get(
        cut, _pixel_data_offset(path)
    )
    path.write_bytes(data[:end])
    cases, decisions = discover_inputs([siemens])
    (case,) = cases
    assert len(case.series.instances) == 4
    with pytest.raises(InputError) as error:
        case.load()
    assert error.value.path == path and "truncated" in error.value.reason
    if cut != "right before Pixel Data":  # a cut between two elements looks like a file without pixel data
        assert any("truncated" in d.reason for d in decisions if d.action == "taken")


def test_a_truncated_file_between_two_series_is_a_skipped_file(siemens: Path, shared_data: Path) -> None:
    """Cut before its UIDs, in a folder of two series: it cannot be placed, but it is named as truncated."""
    other = shared_data / "dicom2nifti-suite" / "ge" / "anatomical" / "001"
    for source in other.iterdir():
        shutil.copy(source, siemens / f"ge-{source.name}")
    path = sorted(siemens.glob("IM-*"))[-1]
    path.write_bytes(path.read_bytes()[:300])
    cases, decisions = discover_inputs([siemens])
    assert len(cases) == 2
    (skipped,) = [d for d in decisions if d.action == "skipped"]
    assert skipped.path == str(path) and skipped.reason.startswith(
        "the file is truncated: it ends at byte 300"
    )
    assert "cannot be told which series" in skipped.reason


def test_a_seg_references_files_without_preamble(siemens: Path, tmp_path: Path) -> None:
    """The SEG writer reads its sources like the reader does (it refused them: 'DICM prefix is missing')."""
    from app.writing.dicom_seg import write_dicom_seg

    for path in siemens.iterdir():
        ds = pydicom.dcmread(path)
        for keyword in ("AccessionNumber", "PatientSex", "PatientBirthDate", "StudyID", "StudyTime"):
            if keyword not in ds:
                setattr(ds, keyword, "")
        ds.FrameOfReferenceUID = ds.get("FrameOfReferenceUID") or "1.2.3.4.5"
        ds.SliceThickness = ds.get("SliceThickness") or 1.0
        ds.save_as(path)
        _make_raw(path)
    volume = load_volume(siemens)
    labels = volume.with_array(np.zeros(volume.shape, np.uint8))
    labels.array[100:110, 100:110, :] = 1
    out = write_dicom_seg(labels, volume.dicom, {1: "liver"}, tmp_path / "seg.dcm")
    assert pydicom.dcmread(out.path).Modality == "SEG"
