"""Serving options of ``Recommender`` the way implicit and LensKit users meet them: fresh
histories for known users, filter_items, refusing unknown users, implicit's option names, and
a two-tower model (or one fitted elsewhere) served through the same API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrec import Recommender
from llmrec.datasets import split
from llmrec.errors import ConfigError, DataError
from llmrec.rankers.two_tower import TwoTowerConfig

TOWER = {"epochs": 3, "batch_size": 64, "dim": 16, "learning_rate": 0.01}


def _fit_items(rec, data, user):
    return set(data.train.loc[data.train["user_id"] == user, "item_id"].astype(str))


def test_fresh_history_recalculates_a_known_user(fitted):
    rec, data = fitted
    fresh = ["50", "181", "172"]
    ids, _ = rec.recommend("1", k=20, histories={"1": fresh})
    assert list(rec.served_by_) == ["history"]
    given = set(fresh) | _fit_items(rec, data, "1")
    assert not given & set(ids)  # neither the fresh history nor fit's items come back
    plain, _ = rec.recommend("1", k=20)
    assert list(rec.served_by_) == ["model"] and list(plain) != list(ids)


def test_filter_items_are_never_returned(fitted):
    rec, _ = fitted
    top, _ = rec.recommend(["1", "ghost"], k=5)
    banned = [top[0][0], top[1][0], top[0][3]]
    ids, _ = rec.recommend(["1", "ghost"], k=5, filter_items=banned)
    assert not set(banned) & set(ids.ravel())
    assert list(ids[0][:2]) == [top[0][1], top[0][2]]  # the rest keep their order
    with pytest.raises(DataError, match=r"unknown item id.*filter_items"):
        rec.recommend("1", k=5, filter_items=["no-such-item"])


def test_unknown_users_can_be_refused(fitted):
    rec, _ = fitted
    with pytest.raises(DataError, match=r"unknown user id\(s\) \['ghost'\]"):
        rec.recommend(["1", "ghost"], k=5, on_unknown="raise")
    with pytest.raises(ConfigError, match="on_unknown"):
        rec.recommend("1", k=5, on_unknown="ignore")
    assert rec.recommend("1", k=5, on_unknown="raise")[0].shape == (5,)


def test_implicit_names_are_aliases(fitted):
    rec, _ = fitted
    a, _ = rec.recommend("1", k=7, filter_seen=False)
    b, _ = rec.recommend("1", N=7, filter_already_liked_items=False)
    assert list(a) == list(b)
    with pytest.raises(ConfigError, match="k or its alias N"):
        rec.recommend("1", k=5, N=5)
    table = rec.recommend_df(["1", "ghost"], N=4, filter_items=[a[0]])
    assert len(table) == 8 and a[0] not in set(table["item_id"])


def test_knows(fitted):
    rec, _ = fitted
    assert list(rec.knows(["1", "ghost", 1])) == [True, False, True]


@pytest.fixture(scope="module")
def tower_rec(ml100k_small, shared_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMREC_CACHE_DIR", str(shared_cache))
        data = split(ml100k_small, "random", 42)
        rec = Recommender(TwoTowerConfig(**TOWER)).fit(data.train, items=ml100k_small.items)
        yield rec, data


def test_a_two_tower_model_is_served_saved_and_loaded(tower_rec, tmp_path):
    rec, data = tower_rec
    ids, scores = rec.recommend(["1", "2", "ghost"], k=10, histories={"ghost": ["50"]})
    assert list(rec.served_by_) == ["model", "model", "history"]
    assert not _fit_items(rec, data, "1") & set(ids[0])
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    folder = rec.save(tmp_path / "tower")
    back = Recommender.load(folder)
    assert type(back.model).__name__ == "TwoTower"
    again, again_scores = back.recommend(["1", "2", "ghost"], k=10, histories={"ghost": ["50"]})
    assert (again == ids).all()
    np.testing.assert_allclose(again_scores, scores, rtol=1e-5)


def test_from_fitted_checks_the_ids_against_the_model(tower_rec):
    rec, _ = tower_rec
    with pytest.raises(DataError, match="user ids"):
        Recommender.from_fitted(rec.model, rec.user_ids[:-1], rec.item_ids, rec.seen_, "x")
    with pytest.raises(DataError, match="item ids"):
        Recommender.from_fitted(rec.model, rec.user_ids, rec.item_ids[:-1], rec.seen_, "x")
    again = Recommender.from_fitted(rec.model, rec.user_ids, rec.item_ids, rec.seen_, "x")
    assert (again.recommend("1", k=5)[0] == rec.recommend("1", k=5)[0]).all()


def test_other_configs_are_refused():
    from llmrec.rankers.factorization import ALSConfig

    with pytest.raises(ConfigError, match="Recommender serves"):
        Recommender(ALSConfig())


NEW_ITEMS = pd.DataFrame(
    {
        "item_id": ["n1", "n2"],
        "title": ["Toy Story 5 (2026)", "Galactic Heist (2026)"],
        "genres": ["Animation|Children's|Comedy", "Sci-Fi|Thriller"],
    }
)


@pytest.mark.parametrize("which", ["two_stage", "two_tower"])
def test_add_items_serves_new_items_without_a_refit(which, fitted, tower_rec, tmp_path):
    rec = (fitted if which == "two_stage" else tower_rec)[0]
    copy = Recommender.load(rec.save(tmp_path / which))
    n_before = len(copy.item_ids)
    copy.add_items(NEW_ITEMS)
    assert len(copy.item_ids) == n_before + 2
    ids, scores = copy.recommend(["1", "ghost"], k=n_before + 2, histories={"ghost": ["n1"]})
    filled = ids[0] != None  # noqa: E711  (elementwise)
    assert {"n1", "n2"} <= set(ids[0]) and np.isfinite(scores[0][filled]).all()
    assert "n1" not in set(ids[1]) and "n2" in set(ids[1])  # n1 was the ghost's history
    same, _ = copy.similar_items("n1", k=3)
    assert same[0] == "n1"
    back = Recommender.load(copy.save(tmp_path / f"{which}-grown"))
    again, _ = back.recommend(["1"], k=20)
    assert (again == copy.recommend(["1"], k=20)[0]).all()
    with pytest.raises(DataError, match=r"already in the model: \['n1'\]"):
        back.add_items(NEW_ITEMS.iloc[:1])
    with pytest.raises(DataError, match="no rows"):
        back.add_items(NEW_ITEMS.iloc[:0])
    assert len(back.item_ids) == n_before + 2


def test_new_users_outnumbering_the_user_table_are_embedded(tower_rec):
    rec, _ = tower_rec
    many = [f"new{i}" for i in range(len(rec.user_ids) + 5)]
    ids, _ = rec.recommend(many, k=3, histories={u: ["50"] for u in many})
    assert (ids == ids[0]).all()  # the same history gives the same list, whatever the row
