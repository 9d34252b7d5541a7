#!/usr/bin/env bash
# Baselines on ml-100k and ml-1m, random and temporal splits, seed 42, tuned on valid (--tune).
# Writes one JSON per (dataset, split) beside this script. Run: make experiments-baselines
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
for split in random temporal; do
  $llmrec evaluate --dataset ml-100k --split "$split" --seed 42 --k 10 --k 20 --tune \
    --models pop,als,bpr,recbole:BPR,recbole:LightGCN --out "$here/ml-100k-$split.json"
done
for split in random temporal; do
  $llmrec evaluate --dataset ml-1m --split "$split" --seed 42 --k 10 --k 20 --tune \
    --models "pop,als,bpr,$here/recbole-bpr-ml-1m.yaml,$here/recbole-lightgcn-ml-1m.yaml" \
    --out "$here/ml-1m-$split.json"
done
