#!/usr/bin/env bash
# Issue 20 on a lent GPU: the five EM folds trained at the same time on one GPU, their out-of-fold predictions and
# their fp16 weights, everything that must come back written to $OUT (at most 8 files of < 16 MiB each).
#
# Layout expected in the checkout that travels (see the bundle README, "On a GPU"): .gpu/wt/ holds app/,
# bundles/em_membrane_segmentation/ and scripts/ of this repository, .gpu/data/ the ISBI 2012 train/ folder,
# .whl/ the wheels the device image lacks (monai, pytorch-ignite, nibabel, fire and their missing needs).
#
#   bash .gpu/wt/scripts/em_cv_device.sh EPOCHS     # e.g. 400; each fold ~2 s per epoch when 5 share the GPU
#
# Per fold: one `python -m monai.bundle run` of train.json (scripts/em_cv.py train), 3 data-loading workers and
# 2 threads each (16 cores); no time budget; the last epoch's weights are the fold's.
set -euo pipefail
EPOCHS=${1:-400}
: "${OUT:?OUT must name the folder whose files come back}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
ROOT=$PWD
export PYTHONPATH=/tmp/site:$ROOT/.gpu/wt PYTHONUNBUFFERED=1
WORK=/tmp/em_cv
cd "$ROOT/.gpu/wt"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/run.log"
start=$(date +%s)
python3 scripts/em_cv.py train --out_dir "$WORK" --dataset_dir "$ROOT/.gpu/data" --max_epochs "$EPOCHS" \
    --parallel 5 --num_workers 3 --num_threads 2 2>&1 | tee -a "$OUT/run.log"
echo "training: $(($(date +%s) - start)) s" | tee -a "$OUT/run.log"
python3 scripts/em_cv.py predict --out_dir "$WORK" --dataset_dir "$ROOT/.gpu/data" --device cuda 2>&1 \
    | tee -a "$OUT/run.log"
python3 scripts/em_cv.py export --out_dir "$WORK" 2>&1 | tee -a "$OUT/run.log"
cp "$WORK"/fold?_fp16.pt "$WORK/oof_probabilities.npz" "$OUT/"
tar czf "$OUT/fold_logs.tar.gz" -C "$WORK" fold0/train.log fold1/train.log fold2/train.log fold3/train.log fold4/train.log
echo "total: $(($(date +%s) - start)) s" | tee -a "$OUT/run.log"
