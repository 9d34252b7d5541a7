from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmrec import Recommender
from llmrec.artifacts import KILL_ENV
from llmrec.errors import ArtifactError, DataError
from tests.rankers.test_two_stage import FAST

ROOT = Path(__file__).resolve().parents[1]


def test_recommend_never_returns_what_fit_was_given(fitted):
    """Every train item of every user is filtered, including the ranker's holdout."""
    rec, data = fitted
    users = sorted(data.train["user_id"].unique())
    ids, _ = rec.recommend(users, k=20)
    given = data.train.groupby("user_id")["item_id"].agg(set)
    assert not any(given[u] & set(row) for u, row in zip(users, ids, strict=True))
    # Unfiltered, fit's items are still ranked (below every candidate, as stage one skips
    # them): over the whole catalogue they all come back.
    some = users[:5]
    n_items = len(rec.item_ids)
    unfiltered, _ = rec.recommend(some, k=n_items, filter_seen=False)
    filtered, _ = rec.recommend(some, k=n_items)
    for user, full, kept in zip(some, unfiltered, filtered, strict=True):
        assert given[user] <= set(full) and not given[user] & set(kept)
        assert sum(i is None for i in kept) == len(given[user])


def test_recommend_df_is_recommend_as_a_table(fitted):
    rec, _ = fitted
    frame = rec.recommend_df(["1", "newcomer"], k=5, histories={"newcomer": ["50"]})
    ids, scores = rec.recommend(["1", "newcomer"], k=5, histories={"newcomer": ["50"]})
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score", "served_by"]
    for row, user in enumerate(["1", "newcomer"]):
        mine = frame[frame["user_id"] == user]
        assert mine["item_id"].tolist() == [i for i in ids[row] if i is not None]
        assert mine["rank"].tolist() == list(range(1, len(mine) + 1))
        np.testing.assert_allclose(mine["score"], scores[row][: len(mine)])
    assert frame.groupby("user_id")["served_by"].first().to_dict() == {
        "1": "model",
        "newcomer": "history",
    }


def test_recommend_shapes_ids_and_filtering(fitted):
    rec, data = fitted
    users = ["1", "2", "3"]
    ids, scores = rec.recommend(users, k=7)
    assert ids.shape == (3, 7) and scores.shape == (3, 7) and scores.dtype == np.float32
    assert set(ids.ravel()) <= set(rec.item_ids)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert list(rec.served_by_) == ["model"] * 3
    seen = set(data.train.loc[data.train["user_id"] == "1", "item_id"])
    assert not seen & set(ids[0])
    single, _ = rec.recommend("1", k=7)
    assert single.shape == (7,) and list(single) == list(ids[0])
    unfiltered, _ = rec.recommend("1", k=50, filter_seen=False)
    assert seen & set(unfiltered)


def test_unknown_users_take_the_llm_path(fitted, caplog):
    rec, _ = fitted
    history = ["50", "181", "172"]  # Star Wars, Return of the Jedi, Empire Strikes Back
    with caplog.at_level("INFO", logger="llmrec.pipeline"):
        ids, scores = rec.recommend(["new-fan", "new-nobody"], k=5, histories={"new-fan": history})
    assert list(rec.served_by_) == ["history", "cold"]
    assert "served by the LLM path" in caplog.text
    assert np.isfinite(scores).all()
    assert not set(history) & set(ids[0])
    assert list(ids[0]) != list(ids[1])


def test_similar_items_start_with_the_item(fitted):
    rec, _ = fitted
    ids, scores = rec.similar_items(["50", "1"], k=4)
    assert ids.shape == (2, 4) and list(ids[:, 0]) == ["50", "1"]
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_bad_requests(fitted):
    rec, _ = fitted
    with pytest.raises(ValueError, match="catalogue size"):
        rec.recommend(["1"], k=rec.model.n_items + 1)
    with pytest.raises(DataError, match="unknown item id"):
        rec.recommend(["stranger"], histories={"stranger": ["no-such-item"]})
    with pytest.raises(DataError, match="unknown item id"):
        rec.similar_items("no-such-item")
    with pytest.raises(RuntimeError, match="not fitted"):
        Recommender().recommend(["1"])


