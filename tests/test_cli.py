from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from llmrec.cli import app, expand_seeds
from tests.conftest import write_atomic

runner = CliRunner()


def _small_csv(ml100k, tmp_path):
    users = sorted(ml100k.interactions["user_id"].unique(), key=int)[:120]
    inter = ml100k.interactions[ml100k.interactions["user_id"].isin(users)]
    path = tmp_path / "small.csv"
    inter[["user_id", "item_id", "rating", "timestamp"]].to_csv(path, index=False)
    return path


def test_help_lists_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("data", "evaluate", "demo"):
        assert command in result.output


def test_data_describe():
    result = runner.invoke(app, ["data", "describe", "ml-100k"])
    assert result.exit_code == 0, result.output
    assert "943" in result.output and "1682" in result.output


def test_data_split_writes_parquet(tmp_path):
    out = tmp_path / "split"
    result = runner.invoke(
        app, ["data", "split", "ml-100k", "--split", "temporal", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out / "test.parquet")) == 943


def test_out_never_deletes_files_llmrec_did_not_write(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    for command in (["data", "split", "ml-100k"], ["train", "--dataset", "ml-100k"]):
        result = runner.invoke(app, [*command, "--out", str(out)])
        assert result.exit_code == 2 and "--overwrite" in result.output, result.output
        assert (out / "thesis.txt").read_text() == "years of work"
    result = runner.invoke(app, ["data", "split", "ml-100k", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (out / "thesis.txt").exists()
    result = runner.invoke(app, ["data", "split", "ml-100k", "--out", str(out), "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "split.json").read_text())["seed"] == 7
    result = runner.invoke(app, ["train", "--dataset", "ml-100k", "--out", str(out)])
    assert result.exit_code == 2 and "llmrec split folder, not a model folder" in result.output


def test_evaluate_writes_report(ml100k, tmp_path):
    data = _small_csv(ml100k, tmp_path)
    out = tmp_path / "results.json"
    args = [
        "evaluate",
        "--dataset",
        str(data),
        "--split",
        "random",
        "--models",
        "pop,als",
        "--k",
        "5",
        "10",
        "--tune",
        "--seeds",
        "1",
        "--seeds",
        "2",
        "--protocol",
        "refit",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["seeds"] == [1, 2] and report["protocol"]["name"] == "refit"
    assert [m["name"] for m in report["runs"]["1"]] == ["pop", "als"]
    assert report["dataset"]["checksum"] and report["versions"]["implicit"] == "0.7.3"
    assert [s["seed"] for s in report["splits"]] == [1, 2] and report["ks"] == [5, 10]
    als = report["runs"]["2"][1]
    assert len(als["tuning"]["trials"]) == 6 and als["protocol"] == "refit"
    assert als["config"]["seed"] == 2 and "refit_overrides" in als
    summary = report["summary"]
    assert summary["als"]["test"]["ndcg@10"]["mean"] > summary["pop"]["test"]["ndcg@10"]["mean"]
    sig = report["significance"]
    assert (
        sig["pairs"]["pop"]["als"]["significant"] and sig["pairs"]["pop"]["als"]["better"] == "als"
    )
    assert "ndcg@10" in result.output and "worse p=" in result.output


def test_seeds_expand_like_the_issue_spells_them():
    assert expand_seeds(["evaluate", "--seeds", "1", "2", "3", "--k", "10"]) == [
        "evaluate",
        "--seeds",
        "1",
        "--seeds",
        "2",
        "--seeds",
        "3",
        "--k",
        "10",
    ]


def test_protocol_seed_and_filter_errors(ml100k, tmp_path):
    data = _small_csv(ml100k, tmp_path)
    base = ["evaluate", "--dataset", str(data), "--models", "pop"]
    result = runner.invoke(app, [*base, "--protocol", "cheat"])
    assert result.exit_code == 2 and "unknown protocol 'cheat'" in result.output
    result = runner.invoke(app, [*base, "--seeds", ","])
    assert result.exit_code == 2 and "--seeds" in result.output
    result = runner.invoke(app, [*base, "--user-core", "100000"])
    assert result.exit_code == 2 and "user_core" in result.output


def test_evaluate_cold_items_reports_both_rankings(ml100k, tmp_path):
    data = _small_csv(ml100k, tmp_path)
    out = tmp_path / "cold.json"
    args = [
        "evaluate",
        "--dataset",
        str(data),
        "--split",
        "cold_items",
        "--models",
        "pop",
        "--out",
        str(out),
    ]
    assert runner.invoke(app, args).exit_code == 0
    report = json.loads(out.read_text())
    record = report["runs"]["42"][0]
    # ID models know nothing of held-out items: on the full catalogue they find none of them
    assert record["test_full_catalogue"]["recall@20"] == 0.0
    assert "held_out_items" in report["splits"][0]


def test_errors_are_clear():
    result = runner.invoke(app, ["data", "describe", "nope"])
    assert result.exit_code == 2
    assert "unknown dataset 'nope'" in result.output
    result = runner.invoke(app, ["evaluate", "--models", ",,,"])
    assert result.exit_code == 2 and "names no model" in result.output
    result = runner.invoke(app, ["evaluate", "--models", "pop,xgb"])
    assert result.exit_code == 2 and "unknown model 'xgb'" in result.output


def test_text_model_without_item_metadata(ml100k, tmp_path):
    data = _small_csv(ml100k, tmp_path)
    result = runner.invoke(app, ["evaluate", "--dataset", str(data), "--models", "text"])
    assert result.exit_code == 2
    assert "no title column" in result.output


def _small_atomic(ml100k, tmp_path):
    """The first 120 users of ml-100k with the items table, as RecBole atomic files."""
    users = sorted(ml100k.interactions["user_id"].unique(), key=int)[:120]
    inter = ml100k.interactions[ml100k.interactions["user_id"].isin(users)]
    folder = tmp_path / "small"
    folder.mkdir()
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [
        f"{r.user_id}\t{r.item_id}\t{r.rating}\t{r.timestamp}"
        for r in inter.itertuples(index=False)
    ]
    (folder / "small.inter").write_text("\n".join(lines) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    items += [
        f"{r.item_id}\t{r.movie_title}\t{r.release_year}\t{r['class']}"
        for _, r in ml100k.items.fillna("").iterrows()
    ]
    (folder / "small.item").write_text("\n".join(items) + "\n")
    return folder


def test_train_then_recommend(ml100k, tmp_path, monkeypatch, shared_cache):
    from tests.rankers.test_two_stage import FAST

    monkeypatch.setenv("LLMREC_CACHE_DIR", str(shared_cache))
    preset = tmp_path / "fast.yaml"
    preset.write_text(json.dumps({"kind": "two_stage", "params": FAST}))
    folder, model = _small_atomic(ml100k, tmp_path), tmp_path / "model"
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--preset", str(preset), "--out", str(model)]
    )
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output and (model / "weights.safetensors").is_file()
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            str(model),
            "--users",
            "1,2,newcomer",
            "-k",
            "3",
            "--history",
            "50,181",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "model" in result.output and "history" in result.output
    ids = tmp_path / "ids.txt"
    ids.write_text("2\nnewcomer, The (1999)\n")
    result = runner.invoke(
        app,
        [
            *("recommend", "--model", str(model), "--user", "1", "--users-file", str(ids)),
            *("-k", "3", "--history-item", "50", "--history-item", "181"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "newcomer, The" in result.output and "history" in result.output
    result = runner.invoke(
        app, ["recommend", "--model", str(model), "--users", "1,newcomer", "--format", "csv"]
    )
    lines = result.stdout.splitlines()  # stderr may hold progress bars
    assert lines[0] == "user,rank,item,score,served_by" and len(lines) == 21, result.output
    assert lines[1].startswith("1,1,") and lines[-1].endswith(",cold")
    result = runner.invoke(
        app, ["recommend", "--model", str(model), "--users", "1", "--format", "x"]
    )
    assert result.exit_code == 2 and "--format 'x'" in result.output
    for args in (["--users", " , "], ["--users", "1", "-k", "0"], ["--users-file", "nope.txt"]):
        result = runner.invoke(app, ["recommend", "--model", str(model), *args])
        assert result.exit_code == 2, result.output
    result = runner.invoke(app, ["recommend", "--model", str(model), "--users", "1", "-k", "99999"])
    assert result.exit_code == 2 and "catalogue size" in result.output
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--preset", "als", "--out", str(model)]
    )
    assert result.exit_code == 2 and "kind 'als'" in result.output


def test_train_a_two_tower_preset_then_recommend(ml100k, tmp_path, monkeypatch, shared_cache):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(shared_cache))
    preset = tmp_path / "tower.yaml"
    params = {"epochs": 3, "batch_size": 64, "dim": 16, "learning_rate": 0.01}
    preset.write_text(json.dumps({"kind": "two_tower", "params": params}))
    folder, model = _small_atomic(ml100k, tmp_path), tmp_path / "tower"
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--preset", str(preset), "--out", str(model)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            *("recommend", "--model", str(model), "--users", "1,newcomer", "-k", "3"),
            *("--history", "50,181", "--format", "json"),
        ],
    )
    assert result.exit_code == 0, result.output
    # the loader's progress bar may share a line with the first record
    lines = [
        line[line.index('{"user"') :] for line in result.output.splitlines() if '{"user"' in line
    ]
    rows = [json.loads(line) for line in lines]
    assert [(r["user"], r["served_by"], len(r["items"])) for r in rows] == [
        ("1", "model", 3),
        ("newcomer", "history", 3),
    ]


def test_encoding_option_and_undecodable_files(tmp_path):
    folder = write_atomic(tmp_path, "toy", "user_id:token\titem_id:token\nu1\ti1\n")
    (folder / "toy.item").write_bytes(
        "item_id:token\ttitle:token_seq\ni1\tAmélie\n".encode("cp1252")
    )
    result = runner.invoke(app, ["data", "describe", str(folder)])
    assert result.exit_code == 2
    assert "line 2 is not valid utf-8" in " ".join(result.output.split()), result.output
    result = runner.invoke(app, ["data", "describe", str(folder), "--encoding", "latin-1"])
    assert result.exit_code == 0, result.output


def test_unknown_recbole_model_is_named_before_any_data_is_read():
    result = runner.invoke(app, ["evaluate", "--dataset", "nope", "--models", "recbole:NoSuch"])
    assert result.exit_code == 2
    assert "'NoSuch' is not a RecBole 1.2.1 general recommender" in " ".join(result.output.split())
