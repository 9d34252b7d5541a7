"""The "our pipeline" arm of the implicit study: llmrec's two-stage preset on the same splits and
seeds as ``implicit_cold.py`` (ml-100k cold_items and random, seeds 1-3, train only), the same
evaluator and metrics, so its numbers sit beside that table.

Usage: .venv/bin/python experiments/dropin/pipeline_arm.py [--out pipeline-arm.json]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from llmrec.datasets import load, split
from llmrec.evaluation import resolve_model, run_model
from llmrec.io import library_versions, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["cold_items", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "pipeline-arm.json")
    args = parser.parse_args()
    data, spec, wall = load("ml-100k"), resolve_model("two-stage"), time.perf_counter()
    report: dict = {
        "command": "python experiments/dropin/pipeline_arm.py",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"name": data.name, "checksum": data.checksum},
        "model": {"name": spec.name, "kind": spec.kind, "params": spec.params},
        "protocol": "holdout: fit on train only (the ranker's holdout comes from train)",
        "versions": library_versions(),
        "load_average_at_start": os.getloadavg(),
        "splits": {},
    }
    for name in args.splits:
        runs = {}
        for seed in args.seeds:
            seeded = spec.model_copy(update={"params": {**spec.params, "seed": seed}})
            run = run_model(seeded, split(data, name, seed), ks=(10, 20))
            runs[seed] = {k: run.record[k] for k in ("test", "fit_seconds") if k in run.record}
            if "test_full_catalogue" in run.record:
                runs[seed]["test_full_catalogue"] = run.record["test_full_catalogue"]
            print(name, seed, round(run.record["test"]["ndcg@10"], 4), flush=True)
        values = [r["test"]["ndcg@10"] for r in runs.values()]
        report["splits"][name] = {
            "runs": runs,
            "test_ndcg@10": {"mean": float(np.mean(values)), "std": float(np.std(values))},
        }
    report["load_average_at_end"] = os.getloadavg()
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    write_json(args.out, report)
    print(f"wrote {args.out} in {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
