"""The EM bundle's decision rule, calibrated on slices its networks did not train on: p(cell) threshold and seeds.

    # 1. two-fold models on the training slices (writes the fold datalists, prints the two training commands)
    python scripts/em_calibrate.py folds --out_dir /tmp/em_folds
    # 2. sweep on the out-of-fold slices and the unused gap slices; --validation adds the chosen rule's validation
    python scripts/em_calibrate.py sweep --fold_dir /tmp/em_folds [--validation]
    # a candidate network not (yet) in the bundle: its weights predict the gap slices and validation
    python scripts/em_calibrate.py sweep --fold_dir D --weights D/full/checkpoint_epoch=N.pt
    # 5-fold cross-validation over all 24 labelled slices (scripts/em_cv.py train + predict first): the rule
    # chosen on the 24 out-of-fold slices, and the nested cross-validated scores (rule chosen without the fold);
    # then the shipping decision between the runs given (see decide)
    python scripts/em_calibrate.py cv --cv_dir D [D2 ...]
    # how low a threshold can take the pixel error of a run's out-of-fold maps: one threshold for all slices, and
    # the best threshold of each slice chosen with its label (an oracle: a bound, not an estimate); and where the
    # wrong pixels sit (next to the annotated boundary, or farther)
    python scripts/em_calibrate.py bound --cv_dir D [D2 ...]

Why folds: the shipped network fits its training slices 0-17 (training Rand error 0.057 against 0.115 on
validation), so a post-processing tuned on them learns nothing about the gaps an unseen slice has. As nnU-Net
determines its post-processing on cross-validation predictions, two networks are trained with the bundle's own
``train.json`` on halves of the training block (slices 0-8 and 9-17); each predicts the other half except the
slice next to its own block (fold 0 predicts 10-17, fold 1 predicts 0-7). With the shipped network's predictions of
the unused gap slices 18-19 (never trained on) these 18 slices are the calibration set. Validation (20-23) plays
no part in the choice.

The sweep runs the bundle's own preprocessing and overlap-tile inferer (the 8-fold averaging included) once per
slice, then every decision rule on the cached p(cell) maps: the plain threshold
(:class:`app.transforms.threshold.ForegroundThresholdd`) and the seeded watershed
(:class:`app.transforms.watershed.SeededWatershedd`). It prints the calibration table and the rule it chooses:

    the lowest mean adapted Rand error over the calibration slices among the rules whose mean calibration pixel
    error is at most ``PIXEL_SLACK`` above the lowest of any rule

(the Rand error is the target this calibration is for; the slack keeps the pixel error where it was).

The shipping decision of ``cv`` (:func:`decide`, written down on 2026-12-06 before the warm-restart run was
scored): among the runs given, the candidate is the one with the lowest nested Rand error among those whose nested
pixel error is at most ``PIXEL_SLACK`` above the lowest (the rule criterion, applied to runs). Its fold ensemble
replaces the shipped single network if, on the six labelled slices the shipped network never trained on (18-23:
the unused gap and its validation block, on which its checkpoint was selected, which favours it), the candidate's
out-of-fold fold networks under their nested rules have a lower mean adapted Rand error than the shipped network
under its 0.4.x rule, and a mean pixel error at most ``PIXEL_SLACK`` above its. Both predictors are scored on the
same slices, none of which either trained on; a member of the ensemble stands for the ensemble (the ensemble of
five such networks is expected to be at least as good, and cannot be scored on these slices without leakage).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "em_membrane_segmentation"
#: (training slices, predicted slices) per fold; the slice next to the training block is left out
FOLDS = ((range(0, 9), range(10, 18)), (range(9, 18), range(0, 8)))
GAP = range(18, 20)
VALIDATION = range(20, 24)
#: the labelled slices the shipped single network never trained on (the unused gap and its validation block)
UNSEEN_BY_SHIPPED = range(18, 24)
THRESHOLDS = (0.5, 0.3, 0.2, 0.15, 0.1)
SEED_THRESHOLDS = (None, 0.8, 0.9, 0.95, 0.98)  # None: the plain threshold
MIN_SEED_SIZES = (0, 30, 100)
PIXEL_SLACK = 0.002


@dataclass(frozen=True)
class Rule:
    threshold: float
    seed_threshold: float | None = None
    min_seed_size: int = 0

    def __str__(self) -> str:
        if self.seed_threshold is None:
            return f"p > {self.threshold}"
        return f"p > {self.threshold}, seeds p > {self.seed_threshold} (>= {self.min_seed_size} px)"

    def transform(self):  # noqa: ANN201 - a MONAI MapTransform
        from app.transforms.threshold import ForegroundThresholdd
        from app.transforms.watershed import SeededWatershedd

        if self.seed_threshold is None:
            return ForegroundThresholdd("pred", threshold=self.threshold)
        return SeededWatershedd(
            "pred",
            threshold=self.threshold,
            seed_threshold=self.seed_threshold,
            min_seed_size=self.min_seed_size,
        )


#: the decision rule of the shipped 0.4.x single network
SHIPPED_RULE = Rule(0.15, 0.9, 100)


def rules() -> list[Rule]:
    out = [Rule(t) for t in THRESHOLDS]
    for t, s, m in itertools.product(THRESHOLDS, SEED_THRESHOLDS[1:], MIN_SEED_SIZES):
        out.append(Rule(t, s, m))
    return out


def _item(k: int) -> dict[str, str]:
    return {"image": f"train/image/{k}.png", "label": f"train/label/{k}.png"}


def write_folds(out_dir: Path, dataset_dir: Path) -> None:
    for i, (train, predict) in enumerate(FOLDS):
        fold = out_dir / f"fold{i}"
        fold.mkdir(parents=True, exist_ok=True)
        datalist = {"training": [_item(k) for k in train], "validation": [_item(k) for k in predict]}
        (fold / "datalist.json").write_text(json.dumps(datalist, indent=1))
        print(
            f"python -m monai.bundle run --config_file {BUNDLE / 'configs' / 'train.json'} "
            f"--dataset_dir {dataset_dir} --datalist_file {fold / 'datalist.json'} "
            f"--ckpt_dir {fold} --output_dir {fold}"
        )


def final_checkpoint(fold: Path) -> Path:
    """The last epoch's full-state checkpoint of a fold (not its best on the predicted slices: no selection on
    them)."""
    from app.engines.training.handlers import latest_checkpoint

    found = latest_checkpoint(fold)
    if found is None:
        raise SystemExit(f"{fold}: no checkpoint_epoch=N.pt; train the fold first")
    return found


def network_state(checkpoint: Path) -> dict:
    """The network's state dict in a checkpoint file: a trainer checkpoint holds ``{"network": ...,
    "optimizer": ...}``, a ``model.pt`` ``{"model": ...}`` or the state dict itself."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return state.get("network", state.get("model", state))


