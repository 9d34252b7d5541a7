#!/usr/bin/env bash
# Baselines on ml-100k and ml-1m, random and temporal splits, seed 42, each preset's grid searched
# on valid NDCG@10 (--tune). One JSON per run beside this script. Run: make experiments-baselines
# (about 1 h 30 on a 2-core CPU, most of it RecBole's LightGCN on ml-1m).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
only=${1:-all}
run() { [ "$only" = all ] || [ "$only" = "$1" ] || return 0; shift; $llmrec evaluate --seed 42 --k 10 20 --tune "$@"; }
for split in random temporal; do
  run "ml-100k-$split" --dataset ml-100k --split "$split" \
    --models pop,als,bpr,recbole:BPR,recbole:LightGCN --out "$here/ml-100k-$split.json"
  run "ml-1m-$split" --dataset ml-1m --split "$split" \
    --models "pop,als,bpr,$here/recbole-bpr-ml-1m.yaml" --out "$here/ml-1m-$split.json"
  run "ml-1m-$split-lightgcn" --dataset ml-1m --split "$split" \
    --models "$here/recbole-lightgcn-ml-1m.yaml" --out "$here/ml-1m-$split-lightgcn.json"
done
