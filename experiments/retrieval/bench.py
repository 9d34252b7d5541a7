"""Index speed and scale on a synthetic catalogue: N x 384 float32 vectors (seeded clusters,
like sentence embeddings) and Q queries from the same distribution. For Flat, IVF, IVF-PQ and
HNSW: build time, index memory, QPS and recall@100 against exact search, all in this run; then
the overhead of ``ItemIndex.search`` (id mapping, seen-item filtering) over a bare
``index.search`` on the same index. Writes bench-N.json beside this file.

Usage: .venv/bin/python experiments/retrieval/bench.py [--n 1000000] [--queries 10000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import faiss
import numpy as np

from llmrec.io import library_versions, write_json
from llmrec.retrieval import ItemIndex

K = 100


def synthetic(n: int, d: int, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    centers = rng.standard_normal((n_clusters, d), dtype=np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for lo in range(0, n, 100_000):
        hi = min(lo + 100_000, n)
        noise = rng.standard_normal((hi - lo, d), dtype=np.float32)
        out[lo:hi] = centers[rng.integers(0, n_clusters, hi - lo)] + 0.6 * noise
    return out


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(np.intersect1d(a, b)) for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits) / truth.shape[1])


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def index_bytes(index: ItemIndex) -> int:
    return int(faiss.serialize_index(index.index).size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--hnsw", default="HNSW32")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    items = synthetic(args.n + args.queries, args.dim, max(args.n // 100, 10), rng)
    items, queries = items[: args.n], items[args.n :]
    nlist = int(4 * np.sqrt(args.n)) // 64 * 64
    plans = [
        ("Flat", [{}]),
        (f"IVF{nlist},Flat", [{"nprobe": p} for p in (8, 16, 32, 64)]),
        (f"IVF{nlist},PQ{args.dim // 8}", [{"nprobe": p} for p in (16, 64)]),
        (args.hnsw, [{"efSearch": e} for e in (64, 128, 256)]),
    ]
    rows, truth, flat_qps = [], None, None
    overhead = None
    for spec, settings in plans:
        start = time.perf_counter()
        index = ItemIndex.build(items, spec=spec, seed=args.seed, max_train=max(64 * nlist, 1))
        built = time.perf_counter() - start
        size = index_bytes(index)
        for params in settings:
            index.set_search_params(**params)
            start = time.perf_counter()
            ids, _ = index.search(queries, K)
            seconds = time.perf_counter() - start
            if truth is None:
                truth, flat_qps = ids, len(queries) / seconds
            row = {
                "spec": spec,
                "params": params,
                "build_seconds": round(built, 2),
                "index_mib": round(size / 2**20, 1),
                "qps": round(len(queries) / seconds, 1),
                "qps_ratio_vs_flat": round(len(queries) / seconds / flat_qps, 2),
                "recall@100": round(recall_at(ids, truth), 4),
                "peak_rss_mib_so_far": round(rss_mib(), 1),
            }
            rows.append(row)
            print(row, flush=True)
        if spec.startswith(f"IVF{nlist},Flat"):
            overhead = measure_overhead(index, queries, rng)
            print(overhead, flush=True)
        del index
    approx = [r for r in rows if r["spec"] != "Flat" and r["recall@100"] >= 0.95]
    best = max(approx, key=lambda r: r["qps_ratio_vs_flat"], default=None)
    result = {
        "command": f"python experiments/retrieval/bench.py --n {args.n} --queries {args.queries}",
        "config": vars(args),
        "data": "seeded Gaussian clusters: n/100 centres, noise 0.6 per dimension",
        "rows": rows,
        "best_spec_with_recall_ge_0.95": best,
        "search_overhead": overhead,
        "versions": library_versions(),
    }
    write_json(Path(__file__).with_name(f"bench-{args.n}.json"), result)
    if best:
        print(f"best: {best['spec']} {best['params']} at {best['qps_ratio_vs_flat']}x Flat QPS")


def measure_overhead(index: ItemIndex, queries: np.ndarray, rng: np.random.Generator) -> dict:
    """Ours (50 random seen items filtered per query) vs bare faiss, alternating, median of 3."""
    seen = [rng.choice(index.index.ntotal, 50, replace=False) for _ in range(len(queries))]
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    ours, bare = [], []
    for _ in range(3):
        start = time.perf_counter()
        index.search(queries, K, exclude=seen)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        index.index.search(unit, K)
        bare.append(time.perf_counter() - start)
    return {
        "spec": index.spec,
        "params": index.search_params,
        "ours_seconds": ours,
        "bare_seconds": bare,
        "overhead": round(statistics.median(ours) / statistics.median(bare) - 1, 4),
    }


if __name__ == "__main__":
    main()
