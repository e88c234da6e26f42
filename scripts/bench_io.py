"""I/O benchmark: CT series load (unetseg, SimpleITK, pydicom), DICOM SEG write, and a batch `unetseg infer`.

Builds (in a temporary folder) a CT series of ``--slices`` uncompressed 512x512 int16 slices from the real
TotalSegmentator CT header and pixels in ``../shared/data/totalseg-ct`` (new UIDs and positions; a synthetic
header and pattern when the data are absent), then times each loader ``--repeats`` times on a warm page cache
round-robin, and prints a markdown table (best and median wall time, best CPU time of the process, MB/s of the
files, output shape and dtype). Wall times are noisy on a shared machine; CPU time is the steadier comparison.

    python scripts/bench_io.py [--slices 200] [--size 512] [--repeats 5] [--keep DIR] [--no-infer]

(needs the package installed, ``pip install -e .``).

Two more rows: the time to write a DICOM SEG (:func:`app.writing.dicom_seg.write_dicom_seg`, BINARY, the way
``unetseg infer`` calls it: labels on the loaded series' grid with its provenance) for a two-label mask on the
same 512x512x200 series (target < 5 s), and the wall time, CPU time and peak memory (the child's ``VmHWM``) of
``unetseg infer`` on the demo DICOM tree (3 MR series) with the hippocampus bundle, CPU.

Extending: add a function ``(folder) -> np.ndarray`` to ``LOADERS`` for another loader, or write another
``run_*_benchmark`` returning :class:`Row` s and append its rows in :func:`main` (as the SEG and infer rows do).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_SERIES = ROOT.parent / "shared" / "data" / "totalseg-ct" / "example_ct_dicom"
DEMO_TREE = ROOT / "app" / "demo" / "data" / "dicom"
HIPPO_BUNDLE = ROOT / "bundles" / "hippocampus_mri_segmentation"


@dataclass(frozen=True)
class Row:
    """One line of the result table: wall and CPU seconds (all threads of this process) per repeat."""

    task: str
    tool: str
    seconds: list[float]
    cpu_seconds: list[float]
    megabytes: float
    output: str

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _template_slices(size: int) -> list[tuple[Dataset, np.ndarray]]:
    """(header, int16 stored pixels) of the real CT slices, or one synthetic slice when they are absent."""
    if TEMPLATE_SERIES.is_dir() and size == 512:
        slices = []
        for path in sorted(TEMPLATE_SERIES.iterdir()):
            ds = pydicom.dcmread(path)
            stored = ds.pixel_array.astype(np.int32) - 1024  # 12-bit unsigned, intercept -1024 -> HU
            del ds.PixelData
            slices.append((ds, stored.astype(np.int16)))
        return slices
    ds = Dataset()
    ds.Modality, ds.SeriesDescription, ds.ImageType = "CT", "bench", ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing, ds.SliceThickness = [0.9765625, 0.9765625], 1.0
    yy, xx = np.mgrid[:size, :size]
    phantom = np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2, 40, -1000)
    return [(ds, phantom.astype(np.int16))]


def build_ct_series(folder: Path, n_slices: int = 200, size: int = 512, spacing: float = 1.0) -> list[Path]:
    """Write ``n_slices`` uncompressed int16 CT slices (HU stored directly, intercept 0) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    templates = _template_slices(size)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(n_slices):
        header, pixels = templates[k % len(templates)]
        ds = header.copy()
        uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [-250.0, -250.0, -100.0 - k * spacing]  # written head to feet
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.Rows, ds.Columns = size, size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.add_new(0x7FE00010, "OW", np.ascontiguousarray(pixels).tobytes())  # PixelData
        path = folder / f"{uid}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def load_unetseg(folder: Path) -> np.ndarray:
    from app.loading import load_volume

    return load_volume(folder).array


def load_simpleitk(folder: Path) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayViewFromImage(reader.Execute())


