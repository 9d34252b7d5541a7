"""``Recommender.recommend`` latency and throughput, against ALS's ``recommend`` in the same run.

Fits the pipeline (rankers/two-stage.yaml) on a split's train, then times: one known user per
call (p50/p99 over --calls users), one unknown user served by the LLM path from a 10-item
history, and all users in batches of --batch. ALS (implicit, our wrapper) is timed the same way
in the same process as the baseline. Writes latency-DATASET.json beside this file.

Usage: .venv/bin/python experiments/two_stage/latency.py [--dataset ml-100k] [--calls 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from llmrec import Recommender
from llmrec.datasets import load, split
from llmrec.evaluation import resolve_model
from llmrec.io import library_versions, write_json
from llmrec.rankers.two_stage import TwoStageConfig


def timed(call, repeats: list) -> np.ndarray:
    out = []
    for args in repeats:
        start = time.perf_counter()
        call(*args)
        out.append(time.perf_counter() - start)
    return np.array(out)


def summary(seconds: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    data = split(load(args.dataset), "random", 42)
    spec = resolve_model("two-stage")
    rec = Recommender(TwoStageConfig(**spec.params)).fit(
        data.train,
        items=data.dataset.items,
        users=data.dataset.users,
        text_columns=data.dataset.text_columns,
        show_progress_bar=False,
    )
    # the pipeline's own ALS source, fitted alone: the baseline a user already runs
    als_source = next(s for s in rec.config.sources if s.kind == "als")
    als = als_source.build().fit(data.matrix("train"))
    seen = data.matrix("train")
    rng = np.random.default_rng(0)
    users = rng.choice(len(data.dataset.user_ids), size=args.calls)
    ids = data.dataset.user_ids
    rec.recommend([ids[0]], k=args.k)  # warm-up: lazy imports, first faiss call
    ours = timed(lambda u: rec.recommend([ids[u]], k=args.k), [(u,) for u in users])
    theirs = timed(lambda u: als.recommend(u, seen[u], N=args.k), [(u,) for u in users])
    items = data.dataset.item_ids
    histories = [list(rng.choice(items, size=10, replace=False)) for _ in range(args.calls)]
    cold = timed(
        lambda h: rec.recommend(["someone-new"], k=args.k, histories={"someone-new": h}),
        [(h,) for h in histories],
    )
    all_users = np.arange(len(ids))
    start = time.perf_counter()
    for lo in range(0, len(all_users), args.batch):
        rec.recommend(list(ids[lo : lo + args.batch]), k=args.k)
    batched = len(all_users) / (time.perf_counter() - start)
    start = time.perf_counter()
    for lo in range(0, len(all_users), args.batch):
        batch = all_users[lo : lo + args.batch]
        als.recommend(batch, seen[batch], N=args.k)
    als_batched = len(all_users) / (time.perf_counter() - start)
    result = {
        "command": f"python experiments/two_stage/latency.py --dataset {args.dataset} "
        f"--calls {args.calls} --batch {args.batch} -k {args.k}",
        "config": {**vars(args), "model": rec.config.model_dump()},
        "dataset": {"name": data.dataset.name, "checksum": data.dataset.checksum},
        "two_stage_one_user": summary(ours),
        "two_stage_one_new_user_llm_path": summary(cold),
        "als_one_user": summary(theirs),
        "two_stage_batched_users_per_s": round(batched, 1),
        "als_batched_users_per_s": round(als_batched, 1),
        "ratio_p50_two_stage_over_als": round(float(np.median(ours) / np.median(theirs)), 2),
        "ratio_batched_over_one_at_a_time": round(batched * float(np.median(ours)), 2),
        "versions": library_versions(),
    }
    write_json(Path(__file__).with_name(f"latency-{args.dataset}.json"), result)
    print(
        f"one user: p50 {result['two_stage_one_user']['p50_ms']} ms, p99 "
        f"{result['two_stage_one_user']['p99_ms']} ms (ALS p50 "
        f"{result['als_one_user']['p50_ms']} ms, ratio {result['ratio_p50_two_stage_over_als']}); "
        f"LLM path p50 {result['two_stage_one_new_user_llm_path']['p50_ms']} ms; batched "
        f"{batched:.0f} users/s ({result['ratio_batched_over_one_at_a_time']}x one at a time; "
        f"ALS {als_batched:.0f} users/s)"
    )


if __name__ == "__main__":
    main()
