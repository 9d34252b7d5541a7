from __future__ import annotations

import numpy as np
import pytest

from llmrec.datasets import load, split
from llmrec.rankers import EASE, ItemKNN, RecBoleModel
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard


class TestEASE(RecommenderBaseTestMixin):
    def make_model(self):
        return EASE(reg_weight=1.0)

    def test_zero_diagonal_and_closed_form(self, fitted):
        model, matrix = fitted
        assert np.allclose(np.diag(model.weights), 0.0)
        x = matrix.toarray().astype(np.float64)
        p = np.linalg.inv(x.T @ x + np.eye(x.shape[1]))
        expected = np.eye(x.shape[1]) - p / np.diag(p)
        assert np.allclose(model.weights, expected, atol=1e-4)

    def test_rejects_bad_reg(self):
        with pytest.raises(Exception, match="reg_weight"):
            EASE(reg_weight=-1.0)


@pytest.mark.parametrize("similarity", ["cosine", "bm25", "tfidf"])
def test_item_knn_matches_implicit(similarity):
    from implicit.nearest_neighbours import (
        BM25Recommender,
        CosineRecommender,
        TFIDFRecommender,
    )

    matrix = checkerboard(40)
    ours = ItemKNN(similarity=similarity, K=10).fit(matrix)
    cls = {"cosine": CosineRecommender, "bm25": BM25Recommender, "tfidf": TFIDFRecommender}
    theirs = cls[similarity](K=10)
    theirs.fit(matrix, show_progress=False)
    users = np.arange(40)
    _, their_scores = theirs.recommend(users, matrix[users], N=5)
    _, our_scores = ours.recommend(users, matrix[users], N=5)
    # Tied items may come in another order, so compare the score lists, not the ids.
    assert np.allclose(our_scores, their_scores, atol=1e-5)
    assert np.allclose(ours.similarity.toarray(), theirs.similarity.toarray(), atol=1e-6)


class TestItemKNN(RecommenderBaseTestMixin):
    def make_model(self):
        return ItemKNN(similarity="cosine", K=20)


@pytest.mark.slow
def test_ease_equals_recbole_ease(monkeypatch):
    """Our EASE gives RecBole 1.2.1's EASE scores on an ml-100k split (same reg weight)."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    s = split(load("ml-100k"), "random", seed=42)
    train, valid = s.matrix("train"), s.matrix("valid")
    ours = EASE(reg_weight=250.0).fit(train)
    theirs = RecBoleModel(model="EASE", params={"reg_weight": 250.0}).fit(train, valid=valid)
    users = np.arange(0, train.shape[0], 7)
    a, b = ours.score(users), theirs.score(users)
    known = theirs.known_items
    assert np.allclose(a[:, known], b[:, known], atol=1e-4)
