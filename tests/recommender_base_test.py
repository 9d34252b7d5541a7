"""One test mixin that every RecommenderBase model reuses, on a synthetic checkerboard
(after implicit's tests/recommender_base_test.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.errors import ConfigError
from llmrec.rankers import RecommenderBase


def checkerboard(n: int) -> sp.csr_matrix:
    """User i liked every item of the same parity as i, except item i itself."""
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    dense = ((rows + cols) % 2 == 0) & (rows != cols)
    return sp.csr_matrix(dense.astype(np.float32))


class RecommenderBaseTestMixin:
    """Subclasses define ``make_model()``; set ``learns_structure = False`` for models (like
    popularity) that cannot tell the two halves of the board apart."""

    learns_structure = True
    size = 50

    def make_model(self) -> RecommenderBase:
        raise NotImplementedError

    def fit(self, model: RecommenderBase, matrix: sp.csr_matrix) -> RecommenderBase:
        return model.fit(matrix, valid=matrix)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls) -> tuple[RecommenderBase, sp.csr_matrix]:
        instance = cls()
        matrix = checkerboard(cls.size)
        return instance.fit(instance.make_model(), matrix), matrix

    def test_recommend_single_and_batch_agree(self, fitted):
        model, matrix = fitted
        ids, scores = model.recommend(3, matrix[3], N=5)
        assert ids.shape == (5,) and scores.shape == (5,) and ids.dtype == np.int64
        assert np.all(np.diff(scores) <= 0)
        batch_ids, batch_scores = model.recommend(np.array([3, 4]), matrix[[3, 4]], N=5)
        assert batch_ids.shape == (2, 5)
        assert np.array_equal(batch_ids[0], ids)
        assert np.allclose(batch_scores[0], scores)

    def test_filter_already_liked(self, fitted):
        model, matrix = fitted
        ids, _ = model.recommend(0, matrix[0], N=self.size)
        liked = set(matrix[0].indices)
        assert not liked & set(ids[ids >= 0].tolist())
        assert (ids == -1).sum() == len(liked)
        unfiltered, _ = model.recommend(0, N=10, filter_already_liked_items=False)
        assert (unfiltered >= 0).all()

    def test_learns_checkerboard(self, fitted):
        if not self.learns_structure:
            pytest.skip("model cannot separate the board")
        model, matrix = fitted
        users = np.arange(self.size)
        ids, _ = model.recommend(users, matrix, N=1)
        # the one unseen same-parity item is the user itself
        assert np.mean(ids[:, 0] == users) > 0.8

    def test_items_restriction(self, fitted):
        model, matrix = fitted
        ids, _ = model.recommend(1, matrix[1], N=3, items=np.array([2, 4, 5]))
        assert set(ids[ids >= 0].tolist()) <= {2, 4, 5}

    def test_save_load_round_trip(self, fitted, tmp_path):
        model, _ = fitted
        path = model.save(tmp_path / "model")
        assert path.suffix == ".npz"
        loaded = RecommenderBase.load(path)
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        users = np.arange(10)
        assert np.allclose(loaded.score(users), model.score(users))
        assert not list(tmp_path.glob(".*tmp"))

    def test_pickle_round_trip(self, fitted):
        """As implicit's mixin does: a fitted model survives pickle (multiprocessing, Ray)."""
        model, _ = fitted
        loaded = pickle.loads(pickle.dumps(model))
        users = np.arange(10)
        np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6)

    def test_wrong_user_items_shape(self, fitted):
        model, matrix = fitted
        with pytest.raises(ValueError, match="one row per user"):
            model.recommend(np.array([1, 2]), matrix[1], N=3)
        with pytest.raises(ValueError, match="needs user_items"):
            model.recommend(1, N=3)

    def test_unknown_param_lists_valid_ones(self):
        cls = type(self.make_model())
        with pytest.raises(ConfigError, match=r"valid fields: .*seed"):
            cls(no_such_param=1)

    def test_unfitted(self):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make_model().recommend(0, N=1, filter_already_liked_items=False)

    def test_extend_catalogue(self, fitted):
        """Items added after fit get a score for every user; a model that cannot take them
        says so and stays as it was."""
        model, matrix = fitted
        copy = pickle.loads(pickle.dumps(model))
        texts = [f"new item {i}" for i in range(2)] if copy.needs_item_texts else None
        if not copy.can_extend_catalogue():
            with pytest.raises(ConfigError, match="cannot add items"):
                copy.extend_catalogue(2, texts)
            assert copy.n_items == self.size
            return
        copy.extend_catalogue(2, texts)
        scores = copy.score(np.arange(4))
        assert copy.n_items == self.size + 2 and scores.shape == (4, self.size + 2)
        assert np.isfinite(scores).all()
        ids, _ = copy.recommend(np.arange(4), sp.csr_matrix(matrix[:4], shape=(4, self.size + 2)))
        assert ids.shape == (4, 10)
