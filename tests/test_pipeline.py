from __future__ import annotations

import json

import numpy as np
import pytest

from llmrec import Recommender
from llmrec.datasets import split
from llmrec.errors import DataError
from tests.rankers.test_two_stage import FAST


@pytest.fixture(scope="module")
def fitted(ml100k_small, shared_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMREC_CACHE_DIR", str(shared_cache))
        data = split(ml100k_small, "random", 42)
        rec = Recommender(**FAST).fit(
            data.train, items=ml100k_small.items, users=ml100k_small.users
        )
        yield rec, data


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
