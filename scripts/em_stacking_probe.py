"""Issue 20 probe: can a second-stage pixel classifier on the out-of-fold maps lower the EM pixel error?

Six in ten wrong pixels of the fold networks sit next to the annotated boundary (``em_calibrate.py bound``). If
their placement were predictable from the maps and the image (a systematic width bias that depends on local
appearance), a classifier stacked on the fold networks' out-of-fold p(cell) would move them, as auto-context and
Fiji's trainable segmentation do for EM. Nested, as the decision rule is: for each held-out block of
``configs/folds.json``, the classifier (scikit-learn's histogram gradient boosting) learns on the other blocks'
out-of-fold maps and labels only, and is scored on the held-out block at p > 0.5; the baseline is the first run's
plain threshold, chosen on the same other blocks. No result of this script is shipped.

    pip install scikit-learn   # not a dependency of the project
    PYTHONPATH=scripts:. python scripts/em_stacking_probe.py --cv_dir /work/em_cv240 /work/em_cv120 \\
        /work/em_cv360 /work/em_cv_ce

Features per pixel: every run's p(cell); of the first run's map, Gaussian smoothings (sigma 1, 2, 4), min and max
filters (3, 5, 9 px), gradient magnitude, Laplacian of Gaussian, the signed distance to the edge of p > 0.15;
of the image, intensity, Gaussian smoothing, gradient magnitude and Laplacian of Gaussian at sigma 1, 2, 4.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from em_calibrate import BUNDLE, _item, _markdown_header, held_out_blocks, labels_of, oof_probabilities

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def features(maps: list[np.ndarray], image: np.ndarray) -> np.ndarray:
    """``(pixels, features)`` of one slice: ``maps`` are the runs' p(cell) in the label's axis order (the first
    one is filtered), ``image`` the slice scaled to [0, 1]."""
    from scipy import ndimage as ndi

    p = maps[0]
    stack = list(maps)
    stack += [ndi.gaussian_filter(p, s) for s in (1, 2, 4)]
    for w in (3, 5, 9):
        stack += [ndi.minimum_filter(p, w), ndi.maximum_filter(p, w)]
    stack += [ndi.gaussian_gradient_magnitude(p, 1), ndi.gaussian_laplace(p, 1.5)]
    cell = p > 0.15
    stack.append(ndi.distance_transform_edt(cell) - ndi.distance_transform_edt(~cell))
    stack.append(image)
    for s in (1, 2, 4):
        stack += [
            ndi.gaussian_filter(image, s),
            ndi.gaussian_gradient_magnitude(image, s),
            ndi.gaussian_laplace(image, s),
        ]
    return np.stack(stack, -1).reshape(-1, len(stack)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--cv_dir", type=Path, nargs="+", required=True, help="scripts/em_cv.py output folders"
    )
    parser.add_argument(
        "--dataset_dir", type=Path, default=BUNDLE.parents[2] / "shared" / "data" / "isbi2012-em"
    )
    parser.add_argument("--pixels_per_slice", type=int, default=60000, help="training sample per slice")
    args = parser.parse_args(argv)
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        raise SystemExit("this probe needs scikit-learn: pip install scikit-learn") from None
    from PIL import Image

    runs = [{k: p[1].T for k, p in oof_probabilities(d).items()} for d in args.cv_dir]
    labels = labels_of(runs[0], args.dataset_dir)
    start = time.monotonic()
    x = {
        k: features(
            [run[k] for run in runs],
            np.asarray(Image.open(args.dataset_dir / _item(k)["image"]), np.float32) / 255.0,
        )
        for k in labels
    }
    print(f"features: {next(iter(x.values())).shape[1]} per pixel, {time.monotonic() - start:.0f} s")
    rng = np.random.default_rng(0)
    models = {
        "boosting, 300 x 63 leaves": dict(max_iter=300, max_leaf_nodes=63),
        "boosting, 100 x 15 leaves, regularised": dict(
            max_iter=100, max_leaf_nodes=15, min_samples_leaf=200, l2_regularization=1.0
        ),
    }
    rows: dict[str, list[float]] = {"plain threshold of the first run": [], **{m: [] for m in models}}
    weights = []
    for held_out in held_out_blocks():
        others = [k for k in labels if k not in held_out]
        errors = [np.mean([np.mean((runs[0][k] > t) != labels[k]) for k in others]) for t in THRESHOLDS]
        t = THRESHOLDS[int(np.argmin(errors))]
        rows["plain threshold of the first run"].append(
            np.mean([np.mean((runs[0][k] > t) != labels[k]) for k in held_out])
        )
        sample = {k: rng.choice(labels[k].size, args.pixels_per_slice, replace=False) for k in others}
        x_train = np.concatenate([x[k][sample[k]] for k in others])
        y_train = np.concatenate([labels[k].reshape(-1)[sample[k]] for k in others])
        for name, settings in models.items():
            model = HistGradientBoostingClassifier(random_state=0, **settings).fit(x_train, y_train)
            rows[name].append(
                np.mean(
                    [
                        np.mean((model.predict_proba(x[k])[:, 1] > 0.5).reshape(labels[k].shape) != labels[k])
                        for k in held_out
                    ]
                )
            )
        weights.append(len(held_out))
        print(
            f"  held-out block {held_out[0]}-{held_out[-1]} done ({time.monotonic() - start:.0f} s)",
            flush=True,
        )
    blocks = held_out_blocks()
    print("\nnested pixel error (1 - accuracy) per held-out block; all: mean over the 24 slices")
    print(_markdown_header("predictor", *(f"{b[0]}-{b[-1]}" for b in blocks), "all"))
    for name, per_block in rows.items():
        overall = np.average(per_block, weights=weights)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in per_block) + f" | **{overall:.4f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
