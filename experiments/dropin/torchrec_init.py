"""Text-initialised vs random item tables in llmrec's TorchRec two-tower (issue 14).

On each seed (split seed = model seed), the same two-tower fits twice on the same train
interactions, its item id table starting from TorchRec's uniform init (``random``) or from
the items' MiniLM text embeddings projected to ``dim`` by PCA and scaled to the uniform init's
std (``text``, ``TwoTowerConfig.init_items``). The model is the IDs-only two-tower
(``rankers/two-tower-ids.yaml``: user id, item id and history bag, no text features), the model
a TorchRec user has; early-stopped on valid NDCG@10 (patience 3). Recorded: test NDCG@10 and
Recall@20 (train and valid items excluded, full catalogue), the per-epoch valid curve, the
epochs and optimiser steps until valid NDCG@10 first reaches 90% and 95% of the random arm's best
on the same seed, and the wall time of the text init itself. Significance: ranx's paired t-test
over the pooled (seed, user) test NDCG@10, and scipy's paired t-test over the per-seed values.

Usage: .venv/bin/python experiments/dropin/torchrec_init.py [--dataset ml-100k]
    [--seeds 42 43 44] [--out experiments/dropin/torchrec-init.json]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from llmrec.datasets import load, split
from llmrec.datasets.features import side_features
from llmrec.datasets.splits import Split
from llmrec.datasets.text import item_text
from llmrec.evaluation import compare_models, evaluate_scores, mean_std
from llmrec.io import library_versions, write_json
from llmrec.rankers import TwoTower
from llmrec.rankers.text_init import project_text
from llmrec.rankers.towers import build_towers

PARAMS: dict[str, Any] = {
    "use_text": False,
    "use_tags": False,
    "dim": 64,
    "epochs": 30,
    "learning_rate": 0.005,
    "temperature": 0.1,
    "num_threads": 2,
}
"""rankers/two-tower-ids.yaml, on this machine's 2 cores."""
ARMS = ("random", "text")
THRESHOLDS = (0.90, 0.95)
KS = (10, 20)
METRICS = ("ndcg", "recall")


def fit_arm(s: Split, texts: list[str], init: str) -> tuple[TwoTower, dict[str, Any]]:
    """Fit one arm on ``s``'s train (valid only stops it) and evaluate valid and test."""
    model = TwoTower(**PARAMS, seed=s.seed, init_items=init)
    train = s.matrix("train", values="rating")  # the two-tower weights history by rating
    start = time.perf_counter()
    model.fit(
        train,
        valid=s.matrix("valid"),
        item_texts=texts,
        features=side_features(s.dataset, s.train),
        show_progress_bar=False,
    )
    fit_seconds = time.perf_counter() - start
    seen = s.matrix("train")
    valid = evaluate_scores(model.score, s.matrix("valid"), seen, KS, METRICS)
    test = evaluate_scores(
        model.score, s.matrix("test"), s.matrix("train+valid"), KS, METRICS, keep_top=True
    )
    record = {
        "fit_seconds": round(fit_seconds, 3),
        "epochs_run": len(model.history_),
        "best_epochs": model.best_epochs_,
        "steps_per_epoch": math.ceil(train.nnz / model.config.batch_size),
        "valid_curve": [round(h["valid"], 5) for h in model.history_],
        "loss_curve": [round(h["loss"], 5) for h in model.history_],
        "valid": valid.metrics,
        "test": test.metrics,
        "_result": test,
    }
    return model, record


def epochs_to(curve: list[float], target: float) -> int | None:
    """Epochs run until the valid curve first reaches ``target`` (None: never)."""
    hits = [i for i, value in enumerate(curve) if value >= target]
    return hits[0] + 1 if hits else None


def init_timing(item_vectors: np.ndarray, dim: int, n_users: int, repeats: int = 5) -> dict:
    """Median seconds of the projection and of building the towers with and without it."""

    def median(fn: Any) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(float(np.median(times)), 5)

    n, text_dim = item_vectors.shape
    rows = project_text(item_vectors, dim)
    return {
        "items": n,
        "text_dimension": text_dim,
        "dim": dim,
        "project_text_seconds": median(lambda: project_text(item_vectors, dim)),
        "build_towers_random_seconds": median(lambda: build_towers(dim, n_users, n, text_dim)),
        "build_towers_text_seconds": median(
            lambda: build_towers(dim, n_users, n, text_dim, item_rows=rows)
        ),
        "repeats": repeats,
        "note": "the text init's cost is project_text plus the difference of the two builds",
    }


