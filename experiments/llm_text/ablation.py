"""Which item and user text helps (issue 15): title+genre vs + knowledge (bokeh movies.db joined
by title and year) vs + an LLM description (SmolLM2-135M-Instruct) vs both; users as pooled
item text vs an LLM preference summary; for text similarity, the two-tower and the two-stage
pipeline.

Fair protocol (holdout): on each seed, every variant of a model fits on the same train
interactions of the same split with the same fixed hyper-parameters (the model presets'); only
the item/user text differs. Test ranks exclude train and valid items (on cold_items: the
held-out items). Paired t-tests over pooled (seed, user) NDCG@10 of each variant against the
model's title+genre run.

Usage: .venv/bin/python experiments/llm_text/ablation.py --dataset ml-100k --split cold_items
    [--seeds 1 2 3] [--models text two-tower two-stage] [--variants base knowledge description
    both] [--summary] [--out experiments/llm_text/ml-100k-cold_items.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from llmrec.datasets import Dataset, load, split
from llmrec.evaluation import compare_models, mean_std, resolve_model, run_model
from llmrec.evaluation.evaluator import EvalResult
from llmrec.io import library_versions, write_json
from llmrec.llm import load_generator
from llmrec.llm.dataset_text import describe_dataset

HERE = Path(__file__).resolve().parent
VARIANTS = ("base", "knowledge", "description", "both")
KS = (10, 20)


def datasets(name: str, variants: list[str]) -> dict[str, Dataset]:
    """The dataset under each text variant; descriptions come from one cached LLM pass."""
    base = load(name)
    out: dict[str, Dataset] = {"base": base}
    if {"knowledge", "both"} & set(variants):
        out["knowledge"] = load(f"{name}-enriched")
    if {"description", "both"} & set(variants):
        generator = load_generator()
        out["description"], report = describe_dataset(base, generator, show_progress_bar=True)
        print(f"descriptions: {report.n_kept} kept, dropped {dict(report.dropped)}", flush=True)
        if "both" in variants:
            out["both"], _ = describe_dataset(out["knowledge"], generator)
    return {v: out[v] for v in variants}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="cold_items")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", default=["text", "two-tower", "two-stage"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--summary", action="store_true", help="add text + LLM user summary")
    parser.add_argument("--summary-variants", nargs="+", default=["base"], choices=VARIANTS)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2 cores, shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or HERE / f"{args.dataset}-{args.split}.json"
    start = time.perf_counter()
    data = datasets(args.dataset, args.variants)
    arms: list[tuple[str, str, str, dict[str, Any]]] = [
        (m, v, f"{m}/{v}", {}) for m in args.models for v in args.variants
    ]
    if args.summary:
        for v in args.summary_variants:
            for w in (0.5, 1.0):
                params = {"user_text": "summary", "summary_weight": w}
                arms.append(("text", v, f"text+summary{w:g}/{v}", params))
    records: list[dict[str, Any]] = []
    tests: dict[str, list[EvalResult]] = {arm[2]: [] for arm in arms}
    for seed in args.seeds:
        base_split = split(data[args.variants[0]], args.split, seed)
        for model, variant, name, params in arms:
            s = dataclasses.replace(base_split, dataset=data[variant])  # same rows, other text
            spec = resolve_model(model)
            spec = spec.model_copy(update={"params": {**spec.params, **params, "seed": seed}})
            t = time.perf_counter()
            run = run_model(spec, s, KS, keep_top=True)
            tests[name].append(run.test)
            record = {"arm": name, "model": model, "variant": variant, "seed": seed}
            records.append({**record, **run.record, "seconds": time.perf_counter() - t})
            print(
                f"seed {seed} {name:32s} test ndcg@10 {run.record['test']['ndcg@10']:.4f} "
                f"({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
            write_json(out.with_suffix(".partial.json"), {"records": records})
    summary = {}
    for name in tests:
        values = [r["test"]["ndcg@10"] for r in records if r["arm"] == name]
        mean, std = mean_std(values)
        summary[name] = {"ndcg@10": {"mean": mean, "std": std, "per_seed": values}}
    significance = {}
    for model in {a[0] for a in arms}:
        group = {n: tests[n] for m, _, n, _ in arms if m == model or n.startswith(model + "+")}
        if len(group) > 1:
            significance[model] = compare_models(group, metric="ndcg@10")
    report = {
        "study": "llm text ablation (issue 15)",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python experiments/llm_text/ablation.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if v not in (None, False) and k != "out"
        ),
        "protocol": "holdout; fixed preset hyper-parameters for every variant; same splits",
        "dataset": args.dataset,
        "split": args.split,
        "seeds": args.seeds,
        "checksums": {v: d.checksum for v, d in data.items()},
        "variant_metadata": {v: d.metadata for v, d in data.items()},
        "summary": summary,
        "significance": significance,
        "records": records,
        "seconds": time.perf_counter() - start,
        "git": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "versions": library_versions(),
    }
    write_json(out, report)
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
