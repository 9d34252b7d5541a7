"""``llmrec.dropin.implicit`` against the real implicit 0.7.3: its own test mixin (fetched from
its sdist), then the text part on ml-100k with MiniLM embeddings."""

from __future__ import annotations

import unittest

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares as PlainALS

from llmrec.datasets import split
from llmrec.dropin.implicit import AlternatingLeastSquares, text_item_factors
from llmrec.errors import ConfigError, DataError
from llmrec.evaluation import evaluate_scores
from tests.dropin.conftest import implicit_mixin

SETTINGS = {"factors": 32, "regularization": 0.01, "alpha": 2.0, "random_state": 1}
"""llmrec's ALS preset (the grid's winner on ml-100k random)."""

MIXIN, WHY_NO_MIXIN = implicit_mixin()


class ParityTextALS(AlternatingLeastSquares):
    """Each item's "text" states its parity, the structure of implicit's checkerboard: a text
    map then has something true to learn, so the mixin runs the text code paths too."""

    def fit(self, user_items, show_progress=True, callback=None, item_embeddings=None):
        n_items = user_items.shape[1]
        noise = np.random.default_rng(n_items).normal(scale=0.01, size=(n_items, 4))
        parity = np.eye(4)[np.arange(n_items) % 2] + noise
        super().fit(user_items, show_progress, callback, item_embeddings=parity)


if MIXIN is not None:

    class TestImplicitMixin(unittest.TestCase, MIXIN.RecommenderBaseTestMixin):
        """implicit's own suite, with the settings of its ``ALSTest``."""

        def _get_model(self):
            return AlternatingLeastSquares(factors=32, regularization=0, random_state=23)

    class TestImplicitMixinWithText(unittest.TestCase, MIXIN.RecommenderBaseTestMixin):
        """implicit's suite with item text and the text penalty on."""

        def _get_model(self):
            return ParityTextALS(
                factors=32, regularization=0, random_state=23, text_regularization=1.0
            )

        def test_zero_length_row(self):
            # implicit's version asserts that an item nobody liked is similar to nothing; with
            # text it gets a place: every user ranks the unseen item of their own parity first.
            board = MIXIN.get_checker_board(50).toarray()
            board[[42, 49]] = 0
            board[:, [42, 49]] = 0
            model = self._get_model()
            model.fit(sp.csr_matrix(board), show_progress=False)
            assert not model.warm_items[[42, 49]].any() and model.warm_items.sum() == 48
            user_items = sp.csr_matrix(board)
            for user in set(range(50)) - {42, 49}:
                ids, _ = model.recommend(user, user_items[user], N=1, items=[42, 49])
                assert ids[0] % 2 == user % 2

else:

    def test_implicit_mixin():
        pytest.skip(WHY_NO_MIXIN)


# ---- the text part on ml-100k ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cold(ml100k):
    return split(ml100k, "cold_items", seed=1)


@pytest.fixture(scope="module")
def train(cold):
    return cold.matrix("train")


@pytest.fixture(scope="module")
def ridge(train, item_embeddings):
    model = AlternatingLeastSquares(item_embeddings=item_embeddings, **SETTINGS)
    model.fit(train, show_progress=False)
    return model


@pytest.fixture(scope="module")
def plain(train):
    model = PlainALS(**SETTINGS)
    model.fit(train, show_progress=False)
    return model


def cold_ndcg(model, cold) -> float:
    """Test NDCG@10 ranking the held-out items only (the cold_items protocol)."""
    result = evaluate_scores(
        lambda users: model.user_factors[users] @ model.item_factors.T,
        cold.matrix("test"),
        exclude=cold.matrix("train+valid"),
        ks=(10,),
        metrics=("ndcg",),
        candidates=cold.test_candidates,
    )
    return result["ndcg@10"]


def test_items_missing_from_fit_get_text_factors(ridge, plain, cold, train):
    unseen = np.flatnonzero(np.diff(train.tocsc().indptr) == 0)
    assert set(cold.test_candidates) <= set(unseen)
    np.testing.assert_array_equal(np.flatnonzero(~ridge.warm_items), unseen)
    # implicit leaves them at zero; the text gives each its own place
    assert np.abs(plain.item_factors[unseen]).max() == 0
    assert np.unique(ridge.item_factors[unseen], axis=0).shape[0] == len(unseen)
    # warm items keep implicit's factors exactly (no text penalty)
    warm = ridge.warm_items
    np.testing.assert_array_equal(ridge.item_factors[warm], plain.item_factors[warm])


def test_recommend_returns_cold_items_ranked_by_text(ridge, plain, cold, train):
    users = np.arange(20)
    ids, scores = ridge.recommend(users, train[users], N=10, items=cold.test_candidates)
    assert set(ids.ravel()) <= set(cold.test_candidates) and np.isfinite(scores).all()
    # Ties (implicit's all-zero factors) rank at random: about 0.07 here; text about 0.35.
    text, ties = cold_ndcg(ridge, cold), cold_ndcg(plain, cold)
    assert text > 0.25 and text > 3 * ties, (text, ties)


