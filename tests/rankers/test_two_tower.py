from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.rankers import TwoTower
from tests.rankers.test_text_similarity import board_texts
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard


class TestTwoTower(RecommenderBaseTestMixin):
    def make_model(self):
        return TwoTower(epochs=15, batch_size=64, dim=16, learning_rate=0.01)

    def fit(self, model, matrix):
        return model.fit(matrix, valid=matrix, item_texts=board_texts(matrix.shape[1], True))


class TestTwoTowerIdsOnly(TestTwoTower):
    def make_model(self):
        return TwoTower(use_text=False, epochs=15, batch_size=64, dim=16, learning_rate=0.01)


def test_seeded_fit_reproduces(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix, texts = checkerboard(20), board_texts(20, True)
    first = TwoTower(epochs=3, batch_size=32, dim=8).fit(matrix, item_texts=texts)
    second = TwoTower(epochs=3, batch_size=32, dim=8).fit(matrix, item_texts=texts)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)


def test_unseen_item_is_served_by_its_text(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix = checkerboard(20).tolil()
    matrix[:, 18] = 0  # item 18 (even) is never seen in training
    matrix = sp.csr_matrix(matrix)
    model = TwoTower(epochs=15, batch_size=64, dim=16, learning_rate=0.01)
    model.fit(matrix, item_texts=board_texts(20, True))
    scores = model.score(np.array([0, 1]))  # user 0 likes even items, user 1 odd ones
    assert scores[0, 18] > scores[1, 18]


def test_bad_input():
    with pytest.raises(ValueError, match="use_ids or use_text"):
        TwoTower(use_ids=False, use_text=False).fit(checkerboard(4), item_texts=board_texts(4))
    with pytest.raises(ValueError, match="empty train set"):
        TwoTower().fit(sp.csr_matrix((4, 4)), item_texts=board_texts(4))
    with pytest.raises(ValueError, match="needs item_texts"):
        TwoTower().fit(checkerboard(4))


def test_num_threads_applies_during_fit_only(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix, texts = checkerboard(20), board_texts(20)
    seen = []
    loss = TwoTower.loss

    def spy(self, *args):
        seen.append(torch.get_num_threads())
        return loss(self, *args)

    monkeypatch.setattr(TwoTower, "loss", spy)
    before = torch.get_num_threads()
    TwoTower(epochs=1, batch_size=32, dim=8, num_threads=1).fit(matrix, item_texts=texts)
    assert set(seen) == {1} and torch.get_num_threads() == before
