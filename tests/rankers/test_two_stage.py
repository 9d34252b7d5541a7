from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.datasets.features import SideFeatures
from llmrec.rankers import TwoStage
from llmrec.rankers.listwise import holdout_split
from llmrec.rankers.two_stage import dense_features
from tests.rankers.test_text_similarity import board_texts
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard

FAST = {
    "candidates": 20,
    "epochs": 10,
    "retriever": {"epochs": 10, "batch_size": 64, "dim": 16, "learning_rate": 0.01},
    "cf": {"factors": 8, "iterations": 5},
    # On a 50-user board the ranker cannot learn to trust EASE's perfect ranks in 10 epochs;
    # the EASE source is tested on its own below.
    "ease": None,
}


def board_features(n: int) -> SideFeatures:
    parity = [[f"genre={'even' if i % 2 == 0 else 'odd'}"] for i in range(n)]
    return SideFeatures(item_tags=parity, user_tags=[[f"group={i % 3}"] for i in range(n)])


class TestTwoStage(RecommenderBaseTestMixin):
    def make_model(self):
        return TwoStage(**FAST)

    def fit(self, model, matrix):
        n = matrix.shape[1]
        return model.fit(matrix, item_texts=board_texts(n, True), features=board_features(n))


def test_holdout_split_keeps_every_interaction_once():
    matrix = checkerboard(30)
    train, held = holdout_split(matrix, 0.2, seed=1)
    assert train.nnz + held.nnz == matrix.nnz
    assert train.multiply(held).nnz == 0
    assert (np.diff(train.indptr) >= 1).all()
    again, _ = holdout_split(matrix, 0.2, seed=1)
    assert (again != train).nnz == 0


def test_holdout_split_takes_the_latest_items_with_timestamps():
    matrix = checkerboard(30)
    times = matrix.copy()
    rng = np.random.default_rng(0)
    times.data = rng.permutation(len(times.data)).astype(np.float32) + 1
    train, held = holdout_split(matrix, 0.2, seed=1, timestamps=times)
    assert train.nnz + held.nnz == matrix.nnz
    for user in range(30):
        kept = times[user].toarray()[0][train[user].indices]
        out = times[user].toarray()[0][held[user].indices]
        assert len(out) >= 1 and out.min() > kept.max()


def test_ranker_never_trains_on_valid(tmp_path, monkeypatch):
    """valid is not a training input: the fitted model is the same with or without it."""
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix, texts = checkerboard(30), board_texts(30, True)
    valid = sp.csr_matrix(np.eye(30, dtype=np.float32))
    first = TwoStage(**FAST).fit(matrix, item_texts=texts)
    second = TwoStage(**FAST).fit(matrix, valid=valid, item_texts=texts)
    np.testing.assert_array_equal(first.score(np.arange(5)), second.score(np.arange(5)))


@pytest.mark.parametrize("refit", [True, False])
def test_recommend_filters_everything_fit_was_given(tmp_path, monkeypatch, refit):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix = checkerboard(30)
    config = {**FAST, "refit_stage_one": refit, "ease": {"reg_weight": 10.0}}
    model = TwoStage(**config).fit(matrix, item_texts=board_texts(30, True))
    candidates, _ = model._pairs(np.arange(30))
    # EASE ranks each user's one unseen same-parity item (itself) first: it is a candidate.
    assert all((candidates[u] == u).any() for u in range(30))
    users = np.arange(30)
    ids, _ = model.recommend(users, matrix[users], N=10)
    assert matrix[users[:, None], np.maximum(ids, 0)].multiply(ids >= 0).nnz == 0
    assert (model.train_ != sp.csr_matrix(matrix, dtype=np.float32)).nnz == 0


def test_without_llm_features(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    model = TwoStage(**{**FAST, "llm_features": False}).fit(
        checkerboard(30), item_texts=board_texts(30, True)
    )
    assert not model.retriever.config.use_text
    expected = ("two_tower_score", "two_tower_rank", "als_score", "als_rank", "log_popularity")
    assert dense_features(model.config)[:5] == expected
    assert "text_similarity" not in dense_features(model.config)
    assert model.dense_mean.shape == (len(dense_features(model.config)),) == (8,)


def test_seeded_fit_reproduces(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix, texts = checkerboard(30), board_texts(30, True)
    first = TwoStage(**FAST).fit(matrix, item_texts=texts)
    second = TwoStage(**FAST).fit(matrix, item_texts=texts)
    np.testing.assert_array_equal(first.score(np.arange(5)), second.score(np.arange(5)))


def test_non_candidates_rank_below_candidates(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix = checkerboard(40)
    model = TwoStage(**{**FAST, "candidates": 3}).fit(matrix, item_texts=board_texts(40, True))
    scores = model.score(np.array([0]))[0]
    candidates, _ = model._pairs(np.array([0]))
    inside = candidates[candidates >= 0]
    outside = np.setdiff1d(np.arange(40), inside)
    assert scores[inside].min() > scores[outside].max()


def test_too_little_holdout_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="too few held-out"):
        # Only user 0 has two items, so only one interaction can be held out.
        few = sp.csr_matrix(
            (np.ones(11), ([0, 0, *range(1, 10)], [1, 2, *range(1, 10)])), shape=(10, 10)
        )
        TwoStage(**FAST).fit(few, item_texts=board_texts(10))
    with pytest.raises(ValueError, match="empty train set"):
        TwoStage(**FAST).fit(sp.csr_matrix((4, 4)), item_texts=board_texts(4))
