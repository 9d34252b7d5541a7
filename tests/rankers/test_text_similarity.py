from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.rankers import TextSimilarity
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard

EVEN, ODD = "Heat. Genres: Action, Crime, Thriller.", "Emma. Genres: Comedy, Drama, Romance."


def board_texts(n: int, numbered: bool = False) -> list[str]:
    """Two kinds of items by parity. ``numbered`` makes every text distinct: identical texts tie
    exactly, and BLAS may round a tie differently for one user than for a batch."""
    return [(EVEN if i % 2 == 0 else ODD) + (f" Part {i}." if numbered else "") for i in range(n)]


class TestTextSimilarity(RecommenderBaseTestMixin):
    def make_model(self):
        return TextSimilarity(use_cache=False)

    def fit(self, model, matrix):
        return model.fit(matrix, item_texts=board_texts(matrix.shape[1], numbered=True))

    def test_needs_item_texts(self):
        with pytest.raises(ValueError, match="needs item_texts"):
            self.make_model().fit(checkerboard(4))
        with pytest.raises(ValueError, match="3 item texts for a matrix of 4 items"):
            self.make_model().fit(checkerboard(4), item_texts=["a", "b", "c"])


class TestTextSimilarityAdapted(TestTextSimilarity):
    """Query-relevant history selection: each item scored against its 3 nearest history items."""

    def make_model(self):
        return TextSimilarity(use_cache=False, adaptation_k=3)


class TestTextSimilarityProfile(TestTextSimilarity):
    """User embedding = encoded profile text; users blended with a persona centroid."""

    def make_model(self):
        return TextSimilarity(
            use_cache=False, user_text="profile", n_personas=2, persona_weight=0.3
        )


def test_adapted_scores_use_only_relevant_history(tmp_path):
    # user 0 saw mostly EVEN items and one ODD one: adaptation scores ODD items by that one
    # ODD item (similarity 1), while pooling the whole history favours EVEN items.
    matrix = sp.csr_matrix(np.array([[5.0, 0, 5.0, 5.0, 5.0, 0]]))
    texts = board_texts(6)
    pooled = TextSimilarity(use_cache=False).fit(matrix, item_texts=texts)
    adapted = TextSimilarity(use_cache=False, adaptation_k=1).fit(matrix, item_texts=texts)
    assert pooled.score(np.array([0]))[0, 1] < pooled.score(np.array([0]))[0, 0]
    np.testing.assert_allclose(adapted.score(np.array([0]))[0], 1.0, atol=1e-5)
    loaded = TextSimilarity.load(adapted.save(tmp_path / "m.npz"))
    np.testing.assert_allclose(loaded.score(np.array([0])), adapted.score(np.array([0])))


def test_persona_fallback_for_user_without_history():
    matrix = sp.csr_matrix(np.vstack([checkerboard(8).toarray(), np.zeros((1, 8))]))
    model = TextSimilarity(use_cache=False, n_personas=2).fit(matrix, item_texts=board_texts(8))
    assert model.fallback_users == 1
    assert np.isfinite(model.score(np.array([8]))).all()


def test_user_without_history_gets_fallback_not_nan(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix = sp.csr_matrix(np.array([[5.0, 0, 4.0, 0], [0, 0, 0, 0]]))
    model = TextSimilarity().fit(matrix, item_texts=board_texts(4))
    assert model.fallback_users == 1
    assert np.isfinite(model.score(np.array([0, 1]))).all()
    assert (tmp_path / "embeddings.sqlite").is_file()
