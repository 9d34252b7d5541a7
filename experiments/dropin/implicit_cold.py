"""What item text adds to implicit's ALS through ``llmrec.dropin.implicit`` (issue 14).

On each split and seed, every model fits on the same train interactions: implicit's ALS alone;
ALS + text factors for the items train lacks (ridge map, MLP map); ALS with warm factors pulled
toward the text (``text_regularization`` picked on valid); ALS with its ``regularization``
picked on valid (the control for that pull, same 4-point budget); llmrec's text similarity
(presets ``text`` and ``text-adapted``). Test ranks exclude train and valid items; on
``cold_items`` it ranks the held-out items (``test``) and the whole catalogue
(``test_full_catalogue``). Paired t-tests over pooled (seed, user) NDCG@10 on ``test``.

Usage: .venv/bin/python experiments/dropin/implicit_cold.py [--dataset ml-100k]
    [--splits cold_items random] [--seeds 1 2 3] [--out experiments/dropin/implicit-cold.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares as PlainALS

from llmrec.datasets import load, split
from llmrec.datasets.splits import Split
from llmrec.dropin.implicit import AlternatingLeastSquares
from llmrec.encoders.base import normalize_rows
from llmrec.encoders.cache import default_cache_path
from llmrec.encoders.job import EncodeConfig, encode_dataset
from llmrec.evaluation import (
    compare_models,
    evaluate_scores,
    mean_std,
    resolve_model,
    run_model,
)
from llmrec.io import library_versions, write_json

ALS = {"factors": 32, "regularization": 0.01, "alpha": 2.0, "iterations": 15}
"""llmrec's ALS preset (rankers/als.yaml): the grid's winner on ml-100k random."""
PRIOR_GRID = [1e3, 1e4, 1e5]
"""text_regularization tried besides 0 (the ridge model): 4 points, picked on valid NDCG@10."""
REG_GRID = [1.0, 10.0, 100.0]
"""ALS regularization tried besides the preset's 0.01: the control, same budget."""
KS = (10, 20)
METRICS = ("ndcg", "recall")


def evaluate(model: Any, s: Split, keep_top: bool = True) -> dict[str, Any]:
    """Valid (excluding train) and test (excluding train+valid, among the split's candidates;
    and over the whole catalogue on cold_items) of a factor model, as ``run_model`` does."""

    def scorer(users: np.ndarray) -> np.ndarray:
        return model.user_factors[users] @ model.item_factors.T

    train, exclude, test = s.matrix("train"), s.matrix("train+valid"), s.matrix("test")
    out: dict[str, Any] = {
        "valid": evaluate_scores(scorer, s.matrix("valid"), train, KS, METRICS).metrics,
    }
    result = evaluate_scores(
        scorer, test, exclude, KS, METRICS, candidates=s.test_candidates, keep_top=keep_top
    )
    out["test"], out["_result"] = result.metrics, result
    if s.test_candidates is not None:
        out["test_full_catalogue"] = evaluate_scores(scorer, test, exclude, KS, METRICS).metrics
    return out


