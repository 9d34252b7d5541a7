from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.rankers import TextSimilarity
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard

EVEN, ODD = "Heat. Genres: Action, Crime, Thriller.", "Emma. Genres: Comedy, Drama, Romance."


def board_texts(n: int) -> list[str]:
    return [EVEN if i % 2 == 0 else ODD for i in range(n)]


class TestTextSimilarity(RecommenderBaseTestMixin):
    def make_model(self):
        return TextSimilarity(use_cache=False)

    def fit(self, model, matrix):
        return model.fit(matrix, item_texts=board_texts(matrix.shape[1]))

    def test_needs_item_texts(self):
        with pytest.raises(ValueError, match="needs item_texts"):
            self.make_model().fit(checkerboard(4))
        with pytest.raises(ValueError, match="3 item texts for a matrix of 4 items"):
            self.make_model().fit(checkerboard(4), item_texts=["a", "b", "c"])


def test_user_without_history_gets_fallback_not_nan(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix = sp.csr_matrix(np.array([[5.0, 0, 4.0, 0], [0, 0, 0, 0]]))
    model = TextSimilarity().fit(matrix, item_texts=board_texts(4))
    assert model.fallback_users == 1
    assert np.isfinite(model.score(np.array([0, 1]))).all()
    assert (tmp_path / "embeddings.sqlite").is_file()
