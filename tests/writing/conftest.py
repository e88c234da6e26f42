"""Fixtures for the writing tests: synthetic DICOM series, a reference series reader and an independent SEG decoder.

Everything here uses pydicom and numpy directly, not app code, so that the round trips compare our writers
with something that does not share their bugs. The helpers are fixtures returning functions because test
modules cannot import a conftest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app.volume import DicomSource, Volume

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid  # noqa: E402

PATIENT = {
    "PatientName": "Synthetic^Roundtrip",
    "PatientID": "UNETSEG-TEST-001",
    "PatientBirthDate": "19700101",
    "PatientSex": "O",
}
STUDY = {"StudyDate": "20240102", "StudyTime": "101500", "StudyID": "42", "AccessionNumber": "ACC42"}


def _ds(values: Sequence[float]) -> list[str]:
    """Decimal strings that fit the 16-character DS limit."""
    return [f"{value:.8g}" for value in values]


def make_series(
    folder: Path,
    *,
    columns: int,
    rows: int,
    slices: int,
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    pixel_spacing: tuple[float, float] = (0.9, 0.7),
    slice_step: float = 2.5,
    modality: str = "CT",
    series_number: int | None = 7,
    seed: int = 0,
) -> list[Path]:
    """Write a single-frame series; slice ``k`` sits at ``origin + k * slice_step * normal``.

    ``pixel_spacing`` is DICOM order (between rows, between columns). Files are named in a shuffled order
    and instance numbers run against the stack, so that nothing can rely on file or instance order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    iop = np.asarray(orientation, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    names = list(range(slices))
    random.Random(seed).shuffle(names)
    paths = []
    for k in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SpecificCharacterSet = "ISO_IR 100"
        for key, value in {**PATIENT, **STUDY}.items():
            setattr(ds, key, value)
        ds.ReferringPhysicianName = ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality = modality
        ds.Manufacturer = "pytest"
        if series_number is not None:
            ds.SeriesNumber = series_number
        ds.SeriesDescription = f"synthetic {modality}"
        ds.InstanceNumber = slices - k
        ds.ImageOrientationPatient = _ds(iop)
        ds.ImagePositionPatient = _ds(np.asarray(origin, dtype=float) + k * slice_step * normal)
        ds.PixelSpacing = _ds(pixel_spacing)
        ds.SliceThickness = _ds([slice_step])[0]
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.full((rows, columns), k, dtype=np.int16).tobytes()
        path = folder / f"IM{names[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def series_volume(paths: Sequence[Path], *, with_meta: bool = True) -> Volume:
    """Reference reader for single-frame series: a zero uint8 Volume on the series grid, LPS.

    Slices are sorted by position along the normal ``row_cosine x column_cosine``; the affine is built from
    the first slice and the mean step between slices. ``dicom`` follows the DICOM reader's contract.
    """
    datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
    iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort([np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float)) for ds in datasets])
    datasets = [datasets[index] for index in order]
    positions = np.array([np.asarray(ds.ImagePositionPatient, dtype=float) for ds in datasets])
    row_spacing, column_spacing = (float(value) for value in datasets[0].PixelSpacing)
    step = (positions[-1] - positions[0]) / (len(datasets) - 1) if len(datasets) > 1 else normal
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * column_spacing
    affine[:3, 1] = iop[3:] * row_spacing
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    dicom = None
    if with_meta:
        first = datasets[0]
        dicom = DicomSource(
            study_instance_uid=str(first.StudyInstanceUID),
            series_instance_uid=str(first.SeriesInstanceUID),
            frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
            modality=str(first.Modality),
            series_description=str(first.get("SeriesDescription", "")),
            series_number=first.get("SeriesNumber"),
            sop_class_uid=str(first.SOPClassUID),
            files=tuple(str(paths[index]) for index in order),
            sop_instance_uids=tuple(str(ds.SOPInstanceUID) for ds in datasets),
        )
    shape = (int(datasets[0].Columns), int(datasets[0].Rows), len(datasets))
    return Volume(
        np.zeros(shape, dtype=np.uint8), affine, space="LPS", source="reference reader", dicom=dicom
    )


