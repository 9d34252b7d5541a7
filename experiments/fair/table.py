"""Print fair-comparison reports as Markdown tables (for README.md and closing notes).

Usage: python experiments/fair/table.py experiments/fair/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmrec.evaluation.report import verdicts

PIPELINE = "two-stage"


def cell(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def main(paths: list[str]) -> None:
    for path in paths:
        report = json.loads(Path(path).read_text())
        marks = verdicts(report)
        print(
            f"\n**{report['dataset']['name']} · {report['split']} · protocol "
            f"{report['protocol']['name']} · seeds {report['seeds']}** "
            f"(`{Path(path).name}`, {report['wall_seconds'] / 60:.0f} min)\n"
        )
        summary = report["summary"]
        ndcg = {name: e["test"]["ndcg@10"]["mean"] for name, e in summary.items()}
        baselines = [n for n in ndcg if not n.startswith(PIPELINE)]
        top = max(baselines, key=ndcg.get) if baselines else None
        print(
            "| model | NDCG@10 | Recall@20 | MRR@10 | fit s | vs best model (paired t) | "
            f"NDCG@10 vs best baseline ({top}) |"
        )
        print("|---|---:|---:|---:|---:|---|---|")
        for name, entry in summary.items():
            test = entry["test"]
            versus = ""
            if top and name != top:
                versus = f"{100 * (ndcg[name] / ndcg[top] - 1):+.1f}%"
                if name.startswith(PIPELINE) and report.get("significance"):
                    pair = report["significance"]["pairs"][name][top]
                    p = pair["p_value"]
                    versus += f", p={'<0.001' if p < 0.001 else f'{p:.3f}'}"
                    versus += " (significant)" if pair["significant"] else " (n.s.)"
            print(
                f"| {name} | {cell(test['ndcg@10'])} | {cell(test['recall@20'])} | "
                f"{cell(test['mrr@10'])} | {entry['fit_seconds']['mean']:.1f} | "
                f"{marks.get(name, '')} | {versus} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
