"""Benchmark of the batch's scale-out: the same real cases through ``unetseg infer`` run locally and on Ray.

Configurations (side by side in one run, on the same inputs, as real ``unetseg infer`` processes):

* ``local``: one process, ``--threads T`` (T = the machine's CPUs by default);
* ``ray 1xT``: ``--cluster ray --workers 1 --threads-per-worker T`` (a local Ray runtime started for the run);
* ``ray Nx1``: ``--cluster ray --workers N --threads-per-worker 1``.

Inputs: ``--cases`` MSD Task04 hippocampus images (the bundle's own task) plus real-sized volumes of other
datasets in ``../shared/data`` (the TotalSegmentator example CT, an MSD spleen crop) that the hippocampus bundle
runs on as "large" cases. Per configuration: wall time of the whole command (Ray start-up included), cases per
minute, per-case latency (median and max, hippocampus and large apart), the workers' and the driver's peak
resident memory (from ``report.json``'s provenance), and the share of worker time spent outside cases
(start-up, scheduling, reporting). The labels of every configuration are compared with the local run's.

While it runs, ``/tmp/BENCH_RUNNING`` exists (other work on a shared machine waits for it).

    python scripts/bench_scale.py                       # 24 hippocampus + 2 large cases, the three configurations
    python scripts/bench_scale.py --cases 40 --big 0 --configs local,ray2x1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BUNDLE = ROOT / "bundles" / "hippocampus_mri_segmentation"
LARGE = (
    DATA / "totalseg-ct" / "example_ct_sm.nii.gz",
    DATA / "msd-spleen-crop" / "imagesTr" / "spleen_2_crop.nii.gz",
)
FLAG = Path("/tmp/BENCH_RUNNING")


@dataclass(frozen=True)
class Setting:
    name: str
    args: tuple[str, ...]
    workers: int
    threads: int


def settings(names: list[str], cpus: int) -> list[Setting]:
    table = {
        "local": Setting("local", ("--threads", str(cpus)), 1, cpus),
        "local1": Setting("local 1 thread", ("--threads", "1"), 1, 1),
        f"ray1x{cpus}": Setting(
            f"ray 1x{cpus}",
            ("--cluster", "ray", "--workers", "1", "--threads-per-worker", str(cpus)),
            1,
            cpus,
        ),
        f"ray{cpus}x1": Setting(
            f"ray {cpus}x1",
            ("--cluster", "ray", "--workers", str(cpus), "--threads-per-worker", "1"),
            cpus,
            1,
        ),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(table)}")
    return [table[n] for n in names]


def make_inputs(folder: Path, n_cases: int, n_big: int) -> tuple[set[str], set[str]]:
    """Symlinks to the real inputs; returns the case ids of the hippocampus and the large cases."""
    images = sorted((DATA / "msd-hippocampus" / "imagesTr").glob("*.nii.gz"))[:n_cases]
    if len(images) < n_cases:
        raise SystemExit(f"only {len(images)} hippocampus images in {DATA}")
    folder.mkdir(parents=True)
    for path in images:
        (folder / path.name).symlink_to(path)
    large = [p for p in LARGE if p.is_file()][:n_big]
    for path in large:
        (folder / f"large_{path.name}").symlink_to(path)
    ids = lambda paths, prefix="": {prefix + p.name.removesuffix(".nii.gz") for p in paths}  # noqa: E731
    return ids(images), ids(large, "large_")


def run(setting: Setting, inputs: Path, out: Path, backend: str) -> tuple[float, dict]:
    command = [sys.executable, "-m", "app.cli.main", "infer", str(inputs), "--bundle", str(BUNDLE)]
    command += ["--out", str(out), "--backend", backend, "--formats", "nifti", *setting.args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{setting.name}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return wall, json.loads((out / "report.json").read_text())


def _spread(total: dict[str, float], ids: set[str]) -> str:
    """``median / max`` of the cases ``ids``' times."""
    times = [total[i] for i in ids if i in total]
    return f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "-"


def _differing(reference: Path | None, out: Path, case_ids: dict[str, float]) -> str:
    """Label voxels that differ from ``reference``'s, over all cases (``-`` without a reference run)."""
    if reference is None:
        return "-"
    pairs = [(labels(reference, c), labels(out, c)) for c in case_ids]
    return f"{sum(int((a != b).sum()) for a, b in pairs)} of {sum(a.size for a, _ in pairs)}"


def labels(out: Path, case_id: str) -> np.ndarray:
    return np.asarray(nib.load(out / case_id / f"{case_id}_seg.nii.gz").dataobj)


def main() -> None:
    cpus = os.cpu_count() or 2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=24, help="hippocampus cases (default 24)")
    parser.add_argument("--big", type=int, default=2, help=f"large real volumes, at most {len(LARGE)}")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--configs", default=f"local,local1,ray1x{cpus},ray{cpus}x1")
    parser.add_argument("--work", type=Path, default=Path("/tmp/unetseg-bench-scale"))
    args = parser.parse_args()
    chosen = settings(args.configs.split(","), cpus)

    shutil.rmtree(args.work, ignore_errors=True)
    hippo, large = make_inputs(args.work / "inputs", args.cases, args.big)
    FLAG.touch()
    try:
        # the ONNX export of the bundle is made once (cached), before anything is timed
        warm = args.work / "warm"
        warm.mkdir()
        (warm / "one.nii.gz").symlink_to(next(iter(sorted((args.work / "inputs").glob("hippocampus_*")))))
        run(Setting("warm-up", (), 1, cpus), warm, args.work / "warm-out", args.backend)
        results = []
        for setting in chosen:
            out = args.work / setting.name.replace(" ", "_")
            wall, report = run(setting, args.work / "inputs", out, args.backend)
            results.append((setting, out, wall, report))
            print(f"{setting.name}: {wall:.1f} s", file=sys.stderr, flush=True)
    finally:
        FLAG.unlink(missing_ok=True)

    # labels are compared with the local run of the same threads per process: a runtime's float sums depend on
    # its thread count, so near-ties may flip between 1 and 2 threads whichever way the cases are run
    local_out = {s.threads: out for s, out, _, _ in results if s.name.startswith("local")}
    print(f"{len(hippo)} hippocampus + {len(large)} large cases, backend {args.backend}, {cpus} CPUs\n")
    print(
        "| configuration | wall s | cases/min | hippo latency median / max s | large latency median / max s "
        "| worker peak RSS MB | driver peak RSS MB | outside cases | voxels != local, same threads | voxels != local |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for setting, out, wall, report in results:
        cases = report["cases"]
        assert report["state"] == "complete" and report["counts"]["ok"] == len(cases), report["counts"]
        total = {c["case_id"]: c["timings_s"]["total"] for c in cases}
        busy = sum(total.values()) / (wall * setting.workers)
        rss = ", ".join(f"{w['peak_rss_mb']:.0f}" for w in report["provenance"]["workers"])
        same = _differing(local_out.get(setting.threads), out, total)
        first = _differing(results[0][1], out, total)
        print(
            f"| {setting.name} | {wall:.1f} | {60 * len(cases) / wall:.1f} | {_spread(total, hippo)} | {_spread(total, large)} "
            f"| {rss} "
            f"| {report['provenance']['driver_peak_rss_mb']:.0f} | {100 * (1 - busy):.0f} % "
            f"| {same} | {first} |"
        )


if __name__ == "__main__":
    main()