class SlicePredictor:
    """The bundle's preprocessing, network and inferer, loaded once (on first use); each call predicts slices
    with the given weights (a trainer checkpoint or a ``model.pt``; ``None``: the shipped ``models/model.pt``)."""

    def __init__(self, dataset_dir: Path, device: str = "cpu") -> None:
        self.dataset_dir = dataset_dir
        self.device = device
        self._bundle = None
        self._single = None

    def __call__(self, weights: Path | None, slices: range) -> dict[int, np.ndarray]:
        """Softmax probabilities ``(2, W, H)`` of each slice (PILReader's axis order, kept for the rules)."""
        import torch

        from app.inference import load_bundle
        from app.inference.options import InferenceOptions
        from app.networks.ensemble import EnsembleNetwork

        if self._bundle is None:
            self._bundle = load_bundle(BUNDLE, InferenceOptions(device=self.device, backend="torch"))
            shipped = self._bundle.network
            # one network of the shipped architecture, for a fold's or a candidate's weights
            self._single = copy.deepcopy(
                shipped.members[0] if isinstance(shipped, EnsembleNetwork) else shipped
            )
        bundle = self._bundle
        if weights is None:
            network = bundle.network  # the shipped predictor as it is
        else:
            self._single.load_state_dict(network_state(weights))
            network = self._single
        out = {}
        for k in slices:
            data = bundle.preprocessing({"image": str(self.dataset_dir / _item(k)["image"])})
            with torch.no_grad():
                logits = bundle.inferer(data["image"][None].as_tensor().to(bundle.device), network)
            out[k] = torch.softmax(logits, 1)[0].cpu().numpy()
            print(f"  p(cell) of slice {k} ({weights or 'shipped model'})", flush=True)
        return out