def multiframe_volume(path: Path) -> Volume:
    """Reference reader for an enhanced multi-frame image (one stack): zero uint8 Volume, LPS, with meta."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]  # absent from the Siemens excerpt

    def group(item: Dataset, sequence: str) -> Dataset:
        return item[sequence][0] if sequence in item else shared[sequence][0]

    per_frame = ds.PerFrameFunctionalGroupsSequence
    iop = np.asarray(group(per_frame[0], "PlaneOrientationSequence").ImageOrientationPatient, dtype=float)
    row_spacing, column_spacing = (
        float(v) for v in group(per_frame[0], "PixelMeasuresSequence").PixelSpacing
    )
    normal = np.cross(iop[:3], iop[3:])
    positions = np.array(
        [
            np.asarray(group(item, "PlanePositionSequence").ImagePositionPatient, dtype=float)
            for item in per_frame
        ]
    )
    order = np.argsort(positions @ normal)
    positions = positions[order]
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * column_spacing
    affine[:3, 1] = iop[3:] * row_spacing
    affine[:3, 2] = (positions[-1] - positions[0]) / (len(order) - 1)
    affine[:3, 3] = positions[0]
    dicom = DicomSource(
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        modality=str(ds.Modality),
        series_description=str(ds.get("SeriesDescription", "")),
        series_number=ds.get("SeriesNumber"),
        sop_class_uid=str(ds.SOPClassUID),
        files=(str(path),),
        sop_instance_uids=(str(ds.SOPInstanceUID),),
        frame_numbers=tuple(int(index) + 1 for index in order),
    )
    shape = (int(ds.Columns), int(ds.Rows), len(order))
    return Volume(np.zeros(shape, dtype=np.uint8), affine, space="LPS", source=str(path), dicom=dicom)


def decode_seg(path: Path, grid: Volume, *, fractional_threshold: float = 0.5) -> dict[int, np.ndarray]:
    """Independent SEG decoder: segment number -> bool mask ``(i, j, k)`` on ``grid`` (LPS).

    pydicom unpacks the frames (1-bit BINARY included); each frame is placed by its own
    PerFrameFunctionalGroups PlanePosition, which must fall exactly on a slice of ``grid`` (asserted), with
    the shared orientation checked against the grid's axes. FRACTIONAL frames are scaled by
    MaximumFractionalValue and thresholded; LABELMAP frames are split by pixel value.
    """
    seg = pydicom.dcmread(path)
    frames = seg.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    assert grid.space == "LPS"
    inverse = np.linalg.inv(grid.affine)
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, dtype=float)
    axes = grid.affine[:3, :2] / np.linalg.norm(grid.affine[:3, :2], axis=0)
    np.testing.assert_allclose(axes[:, 0], iop[:3], atol=1e-4)
    np.testing.assert_allclose(axes[:, 1], iop[3:], atol=1e-4)
    seg_type = seg.SegmentationType
    numbers = [int(item.SegmentNumber) for item in seg.SegmentSequence if int(item.SegmentNumber) != 0]
    masks = {number: np.zeros(grid.shape, dtype=bool) for number in numbers}
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        position = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        ijk = (inverse @ np.append(position, 1.0))[:3]
        np.testing.assert_allclose(ijk, np.round(ijk), atol=1e-3, err_msg="frame is off the grid")
        i, j, k = (int(round(value)) for value in ijk)
        assert (i, j) == (0, 0), "frame origin is not the grid's first voxel of a slice"
        plane = frame.T  # (rows, columns) -> (i, j)
        if seg_type == "LABELMAP":
            for number in numbers:
                masks[number][:, :, k] |= plane == number
            continue
        holder = item if "SegmentIdentificationSequence" in item else shared  # one segment: may be shared
        number = int(holder.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        if seg_type == "FRACTIONAL":
            masks[number][:, :, k] |= plane / float(seg.MaximumFractionalValue) >= fractional_threshold
        else:
            masks[number][:, :, k] |= plane > 0
    return masks


def masks_to_labels(masks: dict[int, np.ndarray]) -> np.ndarray:
    labels = np.zeros(next(iter(masks.values())).shape, dtype=np.uint16)
    for number, mask in masks.items():
        assert not np.any(labels[mask]), "overlapping segments"
        labels[mask] = number
    return labels


def nrrd_volume(path: Path) -> Volume:
    """A label NRRD (space left-posterior-superior) as an LPS Volume, via pynrrd."""
    nrrd = pytest.importorskip("nrrd")
    data, header = nrrd.read(str(path))
    assert header["space"] == "left-posterior-superior"
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(header["space directions"], dtype=float).T
    affine[:3, 3] = header["space origin"]
    return Volume(data, affine, space="LPS", source=str(path))


@pytest.fixture(scope="session")
def seg_tools() -> SimpleNamespace:
    """The helpers above as attributes (``seg_tools.make_series(...)``)."""
    return SimpleNamespace(
        make_series=make_series,
        series_volume=series_volume,
        multiframe_volume=multiframe_volume,
        decode_seg=decode_seg,
        masks_to_labels=masks_to_labels,
        nrrd_volume=nrrd_volume,
    )
