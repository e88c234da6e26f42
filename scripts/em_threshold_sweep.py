"""The EM bundle's operating point: adapted Rand error and pixel error over thresholds of p(cell), per split.

    python scripts/em_threshold_sweep.py [--dataset_dir ../shared/data/isbi2012-em]

Runs the bundle's own preprocessing, network and overlap-tile inferer (``inference.json``, ``models/model.pt``)
on the training slices and the validation slices of ``configs/datalist.json`` and prints a markdown table of the
mean adapted Rand error (the challenge's definition, predicted membrane unassigned), the same with predicted
membrane as one segment, and the pixel error at each threshold (:mod:`app.evaluation.em`). The shipped
``cell_threshold`` is chosen from the *training* rows (lowest pixel error); the validation rows only report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "em_membrane_segmentation"
THRESHOLDS = (0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--dataset_dir", type=Path, default=BUNDLE.parents[2] / "shared" / "data" / "isbi2012-em"
    )
    args = parser.parse_args()

    import torch
    from PIL import Image

    from app.evaluation.em import adapted_rand_error, pixel_error
    from app.inference import load_bundle

    bundle = load_bundle(BUNDLE, device="cpu", backend="torch")
    datalist = json.loads((BUNDLE / "configs" / "datalist.json").read_text())
    print("| split | " + " | ".join(f"p(cell) > {t}" for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for split in ("training", "validation"):
        cells, labels = [], []
        for item in datalist[split]:
            data = bundle.preprocessing({"image": str(args.dataset_dir / item["image"])})
            with torch.no_grad():
                logits = bundle.inferer(data["image"][None].as_tensor(), bundle.network)
            cells.append(torch.softmax(logits, 1)[0, 1].numpy().T)  # PILReader arrays are (W, H)
            labels.append(np.asarray(Image.open(args.dataset_dir / item["label"])) > 127)
        scores = []
        for t in THRESHOLDS:
            pairs = list(zip(cells, labels, strict=True))
            rand = np.mean([adapted_rand_error(p > t, y) for p, y in pairs])
            segment = np.mean([adapted_rand_error(p > t, y, membrane="segment") for p, y in pairs])
            pixel = np.mean([pixel_error(p > t, y) for p, y in pairs])
            scores.append(f"{rand:.3f} / {segment:.3f} / {pixel:.3f}")
        print(
            f"| {split} (Rand error / membrane as one segment / pixel error) | " + " | ".join(scores) + " |"
        )


if __name__ == "__main__":
    main()