def labels_of(slices, dataset_dir: Path) -> dict[int, np.ndarray]:
    from PIL import Image

    return {k: np.asarray(Image.open(dataset_dir / _item(k)["label"])) > 127 for k in slices}


def score(
    rule: Rule, probabilities: dict[int, np.ndarray], labels: dict[int, np.ndarray]
) -> tuple[float, float]:
    """Mean adapted Rand error and pixel error of ``rule`` over the slices."""
    rand, pixel = np.mean(list(slice_scores(rule, probabilities, labels).values()), axis=0)
    return float(rand), float(pixel)


def choose(table: dict[Any, tuple[float, float]]) -> Any:
    """The key with the lowest mean Rand error among those whose mean pixel error is at most ``PIXEL_SLACK`` above
    the lowest (rules here; :func:`decide` applies it to cross-validation runs)."""
    best_pixel = min(pixel for _, pixel in table.values())
    allowed = [rule for rule, (_, pixel) in table.items() if pixel <= best_pixel + PIXEL_SLACK]
    return min(allowed, key=lambda rule: table[rule][0])


def calibration_probabilities(
    fold_dir: Path, predict: SlicePredictor, weights: Path | None = None
) -> dict[int, np.ndarray]:
    """Out-of-fold and gap-slice probabilities (the gap slices predicted with ``weights``, ``None``: the shipped
    model), cached in ``fold_dir/calibration_probabilities.npz`` (delete it after retraining a fold, changing the
    bundle's inferer or the gap-slice weights)."""
    cache = fold_dir / "calibration_probabilities.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return {int(k): stored[k] for k in stored.files}
    probabilities: dict[int, np.ndarray] = {}
    for i, (_, predicted) in enumerate(FOLDS):
        probabilities |= predict(final_checkpoint(fold_dir / f"fold{i}"), predicted)
    probabilities |= predict(weights, GAP)
    np.savez_compressed(cache, **{str(k): p for k, p in probabilities.items()})
    return probabilities


def sweep(fold_dir: Path, dataset_dir: Path, validation: bool, weights: Path | None = None) -> None:
    predict = SlicePredictor(dataset_dir)
    probabilities = calibration_probabilities(fold_dir, predict, weights)
    labels = labels_of(probabilities, dataset_dir)
    table = {rule: score(rule, probabilities, labels) for rule in rules()}
    chosen = choose(table)
    print(
        f"\ncalibration: {len(probabilities)} slices {sorted(probabilities)}; mean adapted Rand error / pixel error"
    )
    print("| rule | Rand error | pixel error |\n|---|---|---|")
    for rule, (rand, pixel) in table.items():
        mark = "**" if rule == chosen else ""
        print(f"| {mark}{rule}{mark} | {rand:.4f} | {pixel:.4f} |")
    print(f"\nchosen: {chosen} (lowest Rand error with pixel error <= best + {PIXEL_SLACK})")
    if validation:
        val = predict(weights, VALIDATION)
        val_labels = labels_of(VALIDATION, dataset_dir)
        baseline = Rule(0.15)
        for rule in dict.fromkeys((chosen, baseline)):
            rand, pixel = score(rule, val, val_labels)
            print(f"validation {sorted(val)}, {rule}: Rand error {rand:.4f}, pixel error {pixel:.4f}")


#: the columns of :func:`slice_scores` with ``all_scores``, as the tables print them
ALL_SCORES = ("Rand error", "pixel error", "V_rand", "V_info", "pixel error, 1 - F (leaderboard)")


def _markdown_header(*columns: str) -> str:
    """A markdown table's header and separator rows."""
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def _header(*leading: str) -> str:
    """A markdown table header: the ``leading`` columns, then :data:`ALL_SCORES`."""
    return _markdown_header(*leading, *ALL_SCORES)


