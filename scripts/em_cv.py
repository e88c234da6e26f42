"""Cross-validated EM networks: train the folds of ``configs/folds.json``, predict their held-out slices, pack
their weights for the ensemble.

    # 1. train every fold with the bundle's own train.json (P folds at a time; --resume continues each fold)
    python scripts/em_cv.py train --out_dir D [--folds 0 1 2 3 4] [--max_epochs 160] [--parallel 5] \
        [--num_workers 3] [--num_threads 2]
    # 2. out-of-fold probabilities: each fold's last epoch predicts its held-out block (8 rotations/mirrorings)
    python scripts/em_cv.py predict --out_dir D          # -> D/oof_probabilities.npz (p(cell), float16)
    # 3. the fold networks' last epochs as fp16 state dicts, and as one ensemble state dict for the bundle
    python scripts/em_cv.py export --out_dir D [--ensemble bundles/em_membrane_segmentation/models/model.pt]

The same recipe for every fold: ``train.json`` with the fold's datalist, no time budget unless one is given
(``--time_budget_s``, for a shared CPU: a fold then stops at an epoch boundary before it), and its validation run
only once, after the last epoch, on the held-out block (a record, not a selection: the fold's weights are its
last epoch, so nothing is chosen on the slices it predicts). The device is ``train.json``'s own (CUDA when
present). Each fold's output (``checkpoint_epoch=N.pt``, ``train.log``, TensorBoard events) goes to ``D/fold<i>``.
Then ``python scripts/em_calibrate.py sweep --cv_dir D`` calibrates the decision rule on the out-of-fold slices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from em_calibrate import final_checkpoint, network_state

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "em_membrane_segmentation"
FOLDS_FILE = BUNDLE / "configs" / "folds.json"
DEFAULT_DATA = BUNDLE.parents[2] / "shared" / "data" / "isbi2012-em"


def load_folds(path: Path = FOLDS_FILE) -> list[dict[str, list[int]]]:
    """The folds of ``configs/folds.json`` (``held_out``, ``gap``, ``training`` slice indices per fold)."""
    return json.loads(path.read_text())["folds"]


def _item(k: int) -> dict[str, str]:
    return {"image": f"train/image/{k}.png", "label": f"train/label/{k}.png"}


def write_fold_datalist(fold_dir: Path, fold: dict[str, list[int]]) -> Path:
    """``fold_dir/datalist.json`` for ``train.json``: the fold's training slices, its held-out block as validation."""
    fold_dir.mkdir(parents=True, exist_ok=True)
    path = fold_dir / "datalist.json"
    datalist = {
        "training": [_item(k) for k in fold["training"]],
        "validation": [_item(k) for k in fold["held_out"]],
    }
    path.write_text(json.dumps(datalist, indent=4) + "\n")
    return path


def train_command(
    fold_dir: Path,
    dataset_dir: Path,
    max_epochs: int,
    num_workers: int,
    num_threads: int,
    time_budget_s: float | None = None,
    init_checkpoint: Path | None = None,
    learning_rate: float | None = None,
    overrides: dict[str, str] | None = None,
) -> list[str]:
    """The ``monai.bundle run`` command line of one fold (``train.json`` plus overrides by key name).

    ``overrides`` are further ``train.json`` ids and their values (``{"lambda_dice": "0"}``), passed as
    ``--id value`` after the recipe's own, so a variant of the recipe is one flag, the same for every fold."""
    warm_start = [] if init_checkpoint is None else ["--init_checkpoint", str(init_checkpoint)]
    lr = [] if learning_rate is None else ["--learning_rate", str(learning_rate)]
    recipe = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(BUNDLE / "configs" / "train.json"),
        "--bundle_root", str(BUNDLE),
        "--dataset_dir", str(dataset_dir),
        "--datalist_file", str(fold_dir / "datalist.json"),
        "--ckpt_dir", str(fold_dir),
        "--output_dir", str(fold_dir),
        "--max_epochs", str(max_epochs),
        "--val_interval", str(max_epochs),
        # "$None" (a config expression): a plain None override is dropped by monai.bundle run, leaving
        # train.json's own budget in force
        "--time_budget_s", "$None" if time_budget_s is None else str(time_budget_s),
        "--num_workers", str(num_workers),
        "--num_threads", str(num_threads),
        "--resume", "true",
        *warm_start,
        *lr,
    ]  # fmt: skip
    own = {arg[2:] for arg in recipe[3:] if arg.startswith("--")}
    clash = sorted(own & set(overrides or {}))
    if clash:  # monai.bundle run would see the id twice; the recipe has its own option for each of these
        raise ValueError(f"override of {clash}: set by the recipe itself, use em_cv's own option")
    return recipe + [arg for key, value in (overrides or {}).items() for arg in (f"--{key}", value)]


