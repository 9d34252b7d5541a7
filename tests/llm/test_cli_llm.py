"""``llmrec llm describe`` / ``summarize`` through the CLI, on the shipped SmolLM2."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from llmrec.cli import app

runner = CliRunner()


def test_describe_writes_a_csv_and_serves_the_cache_next_time(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "descriptions.csv"
    args = ["llm", "describe", "--items", "1,50", "--max-new-tokens", "40"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert table["item_id"].tolist() == ["1", "50"]
    assert table["text"].str.startswith(("Toy Story", "Star Wars")).all()
    assert (table["description"].str.split().str.len() >= 4).sum() >= 1
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "2 from the cache, 0 generated" in again.output


def test_unknown_ids_fail_before_loading_the_model():
    result = runner.invoke(app, ["llm", "describe", "--items", "1,nope"])
    assert result.exit_code == 2 and "unknown item id(s) ['nope']" in result.output
    result = runner.invoke(app, ["llm", "summarize", "--user", "999999"])
    assert result.exit_code == 2 and "unknown user id(s) ['999999']" in result.output
    result = runner.invoke(app, ["llm", "describe", "--llm", "/nowhere/model.gguf"])
    assert result.exit_code == 2 and "no such file" in result.output
