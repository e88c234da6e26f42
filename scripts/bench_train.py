"""Training and inference throughput of the hippocampus bundle, on the real data, printed as a markdown table.

    python scripts/bench_train.py --dataset_dir ../shared/data/msd-hippocampus [--iterations 30]

Runs the bundle's own train.json (real network, real transforms, real loss) for ``--iterations`` iterations on
the training split, timing with Ignite events:

* data-loading share = time between ``GET_BATCH_STARTED`` and ``GET_BATCH_COMPLETED`` (the trainer waiting for
  the DataLoader) over the whole iteration time; the weight maps are cached by ``CacheDataset``, so this is the
  random augmentation only (the cache fill is timed separately);
* seconds per epoch = seconds per iteration x iterations per epoch of the full training split;

then inference.json on ``--infer_cases`` validation images (sliding window, inversion, writing), per case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "hippocampus_mri_segmentation"


def _workflow(config: str, workflow_type: str, **override):
    """The bundle's ``configs/<config>`` as an initialised ``ConfigWorkflow`` (bundle_root set)."""
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / config),
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=None,
        workflow_type=workflow_type,
        bundle_root=str(BUNDLE),
        **override,
    )
    workflow.initialize()
    return workflow


def bench_training(dataset_dir: Path, iterations: int, out: Path) -> dict[str, float]:
    from ignite.engine import Events

    workflow = _workflow(
        "train.json",
        "train",
        dataset_dir=str(dataset_dir),
        ckpt_dir=str(out / "models"),
        output_dir=str(out / "eval"),
        val_interval=10**6,
        max_epochs=1,
    )
    parser = workflow.parser
    n_train = len(parser.get_parsed_content("train_datalist"))
    batch_size = parser.get_parsed_content("batch_size")
    start = time.perf_counter()
    trainer = parser.get_parsed_content("train#trainer")  # builds the CacheDataset: load + weight maps
    cache_s = time.perf_counter() - start

    marks: dict[str, float] = {}
    waits: list[float] = []
    steps: list[float] = []

    @trainer.on(Events.GET_BATCH_STARTED)
    def _get_started(engine):
        marks["get"] = time.perf_counter()
        marks.setdefault("iter", marks["get"])

    @trainer.on(Events.GET_BATCH_COMPLETED)
    def _get_done(engine):
        waits.append(time.perf_counter() - marks["get"])

    @trainer.on(Events.ITERATION_COMPLETED)
    def _iteration_done(engine):
        now = time.perf_counter()
        steps.append(now - marks.pop("iter"))
        if engine.state.iteration >= iterations:
            engine.terminate()

    trainer.run()
    # drop the first iterations (worker start-up, allocator warm-up)
    skip = min(3, len(steps) - 1)
    step_s = sum(steps[skip:]) / len(steps[skip:])
    wait_s = sum(waits[skip:]) / len(waits[skip:])
    return {
        "cache_fill_s": cache_s,
        "cases_cached": n_train,
        "s_per_iteration": step_s,
        "iterations_per_s": 1.0 / step_s,
        "samples_per_s": batch_size / step_s,
        "s_per_epoch": step_s * (n_train // batch_size),
        "data_loading_share": wait_s / step_s,
        "iterations_timed": len(steps) - skip,
    }


def bench_inference(dataset_dir: Path, n_cases: int, out: Path) -> dict[str, float]:
    from ignite.engine import Events

    datalist = json.loads((BUNDLE / "configs" / "datalist.json").read_text())["validation"][:n_cases]
    in_dir = out / "infer_in"
    in_dir.mkdir(parents=True)
    for item in datalist:
        (in_dir / Path(item["image"]).name).symlink_to((dataset_dir / item["image"]).resolve())
    workflow = _workflow(
        "inference.json", "infer", dataset_dir=str(in_dir), output_dir=str(out / "infer_out")
    )
    evaluator = workflow.parser.get_parsed_content("evaluator")
    times: list[float] = []
    marks: dict[str, float] = {}
    evaluator.add_event_handler(
        Events.ITERATION_STARTED, lambda e: marks.__setitem__("t", time.perf_counter())
    )
    evaluator.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: times.append(time.perf_counter() - marks["t"])
    )
    start = time.perf_counter()
    evaluator.run()
    total = time.perf_counter() - start
    return {
        "cases": len(times),
        "s_per_case_engine": sum(times) / len(times),
        "s_per_case_total": total / len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_dir", type=Path, default=Path("../shared/data/msd-hippocampus"))
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--infer_cases", type=int, default=10)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        train = bench_training(args.dataset_dir.resolve(), args.iterations, Path(tmp))
        infer = bench_inference(args.dataset_dir.resolve(), args.infer_cases, Path(tmp))
    load = os.getloadavg()
    print(
        f"\nhippocampus bundle, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), load average {load[0]:.1f}\n"
    )
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| cache fill (load + weight maps), {train['cases_cached']} cases | {train['cache_fill_s']:.1f} s |"
    )
    print(f"| training iterations/s (batch 2, patch 40x56x40) | {train['iterations_per_s']:.2f} |")
    print(f"| training samples/s | {train['samples_per_s']:.2f} |")
    print(f"| seconds per epoch ({train['cases_cached']} cases) | {train['s_per_epoch']:.0f} s |")
    print(f"| data-loading share of the step time | {100 * train['data_loading_share']:.1f} % |")
    print(
        f"| inference s/case, engine iteration ({infer['cases']} validation cases) | {infer['s_per_case_engine']:.2f} s |"
    )
    print(f"| inference s/case incl. engine start | {infer['s_per_case_total']:.2f} s |")


if __name__ == "__main__":
    main()
