"""Benchmark: DICOM SEG write (and read back) for a two-label mask on a synthetic 512x512x200 CT series.

Usage::

    python scripts/bench_seg.py [--size 512] [--slices 200] [--repeats 3]

Builds the source series with pydicom in a temporary folder (int16 pixels, 0.8 mm pixels, 1.5 mm slices),
puts two spheres in the label map (values 1 and 2), then times :func:`app.writing.dicom_seg.write_dicom_seg`
end to end from file paths (header reading, geometry checks, highdicom encoding, atomic save with fsync) for
BINARY and LABELMAP, and :func:`app.loading.seg.read_dicom_seg` on the result. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import highdicom
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from app.loading.seg import read_dicom_seg
from app.volume import Volume
from app.writing.dicom_seg import write_dicom_seg

SPACING = (0.8, 0.8)  # mm between rows, between columns
STEP = 1.5  # mm between slices


def make_series(folder: Path, size: int, slices: int) -> list[Path]:
    """An axial CT series: slice k at z = -150 + 1.5 k mm."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pixels = np.zeros((size, size), dtype=np.int16).tobytes()
    paths = []
    for k in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            "Bench^Synthetic",
            "BENCH1",
            "",
            "O",
        )
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
        ds.ReferringPhysicianName = ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 3, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-200.0, -200.0, -150.0 + STEP * k]
        ds.PixelSpacing = list(SPACING)
        ds.SliceThickness = STEP
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = pixels
        path = folder / f"CT{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def sphere_labels(size: int, slices: int) -> Volume:
    """Two spheres (radius 40 and 60 mm) on the series grid, LPS."""
    affine = np.eye(4)
    affine[:3, :3] = np.diag([SPACING[1], SPACING[0], STEP])
    affine[:3, 3] = [-200.0, -200.0, -150.0]
    i, j, k = np.ogrid[:size, :size, :slices]
    labels = np.zeros((size, size, slices), dtype=np.uint8)
    centre = np.array([size, size, slices]) / 2
    for value, offset, radius_mm in ((1, -0.25, 40.0), (2, 0.2, 60.0)):
        ci, cj, ck = centre[0] * (1 + offset), centre[1] * (1 - offset), centre[2] * (1 + offset / 2)
        inside = ((i - ci) * SPACING[1]) ** 2 + ((j - cj) * SPACING[0]) ** 2 + ((k - ck) * STEP) ** 2
        labels[inside <= radius_mm**2] = value
    return Volume(labels, affine, space="LPS", source="bench spheres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="rows = columns")
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # highdicom's person-name style hints

    with tempfile.TemporaryDirectory(prefix="bench_seg_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        paths = make_series(folder / "ct", args.size, args.slices)
        labels = sphere_labels(args.size, args.slices)
        setup_s = time.perf_counter() - started
        counts = {
            int(v): int(c) for v, c in zip(*np.unique(labels.array, return_counts=True), strict=True) if v
        }

        rows = []
        for segmentation_type in ("BINARY", "LABELMAP"):
            write_times, write_cpu, read_times = [], [], []
            for repeat in range(args.repeats):
                out = folder / f"seg_{segmentation_type}_{repeat}.dcm"
                started, cpu_started = time.perf_counter(), time.process_time()
                written = write_dicom_seg(
                    labels, paths, {1: "sphere A", 2: "sphere B"}, out, segmentation_type=segmentation_type
                )
                write_times.append(time.perf_counter() - started)
                write_cpu.append(time.process_time() - cpu_started)
                started = time.perf_counter()
                read, _ = read_dicom_seg(out)
                read_times.append(time.perf_counter() - started)
                if not np.array_equal(read.array, labels.array):
                    raise SystemExit(f"round trip mismatch for {segmentation_type}")
            rows.append(
                (
                    segmentation_type,
                    written.number_of_frames,
                    out.stat().st_size / 2**20,
                    statistics.median(write_times),
                    min(write_times),
                    statistics.median(write_cpu),
                    statistics.median(read_times),
                )
            )

    print(
        f"SEG write, {args.size}x{args.size}x{args.slices} two-label mask (voxels per label {counts}), "
        f"{args.repeats} repeats; series setup {setup_s:.1f} s; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end; highdicom {highdicom.__version__}, pydicom {pydicom.__version__}"
    )
    print("wall-clock times depend on other processes; CPU s (process time) is this process's own work")
    print()
    print("| type | frames | file MiB | write median s | write min s | write CPU s | read-back median s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, frames, mib, median_s, min_s, cpu_s, read_s in rows:
        print(
            f"| {name} | {frames} | {mib:.1f} | {median_s:.2f} | {min_s:.2f} | {cpu_s:.2f} | {read_s:.2f} |"
        )


if __name__ == "__main__":
    main()
