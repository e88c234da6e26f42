"""Pictures for the EM membrane bundle's README: one slice's U-Net weight map, and a validation slice with its
prediction and label side by side.

Both go through the bundle's own configs (train.json's cached transforms for the weight map; inference.json's
preprocessing, network, shipped weights, overlap-tile inferer and postprocessing for the prediction), so the
pictures show what the bundle does.

    python scripts/em_figures.py --dataset_dir ../shared/data/isbi2012-em [--slice 0] [--val_slice 20]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from monai.bundle import ConfigParser  # noqa: E402
from PIL import Image  # noqa: E402

from app.evaluation.em import adapted_rand_error, pixel_error  # noqa: E402

logger = logging.getLogger("em_figures")
BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "em_membrane_segmentation"


def _save(fig, out: Path) -> None:
    """Save a figure as a 128-colour palette PNG (a third of the RGBA size; the pictures live in git)."""
    fig.savefig(out, dpi=72)
    plt.close(fig)
    Image.open(out).convert("RGB").quantize(colors=128).save(out, optimize=True)
    logger.info("wrote %s", out)


def weight_map_figure(dataset_dir: Path, index: int, out: Path) -> None:
    """Image, label and weight map of training slice ``index`` (train.json's deterministic transforms)."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"bundle_root": str(BUNDLE)})
    item = {
        "image": str(dataset_dir / "train" / "image" / f"{index}.png"),
        "label": str(dataset_dir / "train" / "label" / f"{index}.png"),
    }
    for transform in parser.get_parsed_content("train#deterministic_transforms"):
        item = transform(item)
    m = parser.get_parsed_content("mirror_margin")
    # the PIL reader puts width first: transpose back to the PNG's (row, column) for display
    image, label, weight = (item[k][0, m:-m, m:-m].numpy().T for k in ("image", "label", "weight"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), constrained_layout=True)
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title(f"slice {index} (z-scored)")
    axes[1].imshow(label, cmap="gray")
    axes[1].set_title("label: white = cell, black = membrane")
    shown = axes[2].imshow(weight, cmap="magma")
    axes[2].set_title(f"weight map: w_c + w0 exp(-(d1+d2)^2 / 2 sigma^2), max {weight.max():.1f}")
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_axis_off()
    _save(fig, out)


def validation_figure(dataset_dir: Path, index: int, out: Path) -> dict[str, float]:
    """Validation slice ``index``, the shipped model's prediction and the label; returns its metrics."""
    from app.inference import load_bundle
    from app.inference.options import InferenceOptions

    bundle = load_bundle(BUNDLE, InferenceOptions(device="cpu", backend="torch"))
    source = dataset_dir / "train" / "image" / f"{index}.png"
    item = bundle.preprocessing({"image": str(source)})
    with torch.no_grad():
        logits = bundle.inferer(item["image"][None].as_tensor(), bundle.network)
    # the bundle's decision rule: its own postprocessing (SaveImaged removed) on the logits
    pred = bundle.postprocessing({"pred": logits[0]})["pred"]
    pred_cell = pred[0].numpy().T > 0  # the PIL reader puts width first
    true_cell = np.asarray(Image.open(dataset_dir / "train" / "label" / f"{index}.png")) > 127
    metrics = {
        "pixel_error": pixel_error(pred_cell, true_cell),
        "rand_error": adapted_rand_error(pred_cell, true_cell),
        "rand_error_thinned": adapted_rand_error(pred_cell, true_cell, membrane="thinned"),
    }
    errors = np.zeros((*true_cell.shape, 3), np.uint8)
    errors[pred_cell & ~true_cell] = (0, 160, 255)  # membrane missed (predicted cell)
    errors[~pred_cell & true_cell] = (255, 80, 0)  # extra membrane (predicted on cell)
    fig, axes = plt.subplots(1, 4, figsize=(20, 6.0), constrained_layout=True)
    axes[0].imshow(np.asarray(Image.open(source)), cmap="gray")
    axes[0].set_title(f"validation slice {index}")
    axes[1].imshow(pred_cell, cmap="gray")
    axes[1].set_title("prediction (white = cell)")
    axes[2].imshow(true_cell, cmap="gray")
    axes[2].set_title("label (white = cell)")
    axes[3].imshow(errors)
    axes[3].set_title(
        f"errors: orange extra membrane, blue missed\npixel error {metrics['pixel_error']:.3f}, "
        f"Rand error {metrics['rand_error']:.3f} (thinned {metrics['rand_error_thinned']:.3f})",
        fontsize=10,
    )
    for ax in axes:
        ax.set_axis_off()
    _save(fig, out)
    logger.info("validation slice %d: %s", index, metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset_dir", type=Path, default=Path("../shared/data/isbi2012-em"))
    parser.add_argument("--slice", type=int, default=0, help="training slice for the weight map picture")
    parser.add_argument(
        "--val_slice", type=int, default=20, help="validation slice for the prediction picture"
    )
    parser.add_argument("--out_dir", type=Path, default=BUNDLE / "docs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    weight_map_figure(args.dataset_dir, args.slice, args.out_dir / "weight_map.png")
    metrics = validation_figure(args.dataset_dir, args.val_slice, args.out_dir / "validation_slice.png")
    print(metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
