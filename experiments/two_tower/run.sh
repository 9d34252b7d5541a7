#!/usr/bin/env bash
# Ablation of the TorchRec two-tower model: ID features only / LLM features only / both (with
# genre and attribute bags), next to ALS, on the baselines' splits (seed 42), early-stopped on
# valid NDCG@10.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
datasets=${1:-ml-100k}
splits=${2:-random}
for dataset in $datasets; do
  for split in $splits; do
    $llmrec evaluate --dataset "$dataset" --split "$split" --seed 42 --k 10 20 \
      --models als,two-tower-ids,two-tower-text,two-tower --out "$here/ablation-$dataset-$split.json"
  done
done
