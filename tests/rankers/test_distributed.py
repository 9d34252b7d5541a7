"""DMP over gloo with 2 CPU processes, launched with torchrun as a user would."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np

from llmrec.rankers import RecommenderBase, TwoTower


def test_dmp_training_converges_and_loads_single_process(tmp_path, shared_cache):
    out = tmp_path / "model.npz"
    env = {**os.environ, "LLMREC_CACHE_DIR": str(shared_cache), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "llmrec.rankers.distributed",
        "--dataset",
        "ml-100k",
        "--max-users",
        "150",
        "--params",
        json.dumps({"epochs": 4, "batch_size": 256, "dim": 16}),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = json.loads(out.with_suffix(".losses.json").read_text())
    assert len(losses) == 4
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.95 * losses[0]
    model = RecommenderBase.load(out)
    assert isinstance(model, TwoTower)
    dmp_scores = np.load(out.with_suffix(".dmp_scores.npy"))
    single = model.score(np.arange(dmp_scores.shape[0]))
    np.testing.assert_allclose(single, dmp_scores, atol=1e-5)
