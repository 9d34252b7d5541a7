#!/usr/bin/env bash
# Text similarity (MiniLM item texts, user = weighted mean of their items; no training) next to
# popularity and ALS, on random and cold_items splits, seed 42, grids tuned on valid.
# Embeddings are cached in $LLMREC_CACHE_DIR (default ~/.cache/llmrec).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
datasets=${1:-ml-100k ml-1m}
for dataset in $datasets; do
  for split in random cold_items; do
    $llmrec evaluate --dataset "$dataset" --split "$split" --seed 42 --k 10 20 --tune \
      --models pop,als,text --out "$here/$dataset-$split.json"
  done
done
