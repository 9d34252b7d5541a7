from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.datasets.features import SideFeatures
from llmrec.rankers import TwoStage
from llmrec.rankers.two_stage import holdout_split
from tests.rankers.test_text_similarity import board_texts
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard

FAST = {
    "candidates": 20,
    "epochs": 10,
    "retriever": {"epochs": 10, "batch_size": 64, "dim": 16, "learning_rate": 0.01},
    "cf": {"factors": 8, "iterations": 5},
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
    matrix = checkerboard(10)
    with pytest.raises(ValueError, match="too few held-out"):
        one = sp.csr_matrix(([1.0], ([0], [0])), shape=(10, 10))  # one held-out pair only
        TwoStage(**FAST).fit(matrix, valid=one, item_texts=board_texts(10))
    with pytest.raises(ValueError, match="empty train set"):
        TwoStage(**FAST).fit(sp.csr_matrix((4, 4)), item_texts=board_texts(4))
