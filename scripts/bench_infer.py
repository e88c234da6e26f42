"""Inference speed: the stock model-zoo pipeline against ``unetseg infer`` on each backend, on the same volumes.

    python scripts/bench_infer.py --dataset_dir ../shared/data/msd-hippocampus [--cases 10] [--copies 2]

Volumes (real data only):

* ``hippocampus``: the first ``--cases`` validation cases of the hippocampus bundle's split (MRI crops).
* ``large``: the real TotalSegmentator CT series (``totalseg-ct/example_ct_dicom``, 512 x 512 x 20 slices,
  0.98 x 0.98 x 2 mm), its slices repeated ``--copies`` times along z (the geometry continues, so it is a
  512 x 512 x 40 CT of 80 mm, a 500 x 500 x 80 grid at the bundle's 1 mm): a real field of view, with air around
  the body. The hippocampus network on a CT is meaningless clinically; here it measures speed at a real size.

Runs, each in its own process (peak memory = that process's peak resident set, VmHWM):

* (a) ``stock``: ``python -m monai.bundle run`` with the bundle's inference.json (the same window, overlap and
  gaussian blending as unetseg uses), at its fastest sw_batch_size (measured first, see below).
* (b) ``unetseg infer --backend B --formats nifti`` for each installed backend, with its defaults (window batch
  from :mod:`app.inference.runtime.select`, skipping of windows outside the body on).

Network time is the time inside the network's forward calls (forward hooks); GFLOP/s = windows actually run x
FLOP per window (``torch.utils.flop_counter``) / network time; network share = network time / the run's time
from the first case's start (process start-up, imports and the bundle load excluded from that share, and shown
in the total). Segmentations of each (b) run are compared with (a)'s: the lowest per-case Dice per label over the
whole volume and inside the body (the image above its Otsu threshold, dilated by 3 voxels), and the number of
voxels that differ outside the body. The fastest backend also runs with ``--no-skip-empty``, which separates the
gain of the runtime from that of skipping windows outside the body, and with ``--float64-resampling`` (the
bundle's own resampling precision; unetseg resamples in float32 by default, see
:mod:`app.inference.resample_precision`), which shows what that does to peak memory and to the labels.

Before the runs: the fp32 matmul peak (4096^2 ``torch.mm``) and each backend's seconds per window at window batch
1, 2 and 4, in isolation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "hippocampus_mri_segmentation"
CT_SERIES = Path("totalseg-ct") / "example_ct_dicom"


# --------------------------------------------------------------------------------------------- worker side
#: the fastest backend is also run with each of these option sets (the other backends with the defaults only)
VARIANTS: dict[str, tuple[str, ...]] = {
    "": (),
    "noskip": ("--no-skip-empty",),
    "f64": ("--float64-resampling",),
}


def _hook_timer(module) -> dict:
    """Forward hooks that add up the seconds and windows of every forward call of ``module``."""
    stats = {"seconds": 0.0, "windows": 0, "first": None}

    def before(_module, args):
        stats["_t"] = time.perf_counter()
        if stats["first"] is None:
            stats["first"] = stats["_t"]

    def after(_module, args, _output):
        stats["seconds"] += time.perf_counter() - stats["_t"]
        stats["windows"] += int(args[0].shape[0])

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)
    return stats


def _worker_stock(data: Path, out: Path, sw: int) -> dict:
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "inference.json"),
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=None,
        workflow_type="infer",
        bundle_root=str(BUNDLE),
        dataset_dir=str(data),
        output_dir=str(out),
        sw_batch_size=sw,
    )
    workflow.initialize()
    evaluator = workflow.parser.get_parsed_content("evaluator")
    stats = _hook_timer(evaluator.network)
    start = time.perf_counter()
    workflow.run()
    stats["run_seconds"] = time.perf_counter() - start
    stats["threads"] = int(__import__("torch").get_num_threads())
    return stats


def _worker_app(data: Path, out: Path, backend: str, flags: tuple[str, ...] = ()) -> dict:
    import app.inference.bundle as bundle_module
    from app.cli.main import main

    original = bundle_module.load_bundle
    holder: dict = {}

    def load_and_time(*args, **kwargs):
        bundle = original(*args, **kwargs)
        holder["stats"] = _hook_timer(bundle.network)
        holder["runtime"] = bundle.runtime
        holder["inferer"] = bundle.inferer
        holder["loaded"] = time.perf_counter()
        return bundle

    bundle_module.load_bundle = load_and_time
    code = main(
        [
            "infer",
            str(data),
            "--bundle",
            str(BUNDLE),
            "--out",
            str(out),
            "--formats",
            "nifti",
            "--backend",
            backend,
            *flags,
        ]
    )
    end = time.perf_counter()
    stats = holder["stats"]
    stats["run_seconds"] = end - holder["loaded"]
    stats["exit_code"] = code
    runtime = holder["runtime"]
    stats["backend"], stats["sw_batch_size"], stats["threads"] = (
        runtime.backend,
        runtime.sw_batch_size,
        runtime.num_threads,
    )
    stats["max_abs_logit_diff"] = runtime.max_abs_logit_diff
    counts = getattr(holder["inferer"], "last_counts", None)
    stats["skip_counts_last_case"] = list(counts) if counts else None
    return stats


def worker(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.worker == "stock":
        stats = _worker_stock(args.data, args.out, args.sw)
    else:
        backend, _, variant = args.worker.partition(":")
        stats = _worker_app(args.data, args.out, backend, VARIANTS[variant])
    stats.pop("_t", None)
    stats["process_seconds"] = time.perf_counter() - started
    stats["peak_rss_mb"] = _peak_rss_mb()
    print("BENCH " + json.dumps(stats), flush=True)


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (reset at exec, unlike ``ru_maxrss``, which a child started
    from a big parent inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


# --------------------------------------------------------------------------------------------- driver side
def _run_worker(kind: str, data: Path, out: Path, sw: int = 0) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--data",
        str(data),
        "--out",
        str(out),
        "--sw",
        str(sw),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"{kind} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    stats = json.loads(line[6:])
    stats["wall_seconds"] = wall
    return stats


def _torch_bundle():
    """The bundle on torch eager (no window skipping): the network the isolated timings export and run."""
    from app.inference.bundle import load_bundle
    from app.inference.options import InferenceOptions

    return load_bundle(BUNDLE, InferenceOptions(device="cpu", backend="torch"))


def _flop_per_window(network, window) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(torch.zeros((1, 1, *window)))
    return float(counter.get_total_flops())


def _matmul_peak() -> float:
    import torch

    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(5))
    return 2 * 4096**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _isolated(bundle, window, flop: float) -> list[dict]:
    """Seconds per window of each backend at window batch 1, 2, 4 (best of 5, after a warm-up)."""
    import torch

    from app.inference.runtime import available_backends, wrap_network

    rows = []
    for backend in reversed(available_backends()):  # torch first
        for batch in (1, 2, 4):
            module, _settings = wrap_network(
                bundle.network,
                backend=backend,
                device="cpu",
                in_channels=1,
                window=window,
                weights_sha256=bundle.info.weights_sha256,
                bundle_path=BUNDLE,
                sw_batch_size=batch,
            )
            x = torch.randn((batch, 1, *window))
            with torch.no_grad():
                module(x)
                seconds = min(_timed(lambda m=module, x=x: m(x)) for _ in range(5)) / batch
            rows.append(
                {"backend": backend, "batch": batch, "s_per_window": seconds, "gflops": flop / seconds / 1e9}
            )
            print(
                f"  isolated {backend} batch {batch}: {seconds:.3f} s/window, {flop / seconds / 1e9:.0f} GFLOP/s",
                flush=True,
            )
    return rows


def _prepare(dataset_dir: Path, shared: Path, cases: int, copies: int, work: Path) -> dict[str, Path]:
    import numpy as np

    from app.loading import load_volume
    from app.volume import Volume
    from app.writing.nifti import write_nifti

    datalist = json.loads((BUNDLE / "configs" / "datalist.json").read_text())["validation"][:cases]
    small = work / "hippocampus"
    small.mkdir()
    for item in datalist:
        shutil.copy(dataset_dir / item["image"], small / Path(item["image"]).name)
    volumes = {"hippocampus": small}
    if copies > 0:  # --copies 0: the hippocampus cases only (a quick check of the script)
        ct = load_volume(shared / CT_SERIES)
        large = volumes["large"] = work / "large"
        large.mkdir()
        stacked = Volume(np.concatenate([ct.array] * copies, axis=2), ct.affine, ct.space)  # z continues
        write_nifti(stacked, large / "ct_large.nii.gz")
    return volumes


def _segmentations(folder: Path) -> dict[str, object]:
    import nibabel as nib

    found = {}
    for path in sorted(folder.rglob("*_seg.nii.gz")):
        found[path.name.removesuffix("_seg.nii.gz")] = nib.load(path).get_fdata().astype("int16")
    return found


def _body_masks(data: Path) -> dict[str, object]:
    """Per case: voxels above the image's Otsu threshold, dilated by 3 voxels (the imaged body)."""
    import nibabel as nib
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    masks = {}
    for path in sorted(data.glob("*.nii.gz")):
        image = nib.load(path).get_fdata(dtype="float32")
        masks[path.name.removesuffix(".nii.gz")] = ndimage.binary_dilation(
            image > threshold_otsu(image[::2, ::2, ::2]), iterations=3
        )
    return masks


