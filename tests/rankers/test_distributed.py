"""DMP over gloo with 2 CPU processes, launched with torchrun as a user would; the folder it
writes is served by ``llmrec recommend`` and ``Recommender.load``."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from llmrec.cli import app
from llmrec.pipeline import Recommender
from llmrec.rankers import TwoTower


def test_dmp_training_converges_and_writes_a_servable_folder(tmp_path, shared_cache):
    out = tmp_path / "model"
    env = {**os.environ, "LLMREC_CACHE_DIR": str(shared_cache), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        *("-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"),
        *("-m", "llmrec.pipeline.distributed", "--dataset", "ml-100k", "--max-users", "150"),
        *("--params", json.dumps({"epochs": 4, "batch_size": 256, "dim": 16})),
        *("--out", str(out), "--dmp-scores", str(tmp_path / "dmp.npy")),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = [float(x) for x in re.findall(r"epoch \d/4: loss ([0-9.]+)", done.stdout)]
    assert len(losses) == 4, done.stdout  # printed once per epoch, by rank 0 only
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.95 * losses[0]
    assert "test NDCG@10" in done.stdout and f"wrote {out}" in done.stdout

    recommender = Recommender.load(out)
    assert isinstance(recommender.model, TwoTower)
    dmp_scores = np.load(tmp_path / "dmp.npy")
    single = recommender.model.score(np.arange(dmp_scores.shape[0]))
    np.testing.assert_allclose(single, dmp_scores, atol=1e-5)
    ids, _ = recommender.recommend("1", k=10)
    seen = set(recommender.item_ids[recommender.seen_[0].indices])
    assert len(seen) > 0 and not seen & set(ids)

    result = CliRunner().invoke(app, ["recommend", "--model", str(out), "--users", "1,ghost"])
    assert result.exit_code == 0, result.output
    assert "model" in result.output and "cold" in result.output


def test_an_existing_foreign_folder_is_refused_before_training(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    command = [
        *(sys.executable, "-m", "llmrec.pipeline.distributed", "--out", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "notes.txt" not in done.stdout
    assert (out / "notes.txt").read_text() == "keep me"
