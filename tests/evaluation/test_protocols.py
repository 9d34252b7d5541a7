"""Equal data: under each protocol every model fits on exactly the same interactions."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from llmrec.datasets import split
from llmrec.errors import ConfigError
from llmrec.evaluation import ModelSpec, run_model, run_study
from llmrec.rankers import Popularity


class RecordingPopularity(Popularity):
    """Popularity that remembers what ``fit`` was given (a real model, not a mock)."""

    kind = "recording_popularity"
    fits: ClassVar[list] = []

    def fit(self, user_items, *, valid=None, **kwargs):
        RecordingPopularity.fits.append((user_items.copy(), valid))
        return super().fit(user_items, valid=valid, **kwargs)


@pytest.fixture
def data(ml100k_small):
    return split(ml100k_small, "random", seed=3)


def test_holdout_fits_on_train_and_valid_only_selects(data):
    RecordingPopularity.fits = []
    spec = ModelSpec(name="rec", kind="recording_popularity")
    run = run_model(spec, data, protocol="holdout")
    (matrix, valid), *rest = RecordingPopularity.fits
    assert not rest and (matrix != data.matrix("train")).nnz == 0
    assert (valid != data.matrix("valid")).nnz == 0
    assert run.record["protocol"] == "holdout"


def test_refit_fits_again_on_train_plus_valid_without_valid(data):
    RecordingPopularity.fits = []
    spec = ModelSpec(name="rec", kind="recording_popularity")
    run = run_model(spec, data, protocol="refit")
    (first, _), (second, valid) = RecordingPopularity.fits
    assert (first != data.matrix("train")).nnz == 0
    assert (second != data.matrix("train+valid")).nnz == 0 and valid is None
    assert run.record["protocol"] == "refit"


def test_unknown_protocol_and_empty_seeds(data, ml100k_small):
    spec = ModelSpec(name="pop", kind="pop")
    with pytest.raises(ConfigError, match="unknown protocol 'cheat'"):
        run_model(spec, data, protocol="cheat")
    with pytest.raises(ConfigError, match="--seeds is empty"):
        run_study(ml100k_small, "random", [], [spec])
    with pytest.raises(ConfigError, match="--models is empty"):
        run_study(ml100k_small, "random", [1], [])


def test_grid_with_no_values_is_a_config_error(data):
    """A grid parameter with an empty value list leaves no trial: a ConfigError, not a crash."""
    spec = ModelSpec(name="pop", kind="pop", grid={"seed": []})
    with pytest.raises(ConfigError, match=r"grid .* has a parameter with no values"):
        run_model(spec, data, tune=True)


def test_each_tuning_trial_prints_a_line(data, capsys):
    spec = ModelSpec(name="als", kind="als", params={"iterations": 2}, grid={"factors": [4, 8]})
    run = run_model(spec, data, tune=True, show_progress_bar=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if " trial " in line]
    assert len(lines) == 2 and lines[0].startswith("als trial 1/2 {'factors': 4}: valid ndcg@10")
    scores = [t["valid"] for t in run.record["tuning"]["trials"]]
    assert [f"{s:.4f}" in line for s, line in zip(scores, lines, strict=True)] == [True, True]
    run_model(spec, data, tune=True, show_progress_bar=False)
    assert " trial " not in capsys.readouterr().err


def test_study_reports_mean_std_and_significance(ml100k_small):
    specs = [ModelSpec(name="pop", kind="pop"), ModelSpec(name="als", kind="als")]
    report = run_study(ml100k_small, "random", [1, 2], specs, ks=(10, 20))
    ndcg = [r["test"]["ndcg@10"] for seed in ("1", "2") for r in report["runs"][seed][1:]]
    summary = report["summary"]["als"]["test"]["ndcg@10"]
    assert summary["mean"] == pytest.approx(np.mean(ndcg))
    assert summary["std"] == pytest.approx(np.std(ndcg, ddof=1))
    assert report["significance"]["n_queries"] == sum(
        r["test_users"] for seed in ("1", "2") for r in report["runs"][seed][:1]
    )
    assert report["protocol"]["name"] == "holdout" and report["seeds"] == [1, 2]


def test_table_fits_an_80_column_terminal():
    """Names, headers and verdicts are never cut (the recorded 3-seed ml-100k report)."""
    import json
    from pathlib import Path

    from rich.console import Console

    from llmrec.evaluation.report import print_table

    path = Path(__file__).resolve().parents[2] / "experiments/fair/ml-100k-random-holdout.json"
    report = json.loads(path.read_text())
    console = Console(width=80, record=True)
    print_table(report, console)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text
    for name in report["summary"]:
        assert f" {name} " in text
    assert "recall@20" in text and "worse p<.001" in text