def summarise(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    seeds = list(per_seed)
    summary: dict[str, Any] = {}
    for arm in ARMS:
        runs = [per_seed[seed][arm] for seed in seeds]
        entry: dict[str, Any] = {"test": {}}
        for key in (f"{m}@{k}" for m in METRICS for k in KS):
            mean, std = mean_std([r["test"][key] for r in runs])
            entry["test"][key] = {"mean": mean, "std": std}
        for key in ("fit_seconds", "epochs_run", "best_epochs"):
            mean, std = mean_std([r[key] for r in runs])
            entry[key] = {"mean": round(mean, 3), "std": round(std, 3)}
        mean, std = mean_std([r["valid_curve"][0] for r in runs])
        entry["valid_ndcg@10_after_epoch_1"] = {"mean": mean, "std": std}
        for fraction in THRESHOLDS:
            epochs = [r["to_threshold"][str(fraction)]["epochs"] for r in runs]
            steps = [r["to_threshold"][str(fraction)]["steps"] for r in runs]
            entry[f"to_{fraction}_of_random_best"] = {
                "epochs_per_seed": epochs,
                "steps_per_seed": steps,
                "reached": sum(e is not None for e in epochs),
            }
        summary[arm] = entry
    per_seed_ndcg = {a: [per_seed[s][a]["test"]["ndcg@10"] for s in seeds] for a in ARMS}
    t = stats.ttest_rel(per_seed_ndcg["text"], per_seed_ndcg["random"])
    tests: dict[str, Any] = {
        "per_seed_test_ndcg@10": {
            "text_minus_random": [
                t - r for t, r in zip(per_seed_ndcg["text"], per_seed_ndcg["random"], strict=True)
            ],
            "scipy_ttest_rel_p": float(t.pvalue),
        },
        "pooled_users": compare_models(
            {a: [per_seed[s][a]["_result"] for s in seeds] for a in ARMS}, "ndcg@10"
        ),
    }
    for fraction in THRESHOLDS:
        pairs = [
            [per_seed[s][a]["to_threshold"][str(fraction)]["steps"] for a in ARMS] for s in seeds
        ]
        if all(None not in p for p in pairs):
            diff = [t - r for r, t in pairs]
            # equal differences on every seed leave the t-test no variance: no p-value
            p = None if np.ptp(diff) == 0 else float(stats.ttest_rel(diff, [0] * len(diff)).pvalue)
            tests[f"steps_to_{fraction}"] = {"text_minus_random": diff, "scipy_ttest_rel_p": p}
    return {"summary": summary, "significance": tests}


def tree_state() -> dict[str, Any]:
    """The commit this ran on and the tracked files that differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"head": git("rev-parse", "HEAD").strip(), "modified": [line[3:] for line in changed]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "torchrec-init.json")
    args = parser.parse_args()
    wall = time.perf_counter()
    data = load(args.dataset)
    texts = item_text(data.items, data.text_columns).tolist()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"checksum": data.checksum, **data.describe()},
        "config": {"two_tower": PARAMS, "arms": list(ARMS), "seeds": args.seeds, "ks": KS},
        "protocol": (
            "holdout: both arms fit on the random split's train (ratings as history weights); "
            "valid only early-stops (patience 3, best weights kept); test ranks the full "
            "catalogue excluding train and valid items. Thresholds: the first epoch whose valid "
            "NDCG@10 reaches a fraction of the random arm's best valid NDCG@10 on the same seed"
        ),
        "versions": library_versions(),
        "git": tree_state(),
        "load_average_at_start": os.getloadavg(),
    }
    per_seed: dict[int, dict[str, dict[str, Any]]] = {}
    splits, model = [], None
    for seed in args.seeds:
        s = split(data, "random", seed)
        splits.append(s.describe())
        per_seed[seed] = {}
        for arm in ARMS:  # random first: its best sets the thresholds
            model, per_seed[seed][arm] = fit_arm(s, texts, arm)
        best = max(per_seed[seed]["random"]["valid_curve"])
        for record in per_seed[seed].values():
            record["to_threshold"] = {}
            for fraction in THRESHOLDS:
                epochs = epochs_to(record["valid_curve"], fraction * best)
                steps = None if epochs is None else epochs * record["steps_per_epoch"]
                record["to_threshold"][str(fraction)] = {"epochs": epochs, "steps": steps}
        print(seed, {a: round(r["test"]["ndcg@10"], 4) for a, r in per_seed[seed].items()})
    assert model is not None
    report["splits"] = splits
    report.update(summarise(per_seed))
    report["init_timing"] = init_timing(model.item_text, PARAMS["dim"], model.n_users)
    report["runs"] = {
        seed: {a: {k: v for k, v in r.items() if k != "_result"} for a, r in runs.items()}
        for seed, runs in per_seed.items()
    }
    # timings on a shared machine mean little without the load they ran under
    report["load_average_at_end"] = os.getloadavg()
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    write_json(args.out, report)
    print(f"wrote {args.out} in {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