def test_save_load_round_trip(fitted, tmp_path):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "artifact.json",
        "config.json",
        "index",
        "weights.safetensors",
    ]
    loaded = Recommender.load(folder)
    request = (["1", "7", "ghost"], 10)
    histories = {"ghost": ["50", "1"]}
    ids, scores = rec.recommend(*request, histories=histories)
    loaded_ids, loaded_scores = loaded.recommend(*request, histories=histories)
    assert (ids == loaded_ids).all()
    np.testing.assert_allclose(scores, loaded_scores, rtol=1e-6)
    assert not list(tmp_path.glob(".*"))


def test_incompatible_or_broken_folders(fitted, tmp_path):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "encoder_fingerprint": "other"}))
    with pytest.raises(ArtifactError, match=r"part config\.json does not match its SHA-256"):
        Recommender.load(folder)
    # Without the manifest (a folder from before manifests) the loader's own checks still hold.
    (folder / "artifact.json").unlink()
    with pytest.raises(ValueError, match="embedding model"):
        Recommender.load(folder)
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ValueError, match="retrain"):
        Recommender.load(folder)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "weights.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="corrupt"):
        Recommender.load(folder)
    with pytest.raises(ValueError, match="not an llmrec model folder"):
        Recommender.load(tmp_path / "nothing-here")


def test_parts_that_do_not_belong_together_are_refused(fitted, tmp_path):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    (folder / "artifact.json").unlink()  # without the manifest's checksums
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "user_ids": config["user_ids"][1:]}))
    with pytest.raises(ValueError, match="the parts come from different models"):
        Recommender.load(folder, check_encoder=False)
    del config["strings"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"lacks \['strings'\]"):
        Recommender.load(folder, check_encoder=False)


