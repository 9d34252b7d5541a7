"""Encoder throughput: our ``TransformerEncoder.encode`` vs ``SentenceTransformer.encode`` on the
same model (MiniLM-L6), texts, batch size and threads, alternating runs; and the embedding cache
warm vs cold. Prints ratios measured in this run and writes ``result.json`` beside this file.

Usage: .venv/bin/python experiments/encoder_speed/bench.py [--dataset ml-1m] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from llmrec.datasets import item_text, load
from llmrec.encoders import TransformerEncoder, default_model_path
from llmrec.encoders.cache import CachedEncoder
from llmrec.io import library_versions, write_json


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    data = load(args.dataset)
    texts = item_text(data.items, data.text_columns).tolist()
    ours = TransformerEncoder()
    theirs = SentenceTransformer(str(default_model_path()), device="cpu")
    kwargs = {"batch_size": args.batch_size, "show_progress_bar": False}
    ours_s, theirs_s = [], []
    for _ in range(args.repeats):
        ours_s.append(timed(lambda: ours.encode(texts, **kwargs)))
        theirs_s.append(timed(lambda: theirs.encode(texts, **kwargs)))
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedEncoder(ours, Path(tmp) / "cache.sqlite")
        cold = timed(lambda: cached.encode(texts, **kwargs))
        warm = statistics.median(timed(lambda: cached.encode(texts, **kwargs)) for _ in range(3))
    result = {
        "command": f"python experiments/encoder_speed/bench.py --dataset {args.dataset}",
        "dataset": {"name": data.name, "checksum": data.checksum, "texts": len(texts)},
        "config": vars(args),
        "ours_seconds": ours_s,
        "sentence_transformers_seconds": theirs_s,
        "throughput_ratio_ours_over_st": statistics.median(theirs_s) / statistics.median(ours_s),
        "cache_cold_seconds": cold,
        "cache_warm_seconds": warm,
        "cache_speedup": cold / warm,
        "versions": library_versions(),
    }
    write_json(Path(__file__).with_name(f"result-{args.dataset}.json"), result)
    print(f"{len(texts)} texts, batch {args.batch_size}, {args.threads} threads")
    ours_median, theirs_median = statistics.median(ours_s), statistics.median(theirs_s)
    print(f"ours {ours_median:.2f}s  sentence-transformers {theirs_median:.2f}s")
    print(f"throughput ratio ours/ST: {result['throughput_ratio_ours_over_st']:.2f}x")
    print(f"cache cold {cold:.2f}s warm {warm:.3f}s: {result['cache_speedup']:.0f}x")


if __name__ == "__main__":
    main()
