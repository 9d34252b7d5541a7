from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from llmrec.datasets import Dataset, DatasetFilters, apply_filters, split
from llmrec.datasets.loader import recbole_example
from llmrec.errors import DataError


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame.user_id, frame.item_id, strict=True))


@pytest.fixture
def toy() -> Dataset:
    """One k-core pass is not enough: u4 goes, then item c, then u3 (left with b alone)."""
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4"],
            "item_id": ["a", "b", "a", "b", "b", "c", "c"],
            "rating": [5, 4, 3, 5, 4, 2, 5],
            "timestamp": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    items = pd.DataFrame({"item_id": ["d", "c", "b", "a"], "title": ["D", "C", "B", "A"]})
    users = pd.DataFrame({"user_id": ["u4", "u3", "u2", "u1"], "age": [40, 30, 20, 10]})
    return Dataset("toy", frame, items, users, "toy-checksum", text_columns={"title": "title"})


def test_no_filter_returns_the_dataset(toy):
    assert apply_filters(toy, None) is toy
    assert apply_filters(toy, DatasetFilters()) is toy
    assert apply_filters(toy, {}) is toy


def test_filters_validate():
    with pytest.raises(ValidationError, match="user_core"):
        DatasetFilters(user_core=0)
    with pytest.raises(ValidationError, match="item_core"):
        DatasetFilters(item_core=2.5)
    with pytest.raises(ValidationError, match="min_ratings"):
        DatasetFilters.model_validate({"min_ratings": 4})
    with pytest.raises(ValidationError, match="min_rating"):
        DatasetFilters(min_rating=float("nan"))


def test_k_core_iterates_to_a_fixed_point_on_a_toy(toy):
    out = apply_filters(toy, DatasetFilters(user_core=2, item_core=2))
    assert _pairs(out.interactions) == {("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")}
    assert out.filters["removed"]["k_core"] == {
        "interactions": 3,
        "users": 2,
        "items": 1,
        "passes": 3,
    }
    # The catalogue keeps only items with interactions (d never had any), in catalogue order.
    assert out.item_ids.tolist() == ["b", "a"]
    assert out.items.to_dict("list") == {"item_id": ["b", "a"], "title": ["B", "A"]}
    assert out.users.to_dict("list") == {"user_id": ["u2", "u1"], "age": [20, 10]}
    assert out.filters["before"] == {"interactions": 7, "users": 4, "items": 4}
    assert out.filters["after"] == {"interactions": 4, "users": 2, "items": 2}
    assert out.filters["removed_without_interactions"] == {"users": 0, "items": 1}
    assert out.text_columns == {"title": "title"}


def test_min_rating_then_k_core_on_a_toy(toy):
    out = apply_filters(toy, {"min_rating": 4, "user_core": 2})
    # Rating drops u2-a and u3-c; then u3 and u4 have one interaction each.
    assert _pairs(out.interactions) == {("u1", "a"), ("u1", "b")}
    assert out.filters["removed"] == {
        "min_rating": {"interactions": 2, "users": 0, "items": 0},
        "k_core": {"interactions": 3, "users": 3, "items": 1, "passes": 1},
    }


def test_min_rating_removes_exactly_the_lower_ratings(ml100k):
    out = apply_filters(ml100k, DatasetFilters(min_rating=4))
    kept = ml100k.interactions[ml100k.interactions.rating >= 4]
    assert len(out.interactions) == len(kept)
    assert _pairs(out.interactions) == _pairs(kept)
    assert out.interactions.rating.min() == 4
    assert (
        out.filters["removed"]["min_rating"]["interactions"]
        == (ml100k.interactions.rating < 4).sum()
    )


def test_k_core_bounds_fixed_point_and_order_independence(ml100k):
    out = apply_filters(ml100k, DatasetFilters(min_rating=3, user_core=20, item_core=15))
    inter = out.interactions
    assert inter.groupby("user_idx").size().min() >= 20
    assert inter.groupby("item_idx").size().min() >= 15
    again = apply_filters(out, DatasetFilters(user_core=20, item_core=15))
    assert again.filters["removed"]["k_core"]["interactions"] == 0
    assert again.filters["removed"]["k_core"]["passes"] == 0
    assert again.filters["previous"] == out.filters
    # The k-core is unique: filtering in two calls gives the same rows as in one.
    stepwise = apply_filters(apply_filters(ml100k, {"min_rating": 3}), {"user_core": 20})
    stepwise = apply_filters(stepwise, {"item_core": 15, "user_core": 20})
    assert _pairs(stepwise.interactions) == _pairs(inter)


def test_reindexing_is_contiguous_and_maps_back(ml100k):
    out = apply_filters(ml100k, DatasetFilters(user_core=50, item_core=50))
    inter = out.interactions
    assert sorted(inter.user_idx.unique()) == list(range(out.n_users))
    assert sorted(inter.item_idx.unique()) == list(range(out.n_items))
    assert (out.user_ids[inter.user_idx] == inter.user_id).all()
    assert (out.item_ids[inter.item_idx] == inter.item_id).all()
    # Surviving ids keep their relative order, so the new index is the old one with gaps closed.
    assert np.all(np.diff(ml100k.item_index(out.item_ids)) > 0)
    assert np.all(np.diff(ml100k.user_index(out.user_ids)) > 0)
    before = ml100k.items.set_index("item_id").loc[out.item_ids].reset_index()
    pd.testing.assert_frame_equal(out.items, before)
    assert out.items.item_id.tolist() == out.item_ids.tolist()
    rows = inter.merge(ml100k.interactions, on=["user_id", "item_id"], suffixes=("", "_old"))
    assert len(rows) == len(inter)
    assert (rows.rating == rows.rating_old).all() and (rows.timestamp == rows.timestamp_old).all()
    assert out.user_items().shape == (out.n_users, out.n_items)


