from __future__ import annotations

import json

from typer.testing import CliRunner

from llmrec.cli import app
from tests.conftest import write_atomic


def test_cli_index_build_and_search(ml100k_small, tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    common = ["--encoder", tiny_spec.model, "--dataset", "ml-100k", "--batch-size", "64"]
    for what in ("items", "users"):
        extra = ["--user-text", "pool"] if what == "users" else []
        result = CliRunner().invoke(
            app, ["encode", *common, "--what", what, "--out", str(tmp_path / what), *extra]
        )
        assert result.exit_code == 0, result.output
    build = ["index", "build", "--embeddings", str(tmp_path / "items")]
    result = CliRunner().invoke(app, [*build, "--out", str(tmp_path / "ix"), "--spec", "HNSW8"])
    assert result.exit_code == 0, result.output
    assert "HNSW8 over 1682 items x 32" in " ".join(result.output.split())
    search = ["index", "search", "--index", str(tmp_path / "ix"), "--queries"]
    result = CliRunner().invoke(
        app, [*search, str(tmp_path / "users"), "--users", "1,2", "-k", "3", "--dataset", "ml-100k"]
    )
    assert result.exit_code == 0, result.output
    assert "top 3 candidates" in result.output
    bad = CliRunner().invoke(app, [*search, str(tmp_path / "users"), "--users", "nobody"])
    assert bad.exit_code == 2 and "unknown user id" in bad.output
    other = write_atomic(tmp_path, "other", "user_id:token\titem_id:token\n1\t1\n2\t5\n")
    bad = CliRunner().invoke(
        app, [*search, str(tmp_path / "users"), "--user", "1", "--dataset", str(other)]
    )
    assert bad.exit_code == 2, bad.output
    assert "is not the dataset" in " ".join(bad.output.split()), bad.output
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("1\n\n 2 \n")
    result = CliRunner().invoke(
        app, [*search, str(tmp_path / "users"), "--users-file", str(ids_file), "-k", "2"]
    )
    assert result.exit_code == 0 and "top 2 candidates" in result.output, result.output
    result = CliRunner().invoke(
        app, [*search, str(tmp_path / "users"), "--users", "1,2", "-k", "2", "--format", "json"]
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["user"] for r in rows] == ["1", "2"] and all(len(r["items"]) == 2 for r in rows)
    result = CliRunner().invoke(
        app, [*search, str(tmp_path / "users"), "--users", "1", "-k", "3", "--format", "csv"]
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "user,rank,item,score" and len(lines) == 4, result.output
    for args in (["--users", ","], ["--users", "1", "-k", "0"]):
        bad = CliRunner().invoke(app, [*search, str(tmp_path / "users"), *args])
        assert bad.exit_code == 2, bad.output
    wrong = CliRunner().invoke(app, [*build, "--out", str(tmp_path / "x"), "--spec", "IVF9999,PQ3"])
    assert wrong.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_cli_index_and_encode_refuse_foreign_folders_and_bad_parameters(
    tiny_spec, tmp_path, monkeypatch
):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    encode = ["encode", "--encoder", tiny_spec.model, "--dataset", "ml-100k", "--batch-size", "64"]
    items = tmp_path / "items"
    assert CliRunner().invoke(app, [*encode, "--out", str(items)]).exit_code == 0
    foreign = tmp_path / "d"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("years of work")
    build = ["index", "build", "--embeddings", str(items)]
    for args in ([*build, "--out", str(foreign)], [*encode, "--out", str(foreign)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "--overwrite" in result.output, result.output
        assert (foreign / "thesis.txt").read_text() == "years of work"
    result = CliRunner().invoke(app, [*build, "--out", str(items)])
    assert result.exit_code == 2
    assert "llmrec embeddings folder, not an index folder" in " ".join(result.output.split())
    for option, value in (("--ef-search", "-5"), ("--nprobe", "0")):
        result = CliRunner().invoke(app, [*build, "--out", str(tmp_path / "ix"), option, value])
        assert result.exit_code == 2 and option in result.output
    result = CliRunner().invoke(app, [*encode, "--what", "users", "--max-items", "0", "--out", "u"])
    assert result.exit_code == 2 and "--max-items" in result.output
    result = CliRunner().invoke(app, [*encode, "--device", "bogus", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "unknown device 'bogus'" in result.output, result.output
    ix = tmp_path / "ix"
    for _ in range(2):  # a second build replaces the index llmrec wrote
        assert CliRunner().invoke(app, [*build, "--out", str(ix), "--spec", "HNSW8"]).exit_code == 0
    result = CliRunner().invoke(app, [*build, "--out", str(foreign), "--overwrite"])
    assert result.exit_code == 0 and (foreign / "item_ids.npy").is_file()
    assert not (foreign / "thesis.txt").exists()
