"""Print the recorded baseline results as a Markdown table (for README.md and closing notes).

Usage: python experiments/baselines/table.py experiments/baselines/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    print("| dataset | split | model | NDCG@10 | Recall@20 | MRR@10 | fit s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for path in paths:
        report = json.loads(Path(path).read_text())
        name, split = report["dataset"]["name"], report["split"]["split"]
        for model in report["models"]:
            test = model["test"]
            print(
                f"| {name} | {split} | {model['name']} | {test['ndcg@10']:.4f} | "
                f"{test['recall@20']:.4f} | {test['mrr@10']:.4f} | {model['fit_seconds']:.1f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