def test_checksum_follows_the_filters(ml100k):
    a = apply_filters(ml100k, {"min_rating": 4})
    assert a.checksum != ml100k.checksum
    assert apply_filters(ml100k, {"min_rating": 4.0}).checksum == a.checksum
    assert apply_filters(ml100k, {"min_rating": 3}).checksum != a.checksum
    assert apply_filters(ml100k, {"min_rating": 4, "user_core": 5}).checksum != a.checksum
    info = a.describe()
    assert info["checksum"] == a.checksum
    assert info["filters"]["min_rating"] == 4.0 and info["interactions"] == len(a.interactions)


def test_filters_that_remove_everything_name_the_option(ml100k):
    with pytest.raises(DataError, match=r"min_rating=6\.0 removed 100000 interactions, 943 users"):
        apply_filters(ml100k, {"min_rating": 6})
    with pytest.raises(
        DataError, match=r"user_core=1000 removed 100000 interactions, 943 users and 1682 items"
    ):
        apply_filters(ml100k, {"user_core": 1000})
    with pytest.raises(DataError, match=r"min_rating=5\.0 removed .*; relax user_core=300 and"):
        apply_filters(ml100k, {"min_rating": 5, "user_core": 300, "item_core": 2})


def test_min_rating_needs_ratings():
    frame = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "a"]})
    data = Dataset("implicit", frame, None, None, "x")
    with pytest.raises(DataError, match=r"min_rating=1\.0 needs ratings, but dataset 'implicit'"):
        apply_filters(data, {"min_rating": 1})
    assert apply_filters(data, {"user_core": 2}).user_ids.tolist() == ["u"]


def test_logs_one_line(toy, caplog):
    with caplog.at_level(logging.INFO, logger="llmrec.datasets.filters"):
        apply_filters(toy, {"min_rating": 4, "item_core": 2})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        "filtered 'toy': min_rating=4.0 removed 2 interactions, 0 users, 0 items;"
    )
    assert "item_core=2 removed" in line and "kept" in line


@pytest.fixture(scope="module")
def recbole_ml100k(tmp_path_factory):
    """RecBole 1.2.1's own filtering and chronological 8:1:1 split of ml-100k, as id pairs."""
    pytest.importorskip("recbole")
    with pytest.MonkeyPatch.context() as mp:
        # RecBole writes log/ and saved/ under the working directory.
        mp.chdir(tmp_path_factory.mktemp("recbole"))
        mp.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        mp.setattr("sys.argv", ["recbole"])  # RecBole's Config parses the command line
        from recbole.config import Config
        from recbole.data import create_dataset

        config = Config(
            model="Pop",
            dataset="ml-100k",
            config_dict={
                "data_path": str(recbole_example("ml-100k").parent),
                "val_interval": {"rating": "[4,inf)"},
                "user_inter_num_interval": "[10,inf)",
                "item_inter_num_interval": "[10,inf)",
                "eval_args": {
                    "order": "TO",
                    "group_by": "user",
                    "split": {"RS": [0.8, 0.1, 0.1]},
                    "mode": "full",
                },
                "show_progress": False,
                "save_dataset": False,
            },
        )
        dataset = create_dataset(config)
        parts = []
        for part in dataset.build():
            users = dataset.id2token("user_id", part.inter_feat["user_id"].numpy())
            items = dataset.id2token("item_id", part.inter_feat["item_id"].numpy())
            parts.append(set(zip(users.tolist(), items.tolist(), strict=True)))
        return dataset.user_num - 1, dataset.item_num - 1, parts  # minus RecBole's [PAD]


def test_matches_recbole_filtering_and_chronological_split(ml100k, recbole_ml100k):
    n_users, n_items, parts = recbole_ml100k
    out = apply_filters(ml100k, {"min_rating": 4, "user_core": 10, "item_core": 10})
    assert (out.n_users, out.n_items) == (n_users, n_items) == (887, 822)
    assert _pairs(out.interactions) == set.union(*parts)
    # RecBole sorts by its min-max normalised float32 timestamps (normalize_all), which ties
    # timestamps about a second apart (ties keep the file order); given the same sort key our
    # split is RecBole's exactly, and with exact timestamps it differs in a few boundary rows.
    inter = out.interactions
    t = inter.timestamp.to_numpy()
    as_recbole = ((t - t.min()) / (t.max() - t.min())).astype(np.float32).astype(np.float64)
    same_key = Dataset("as-recbole", inter.assign(timestamp=as_recbole), out.items, None, "x")
    ours = split(same_key, "chronological")
    assert [_pairs(ours.train), _pairs(ours.valid), _pairs(ours.test)] == parts
    exact = split(out, "chronological")
    moved = len(_pairs(exact.train) - parts[0]) + len(_pairs(exact.test) - parts[2])
    assert 0 < moved < 0.001 * len(inter)