def slice_scores(
    rule: Rule,
    probabilities: dict[int, np.ndarray],
    labels: dict[int, np.ndarray],
    *,
    all_scores: bool = False,
) -> dict[int, tuple[float, ...]]:
    """Per slice: (adapted Rand error, pixel error), plus the leaderboard's (V_rand, V_info, pixel error as
    ``1 - F-score`` of cell pixels) with ``all_scores`` (:data:`ALL_SCORES`)."""
    import torch

    from app.evaluation.em import adapted_rand_error, pixel_error, pixel_fscore_error
    from app.evaluation.em_thinned import v_info, v_rand

    transform = rule.transform()
    out = {}
    for k, p in probabilities.items():
        cell = transform({"pred": torch.from_numpy(p)})["pred"][0].numpy().T > 0
        values = [adapted_rand_error(cell, labels[k]), pixel_error(cell, labels[k])]
        if all_scores:
            values += [v_rand(cell, labels[k]), v_info(cell, labels[k]), pixel_fscore_error(cell, labels[k])]
        out[k] = tuple(values)
    return out


def _mean_table(
    per_slice: dict[Rule, dict[int, tuple[float, ...]]], slices
) -> dict[Rule, tuple[float, float]]:
    return {
        rule: (float(np.mean([v[k][0] for k in slices])), float(np.mean([v[k][1] for k in slices])))
        for rule, v in per_slice.items()
    }


def nested_choices(per_slice: dict[Rule, dict[int, tuple[float, ...]]], folds: list[list[int]]) -> list[Rule]:
    """For each fold, the rule :func:`choose` picks on the other folds' slices only."""
    choices = []
    for held_out in folds:
        others = [k for fold in folds if fold is not held_out for k in fold]
        choices.append(choose(_mean_table(per_slice, others)))
    return choices


def held_out_blocks() -> list[list[int]]:
    """The held-out block of each fold of ``configs/folds.json``, in fold order."""
    return [f["held_out"] for f in json.loads((BUNDLE / "configs" / "folds.json").read_text())["folds"]]


def oof_probabilities(cv_dir: Path) -> dict[int, np.ndarray]:
    """``cv_dir/oof_probabilities.npz`` (p(cell) per slice, from ``scripts/em_cv.py predict``) as the ``(2, W, H)``
    float32 probabilities the rules take."""
    path = cv_dir / "oof_probabilities.npz"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run scripts/em_cv.py train and predict first")
    with np.load(path) as stored:
        cells = {int(k): stored[k].astype(np.float32) for k in stored.files}
    return {k: np.stack([1.0 - p, p]) for k, p in sorted(cells.items())}


@dataclass(frozen=True)
class CrossValidation:
    """One cross-validation run's outcome: the rule chosen on all its out-of-fold slices (the one to ship) and
    the nested per-slice scores (:data:`ALL_SCORES`), the honest estimate."""

    cv_dir: Path
    chosen: Rule
    nested: dict[int, tuple[float, ...]]

    def mean(self, slices=None) -> np.ndarray:
        keys = sorted(self.nested) if slices is None else list(slices)
        return np.mean([self.nested[k] for k in keys], axis=0)


def cross_validate(cv_dir: Path, dataset_dir: Path) -> CrossValidation:
    """The rule chosen on all out-of-fold slices (the one to ship), and the nested cross-validated scores."""
    folds = held_out_blocks()
    probabilities = oof_probabilities(cv_dir)
    if sorted(probabilities) != sorted(k for fold in folds for k in fold):
        raise SystemExit(
            f"{cv_dir}: out-of-fold slices {sorted(probabilities)} do not cover the folds {folds}"
        )
    labels = labels_of(probabilities, dataset_dir)
    per_slice = {rule: slice_scores(rule, probabilities, labels) for rule in rules()}
    table = _mean_table(per_slice, list(probabilities))
    chosen = choose(table)
    print(f"\n{cv_dir}")
    print(f"out-of-fold: {len(probabilities)} slices; mean adapted Rand error / pixel error per rule")
    print("| rule | Rand error | pixel error |\n|---|---|---|")
    for rule, (rand, pixel) in table.items():
        mark = "**" if rule == chosen else ""
        print(f"| {mark}{rule}{mark} | {rand:.4f} | {pixel:.4f} |")
    print(f"\nchosen on all {len(probabilities)} slices (the rule to ship): {chosen}")
    nested: dict[int, tuple[float, ...]] = {}
    print("\nnested: per fold, the rule chosen on the other folds, scored on the fold's held-out block")
    print(_header("fold", "slices", "rule (chosen without the fold)"))
    for i, (held_out, rule) in enumerate(zip(folds, nested_choices(per_slice, folds), strict=True)):
        scores = slice_scores(rule, {k: probabilities[k] for k in held_out}, labels, all_scores=True)
        nested |= scores
        mean = np.mean(list(scores.values()), axis=0)
        print(
            f"| {i} | {held_out[0]}-{held_out[-1]} | {rule} | " + " | ".join(f"{v:.4f}" for v in mean) + " |"
        )
    result = CrossValidation(cv_dir, chosen, nested)
    print("| **all** | 0-23 | | " + " | ".join(f"**{v:.4f}**" for v in result.mean()) + " |")
    for name, rule in (("chosen on all slices", chosen), ("0.4.x rule", SHIPPED_RULE)):
        pooled = np.mean(list(slice_scores(rule, probabilities, labels, all_scores=True).values()), axis=0)
        print(
            f"{name} ({rule}), all 24 slices: "
            + ", ".join(f"{n} {v:.4f}" for n, v in zip(ALL_SCORES, pooled, strict=True))
        )
    return result


