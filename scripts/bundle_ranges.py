"""Write a bundle's training ranges into its ``configs/metadata.json`` under ``unetseg_ranges``.

Reads every ``training`` case of the bundle's ``configs/datalist.json`` (image and label, relative to the data
folder), computes per case what :mod:`app.evaluation.statistics` measures on a prediction (per label: volume,
connected components, mean intensity inside; for membrane/cell pictures: membrane fraction, cells, median
cell area) and what :mod:`app.evaluation.plausibility` checks on an input (field of view along RAS x/y/z,
voxel spacing, intensity percentiles), and stores the 1st-99th percentile over the cases
(:mod:`app.bundle_ranges` documents the key). Run once per bundle, after training or when the data changes:

    python scripts/bundle_ranges.py bundles/hippocampus_mri_segmentation --data ../shared/data/msd-hippocampus
    python scripts/bundle_ranges.py bundles/em_membrane_segmentation --data ../shared/data/isbi2012-em

``--dry-run`` prints the key instead of writing it. The metadata file is rewritten with 4-space indents and its
other keys untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from app.bundle_metadata import channel_def, picture_scale, read_metadata, without_background
from app.bundle_ranges import RANGES_KEY, read_ranges
from app.evaluation.plausibility import field_of_view_mm, intensity_percentiles
from app.evaluation.statistics import case_statistics, intensity_unit
from app.loading.load import load_volume
from app.loading.picture import PICTURE_SUFFIXES, read_picture
from app.volume import Volume

logger = logging.getLogger("bundle_ranges")
PERCENTILES = (1.0, 99.0)
MARGIN = 0.25


def _read(path: Path, *, label: bool) -> Volume:
    if path.suffix.lower() in PICTURE_SUFFIXES:
        return read_picture(path, label=label)
    return load_volume(path)


def _range(values: list[float]) -> list[float] | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return None
    low, high = np.percentile(np.asarray(finite, dtype=np.float64), PERCENTILES)
    return [round(float(low), 4), round(float(high), 4)]


def compute_ranges(bundle: Path, data: Path) -> dict:
    """The ``unetseg_ranges`` value for ``bundle`` from its training cases under ``data``."""
    metadata = read_metadata(bundle)
    labels = without_background(channel_def(metadata))
    image_info = metadata["network_data_format"]["inputs"]["image"]
    modality = str(image_info.get("modality", ""))
    spatial_dims = len(image_info.get("spatial_shape") or [0, 0, 0])
    scale = picture_scale(bundle) or 1
    cell_label = (
        next((v for v, n in labels.items() if n.lower() == "cell"), None) if spatial_dims == 2 else None
    )
    datalist = json.loads((bundle / "configs" / "datalist.json").read_text(encoding="utf-8"))
    cases = datalist["training"]
    per_label: dict[str, dict[str, list]] = {
        n: {"volume": [], "components": [], "mean": []} for n in labels.values()
    }
    inputs: dict[str, list] = {"fov": [], "spacing": [], "p5": [], "p50": [], "p95": []}
    cells: dict[str, list] = {"membrane_fraction": [], "cells": [], "area": []}
    for item in cases:
        image = _read(data / item["image"], label=False)
        label = _read(data / item["label"], label=True)
        values = np.asarray(label.array)
        if scale != 1:
            values = (values >= scale / 2).astype(np.uint8) if values.max() > 1 else values.astype(np.uint8)
        stats = case_statistics(
            image,
            image.with_array(values),
            labels,
            intensity_unit=intensity_unit(modality),
            cell_label=cell_label,
        )
        for s in stats.labels:
            per_label[s.name]["volume"].append(s.volume_ml)
            per_label[s.name]["components"].append(s.components)
            per_label[s.name]["mean"].append(s.intensity.mean if s.intensity else None)
        if image.ndim == 3 and spatial_dims == 3:
            inputs["fov"].append(field_of_view_mm(image))
            inputs["spacing"].extend(float(v) for v in image.spacing)
        q = intensity_percentiles(image.array)
        inputs["p5"].append(q[5])
        inputs["p50"].append(q[50])
        inputs["p95"].append(q[95])
        if stats.cells is not None:
            cells["membrane_fraction"].append(stats.cells.membrane_fraction)
            cells["cells"].append(float(stats.cells.cells))
            cells["area"].append(stats.cells.cell_area_median_px)
        logger.info("%s: %s", item["image"], ", ".join(f"{s.name} {s.voxels} voxels" for s in stats.labels))
    result: dict = {
        "description": "training-data ranges for unetseg's plausibility flags and input warnings "
        "(app/bundle_ranges.py); written by scripts/bundle_ranges.py",
        "percentiles": list(PERCENTILES),
        "margin": MARGIN,
        "n_cases": len(cases),
        "cases": "configs/datalist.json training",
        "intensity_unit": intensity_unit(modality),
        "inputs": {
            **(
                {
                    "fov_mm": [_range([f[axis] for f in inputs["fov"]]) for axis in range(3)],
                    "spacing_mm": _range(inputs["spacing"]),
                }
                if inputs["fov"]
                else {}
            ),
            "intensity_median": _range(inputs["p50"]),
            "intensity_p5": _range(inputs["p5"]),
            "intensity_p95": _range(inputs["p95"]),
        },
        "labels": {
            name: {
                k: v
                for k, v in {
                    "volume_ml": _range(entry["volume"]) if spatial_dims == 3 else None,
                    "components_max": int(max(entry["components"])) if spatial_dims == 3 else None,
                    "intensity_mean": _range(entry["mean"]),
                }.items()
                if v is not None
            }
            for name, entry in per_label.items()
        },
    }
    if cells["cells"]:
        result["cells"] = {
            "membrane_fraction": _range(cells["membrane_fraction"]),
            "cells": _range(cells["cells"]),
            "cell_area_median_px": _range(cells["area"]),
        }
    read_ranges({RANGES_KEY: result})  # the reader must accept what is written
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("bundle", type=Path, help="bundle folder")
    parser.add_argument(
        "--data", type=Path, required=True, help="data folder the datalist paths are relative to"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the key, do not write metadata.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ranges = compute_ranges(args.bundle, args.data)
    if args.dry_run:
        print(json.dumps({RANGES_KEY: ranges}, indent=4))
        return
    path = args.bundle / "configs" / "metadata.json"
    metadata = read_metadata(args.bundle)
    metadata[RANGES_KEY] = ranges
    path.write_text(json.dumps(metadata, indent=4) + "\n", encoding="utf-8")
    print(f"wrote {RANGES_KEY} ({ranges['n_cases']} training cases) into {path}")


if __name__ == "__main__":
    main()
