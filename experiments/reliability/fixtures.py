"""Building the fixtures every case starts from, and their reference outputs."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from cases import Fixtures
from commands import Args, build_args, encode_args, search_all_args, search_args
from files import copy, edit_tensors, read_atomic
from outputs import recs_of, search_rows
from processes import cli, run_forked
from settings import COMMA_USER, HISTORY, LLMREC, REPO, USERS
from verdicts import Attempt, attempt


def write_datasets(fx: Fixtures) -> dict[str, Any]:
    """Two slices of ml-100k (users 1-150 with user 7 renamed "7, Jr.", users 151-300) with
    the whole catalogue, one item renamed to its title with a comma."""
    src = REPO.parent / "shared" / "data" / "ml-100k"
    if not (src / "ml-100k.inter").is_file():
        from llmrec.datasets.loader import recbole_example

        src = recbole_example("ml-100k")
    inter = read_atomic(src / "ml-100k.inter")
    items = read_atomic(src / "ml-100k.item")
    comma_item = None
    title_col = "movie_title:token_seq"
    for _, row in items.iterrows():
        if ", " in row[title_col] and row["item_id:token"] not in HISTORY:
            comma_item = f"{row[title_col]} ({row['release_year:token']})"
            old_item = row["item_id:token"]
            break
    assert comma_item is not None
    items.loc[items["item_id:token"] == old_item, "item_id:token"] = comma_item
    inter.loc[inter["item_id:token"] == old_item, "item_id:token"] = comma_item
    users = sorted(inter["user_id:token"].unique(), key=int)
    for folder, chosen, rename in (
        (fx.data_a, users[:150], True),
        (fx.data_c, users[150:300], False),
    ):
        folder.mkdir(parents=True)
        part = inter[inter["user_id:token"].isin(chosen)].copy()
        if rename:
            part.loc[part["user_id:token"] == "7", "user_id:token"] = COMMA_USER
        part.to_csv(folder / f"{folder.name}.inter", sep="\t", index=False)
        items.to_csv(folder / f"{folder.name}.item", sep="\t", index=False)
    return {"comma_item": comma_item}


def make_tuned_copy(src: Path, dst: Path) -> None:
    """A copy of an encoder folder with other weights in a file of the same size."""
    import numpy as np

    copy(src, dst)
    weights = dst / "model.safetensors"
    size = weights.stat().st_size

    def perturb(state: dict[str, Any]) -> None:
        name = next(k for k in sorted(state) if "word_embeddings" in k)
        rng = np.random.default_rng(1)
        state[name] = (state[name] + rng.normal(0, 0.5, state[name].shape)).astype(
            state[name].dtype
        )

    edit_tensors(weights, perturb)
    if weights.stat().st_size != size:
        raise RuntimeError("the tuned encoder copy changed size")


def prepare(fx: Fixtures) -> dict[str, Any]:
    from tests.encoders.tiny_models import save_tiny_bert

    save_tiny_bert(fx.bert)
    make_tuned_copy(fx.bert, fx.bert_tuned)
    info = write_datasets(fx)
    fx.fast_yaml.write_text(
        "kind: two_stage\n"
        "params:\n"
        "  candidates: 20\n"
        "  epochs: 2\n"
        "  retriever: {epochs: 2, batch_size: 1024, dim: 8, history_len: 5, "
        f"learning_rate: 0.01, text_model: {json.dumps(str(fx.bert))}}}\n"
        "  cf: {factors: 8, iterations: 5}\n"
        "  ease: null\n"
    )
    return info


def build_steps(fx: Fixtures) -> list[list[tuple[str, Args]]]:
    """CLI fixture steps in waves (a wave needs the previous ones)."""
    train = ["train", "--preset", fx.fast_yaml]
    split = ["data", "split", fx.data_a]
    users = ("--what", "users", "--user-text", "pool")
    return [
        [
            (
                "train model A",
                [*train, "--dataset", fx.data_a, "--seed", "42", "--out", fx.model_a],
            ),
            ("encode items", encode_args(fx.data_a, fx.bert, fx.emb_items)),
        ],
        [
            ("train model B", [*train, "--dataset", fx.data_a, "--seed", "7", "--out", fx.model_b]),
            ("encode users", encode_args(fx.data_a, fx.bert, fx.emb_users, *users)),
            ("index flat", build_args(fx.emb_items, fx.index_flat)),
            ("index hnsw", build_args(fx.emb_items, fx.index_hnsw, "--spec", "HNSW32")),
        ],
        [
            (
                "train model C",
                [*train, "--dataset", fx.data_c, "--seed", "42", "--out", fx.model_c],
            ),
            ("split seed 1", [*split, "--seed", "1", "--out", fx.split_s1]),
            ("split seed 2", [*split, "--seed", "2", "--out", fx.split_s2]),
        ],
    ]


def run_waves(waves: list[list[tuple[str, Args]]], jobs: int, logs: Path) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    for wave in waves:
        pending = list(wave)
        running: list[tuple[str, subprocess.Popen, float, Path]] = []
        while pending or running:
            while pending and len(running) < jobs:
                name, args = pending.pop(0)
                log = logs / (name.replace(" ", "-") + ".log")
                with log.open("w") as fh:
                    proc = subprocess.Popen(
                        [LLMREC, *map(str, args)], stdout=fh, stderr=subprocess.STDOUT
                    )
                running.append((name, proc, time.monotonic(), log))
            for entry in list(running):
                name, proc, start, log = entry
                if proc.poll() is None:
                    continue
                running.remove(entry)
                if proc.returncode != 0:
                    raise RuntimeError(f"fixture {name} failed:\n{log.read_text()[-3000:]}")
                print(f"  fixture {name}: {time.monotonic() - start:.0f} s", flush=True)
            time.sleep(0.1)


def references(fx: Fixtures) -> dict[str, Any]:
    from llmrec import Recommender
    from llmrec.datasets import load

    rec = Recommender.load(fx.model_a)
    ref: dict[str, Any] = {"recs": recs_of(rec), "n_items": int(rec.model.n_items)}
    fx.ref["n_items"] = ref["n_items"]  # this child's copy, for search_all_args
    ref["checksum"] = {
        name: json.loads((folder / "config.json").read_text())["data_checksum"]
        for name, folder in (("a", fx.model_a), ("b", fx.model_b), ("c", fx.model_c))
    }
    ref["users_fingerprint"] = json.loads((fx.emb_users / "manifest.json").read_text())[
        "fingerprint"
    ]
    ref["items_fingerprint"] = json.loads((fx.emb_items / "manifest.json").read_text())[
        "fingerprint"
    ]
    data = load(fx.data_a)
    inter = data.interactions
    ref["seen"] = {
        u: sorted(inter.loc[inter["user_id"] == u, "item_id"].astype(str)) for u in USERS[:3]
    }
    search = search_args(fx.index_flat, fx.emb_users, ",".join(USERS[:3]))
    plain = cli(*search)
    seen = cli(*search, "--dataset", fx.data_a)
    full = cli(*search_all_args(fx, fx.index_flat))
    if plain.rc or seen.rc or full.rc:
        raise RuntimeError(f"reference index search failed: {plain.err}{seen.err}{full.err}")
    ref["search"], ref["search_seen"] = search_rows(plain.out), search_rows(seen.out)
    ref["search_all"] = search_rows(full.out)
    if len(ref["search_all"].get("10", [])) != ref["n_items"]:
        raise RuntimeError("cannot read the full-catalogue search table")
    with contextlib.closing(sqlite3.connect(fx.cache)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ref


def fixture_paths(root: Path) -> Fixtures:
    return Fixtures(
        root=root,
        bert=root / "tiny-bert",
        bert_tuned=root / "tiny-bert-tuned",
        data_a=root / "ml100k-a",
        data_c=root / "ml100k-c",
        fast_yaml=root / "fast.yaml",
        model_a=root / "model-a",
        model_b=root / "model-b",
        model_c=root / "model-c",
        emb_items=root / "emb-items",
        emb_users=root / "emb-users",
        index_flat=root / "index-flat",
        index_hnsw=root / "index-hnsw",
        split_s1=root / "split-seed1",
        split_s2=root / "split-seed2",
        cache=root / "cache" / "embeddings.sqlite",
    )


def build_fixtures(root: Path, jobs: int) -> Fixtures:
    fx = fixture_paths(root)
    os.environ["LLMREC_CACHE_DIR"] = str(fx.cache.parent)
    logs = root.parent / "fixture-logs"
    fx.ref.update(run_forked(lambda: prepare(fx), logs / "prepare.log"))
    run_waves(build_steps(fx), jobs, logs)
    fx.ref.update(run_forked(lambda: references(fx), logs / "references.log"))
    # Cases that change permissions run without root's override: they must reach the fixtures.
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, os.stat(path).st_mode | (0o755 if path.is_dir() else 0o644))
    (root / "ref.json").write_text(json.dumps(fx.ref, indent=2) + "\n")
    return fx


def reuse_fixtures(root: Path) -> Fixtures:
    """Fixtures a ``--keep`` run left (for working on the campaign; a real run builds its own)."""
    fx = fixture_paths(root)
    fx.ref.update(json.loads((root / "ref.json").read_text()))
    os.environ["LLMREC_CACHE_DIR"] = str(fx.cache.parent)
    return fx


def small_train(fx: Fixtures, n_users: int = 30) -> tuple[Any, Any]:
    """The interactions of the first ``n_users`` users of dataset A, and its items."""
    from llmrec.datasets import load

    data = load(fx.data_a)
    inter = data.interactions
    keep = inter["user_id"].isin(sorted(inter["user_id"].unique())[:n_users])
    return inter.loc[keep, ["user_id", "item_id", "rating", "timestamp"]].reset_index(
        drop=True
    ), data.items


def try_fit(fx: Fixtures, train: Any, **kwargs: Any) -> Attempt:
    """Fit a tiny two-stage recommender (the fixtures' parameters) through the API."""
    import yaml

    from llmrec import Recommender

    params = yaml.safe_load(fx.fast_yaml.read_text())["params"]
    return attempt(lambda: Recommender(**params).fit(train, **kwargs))
