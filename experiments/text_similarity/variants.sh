#!/usr/bin/env bash
# Which user representation helps text similarity: pooled item embeddings (mean or rating
# weighted; rankers/text.yaml), adaptation (rankers/text-adapted.yaml), profile text
# (rankers/text-profile.yaml) and personas (rankers/text-persona.yaml). Same splits and seed as
# run.sh; grids tuned on valid. Writes variants-DATASET-SPLIT.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
datasets=${1:-ml-100k ml-1m}
for dataset in $datasets; do
  for split in random cold_items; do
    $llmrec evaluate --dataset "$dataset" --split "$split" --seed 42 --k 10 20 --tune \
      --models pop,text,text-adapted,text-profile,text-persona \
      --out "$here/variants-$dataset-$split.json"
  done
done