def timed_fit(model: Any, train: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    model.fit(train, show_progress=False, **kwargs)
    return round(time.perf_counter() - start, 3)


def pick_on_valid(candidates: list[tuple[dict[str, Any], Any, float]], s: Split) -> dict:
    """The candidate with the best valid NDCG@10, with every trial recorded."""
    trials, best = [], None
    for params, model, seconds in candidates:
        record = evaluate(model, s)
        trials.append({"params": params, "valid_ndcg@10": record["valid"]["ndcg@10"]})
        if best is None or record["valid"]["ndcg@10"] > best["valid"]["ndcg@10"]:
            best = {**record, "params": params, "fit_seconds": seconds}
    best["tuning"] = trials
    return best


def one_split(s: Split, emb: np.ndarray) -> dict[str, dict[str, Any]]:
    train, seed = s.matrix("train"), s.seed
    runs: dict[str, dict[str, Any]] = {}
    plain = PlainALS(**ALS, random_state=seed)
    seconds = timed_fit(plain, train)
    runs["als"] = {**evaluate(plain, s), "fit_seconds": seconds}
    # The drop-in without text is implicit itself (its own test mixin says so); text is then
    # added to the fitted model, which times the map alone.
    base = AlternatingLeastSquares(**ALS, random_state=seed)
    base_seconds = timed_fit(base, train)
    assert np.array_equal(base.item_factors, plain.item_factors), "drop-in differs from implicit"
    text_models = {}
    for method in ("ridge", "mlp"):
        model = copy.deepcopy(base)
        model.text_method = method
        start = time.perf_counter()
        model.set_item_embeddings(emb)
        map_seconds = round(time.perf_counter() - start, 3)
        text_models[method] = (model, round(base_seconds + map_seconds, 3))
        runs[f"als+text-{method}"] = {
            **evaluate(model, s),
            "fit_seconds": round(base_seconds + map_seconds, 3),
            "map_seconds": map_seconds,
            "cold_items_given_text": int((~model.warm_items).sum()),
        }
    prior = [({"text_regularization": 0.0}, *text_models["ridge"])]
    for mu in PRIOR_GRID:
        model = AlternatingLeastSquares(**ALS, random_state=seed, text_regularization=mu)
        seconds = timed_fit(model, train, item_embeddings=emb)
        prior.append(({"text_regularization": mu}, model, seconds))
    runs["als+text-prior"] = pick_on_valid(prior, s)
    control = [({"regularization": ALS["regularization"]}, plain, runs["als"]["fit_seconds"])]
    for reg in REG_GRID:
        model = PlainALS(**{**ALS, "regularization": reg}, random_state=seed)
        control.append(({"regularization": reg}, model, timed_fit(model, train)))
    runs["als-reg-tuned"] = pick_on_valid(control, s)
    for name in ("text", "text-adapted"):
        run = run_model(resolve_model(name), s, ks=KS, keep_top=True, show_progress_bar=False)
        runs[name] = {
            key: run.record[key]
            for key in ("valid", "test", "test_full_catalogue", "fit_seconds", "config")
            if key in run.record
        }
        runs[name]["_result"] = run.test
    return runs


def summarise(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    models = list(next(iter(per_seed.values())))
    summary: dict[str, Any] = {}
    for model in models:
        entry: dict[str, Any] = {}
        for part in ("test", "test_full_catalogue"):
            if part not in per_seed[next(iter(per_seed))][model]:
                continue
            entry[part] = {}
            for key in (f"{m}@{k}" for m in METRICS for k in KS):
                mean, std = mean_std([runs[model][part][key] for runs in per_seed.values()])
                entry[part][key] = {"mean": mean, "std": std}
        for key in ("fit_seconds", "map_seconds"):
            if key in per_seed[next(iter(per_seed))][model]:
                mean, std = mean_std([runs[model][key] for runs in per_seed.values()])
                entry[key] = {"mean": round(mean, 3), "std": round(std, 3)}
        summary[model] = entry
    results = {m: [runs[m]["_result"] for runs in per_seed.values()] for m in models}
    return {"summary": summary, "significance": compare_models(results, "ndcg@10")}


def tree_state() -> dict[str, Any]:
    """The commit this ran on and the files that differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    # porcelain lines are "XY path": two status letters, a space, then the path
    return {"head": git("rev-parse", "HEAD").strip(), "modified": [line[3:] for line in changed]}


def warm_up() -> None:
    """First calls pay for imports and thread pools; keep that out of the timings."""
    import scipy.sparse as sp
    import torch  # the MLP map's

    torch.zeros(1)
    tiny = sp.random(50, 40, density=0.2, format="csr", dtype=np.float32, random_state=0)
    PlainALS(factors=4, iterations=2).fit(tiny, show_progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--splits", nargs="+", default=["cold_items", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "implicit-cold.json")
    args = parser.parse_args()
    wall = time.perf_counter()
    warm_up()
    data = load(args.dataset)
    start = time.perf_counter()
    embeddings = encode_dataset(data, EncodeConfig(), default_cache_path())
    encode_seconds = round(time.perf_counter() - start, 3)
    emb = normalize_rows(embeddings.vectors)  # MiniLM's cosine space, as text similarity uses
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": data.describe(),
        "encoder": {
            "fingerprint": embeddings.manifest["fingerprint"],
            "dimension": embeddings.manifest["dimension"],
            "seconds_this_run": encode_seconds,
            "seconds_when_made": embeddings.manifest["seconds"],
            "note": "encode_dataset through the default embedding cache; a warm cache costs "
            "only loading the model",
        },
        "config": {
            "als": ALS,
            "prior_grid": [0.0, *PRIOR_GRID],
            "regularization_grid": [ALS["regularization"], *REG_GRID],
            "text_presets": {n: resolve_model(n).params for n in ("text", "text-adapted")},
            "ks": list(KS),
            "seeds": args.seeds,
        },
        "protocol": (
            "every model fits on train; valid only picks text_regularization (als+text-prior) "
            "and regularization (als-reg-tuned), 4 points each; test ranks exclude train and "
            "valid items, among the held-out items on cold_items (test) and over the whole "
            "catalogue (test_full_catalogue)"
        ),
        "versions": library_versions(),
        "git": tree_state(),
        "load_average_at_start": os.getloadavg(),
        "splits": {},
    }
    for name in args.splits:
        per_seed: dict[int, dict[str, dict[str, Any]]] = {}
        splits = []
        for seed in args.seeds:
            s = split(data, name, seed)
            splits.append(s.describe())
            per_seed[seed] = one_split(s, emb)
            print(
                name, seed, {m: round(r["test"]["ndcg@10"], 4) for m, r in per_seed[seed].items()}
            )
        report["splits"][name] = {
            "splits": splits,
            **summarise(per_seed),
            "runs": {
                seed: {m: {k: v for k, v in r.items() if k != "_result"} for m, r in runs.items()}
                for seed, runs in per_seed.items()
            },
        }
    # timings on a shared machine mean little without the load they ran under
    report["load_average_at_end"] = os.getloadavg()
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    write_json(args.out, report)
    print(f"wrote {args.out} in {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
