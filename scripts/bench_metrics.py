"""Benchmark the evaluation stage; prints a markdown table.

(a) Hausdorff/HD95/ASSD/NSD on 512x512x300 masks (a lumpy ellipsoid and a lumpy sphere, anisotropic spacing
    0.7 x 0.7 x 2.0 mm): seconds per label for both distance backends and for ``evaluate_case`` (all metrics),
    with MONAI's ``compute_hausdorff_distance`` for comparison (target < 2 s per label).
(b) End to end: the hippocampus labels of ../shared/data as references, a perturbed copy (erosion, shift,
    the posterior label dropped every 25th case) written to a temporary folder as predictions, scored with
    ``evaluate_folders`` including report writing (target < 60 s for 200 cases).

Usage: python scripts/bench_metrics.py [--cases N] [--repeat R] [--skip-monai]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from app.evaluation import evaluate_case, evaluate_folders
from app.evaluation.surface import surface_distances
from app.reporting.evaluation_reports import write_evaluation_reports
from app.volume import Volume

SHAPE = (512, 512, 300)
SPACING = (0.7, 0.7, 2.0)
HIPPOCAMPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "msd-hippocampus" / "labelsTr"


def lumpy_blob(centre, radii_mm, wobble: float, phase: float) -> np.ndarray:
    """A boolean ellipsoid on SHAPE whose radius varies by +-``wobble`` with direction (an organ-like shape)."""
    axes = []
    for axis, (n, c, s, radius) in enumerate(zip(SHAPE, centre, SPACING, radii_mm, strict=True)):
        index = [None, None, None]
        index[axis] = slice(None)
        axes.append(((np.arange(n, dtype=np.float32) - c) * s / radius)[tuple(index)])
    x, y, z = axes
    r = np.sqrt(x * x + y * y + z * z)
    polar = np.arcsin(np.clip(z / np.maximum(r, 1e-6), -1.0, 1.0))
    bumps = 1.0 + wobble * np.sin(3 * np.arctan2(y, x) + phase) * np.cos(2 * polar)
    return r <= bumps


def timed(function, repeat: int):
    """``((wall, cpu), value)``: the best wall and process-CPU seconds of ``repeat`` calls, and the last value.

    The CPU time is the number to compare on a shared machine: the code is single-threaded, so without
    contention its wall time equals its CPU time, while the wall time also counts waiting for other processes.
    """
    wall, cpu, value = np.inf, np.inf, None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = function()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return (wall, cpu), value


def _seconds(seconds: tuple[float, float], per: int = 1) -> tuple[str, str]:
    return f"{seconds[0] / per:.2f}", f"{seconds[1] / per:.2f}"


def bench_large(repeat: int, monai: bool) -> list[tuple[str, ...]]:
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    # label 1: liver-sized (radii 100 x 80 x 70 mm); label 2: a 30 mm sphere. Predictions: moved and reshaped.
    ref[lumpy_blob((230, 250, 150), (100, 80, 70), 0.06, 0.0)] = 1
    pred[lumpy_blob((234, 247, 152), (97, 83, 68), 0.08, 0.4)] = 1
    ref[lumpy_blob((400, 380, 120), (30, 30, 30), 0.10, 1.0)] = 2
    pred[lumpy_blob((403, 377, 121), (28, 31, 29), 0.12, 1.3)] = 2
    rows = []
    for value, name in ((1, "ellipsoid 100x80x70 mm"), (2, "sphere 30 mm")):
        p, r = pred == value, ref == value
        for backend in ("auto", "kdtree", "edt"):
            seconds, d = timed(
                lambda b=backend, p=p, r=r: surface_distances(p, r, SPACING, backend=b), repeat
            )
            note = (
                f"HD {d.hausdorff():.2f}, HD95 {d.hd95():.2f}, ASSD {d.assd():.2f} mm, NSD {d.nsd(1.0):.3f}"
            )
            rows.append((f"(a) surface metrics, {name}, backend {backend}", *_seconds(seconds), note))
    affine = np.diag([*SPACING, 1.0])
    seconds, results = timed(
        lambda: evaluate_case(Volume(pred, affine), Volume(ref, affine), {1: "ellipsoid", 2: "sphere"}),
        repeat,
    )
    rows.append(
        (
            "(a) evaluate_case (all metrics, 2 labels), per label",
            *_seconds(seconds, per=2),
            ", ".join(f"{r.name} Dice {r.dice:.3f} HD95 {r.hd95_mm:.2f} mm" for r in results),
        )
    )
    if monai:
        import torch
        from monai.metrics import compute_hausdorff_distance

        p = torch.from_numpy(pred == 1)[None, None]
        r = torch.from_numpy(ref == 1)[None, None]
        seconds, hd = timed(
            lambda: compute_hausdorff_distance(p, r, include_background=True, spacing=list(SPACING)), 1
        )
        rows.append(
            (
                "(a) MONAI compute_hausdorff_distance, ellipsoid, HD only",
                *_seconds(seconds),
                f"HD {hd.item():.2f} mm (CPU s counts all torch threads)",
            )
        )
    return rows


def bench_folders(n_cases: int) -> list[tuple[str, ...]]:
    import nibabel as nib
    from scipy import ndimage

    all_references = sorted(HIPPOCAMPUS.glob("*.nii.gz"))
    if not all_references:
        return [("(b) hippocampus end to end", "skipped", "", f"no labels at {HIPPOCAMPUS}")]
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:
        pred_dir = Path(tmp) / "pred"
        pred_dir.mkdir()
        for number, path in enumerate(all_references[:n_cases]):
            image = nib.load(str(path))
            label = np.asanyarray(image.dataobj)
            if number % 25 == 0:
                pred = np.where(label == 2, 0, label)  # posterior missed
            elif number % 2:
                pred = np.where(ndimage.binary_erosion(label > 0), label, 0)
            else:
                pred = np.roll(label, 1 + number % 3, axis=number % 3)
            stem = path.name.removesuffix(".nii.gz")
            nib.save(
                nib.Nifti1Image(pred.astype(np.uint8), image.affine), str(pred_dir / f"{stem}_seg.nii.gz")
            )

        def score_and_report():
            run = evaluate_folders(pred_dir, HIPPOCAMPUS, labels={1: "anterior", 2: "posterior"})
            write_evaluation_reports(run, Path(tmp) / "out", worst=10)
            return run

        seconds, run = timed(score_and_report, 1)
    scored = run.summary.n_cases - len(run.failures)
    dice = run.summary.mean("anterior", "dice")
    return [
        (
            f"(b) evaluate_folders + reports: {scored} predictions, {len(all_references)} references",
            *_seconds(seconds),
            f"{seconds[1] / run.summary.n_cases * 1000:.0f} ms CPU/case; {len(run.failures)} references without a "
            f"prediction reported; anterior mean Dice {dice:.3f}",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", type=int, default=200, help="hippocampus predictions to write (default 200)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="repeats of (a); the best time is kept")
    parser.add_argument("--skip-monai", action="store_true", help="skip the MONAI comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = bench_large(args.repeat, monai=not args.skip_monai) + bench_folders(args.cases)
    print("| benchmark | wall s | CPU s | result |")
    print("|---|---:|---:|---|")
    for name, wall, cpu, note in rows:
        print(f"| {name} | {wall} | {cpu} | {note} |")


if __name__ == "__main__":
    main()