#: the thresholds :func:`pixel_error_bound` scans
BOUND_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class PixelErrorBound:
    """The plain-threshold pixel error of a set of p(cell) maps: ``global_threshold`` (one for all slices) with its
    mean pixel error, and the mean over slices of each slice's lowest pixel error at any threshold (``oracle``:
    chosen with the slice's own label, so no decision rule that thresholds these maps does better on average)."""

    global_threshold: float
    global_error: float
    oracle: dict[int, float]

    def oracle_mean(self, slices=None) -> float:
        keys = sorted(self.oracle) if slices is None else list(slices)
        return float(np.mean([self.oracle[k] for k in keys]))


def pixel_error_bound(
    probabilities: dict[int, np.ndarray], labels: dict[int, np.ndarray], thresholds=BOUND_THRESHOLDS
) -> PixelErrorBound:
    """Pixel error of ``p(cell) > t`` (``probabilities`` as :func:`oof_probabilities` gives them, in PILReader's
    axis order, hence the transpose) for every ``t`` of ``thresholds``, against the labels."""
    from app.evaluation.em import pixel_error

    errors = {
        k: np.array([pixel_error(p[1].T > t, labels[k]) for t in thresholds])
        for k, p in probabilities.items()
    }
    mean = np.mean(list(errors.values()), axis=0)
    best = int(np.argmin(mean))
    return PixelErrorBound(
        float(thresholds[best]), float(mean[best]), {k: float(e.min()) for k, e in errors.items()}
    )


def _distance_to_other_class(true_cell: np.ndarray) -> np.ndarray:
    """Chessboard distance of every pixel to the nearest label pixel of the other class (1 next to the boundary)."""
    from scipy import ndimage

    true_cell = np.asarray(true_cell, bool)
    if true_cell.all() or not true_cell.any():  # one class only: no boundary, every pixel is far from one
        return np.full(true_cell.shape, max(true_cell.shape), np.int32)
    inside = ndimage.distance_transform_cdt(true_cell, metric="chessboard")
    outside = ndimage.distance_transform_cdt(~true_cell, metric="chessboard")
    return np.where(true_cell, inside, outside)


def boundary_fraction(true_cell: np.ndarray) -> float:
    """The fraction of a label's pixels next to its cell/membrane boundary (ring 1 of :func:`error_rings`, both
    sides): the amount of boundary in a slice, which small cells raise."""
    return float(np.mean(_distance_to_other_class(true_cell) == 1))


def error_rings(cell: np.ndarray, true_cell: np.ndarray, rings: int = 2) -> np.ndarray:
    """Where the wrong pixels of a cell map sit, as fractions of the slice: ``rings + 1`` values, the pixels wrong
    at chessboard distance 1, 2, ... ``rings`` from the nearest pixel of the other class in the label (ring 1: next
    to the annotated boundary, on either side of it), then those farther away. They sum to the pixel error."""
    wrong = np.asarray(cell, bool) != np.asarray(true_cell, bool)
    ring = np.minimum(_distance_to_other_class(true_cell)[wrong], rings + 1)
    return np.bincount(ring, minlength=rings + 2)[1:] / wrong.size