def load_pydicom(folder: Path) -> np.ndarray:
    """Plain pydicom: read every file, sort by z, stack the decoded (not rescaled) pixels."""
    datasets = [pydicom.dcmread(p) for p in folder.iterdir()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([ds.pixel_array for ds in datasets])


LOADERS: dict[str, Callable[[Path], np.ndarray]] = {
    "unetseg load_volume (discovery + strict reader)": load_unetseg,
    "SimpleITK ImageSeriesReader (GDCM sort + read)": load_simpleitk,
    "plain pydicom (dcmread + sort + stack)": load_pydicom,
}


def time_call(fn: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    """Wall and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run_load_benchmark(folder: Path, repeats: int) -> list[Row]:
    """Time every loader ``repeats`` times, round-robin so that load from other processes hits all alike."""
    n_bytes = sum(p.stat().st_size for p in folder.iterdir())
    walls: dict[str, list[float]] = {tool: [] for tool in LOADERS}
    cpus: dict[str, list[float]] = {tool: [] for tool in LOADERS}
    outputs: dict[str, str] = {}
    for _ in range(repeats):
        for tool, loader in LOADERS.items():
            wall, cpu, array = time_call(lambda loader=loader: loader(folder))
            walls[tool].append(wall)
            cpus[tool].append(cpu)
            outputs[tool] = f"{tuple(array.shape)} {array.dtype}"
    return [Row("load series", t, walls[t], cpus[t], n_bytes / 1e6, outputs[t]) for t in LOADERS]


def two_label_mask(shape: tuple[int, ...]) -> np.ndarray:
    """Two touching spheres (values 1 and 2) in index space, about 4% and 8% of the volume."""
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    labels = np.zeros(shape, dtype=np.uint8)
    for value, centre, radius in ((1, (0.35, 0.5, 0.5), 0.2), (2, (0.65, 0.5, 0.5), 0.25)):
        ci, cj, ck = (c * n for c, n in zip(centre, shape, strict=True))
        inside = ((i - ci) / shape[0]) ** 2 + ((j - cj) / shape[1]) ** 2 + ((k - ck) / shape[2]) ** 2
        labels[inside <= radius**2] = value
    return labels


def run_seg_benchmark(folder: Path, out: Path, repeats: int) -> list[Row]:
    """Time :func:`write_dicom_seg` (BINARY) of a two-label mask on the loaded series' grid, as infer does."""
    import warnings

    from app.loading import load_volume
    from app.writing.dicom_seg import write_dicom_seg

    warnings.simplefilter("ignore", UserWarning)  # highdicom's person-name style hints
    source = load_volume(folder)
    labels = source.with_array(two_label_mask(source.shape))
    walls, cpus = [], []
    written = None
    for repeat in range(repeats):
        wall, cpu, written = time_call(
            lambda repeat=repeat: write_dicom_seg(
                labels, None, {1: "sphere A", 2: "sphere B"}, out / f"seg_{repeat}.dcm"
            )
        )
        walls.append(wall)
        cpus.append(cpu)
    size = written.path.stat().st_size / 1e6
    shape = "x".join(map(str, source.shape))
    return [
        Row(
            "SEG write (BINARY, 2 labels)",
            f"write_dicom_seg on {shape}",
            walls,
            cpus,
            size,
            f"{written.number_of_frames} frames, {size:.1f} MB",
        )
    ]


def run_infer_benchmark(out: Path, bundle: Path = HIPPO_BUNDLE, tree: Path = DEMO_TREE) -> list[Row]:
    """Wall time, CPU time and peak RSS of one ``unetseg infer`` child process on the demo DICOM tree.

    Peak memory is the child's own high-water mark (``VmHWM`` of ``/proc/<pid>/status``, polled; psutil's RSS
    elsewhere). ``ru_maxrss`` from ``wait4`` would not do: Linux carries the parent's high-water mark into a
    child across fork/vfork + exec, and this process holds a 512x512x200 series by then.
    """
    import psutil

    command = [sys.executable, "-m", "app.cli.main", "infer", str(tree), "--bundle", str(bundle)]
    command += ["--out", str(out), "--device", "cpu"]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _high_water_mark(process))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"unetseg infer failed ({child.returncode}): {child.stderr.read().decode()[-2000:]}")
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    n_bytes = sum(p.stat().st_size for p in tree.rglob("*.dcm"))
    return [
        Row(
            "unetseg infer, demo tree (3 MR series)",
            "child process, CPU, NIfTI + SEG",
            [wall],
            [cpu.ru_utime + cpu.ru_stime],
            n_bytes / 1e6,
            f"peak RSS {peak / 2**20:.0f} MiB",
        )
    ]


def _high_water_mark(process: Any) -> int:
    """Peak resident bytes of a running process so far (0 once it has exited)."""
    import psutil

    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return int(process.memory_info().rss)
    except (OSError, psutil.Error):
        return 0


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| task | tool | best s | median s | best CPU s | MB/s (best) | output |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.tool} | {r.best:.3f} | {r.median:.3f} | {min(r.cpu_seconds):.3f} "
            f"| {r.megabytes / r.best:.0f} | {r.output} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="build the series here and keep it")
    parser.add_argument("--no-infer", action="store_true", help="skip the unetseg infer row")
    parser.add_argument("--bundle", type=Path, default=HIPPO_BUNDLE, help="bundle for the infer row")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_io_") as tmp:
        folder = args.keep or Path(tmp) / "ct"
        start = time.perf_counter()
        build_ct_series(folder, args.slices, args.size)
        print(
            f"built {args.slices} slices {args.size}x{args.size} int16 in {time.perf_counter() - start:.1f} s"
        )
        rows = run_load_benchmark(folder, args.repeats)
        rows += run_seg_benchmark(folder, Path(tmp), args.repeats)
        if not args.no_infer:
            rows += run_infer_benchmark(Path(tmp) / "infer", args.bundle)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
