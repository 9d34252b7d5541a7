"""``llmrec demo`` end to end with the fastest model: the table, LLM-written descriptions (from
the cache the second time) and the thumbnail gallery."""

from __future__ import annotations

from typer.testing import CliRunner

from llmrec.cli import app

runner = CliRunner()


def test_demo_shows_llm_text_and_writes_the_gallery(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    gallery = tmp_path / "gallery"
    args = ["demo", "--models", "pop", "--gallery", str(gallery)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Item descriptions written by SmolLM2" in result.output
    assert "0 from the cache, 3 generated" in result.output
    for user in ("1", "42", "196"):
        assert len(list((gallery / f"user-{user}").glob("*.png"))) == 5
    assert f"gallery: {gallery / 'index.html'}" in result.output.replace("\n", "")
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "3 from the cache, 0 generated" in again.output
