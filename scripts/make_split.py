"""Write the fixed, seeded splits the bundles train on: the MSD hippocampus train/validation datalist, and the EM
bundle's cross-validation folds.

    python scripts/make_split.py --dataset_dir ../shared/data/msd-hippocampus \
        --out bundles/hippocampus_mri_segmentation/configs/datalist.json
    python scripts/make_split.py --em_folds 5 --out bundles/em_membrane_segmentation/configs/folds.json

The hippocampus split depends only on the sorted case names, the seed and the validation count, and is committed
with the bundle, so every training run uses the same cases (load it with ``monai.data.load_decathlon_datalist``).

The EM folds (:func:`em_folds`): the labelled slices 0..n-1 of the ISBI 2012 stack cut into ``k`` contiguous
blocks, because neighbouring 50 nm sections are strongly correlated (a random split would hold out near-copies of
training slices). Fold ``i`` holds out block ``i`` and trains on every other slice except the two next to the block
(a one-slice gap on each side). With ``n`` not a multiple of ``k`` some blocks are one slice shorter; the seed picks
which, the only random choice.
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


def em_folds(n_slices: int, k: int, seed: int, gap: int = 1) -> list[dict[str, list[int]]]:
    """``k`` folds of contiguous blocks over slices ``0..n_slices-1``: per fold the ``held_out`` block, the
    ``gap`` slices next to it on each side (in neither set) and the ``training`` slices (all the others)."""
    if not 2 <= k <= n_slices:
        raise ValueError(f"need 2 <= k <= n_slices, got k={k}, n_slices={n_slices}")
    short = set(random.Random(seed).sample(range(k), k - n_slices % k)) if n_slices % k else set()
    sizes = [n_slices // k + (0 if n_slices % k == 0 or i in short else 1) for i in range(k)]
    folds, start = [], 0
    for size in sizes:
        held_out = list(range(start, start + size))
        near = [s for s in range(start - gap, start + size + gap) if 0 <= s < n_slices and s not in held_out]
        training = [s for s in range(n_slices) if s not in held_out and s not in near]
        folds.append({"held_out": held_out, "gap": near, "training": training})
        start += size
    return folds


def write_em_folds(out: Path, k: int, seed: int, n_slices: int = 24) -> None:
    folds = em_folds(n_slices, k, seed)
    document = {
        "description": (
            f"ISBI 2012 EM labelled slices 0-{n_slices - 1}, {k}-fold cross-validation by contiguous blocks; fold i "
            "holds out block i and trains on every other slice except the one next to the block on each side "
            f"(neighbouring sections are correlated); the seed ({seed}) only picks which blocks are one slice "
            "shorter (scripts/make_split.py --em_folds)"
        ),
        "seed": seed,
        "n_slices": n_slices,
        "image": "train/image/{}.png",
        "label": "train/label/{}.png",
        "folds": folds,
    }
    out.write_text(json.dumps(document, indent=4) + "\n")
    print(f"wrote {out}: " + ", ".join(f"fold {i} holds out {f['held_out']}" for i, f in enumerate(folds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_dir", type=Path, help="the MSD hippocampus folder (hippocampus split)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n_validation", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--em_folds", type=int, default=0, help="write K EM cross-validation folds instead")
    args = parser.parse_args()
    if args.em_folds:
        write_em_folds(args.out, args.em_folds, args.seed)
        return
    if args.dataset_dir is None:
        parser.error("--dataset_dir is required for the hippocampus split")
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