def mean_maps(runs: list[dict[int, np.ndarray]]) -> dict[int, np.ndarray]:
    """The average of several runs' out-of-fold maps, slice by slice: an ensemble across runs that is still
    out-of-fold (each run's map of a slice comes from the fold network that did not train on it)."""
    slices = sorted(runs[0])
    if any(sorted(run) != slices for run in runs):
        raise SystemExit("the runs' out-of-fold maps do not cover the same slices")
    return {k: np.mean([run[k] for run in runs], axis=0) for k in slices}


def print_bounds(cv_dirs: list[Path], dataset_dir: Path) -> None:
    folds = held_out_blocks()
    print(
        "plain-threshold pixel error of the out-of-fold maps (oracle: each slice's best threshold, by its label)"
    )
    print(
        _markdown_header(
            "run",
            "best single threshold",
            "its pixel error",
            "oracle, all 24",
            *(f"oracle {f[0]}-{f[-1]}" for f in folds),
        )
    )
    maps = [(str(cv_dir), oof_probabilities(cv_dir)) for cv_dir in cv_dirs]
    if len(maps) > 1:  # every slice predicted by one network of each run, none of which trained on it
        maps.append((f"mean of the {len(maps)} runs' maps", mean_maps([p for _, p in maps])))
    rings = []
    for cv_dir, probabilities in maps:
        labels = labels_of(probabilities, dataset_dir)
        bound = pixel_error_bound(probabilities, labels)
        print(
            f"| {cv_dir} | p > {bound.global_threshold} | {bound.global_error:.4f} | {bound.oracle_mean():.4f} | "
            + " | ".join(f"{bound.oracle_mean(f):.4f}" for f in folds)
            + " |"
        )
        t = bound.global_threshold
        rings.append((cv_dir, t, {k: error_rings(p[1].T > t, labels[k]) for k, p in probabilities.items()}))
    scored = sorted(set().union(*(per_slice for _, _, per_slice in rings)))
    boundary = {k: boundary_fraction(true) for k, true in labels_of(scored, dataset_dir).items()}
    print(
        "\nwhere the wrong pixels sit at the best single threshold: next to the annotated boundary (ring 1, "
        "chessboard distance 1 from the label's other class), ring 2, farther; then the pixel error per boundary "
        "pixel of the label (pixel error / the fraction of ring-1 pixels, per slice, averaged)"
    )
    print(
        _markdown_header(
            "run",
            "threshold",
            "ring 1",
            "ring 2",
            "farther",
            "per boundary pixel, all",
            *(f"{f[0]}-{f[-1]}" for f in folds),
        )
    )
    print(
        "| labels: boundary pixel fraction | | | | | "
        + " | ".join(f"{np.mean([boundary[k] for k in f]):.4f}" for f in [sorted(boundary), *folds])
        + " |"
    )
    for cv_dir, t, per_slice in rings:
        mean = np.mean(list(per_slice.values()), axis=0)
        ratio = {
            k: v.sum() / boundary[k] if boundary[k] else np.nan for k, v in per_slice.items()
        }  # nan: no boundary
        print(
            f"| {cv_dir} | p > {t} | "
            + " | ".join(f"{v:.4f}" for v in mean)
            + " | "
            + " | ".join(f"{np.nanmean([ratio[k] for k in f]):.3f}" for f in [sorted(ratio), *folds])
            + " |"
        )


