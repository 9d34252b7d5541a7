#!/usr/bin/env bash
# The two-stage pipeline (FAISS two-tower + ALS candidates, TorchRec DLRM ranker) on the
# baselines' splits (seed 42), one JSON per dataset and split, with wall time and peak memory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
runs=${*:-ml-100k:random ml-100k:temporal ml-100k:cold_items ml-1m:random ml-1m:temporal}
for run in $runs; do
  dataset=${run%%:*}
  split=${run##*:}
  /usr/bin/time -f "wall_seconds %e peak_rss_kb %M" -o "$here/resources-$dataset-$split.txt" \
    "$llmrec" evaluate --dataset "$dataset" --split "$split" --seed 42 --k 10 20 \
    --models two-stage --out "$here/two-stage-$dataset-$split.json"
done
