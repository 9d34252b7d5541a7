"""Print the LLM-text ablation as a markdown table: test NDCG@10 mean ± std over seeds per model
and item-text variant, with the paired t-test against the model's title+genre run.

Usage: .venv/bin/python experiments/llm_text/table.py [JSON ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "base": "title+genre",
    "knowledge": "+ knowledge",
    "description": "+ LLM description",
    "both": "+ both",
}


def cell(report: dict, model: str, arm: str, base: str) -> str:
    summary = report["summary"].get(arm)
    if summary is None:
        return "-"
    value = summary["ndcg@10"]
    text = f"{value['mean']:.4f} ± {value['std']:.4f}"
    if arm == base:
        return text
    pair = report["significance"].get(model, {}).get("pairs", {}).get(arm, {}).get(base)
    if pair:
        sign = "+" if pair["better"] == arm else "-"
        p = pair["p_value"]
        text += f" ({sign}, p{'<0.001' if p < 0.001 else f'={p:.3f}'})"
    return text


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(HERE.glob("ml-*.json"))
    print("| dataset / split | model | " + " | ".join(VARIANTS.values()) + " |")
    print("|---|---|" + "---:|" * len(VARIANTS))
    for path in paths:
        if path.name.endswith(".partial.json"):
            continue
        report = json.loads(path.read_text())
        where = f"{report['dataset']} {report['split']}"
        arms = list(report["summary"])
        models = list(dict.fromkeys(a.split("/")[0] for a in arms))
        for model in models:
            base_model = model.split("+")[0]
            base = f"{base_model}/base"
            cells = [cell(report, base_model, f"{model}/{v}", base) for v in VARIANTS]
            print(f"| {where} | {model} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
