from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.errors import ConfigError
from llmrec.rankers import ImplicitALS, ImplicitBPR, Popularity, RecBoleModel
from tests.recommender_base_test import RecommenderBaseTestMixin, checkerboard


class TestPopularity(RecommenderBaseTestMixin):
    learns_structure = False

    def make_model(self):
        return Popularity()

    def test_similar_items_needs_vectors(self, fitted):
        with pytest.raises(ConfigError, match="no item vectors"):
            fitted[0].similar_items(0)


class TestALS(RecommenderBaseTestMixin):
    def make_model(self):
        return ImplicitALS(factors=8, iterations=10, regularization=0.01)

    def test_similar_items_same_parity(self, fitted):
        ids, scores = fitted[0].similar_items(4, N=5)
        assert ids[0] == 4 and scores[0] == pytest.approx(1.0, abs=1e-5)
        assert np.all(ids % 2 == 0)

    def test_seed_reproduces(self):
        matrix = checkerboard(30)
        a = ImplicitALS(factors=4, seed=3).fit(matrix).score(np.arange(30))
        b = ImplicitALS(factors=4, seed=3).fit(matrix).score(np.arange(30))
        assert np.array_equal(a, b)


class TestBPR(RecommenderBaseTestMixin):
    def make_model(self):
        return ImplicitBPR(factors=8, iterations=200, learning_rate=0.05)

    def test_seed_reproduces(self):
        matrix = checkerboard(30)
        a = ImplicitBPR(factors=4, seed=3, iterations=5).fit(matrix).score(np.arange(30))
        b = ImplicitBPR(factors=4, seed=3, iterations=5).fit(matrix).score(np.arange(30))
        assert np.array_equal(a, b)


@pytest.mark.slow
class TestRecBoleBPR(RecommenderBaseTestMixin):
    learns_structure = False  # a few epochs on 50 users do not settle the board

    def make_model(self):
        return RecBoleModel(model="BPR", epochs=3, learning_rate=0.01)

    def test_refit_without_valid_trains_the_chosen_epochs(self, fitted):
        model = fitted[0]
        assert 1 <= model.best_epochs_ <= 3
        refit = RecBoleModel(model="BPR", learning_rate=0.01, **model.refit_overrides())
        refit.fit(checkerboard(10))
        assert refit.best_valid_ndcg is None and refit.best_epochs_ == model.best_epochs_
        assert refit.score(np.arange(10)).shape == (10, 10)

    def test_fit_leaves_no_process_wide_side_effects(self, tmp_path, monkeypatch):
        import logging
        import os

        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
        root = logging.getLogger()
        monkeypatch.setattr(root, "level", logging.INFO)
        model = RecBoleModel(model="BPR", epochs=2, learning_rate=0.01)
        model.fit(checkerboard(10), valid=checkerboard(10))
        assert os.getcwd() == str(tmp_path) and not list(tmp_path.iterdir())
        assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
        assert root.level == logging.INFO


@pytest.mark.slow
class TestRecBoleLightGCN(RecommenderBaseTestMixin):
    learns_structure = False

    def make_model(self):
        return RecBoleModel(model="LightGCN", epochs=2, learning_rate=0.01)


def test_recbole_trains_on_real_split(ml100k_small):
    """RecBole BPR on a slice of ml-100k beats popularity on valid, scored by our evaluator."""
    from llmrec.datasets import split
    from llmrec.evaluation import evaluate_scores

    s = split(ml100k_small, "random", seed=0)
    train, valid = s.matrix("train"), s.matrix("valid")
    model = RecBoleModel(model="BPR", epochs=40, learning_rate=0.005, stopping_step=5)
    model.fit(train, valid=valid)
    ours = evaluate_scores(model.score, valid, exclude=train, ks=[10])["ndcg@10"]
    pop = evaluate_scores(Popularity().fit(train).score, valid, exclude=train, ks=[10])["ndcg@10"]
    assert model.best_valid_ndcg > 0
    assert ours > 0.5 * pop


@pytest.mark.parametrize(
    ("module", "cls", "field", "value"),
    [
        ("factorization", "ALSConfig", "factors", -5),
        ("factorization", "BPRConfig", "learning_rate", 0),
        ("recbole_model", "RecBoleConfig", "epochs", 0),
        ("two_tower", "TwoTowerConfig", "temperature", 0.0),
        ("two_stage", "TwoStageConfig", "holdout", 1.5),
        ("two_stage", "TwoStageConfig", "candidates", 0),
        ("text_similarity", "TextSimilarityConfig", "persona_weight", 2.0),
    ],
)
def test_config_values_are_constrained(module, cls, field, value):
    """A bad value is refused where it enters, naming the field, not deep inside numpy."""
    import importlib

    from llmrec.errors import ConfigError
    from llmrec.rankers.base import make_config

    config_class = getattr(importlib.import_module(f"llmrec.rankers.{module}"), cls)
    with pytest.raises(ConfigError, match=f"{field}: Input should be"):
        make_config(config_class, {field: value})


def test_config_of_another_model_is_refused():
    """A model given another model's config fails at once, naming both, not later in fit."""
    from llmrec.rankers.factorization import ALSConfig
    from llmrec.rankers.neighbours import ItemKNN

    message = "ItemKNN needs a config of type ItemKNNConfig, got ALSConfig"
    with pytest.raises(ConfigError, match=message):
        ItemKNN(ALSConfig())


def test_fit_passes_a_model_only_the_inputs_it_reads():
    from llmrec.rankers import Popularity, TwoStage, TwoTower
    from llmrec.rankers.base import FitInputs

    class Recording(Popularity):
        reads = frozenset({"item_texts"})
        seen: FitInputs | None = None

        def _fit(self, user_items, inputs):
            Recording.seen = inputs
            return super()._fit(user_items, inputs)

    matrix = sp.csr_matrix(np.eye(3, dtype=np.float32))
    Recording().fit(matrix, valid=matrix, item_texts=["a", "b", "c"], show_progress_bar=False)
    assert Recording.seen == FitInputs(item_texts=["a", "b", "c"], show_progress_bar=False)
    # the two-stage model never early-stops on valid, so it is not even handed it
    assert "valid" not in TwoStage.reads and "valid" in TwoTower.reads
