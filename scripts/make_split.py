"""Write the fixed, seeded train/validation split of the MSD hippocampus cases as an MSD-style datalist.

    python scripts/make_split.py --dataset_dir ../shared/data/msd-hippocampus \
        --out bundles/hippocampus_mri_segmentation/configs/datalist.json

The split depends only on the sorted case names, the seed and the validation count, and is committed with the
bundle, so every training run uses the same cases (load it with ``monai.data.load_decathlon_datalist``).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def make_split(case_names: list[str], n_validation: int, seed: int) -> tuple[list[str], list[str]]:
    """Return (training, validation) case names: a seeded shuffle of the sorted names."""
    names = sorted(case_names)
    random.Random(seed).shuffle(names)
    return sorted(names[n_validation:]), sorted(names[:n_validation])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n_validation", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()
    names = [p.name for p in (args.dataset_dir / "imagesTr").glob("*.nii.gz")]
    if not names:
        raise SystemExit(f"{args.dataset_dir / 'imagesTr'}: no *.nii.gz cases")
    train, val = make_split(names, args.n_validation, args.seed)

    def entries(cases: list[str]) -> list[dict[str, str]]:
        return [{"image": f"imagesTr/{n}", "label": f"labelsTr/{n}"} for n in cases]

    datalist = {
        "description": (
            f"MSD Task04 hippocampus, fixed split: {len(train)} training / {len(val)} validation cases; "
            f"seeded shuffle of the sorted case names, seed {args.seed} (scripts/make_split.py)"
        ),
        "seed": args.seed,
        "training": entries(train),
        "validation": entries(val),
    }
    args.out.write_text(json.dumps(datalist, indent=4) + "\n")
    print(f"wrote {args.out}: {len(train)} training, {len(val)} validation")


if __name__ == "__main__":
    main()
