"""Many processes opening one new embedding cache at once (torchrun ranks, ``--workers``).

Before the retry in ``EmbeddingCache._open``, one open in about 320 failed with "database is
locked" (SQLite's busy timeout does not cover the switch to WAL); prints the failures seen.

Usage: .venv/bin/python experiments/cache_contention/stress.py [--rounds 40] [--processes 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from llmrec.encoders.cache import EmbeddingCache


def open_and_put(args: tuple[Path, int]) -> str:
    path, worker = args
    try:
        cache = EmbeddingCache(path, "stress-model", 4)
        cache.put([bytes([worker]) * 16], np.ones((1, 4), np.float32))
        cache.close()
    except ValueError as exc:
        return str(exc)
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    failures = []
    with mp.get_context("fork").Pool(args.processes) as pool:
        for _ in range(args.rounds):
            path = Path(tempfile.mkdtemp()) / "cache.sqlite"
            outcomes = pool.map(open_and_put, [(path, w) for w in range(args.processes)])
            failures += [o for o in outcomes if o != "ok"]
    print(f"{args.rounds * args.processes} opens, {len(failures)} failed", failures[:1])


if __name__ == "__main__":
    main()