def test_mlp_map_also_ranks_cold_items(train, cold, item_embeddings, ridge):
    model = AlternatingLeastSquares(item_embeddings=item_embeddings, text_method="mlp", **SETTINGS)
    model.fit(train, show_progress=False)
    assert model.text_map.method == "mlp" and len(model.text_map.weights) == 4
    unseen = ~model.warm_items
    assert not np.allclose(model.item_factors[unseen], ridge.item_factors[unseen])
    assert cold_ndcg(model, cold) > 0.25


def test_text_item_factors_on_a_plain_implicit_model(plain, ridge, item_embeddings):
    warm = np.flatnonzero(ridge.warm_items)
    factors = text_item_factors(plain, item_embeddings, warm)
    assert factors.dtype == plain.item_factors.dtype
    # the same map our class learns in fit, from the same ALS factors
    np.testing.assert_allclose(factors, ridge.item_factors[~ridge.warm_items], atol=1e-6)
    # the MLP is seeded: the same seed, the same factors
    first = text_item_factors(plain, item_embeddings, ridge.warm_items, "mlp", mlp_epochs=15)
    again = text_item_factors(plain, item_embeddings, ridge.warm_items, "mlp", mlp_epochs=15)
    np.testing.assert_array_equal(first, again)
    # embeddings past the model's items are new items: they get factors too
    extra = np.vstack([item_embeddings, item_embeddings[:3]])
    assert len(text_item_factors(plain, extra, warm)) == len(factors) + 3


def test_filter_already_liked_items_never_returns_given_items(ridge, train):
    n_items = train.shape[1]
    liked = set(train[0].indices)
    ids, scores = ridge.recommend(0, train[0], N=n_items + 50)
    assert len(ids) == n_items - len(liked) and not liked & set(ids)
    assert np.isfinite(scores).all() and np.all(np.diff(scores) <= 0)
    ids, _ = ridge.recommend(0, train[0], N=n_items, filter_items=[int(ids[0])])
    assert len(ids) == n_items - len(liked) - 1
    users = np.array([0, 1, 2])
    batch, batch_scores = ridge.recommend(users, train[users], N=n_items)
    for row, user in enumerate(users):
        real = batch[row][batch[row] >= 0]
        assert not set(train[user].indices) & set(real)
        assert len(real) == n_items - train[user].nnz
        assert np.all(np.isneginf(batch_scores[row][batch[row] < 0]))