def test_interrupted_save_keeps_the_old_model(fitted, tmp_path, monkeypatch):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    before = (folder / "weights.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.numpy.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        rec.save(folder)
    assert (folder / "weights.safetensors").read_bytes() == before
    assert Recommender.load(folder).model is not None


def test_bad_training_input(ml100k_small):
    with pytest.raises(DataError, match="empty train set"):
        Recommender(**FAST).fit(ml100k_small.interactions.iloc[:0], items=ml100k_small.items)
    with pytest.raises(DataError, match="items table is required"):
        Recommender(**FAST).fit(ml100k_small.interactions)
    items = ml100k_small.items.copy()
    items.loc[items.index[0], "movie_title"] = np.nan
    with pytest.raises(DataError, match="no title"):
        Recommender(**FAST).fit(ml100k_small.interactions, items=items)


def test_save_refuses_a_folder_llmrec_did_not_write(fitted, tmp_path):
    rec, _ = fitted
    target = tmp_path / "d"
    target.mkdir()
    (target / "thesis.txt").write_text("years of work")
    with pytest.raises(ArtifactError, match="not an llmrec model folder"):
        rec.save(target)
    assert (target / "thesis.txt").read_text() == "years of work"
    index = rec.model.indexes["two_tower"].save(tmp_path / "ix")
    with pytest.raises(ArtifactError, match="llmrec index folder, not a model folder"):
        rec.save(index)
    rec.save(target, overwrite=True)
    assert not (target / "thesis.txt").exists()
    assert Recommender.load(target, check_encoder=False).model is not None


def test_kill_between_renames_leaves_a_loadable_model(fitted, tmp_path):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    script = (
        "import sys\n"
        "from llmrec import Recommender\n"
        "Recommender.load(sys.argv[1], check_encoder=False).save(sys.argv[1])\n"
    )
    env = {**os.environ, KILL_ENV: "old-moved", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, str(folder)], env=env, check=False)
    assert done.returncode == 137 and not folder.exists()
    loaded = Recommender.load(folder, check_encoder=False)
    assert list(loaded.recommend("1", k=5)[0]) == list(rec.recommend("1", k=5)[0])
    loaded.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def _damage_weights(folder: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    state = {k: v.copy() for k, v in load_file(str(folder / "weights.safetensors")).items()}
    change(state)
    save_file(state, str(folder / "weights.safetensors"))


@pytest.mark.parametrize("value", [10**6, -5])
def test_out_of_range_saved_index_is_an_error_not_a_crash(fitted, tmp_path, value):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    _damage_weights(folder, lambda state: state["train_indices"].__setitem__(0, value))
    with pytest.raises(ArtifactError, match=r"part weights\.safetensors does not match"):
        Recommender.load(folder, check_encoder=False)
    # Without a manifest, validation is what stands between the file and scipy's C++ code.
    (folder / "artifact.json").unlink()
    with pytest.raises(ValueError, match="train_indices hold"):
        Recommender.load(folder, check_encoder=False)


def test_nan_weights_and_bad_ids_in_weights_are_named(fitted, tmp_path):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    (folder / "artifact.json").unlink()
    original = (folder / "weights.safetensors").read_bytes()
    damages = {
        "ranker": lambda s: s[next(k for k in s if k.startswith("ranker."))].flat.__setitem__(
            0, np.nan
        ),
        "recent": lambda s: s["recent"].__setitem__((0, 0), 10**6),
        "train_indptr": lambda s: s["train_indptr"].__setitem__(1, -3),
    }
    for name, damage in damages.items():
        (folder / "weights.safetensors").write_bytes(original)
        _damage_weights(folder, damage)
        with pytest.raises(ValueError, match=name):
            Recommender.load(folder, check_encoder=False)


def test_bit_flips_in_integer_weights_never_crash(fitted, tmp_path):
    rec, _ = fitted
    folder = rec.save(tmp_path / "model")
    (folder / "artifact.json").unlink()
    raw = (folder / "weights.safetensors").read_bytes()
    header_size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_size])
    spans = [
        (8 + header_size + v["data_offsets"][0], 8 + header_size + v["data_offsets"][1])
        for k, v in header.items()
        if k != "__metadata__" and v["dtype"] in ("I32", "I64") and v["data_offsets"][1]
    ]
    rng = np.random.default_rng(0)
    for _ in range(6):
        data = bytearray(raw)
        for lo, hi in spans:
            pos = int(rng.integers(lo, hi))
            data[pos] ^= 1 << int(rng.integers(8))
        (folder / "weights.safetensors").write_bytes(bytes(data))
        try:
            Recommender.load(folder, check_encoder=False).recommend(["1", "2"], k=5)
        except ValueError as exc:
            assert "saved" in str(exc)


def test_ids_and_parameters_are_checked(fitted):
    rec, _ = fitted
    ids, _ = rec.recommend(["1"], k=5)
    for same in (1, 1.0, " 1 ", np.int64(1), np.float64(1.0)):
        assert list(rec.recommend([same], k=5)[0][0]) == list(ids[0])
    assert list(rec.served_by_) == ["model"]
    for bad_k in (5.0, "5", True, 0):
        with pytest.raises(ValueError, match="k must be"):
            rec.recommend(["1"], k=bad_k)
    for bad_user in (None, "", "  ", float("nan")):
        with pytest.raises(DataError, match="empty or missing id"):
            rec.recommend([bad_user], k=5)
    with pytest.raises(DataError, match=r"histories\['ghost'\] must be a list of item ids"):
        rec.recommend(["ghost"], k=5, histories={"ghost": "181"})
    a, _ = rec.recommend(["ghost"], k=5, histories={"ghost": [181.0, " 50"]})
    b, _ = rec.recommend(["ghost"], k=5, histories={"ghost": ["181", "50"]})
    assert list(a[0]) == list(b[0])
    with pytest.raises(DataError, match="train must be a pandas DataFrame"):
        Recommender().fit([("1", "2")], items=None)