def _compare(got: dict, expected: dict, bodies: dict, labels=(1, 2)) -> dict:
    """Lowest per-case Dice per label against (a), over the whole volume and inside the body; voxels that
    differ outside the body."""
    import numpy as np

    if set(got) != set(expected):
        raise RuntimeError(f"case sets differ: {sorted(got)} vs {sorted(expected)}")
    whole, inside, outside = [1.0] * len(labels), [1.0] * len(labels), 0
    for name, reference in expected.items():
        prediction, body = got[name], bodies[name]
        outside += int(np.count_nonzero((prediction != reference) & ~body))
        for i, label in enumerate(labels):
            a, b = prediction == label, reference == label
            whole[i] = min(whole[i], _dice(a, b))
            inside[i] = min(inside[i], _dice(a & body, b & body))
    return {"whole": whole, "inside": inside, "outside": outside}


def _dice(a, b) -> float:
    """Dice of two boolean masks, 1.0 when both are empty (agreement, not a clinical score)."""
    from app.evaluation.overlap import count

    counts = count(a, b)
    total = counts.n_pred + counts.n_ref
    return 1.0 if total == 0 else 2.0 * counts.tp / total


def driver(args: argparse.Namespace) -> None:
    import platform

    from app.inference.runtime import available_backends

    work = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    try:
        volumes = _prepare(args.dataset_dir, args.shared_dir, args.cases, args.copies, work)
        import torch

        bundle = _torch_bundle()
        window = [int(s) for s in bundle.inferer.roi_size]
        flop = _flop_per_window(bundle.network, window)
        peak = _matmul_peak()
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
            f"{torch.__version__}; window {window}, {flop / 1e9:.2f} GFLOP per window; fp32 matmul peak "
            f"{peak:.0f} GFLOP/s",
            flush=True,
        )
        isolated = _isolated(bundle, window, flop)
        stock_sw = min((r for r in isolated if r["backend"] == "torch"), key=lambda r: r["s_per_window"])[
            "batch"
        ]
        print(f"  stock runs at its fastest sw_batch_size: {stock_sw}", flush=True)
        rows = []
        for name, data in volumes.items():
            n = len(list(data.glob("*.nii.gz")))
            stock_out = work / f"out-{name}-stock"
            stock = _run_worker("stock", data, stock_out, stock_sw)
            reference = _segmentations(stock_out)
            bodies = _body_masks(data)
            same = {"whole": [1.0, 1.0], "inside": [1.0, 1.0], "outside": 0}
            rows.append(_row(name, n, "(a) monai.bundle run", stock, flop, stock, same, stock_sw))
            print(rows[-1]["line"], flush=True)
            backends = list(reversed(available_backends()))
            for worker in [*backends, *(f"{backends[-1]}:{variant}" for variant in VARIANTS if variant)]:
                out = work / f"out-{name}-{worker.replace(':', '-')}"
                stats = _run_worker(worker, data, out)
                compared = _compare(_segmentations(out), reference, bodies)
                label = f"(b) unetseg infer --backend {worker.split(':')[0]}"
                label = " ".join([label, *VARIANTS[worker.partition(":")[2]]])
                rows.append(_row(name, n, label, stats, flop, stock, compared, stats["sw_batch_size"]))
                print(rows[-1]["line"], flush=True)
        _print_tables(isolated, rows, peak)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _row(volume, n, label, stats, flop, stock, compared, sw) -> dict:
    net = stats["seconds"]
    run = stats["run_seconds"]
    gflops = stats["windows"] * flop / net / 1e9 if net else 0.0
    row = {
        "volume": volume,
        "n": n,
        "label": label,
        "sw": sw,
        "windows": stats["windows"],
        "wall": stats["wall_seconds"],
        "per_case": run / n,
        "net": net,
        "share": net / run if run else 0.0,
        "gflops": gflops,
        "rss": stats["peak_rss_mb"],
        "ratio": stock["wall_seconds"] / stats["wall_seconds"],
        "ratio_run": stock["run_seconds"] / run,
        "compared": compared,
        "logit": stats.get("max_abs_logit_diff", 0.0),
    }
    row["line"] = (
        f"| {volume} ({n}) | {label} | {sw} | {row['windows']} | {row['wall']:.1f} | {row['per_case']:.2f} | "
        f"{row['gflops']:.0f} | {100 * row['share']:.0f}% | {row['rss']:.0f} | {row['ratio']:.2f}x / "
        f"{row['ratio_run']:.2f}x | {compared['whole'][0]:.4f} / {compared['whole'][1]:.4f} | "
        f"{compared['inside'][0]:.4f} / {compared['inside'][1]:.4f} | {compared['outside']} | {row['logit']:.1e} |"
    )
    return row


def _print_tables(isolated, rows, peak) -> None:
    print("\n### Network in isolation (one window, best of 5)\n")
    print("| backend | window batch | s per window | GFLOP/s | share of the fp32 matmul peak |")
    print("|---|---|---|---|---|")
    for r in isolated:
        print(
            f"| {r['backend']} | {r['batch']} | {r['s_per_window']:.3f} | {r['gflops']:.0f} | "
            f"{100 * r['gflops'] / peak:.0f}% |"
        )
    print("\n### End to end\n")
    print(
        "| volume (cases) | run | window batch | windows run | process wall s | s per case (after load) | "
        "network GFLOP/s | network share | peak RSS MB | speed-up vs (a): wall / after load | "
        "min Dice vs (a), ant / post | same, inside the body | voxels differing outside the body | "
        "max logit diff (check window) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r["line"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--dataset_dir", type=Path, default=ROOT.parent / "shared" / "data" / "msd-hippocampus"
    )
    parser.add_argument("--shared_dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sw", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
