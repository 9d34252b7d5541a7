"""Encode all ml-1m items and all user profiles with the default model on this machine, from a
cold cache; report wall time and peak memory (max RSS) of each step, and the same work sharded
over 2 worker processes.

Usage: .venv/bin/python experiments/encode_scale/run.py [--dataset ml-1m] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from llmrec.datasets import load
from llmrec.encoders.job import EncodeConfig, encode_dataset
from llmrec.io import library_versions, write_json


def peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    data = load(args.dataset)
    runs = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "cache.sqlite"
            for what in ("items", "users"):
                config = EncodeConfig(what=what, user_text="profile")
                start = time.perf_counter()
                result = encode_dataset(data, config, cache, workers=workers)
                seconds = time.perf_counter() - start
                runs.append(
                    {
                        "what": what,
                        "workers": workers,
                        "count": result.manifest["count"],
                        "dimension": result.manifest["dimension"],
                        "seconds": round(seconds, 2),
                        "per_second": round(result.manifest["count"] / seconds, 1),
                        "peak_rss_mib_so_far": round(peak_rss_mib(), 1),
                        "fallback_users": result.manifest["fallback_users"],
                    }
                )
                print(runs[-1], flush=True)
    result = {
        "command": "python experiments/encode_scale/run.py "
        f"--dataset {args.dataset} --workers {' '.join(map(str, args.workers))}",
        "dataset": {"name": data.name, "checksum": data.checksum},
        "config": EncodeConfig(what="users").model_dump(),
        "runs": runs,
        "versions": library_versions(),
    }
    write_json(Path(__file__).with_name(f"result-{args.dataset}.json"), result)


if __name__ == "__main__":
    main()
