#!/usr/bin/env bash
# The LLM-feature ablation on ml-1m temporal (issue 12): the pipeline with and without LLM
# features beside EASE (the best baseline of ml-1m-temporal-holdout.json), same 3 seeds and
# protocol. Writes ml-1m-temporal-holdout-ablation.json and its resources file beside this script.
# Run: make experiments-fair-ablation
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llmrec=${LLMREC:-.venv/bin/llmrec}
/usr/bin/time -f "wall_seconds %e peak_rss_kb %M" -o "$here/resources-ml-1m-temporal-holdout-ablation.txt" \
  "$llmrec" evaluate --dataset ml-1m --split temporal --protocol holdout \
  --seeds 1 2 3 --k 10 20 --tune \
  --models "ease,$here/two-stage-latest.yaml,$here/two-stage-no-llm-latest.yaml" \
  --out "$here/ml-1m-temporal-holdout-ablation.json"
