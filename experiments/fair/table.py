"""Print fair-comparison reports as Markdown tables (for README.md and closing notes).

Usage: python experiments/fair/table.py [--headline] experiments/fair/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmrec.evaluation.report import verdicts

PIPELINE = "two-stage"
NO_LLM = f"{PIPELINE}-no-llm"


def cell(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def versus(pairs: dict, ndcg: dict, a: str, b: str) -> str:
    """``a``'s NDCG@10 gain over ``b`` with the paired test's verdict."""
    pair, gain = pairs[a][b], 100 * (ndcg[a]["mean"] / ndcg[b]["mean"] - 1)
    p = pair["p_value"]
    verdict = "significant" if pair["significant"] else "n.s."
    return f"{gain:+.1f}%, p={'<0.001' if p < 0.001 else f'{p:.3f}'} ({verdict})"


def headline(paths: list[str]) -> None:
    """One row per setting: best tuned baseline, the pipeline and its no-LLM ablation."""
    print(
        "| dataset | split | protocol | best baseline NDCG@10 | two-stage | two-stage, no LLM "
        "| two-stage vs best baseline | LLM features (paired t) |"
    )
    print("|---|---|---|---:|---:|---:|---|---|")
    for path in paths:
        report = json.loads(Path(path).read_text())
        summary, pairs = report["summary"], report["significance"]["pairs"]
        ndcg = {name: e["test"]["ndcg@10"] for name, e in summary.items()}
        top = max((n for n in ndcg if not n.startswith(PIPELINE)), key=lambda n: ndcg[n]["mean"])
        ours, ablation = ndcg.get(PIPELINE), ndcg.get(NO_LLM)

        print(
            f"| {report['dataset']['name']} | {report['split']} | {report['protocol']['name']} "
            f"| {top} {cell(ndcg[top])} | {cell(ours) if ours else '-'} "
            f"| {cell(ablation) if ablation else '-'} "
            f"| {versus(pairs, ndcg, PIPELINE, top) if ours else '-'} "
            f"| {versus(pairs, ndcg, PIPELINE, NO_LLM) if ours and ablation else '-'} |"
        )


def main(paths: list[str]) -> None:
    if paths and paths[0] == "--headline":
        headline(paths[1:])
        return
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