def shipped_unseen_scores(
    cache_dir: Path, dataset_dir: Path, weights: Path | None = None
) -> dict[int, tuple[float, ...]]:
    """The single network the runs are compared with (``weights``: 0.4.x's ``models/model.pt``, 0.4.x rule) on the
    slices it never trained on (18-23), its p(cell) maps cached in ``cache_dir/shipped_unseen_probabilities.npz``.

    Since 0.5.0 the bundle's own ``models/model.pt`` is the fold ensemble, which trained on 18-23, so without the
    cache the single network's weights must be given: ``git show 9e31f74:bundles/em_membrane_segmentation/models/
    model.pt > W`` (the 0.4.4 network; its full-state checkpoint layout loads the same way)."""
    cache = cache_dir / "shipped_unseen_probabilities.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            probabilities = {int(k): stored[k].astype(np.float32) for k in stored.files}
    elif weights is None:
        raise SystemExit(
            f"{cache} is missing: pass --weights, the single network to compare with (module docstring); the "
            "bundle's models/model.pt is the fold ensemble since 0.5.0 and trained on these slices"
        )
    else:
        probabilities = SlicePredictor(dataset_dir)(weights, UNSEEN_BY_SHIPPED)
        np.savez_compressed(cache, **{str(k): p for k, p in probabilities.items()})
    return slice_scores(SHIPPED_RULE, probabilities, labels_of(probabilities, dataset_dir), all_scores=True)


def decide(runs: list[CrossValidation], shipped: dict[int, tuple[float, ...]]) -> CrossValidation | None:
    """The shipping decision (written down before the 2026-12-06 warm-restart run was scored; see the module
    docstring): the run to ship, or None when the shipped single network stays."""
    table = {run.cv_dir: (float(rand), float(pixel)) for run in runs for rand, pixel in [run.mean()[:2]]}
    candidate = {run.cv_dir: run for run in runs}[choose(table)]  # the rule criterion, applied to runs
    unseen = list(UNSEEN_BY_SHIPPED)
    ours, theirs = candidate.mean(unseen), np.mean([shipped[k] for k in unseen], axis=0)
    print(
        "\nruns (nested, 24 slices): " + "; ".join(f"{d}: {r:.4f} / {p:.4f}" for d, (r, p) in table.items())
    )
    print(f"candidate: {candidate.cv_dir} (lowest nested Rand error, pixel error <= best + {PIXEL_SLACK})")
    print(
        f"\nslices {unseen[0]}-{unseen[-1]}, which neither the shipped network nor the candidate's fold networks trained on"
    )
    print(_header("predictor", "rule"))
    print("| fold networks (out-of-fold) | nested | " + " | ".join(f"{v:.4f}" for v in ours) + " |")
    print(f"| shipped network | {SHIPPED_RULE} | " + " | ".join(f"{v:.4f}" for v in theirs) + " |")
    ship = ours[0] < theirs[0] and ours[1] <= theirs[1] + PIXEL_SLACK
    print(
        f"verdict: {'ship' if ship else 'do not ship'} the ensemble of {candidate.cv_dir} "
        f"(Rand error {ours[0]:.4f} {'<' if ours[0] < theirs[0] else '>='} {theirs[0]:.4f}; "
        f"pixel error {ours[1]:.4f} {'<=' if ours[1] <= theirs[1] + PIXEL_SLACK else '>'} {theirs[1]:.4f} + {PIXEL_SLACK})"
    )
    return candidate if ship else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", choices=("folds", "sweep", "cv", "bound"))
    parser.add_argument(
        "--dataset_dir", type=Path, default=BUNDLE.parents[2] / "shared" / "data" / "isbi2012-em"
    )
    parser.add_argument("--out_dir", "--fold_dir", dest="fold_dir", type=Path, default=Path("/tmp/em_folds"))
    parser.add_argument(
        "--cv_dir",
        type=Path,
        nargs="+",
        default=None,
        help="cv, bound: scripts/em_cv.py output folders (several: the shipping decision between them, see decide)",
    )
    parser.add_argument("--validation", action="store_true", help="also score the chosen rule on validation")
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="a candidate full-training checkpoint for the gap slices and validation (default: the shipped model)",
    )
    args = parser.parse_args(argv)
    if args.command == "folds":
        write_folds(args.fold_dir, args.dataset_dir.resolve())
    elif args.command == "cv":
        if args.cv_dir is None:
            parser.error("cv needs --cv_dir")
        runs = [cross_validate(cv_dir, args.dataset_dir) for cv_dir in args.cv_dir]
        decide(runs, shipped_unseen_scores(args.cv_dir[0], args.dataset_dir, args.weights))
    elif args.command == "bound":
        if args.cv_dir is None:
            parser.error("bound needs --cv_dir")
        print_bounds(args.cv_dir, args.dataset_dir)
    else:
        sweep(args.fold_dir, args.dataset_dir, args.validation, args.weights)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