def train(
    out_dir: Path,
    folds: list[int],
    dataset_dir: Path,
    max_epochs: int,
    parallel: int,
    num_workers: int,
    num_threads: int,
    time_budget_s: float | None = None,
    init_from: Path | None = None,
    learning_rate: float | None = None,
    overrides: dict[str, str] | None = None,
) -> int:
    """Train the folds, ``parallel`` at a time, each logging to ``fold<i>/train.log``; returns the worst exit code.

    With ``init_from`` (an earlier run's ``out_dir``), each fold's network starts from that run's last epoch of the
    same fold (a warm restart: a fresh optimizer and schedule, ``learning_rate`` if given), so no fold ever sees
    another fold's held-out block."""
    all_folds = load_folds()
    pending = list(folds)
    running: dict[int, tuple[subprocess.Popen, float]] = {}
    worst = 0
    while pending or running:
        while pending and len(running) < parallel:
            i = pending.pop(0)
            fold_dir = out_dir / f"fold{i}"
            write_fold_datalist(fold_dir, all_folds[i])
            init = None if init_from is None else final_checkpoint(init_from / f"fold{i}")
            command = train_command(
                fold_dir,
                dataset_dir,
                max_epochs,
                num_workers,
                num_threads,
                time_budget_s,
                init,
                learning_rate,
                overrides,
            )
            log = (fold_dir / "train.log").open("a")
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            running[i] = (
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env),
                time.time(),
            )
            print(f"fold {i}: started ({' '.join(command)})", flush=True)
        time.sleep(2)
        for i, (process, started) in list(running.items()):
            if process.poll() is not None:
                del running[i]
                worst = max(worst, process.returncode)
                print(f"fold {i}: exit {process.returncode} after {time.time() - started:.0f} s", flush=True)
    return worst


def predict(out_dir: Path, dataset_dir: Path, device: str = "cpu") -> Path:
    """Each fold's last epoch predicts its held-out block; p(cell) of all held-out slices -> oof_probabilities.npz
    (float16, key = slice index, ``(W, H)`` in PILReader's axis order as ``em_calibrate`` caches it)."""
    from em_calibrate import SlicePredictor

    predictor = SlicePredictor(dataset_dir, device)
    probabilities: dict[str, np.ndarray] = {}
    for i, fold in enumerate(load_folds()):
        checkpoint = final_checkpoint(out_dir / f"fold{i}")
        started = time.time()
        for k, p in predictor(checkpoint, fold["held_out"]).items():
            probabilities[str(k)] = p[1].astype(np.float16)
        print(f"fold {i}: {checkpoint.name} predicted {fold['held_out']} in {time.time() - started:.0f} s")
    path = out_dir / "oof_probabilities.npz"
    np.savez_compressed(path, **probabilities)
    print(f"wrote {path}")
    return path


def export(out_dir: Path, ensemble: Path | None) -> None:
    """``fold<i>_fp16.pt`` (each fold's last-epoch network state, fp16) and, with ``ensemble``, the members' states
    under ``members.<i>.`` in one fp16 state dict (the layout of :class:`app.networks.ensemble.EnsembleNetwork`)."""
    import torch

    combined = {}
    for i in range(len(load_folds())):
        checkpoint = final_checkpoint(out_dir / f"fold{i}")
        state = {k: v.half() if v.is_floating_point() else v for k, v in network_state(checkpoint).items()}
        torch.save(state, out_dir / f"fold{i}_fp16.pt")
        combined |= {f"members.{i}.{k}": v for k, v in state.items()}
        print(f"fold {i}: {checkpoint.name} -> {out_dir / f'fold{i}_fp16.pt'}")
    if ensemble is not None:
        torch.save(combined, ensemble)
        print(f"wrote {ensemble} ({ensemble.stat().st_size / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", choices=("train", "predict", "export"))
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--dataset_dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="default: all folds")
    parser.add_argument("--max_epochs", type=int, default=160)
    parser.add_argument("--parallel", type=int, default=1, help="folds trained at the same time")
    parser.add_argument("--num_workers", type=int, default=0, help="data-loading workers per fold")
    parser.add_argument(
        "--num_threads", type=int, default=max(1, os.cpu_count() or 1), help="torch threads per fold"
    )
    parser.add_argument(
        "--time_budget_s",
        type=float,
        default=None,
        help="stop each fold at the epoch boundary before this many seconds (default: none, the full schedule)",
    )
    parser.add_argument(
        "--init_from",
        type=Path,
        default=None,
        help="train: warm-start each fold from this earlier run's last epoch of the same fold",
    )
    parser.add_argument(
        "--learning_rate", type=float, default=None, help="train: peak learning rate (default: train.json's)"
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="ID=VALUE",
        help="train: a train.json id and its value for every fold, e.g. lambda_dice=0 (repeatable)",
    )
    parser.add_argument("--device", default="cpu", help="predict: auto, cpu or cuda[:N]")
    parser.add_argument(
        "--ensemble", type=Path, default=None, help="export: also write the ensemble state dict"
    )
    args = parser.parse_args(argv)
    dataset_dir = args.dataset_dir.resolve()
    out_dir = args.out_dir.resolve()
    if args.command == "train":
        overrides = {}
        for item in args.override:
            key, sep, value = item.partition("=")
            if not sep or not key:
                parser.error(f"--override needs ID=VALUE, got {item!r}")
            overrides[key] = value
        try:  # the same check every fold's command makes, before any fold starts
            train_command(
                out_dir / "fold0",
                dataset_dir,
                args.max_epochs,
                args.num_workers,
                args.num_threads,
                args.time_budget_s,
                args.init_from,
                args.learning_rate,
                overrides,
            )
        except ValueError as error:
            parser.error(str(error))
        folds = args.folds if args.folds is not None else list(range(len(load_folds())))
        return train(
            out_dir,
            folds,
            dataset_dir,
            args.max_epochs,
            args.parallel,
            args.num_workers,
            args.num_threads,
            args.time_budget_s,
            None if args.init_from is None else args.init_from.resolve(),
            args.learning_rate,
            overrides,
        )
    if args.command == "predict":
        predict(out_dir, dataset_dir, args.device)
    else:
        export(out_dir, args.ensemble)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
