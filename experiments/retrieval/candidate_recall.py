"""Candidate recall of the retrieval stage: the share of each user's test items found in the
top-N candidates (seen items filtered), N = 50, 100, 200, 500, for each index spec and two query
sources: MiniLM text (item-text embeddings; user = rating-weighted mean of their train items)
and ALS factors (rankers/als.yaml, raw inner product). Also the union of both sources, N/2 each.
Same split and seed as the baselines. Writes candidate-recall-DATASET-SPLIT.json.

Usage: .venv/bin/python experiments/retrieval/candidate_recall.py [--dataset ml-1m] [--split random]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from llmrec.datasets import item_text, load, split
from llmrec.evaluation import resolve_model
from llmrec.io import library_versions, write_json
from llmrec.rankers import TextSimilarity
from llmrec.retrieval import ItemIndex, candidate_recall

SIZES = (50, 100, 200, 500)


def specs(n_items: int, dimension: int) -> dict[str, dict[str, int]]:
    nlist = max(16, int(4 * np.sqrt(n_items)) // 16 * 16)
    return {
        "Flat": {},
        f"IVF{nlist},Flat": {"nprobe": 32},
        "HNSW32": {"efSearch": 128},
        f"IVF{nlist},PQ{dimension // 8}": {"nprobe": 32},
    }


def union_recall(
    a: np.ndarray, b: np.ndarray, truth: sp.csr_matrix, users: np.ndarray, n: int
) -> float:
    """Recall of the union of source a's top n/2 and source b's best items up to n in all."""
    shares = []
    for row, user in enumerate(users):
        relevant = set(truth.indices[truth.indptr[user] : truth.indptr[user + 1]])
        picked = list(dict.fromkeys([*a[row, : n // 2].tolist(), *b[row].tolist()]))
        candidates = {i for i in picked[:n] if i >= 0}
        shares.append(len(relevant & candidates) / len(relevant))
    return float(np.mean(shares))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="random")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data = split(load(args.dataset), args.split, args.seed)
    train, test = data.matrix("train"), data.matrix("test")
    texts = item_text(data.dataset.items, data.dataset.text_columns).tolist()
    text_model = TextSimilarity(weighting="rating").fit(
        data.matrix("train", "rating"), item_texts=texts
    )
    als_spec = resolve_model("als")
    als = als_spec.build().fit(train)
    sources = {
        "text": (text_model.item_factors, text_model.user_factors, True),
        "als": (als.item_factors, als.user_factors, False),
    }
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    rows, top = [], {}
    for source, (items, queries, normalize) in sources.items():
        for spec, params in specs(len(items), items.shape[1]).items():
            start = time.perf_counter()
            index = ItemIndex.build(items, spec=spec, normalize=normalize, seed=args.seed)
            index.set_search_params(**params)
            built = time.perf_counter() - start
            start = time.perf_counter()
            recall = candidate_recall(index, queries, test, train, SIZES)
            rows.append(
                {
                    "source": source,
                    "spec": spec,
                    "params": params,
                    "build_seconds": round(built, 3),
                    "search_seconds": round(time.perf_counter() - start, 3),
                    **{f"recall@{n}": round(r, 4) for n, r in recall.items()},
                }
            )
            print(rows[-1], flush=True)
            if spec == "Flat":
                top[source], _ = index.search(queries[users], max(SIZES), exclude=train[users])
    union = {
        f"recall@{n}": round(union_recall(top["als"], top["text"], test, users, n), 4)
        for n in SIZES
    }
    print({"source": "als+text union", "spec": "Flat", **union})
    result = {
        "command": "python experiments/retrieval/candidate_recall.py "
        f"--dataset {args.dataset} --split {args.split} --seed {args.seed}",
        "split": data.describe(),
        "dataset": {"name": data.dataset.name, "checksum": data.dataset.checksum},
        "als_params": als_spec.params,
        "rows": rows,
        "union_als_text_flat": union,
        "versions": library_versions(),
    }
    write_json(
        Path(__file__).with_name(f"candidate-recall-{args.dataset}-{args.split}.json"), result
    )


if __name__ == "__main__":
    main()
