"""Inference time per 512 x 512 EM slice: the shipped fold ensemble (0.5.0) against the single network it replaced
(0.4.4), through ``unetseg infer``, on each backend, side by side in one run.

    python scripts/bench_em_ensemble.py [--slices 20 21 22 23] [--backends torch openvino] [--threads 2]

Each (predictor, backend) runs ``unetseg infer`` in its own process on the same real slices of the ISBI 2012
training stack (default: the validation block 20-23), with ``--no-preview``; the 0.4.4 bundle is taken from git
(``git archive 9e31f74``). Reported per run: the median of the cases' ``inference`` time from ``report.json``
(preprocessing, the overlap-tile inferer with the 8 rotations/mirrorings, the decision rule) and the run's wall
time including start-up and the bundle load (the first ONNX export of a backend other than torch is cached in
``UNETSEG_CACHE_DIR``, set to a fresh folder per predictor and warmed by one untimed run). The labels of each run
are compared with the torch run of the same predictor (pixels that differ).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "em_membrane_segmentation"
SINGLE_REVISION = "9e31f74"  # the last commit that shipped the 0.4.4 single network


def single_network_bundle(into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", SINGLE_REVISION, "bundles/em_membrane_segmentation"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "bundles" / "em_membrane_segmentation"


def infer(bundle: Path, images: Path, out: Path, backend: str, threads: int, cache: Path) -> float:
    env = {**os.environ, "UNETSEG_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app.cli.main", "infer", str(images), "--bundle", str(bundle), "--out", str(out),
         "--backend", backend, "--threads", str(threads), "--no-preview"],
        check=True,
        env=env,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def labels(out: Path) -> dict[str, np.ndarray]:
    return {p.parent.name: np.asarray(Image.open(p)) for p in sorted(out.glob("*/*_seg.png"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dataset_dir", type=Path, default=ROOT.parent / "shared" / "data" / "isbi2012-em")
    parser.add_argument("--slices", type=int, nargs="+", default=[20, 21, 22, 23])
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-em-") as tmp:
        work = Path(tmp)
        images = work / "images"
        images.mkdir()
        for k in args.slices:
            shutil.copy(args.dataset_dir / "train" / "image" / f"{k}.png", images / f"{k}.png")
        predictors = {
            "0.5.0 fold ensemble (5 networks)": BUNDLE,
            "0.4.4 single network": single_network_bundle(work / "single"),
        }
        rows = []
        for name, bundle in predictors.items():
            cache = work / f"cache-{len(rows)}"
            reference = None
            for backend in args.backends:
                if backend != "torch":  # the one-off ONNX export, not timed
                    infer(bundle, images, work / "warm", backend, args.threads, cache)
                    shutil.rmtree(work / "warm")
                out = work / f"out-{len(rows)}"
                wall = infer(bundle, images, out, backend, args.threads, cache)
                report = json.loads((out / "report.json").read_text())
                per_slice = statistics.median(c["timings_s"]["inference"] for c in report["cases"])
                backends = {c.get("backend") for c in report["cases"]} - {None}
                result = labels(out)
                reference = reference or result
                differ = sum(int(np.count_nonzero(result[k] != reference[k])) for k in result)
                rows.append((name, backend, per_slice, wall, differ, backends))
                print(f"  {name}, {backend}: {per_slice:.2f} s per slice", flush=True)
    print(
        f"\n{len(args.slices)} slices of 512 x 512 ({args.slices}), {args.threads} threads, unetseg infer --no-preview"
    )
    print(
        "| predictor | backend | inference per slice (median) | run wall time | pixels differing from torch |"
    )
    print("|---|---|---|---|---|")
    for name, backend, per_slice, wall, differ, _ in rows:
        print(f"| {name} | {backend} | {per_slice:.2f} s | {wall:.1f} s | {differ} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