def test_save_load_keeps_the_text_map(ridge, train, item_embeddings, tmp_path):
    path = tmp_path / "model.npz"
    ridge.save(str(path))
    with np.load(path, allow_pickle=False) as saved:
        assert {"item_factors", "item_embeddings", "warm_items", "text_map_w0"} <= set(saved)
    loaded = AlternatingLeastSquares.load(str(path))
    for name in ("in_mean", "out_mean"):
        np.testing.assert_array_equal(getattr(loaded.text_map, name), getattr(ridge.text_map, name))
    np.testing.assert_array_equal(loaded.text_map.weights[0], ridge.text_map.weights[0])
    assert loaded.text_map.alpha == ridge.text_map.alpha
    users = np.arange(5)
    for a, b in zip(
        ridge.recommend(users, train[users]), loaded.recommend(users, train[users]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    new = item_embeddings[:2] + 0.01
    np.testing.assert_array_equal(loaded.add_items(new), [train.shape[1], train.shape[1] + 1])
    np.testing.assert_allclose(loaded.item_factors[-2:], ridge.text_map.predict(new), rtol=1e-6)
    # plain implicit reads the file too (it sets every array as an attribute)
    again = PlainALS.load(str(path))
    np.testing.assert_array_equal(again.recommend(0, train[0])[0], ridge.recommend(0, train[0])[0])


def test_a_file_of_plain_implicit_loads_and_takes_text(plain, item_embeddings, tmp_path):
    plain.save(str(tmp_path / "plain.npz"))
    model = AlternatingLeastSquares.load(str(tmp_path / "plain.npz"))
    assert model.text_map is None and model.warm_items is None
    model.set_item_embeddings(item_embeddings)
    # nothing says which items were unseen, so every item keeps its ALS factors
    np.testing.assert_array_equal(model.item_factors, plain.item_factors)
    ids = model.add_items(item_embeddings[:1])
    np.testing.assert_array_equal(ids, [len(plain.item_factors)])
    assert not model.warm_items[-1] and model.warm_items[:-1].all()


def test_mlp_map_survives_save_and_load(train, item_embeddings, tmp_path):
    model = AlternatingLeastSquares(
        item_embeddings=item_embeddings, text_method="mlp", text_mlp_epochs=15, iterations=3
    )
    model.fit(train, show_progress=False)
    model.save(tmp_path / "mlp.npz")
    loaded = AlternatingLeastSquares.load(tmp_path / "mlp.npz")
    assert loaded.text_method == "mlp" and loaded.text_mlp_epochs == 15
    np.testing.assert_array_equal(
        loaded.text_map.predict(item_embeddings[:5]), model.text_map.predict(item_embeddings[:5])
    )


def test_text_penalty_solve_and_sparse_items_held_to_text(train, item_embeddings):
    model = AlternatingLeastSquares(
        item_embeddings=item_embeddings, text_regularization=1e4, iterations=5, **SETTINGS
    )
    model.fit(train, show_progress=False)
    warm = np.flatnonzero(model.warm_items)[:50]
    item_users = train.T.tocsr()[warm]
    # with a vanishing penalty the solve is implicit's own exact least squares
    model.text_regularization = 1e-9
    exact = PlainALS.recalculate_item(model, warm, item_users)
    np.testing.assert_allclose(model.recalculate_item(warm, item_users), exact, atol=1e-5)
    # implicit #682: an item with one interaction lands near zero without the penalty (users
    # outweigh one interaction), about halfway to its text prediction with it
    item = int(np.flatnonzero(~model.warm_items)[0])
    one_user = sp.csr_matrix(([1.0], ([0], [3])), shape=(1, train.shape[0]), dtype=np.float32)
    text = model.text_map.predict(item_embeddings[[item]])[0]
    model.partial_fit_items([item], one_user)
    loose = np.linalg.norm(model.item_factors[item] - text)
    model.text_regularization = 1e4
    model.partial_fit_items([item], one_user)
    held = np.linalg.norm(model.item_factors[item] - text)
    assert model.warm_items[item] and held < 0.6 * loose, (held, loose)


def test_errors_name_the_mismatch(train, item_embeddings, ridge):
    n_items = train.shape[1]
    model = AlternatingLeastSquares(item_embeddings=item_embeddings[:-3])
    with pytest.raises(DataError, match=f"{n_items - 3} rows but user_items has {n_items}"):
        model.fit(train, show_progress=False)
    assert model.user_factors is None  # refused before implicit ran
    with pytest.raises(DataError, match=f"{n_items - 1} rows but the model has {n_items}"):
        ridge.set_item_embeddings(item_embeddings[:-1])
    with pytest.raises(DataError, match="dimension 100, the model's have 384"):
        ridge.add_items(np.ones((2, 100), dtype=np.float32))
    with pytest.raises(DataError, match="dimension 100; the text map was fitted on dimension 384"):
        ridge.text_map.predict(np.ones((2, 100)))
    broken = item_embeddings.copy()
    broken[[7, 9]] = np.nan
    with pytest.raises(DataError, match=r"NaN or inf values in 2 rows \(first: row 7\)"):
        AlternatingLeastSquares(item_embeddings=broken)
    broken[7] = np.inf
    with pytest.raises(DataError, match="NaN or inf"):
        AlternatingLeastSquares().fit(train, show_progress=False, item_embeddings=broken)
    with pytest.raises(DataError, match="2-d"):
        AlternatingLeastSquares(item_embeddings=item_embeddings[0])
    with pytest.raises(DataError, match="2-d"):
        AlternatingLeastSquares(item_embeddings=item_embeddings[None])
    with pytest.raises(DataError, match="numeric"):
        AlternatingLeastSquares(item_embeddings=np.array([["a", "b"]]))
    with pytest.raises(DataError, match=f"have {n_items - 1} rows but the model has {n_items}"):
        text_item_factors(ridge, item_embeddings[:-1], [0, 1])
    with pytest.raises(DataError, match="no text embedding"):
        ridge.partial_fit_items([n_items + 5], train.T.tocsr()[:1])


def test_bad_settings_are_config_errors(ridge, item_embeddings):
    with pytest.raises(ConfigError, match="text_method"):
        AlternatingLeastSquares(text_method="knn")
    with pytest.raises(ConfigError, match="needs text_method='ridge'"):
        AlternatingLeastSquares(text_method="mlp", text_regularization=1.0)
    with pytest.raises(ConfigError, match="text_regularization"):
        AlternatingLeastSquares(text_regularization=-1.0)
    with pytest.raises(ConfigError, match="text_ridge_alpha"):
        AlternatingLeastSquares(text_ridge_alpha=0.0)
    with pytest.raises(ConfigError, match="add_items needs a text map"):
        AlternatingLeastSquares().add_items(item_embeddings[:2])
    with pytest.raises(ConfigError, match="method"):
        text_item_factors(ridge, item_embeddings, [0, 1], method="knn")
