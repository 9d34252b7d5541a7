"""Generation speed of the shipped SmolLM2-135M-Instruct (issue 15), all in one run:
tokens/s one prompt at a time vs batched (left padding), and the cache's warm/cold ratio.

Usage: .venv/bin/python experiments/llm_text/speed.py [--prompts 32] [--batch-sizes 8 32]
    [--threads 2] [--out experiments/llm_text/speed.json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from llmrec.datasets import item_text, load
from llmrec.io import library_versions, write_json
from llmrec.llm import load_generator
from llmrec.llm.cache import GenerationCache
from llmrec.llm.tasks import DESCRIBE_PROMPT

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "speed.json")
    args = parser.parse_args()
    data = load("ml-100k")
    texts = item_text(data.items, data.text_columns).tolist()[: args.prompts]
    prompts = [DESCRIBE_PROMPT.format(item=t) for t in texts]
    t = time.perf_counter()
    gen = load_generator(num_threads=args.threads, cache=False)
    load_seconds = time.perf_counter() - t
    runs = {}
    for batch_size in [1, *args.batch_sizes]:
        gen.generate(prompts, max_new_tokens=args.max_new_tokens, batch_size=batch_size)
        s = gen.stats
        runs[batch_size] = {
            "prompts": s.generated,
            "new_tokens": s.new_tokens,
            "seconds": round(s.seconds, 2),
            "tokens_per_second": round(s.tokens_per_second, 1),
        }
        print(f"batch {batch_size:3d}: {s.tokens_per_second:6.1f} tokens/s", flush=True)
    one = runs[1]["tokens_per_second"]
    with tempfile.TemporaryDirectory() as tmp:
        gen.cache = GenerationCache(Path(tmp) / "gen.sqlite")
        batch = max(args.batch_sizes)
        t = time.perf_counter()
        gen.generate(prompts, max_new_tokens=args.max_new_tokens, batch_size=batch)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        gen.generate(prompts, max_new_tokens=args.max_new_tokens, batch_size=batch)
        warm = time.perf_counter() - t
        gen.cache.close()
    report = {
        "command": "python experiments/llm_text/speed.py "
        + f"--prompts {args.prompts} --batch-sizes {' '.join(map(str, args.batch_sizes))} "
        + f"--threads {args.threads}",
        "model": gen.name,
        "load_seconds": round(load_seconds, 1),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "runs": runs,
        "batched_speedup": {b: round(runs[b]["tokens_per_second"] / one, 2) for b in runs},
        "cache": {
            "cold_seconds": round(cold, 3),
            "warm_seconds": round(warm, 4),
            "cold_over_warm": round(cold / warm, 1),
        },
        "versions": library_versions(),
    }
    write_json(args.out, report)
    print(report["batched_speedup"], report["cache"])


if __name__ == "__main__":
    main()
