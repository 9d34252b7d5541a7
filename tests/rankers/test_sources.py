"""The two-stage model's candidate sources as a list: any model kind, legacy configs and
weights still read, bad sources named."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.errors import ConfigError
from llmrec.rankers import RecommenderBase, TwoStage
from llmrec.rankers.two_stage import TwoStageConfig, dense_features
from tests.rankers.test_text_similarity import board_texts
from tests.rankers.test_two_stage import FAST
from tests.recommender_base_test import checkerboard

BASE = {k: v for k, v in FAST.items() if k not in ("cf", "ease")}


def test_legacy_cf_and_ease_keys_become_sources():
    config = TwoStageConfig(cf={"factors": 8}, ease={"reg_weight": 5.0})
    assert [(s.name, s.kind, s.params) for s in config.sources] == [
        ("als", "als", {"factors": 8}),
        ("ease", "ease", {"reg_weight": 5.0}),
    ]
    assert [s.name for s in TwoStageConfig(ease=None).sources] == ["als"]
    assert [s.name for s in TwoStageConfig().sources] == ["als", "ease"]
    dumped = TwoStageConfig(cf={"factors": 8}).model_dump()
    assert "cf" not in dumped and TwoStageConfig.model_validate(dumped) == TwoStageConfig(
        cf={"factors": 8}
    )


def test_bad_sources_are_named():
    for sources, message in (
        ([{"name": "x", "kind": "nope"}], "unknown source kind 'nope'"),
        ([{"name": "x", "kind": "two_stage"}], "unknown source kind 'two_stage'"),
        ([{"name": "Two Words", "kind": "als"}], "source name 'Two Words'"),
        ([{"name": "two_tower", "kind": "als"}], "source name 'two_tower'"),
        ([{"name": "a", "kind": "als"}, {"name": "a", "kind": "ease"}], "must be unique"),
        ([{"name": "a", "kind": "als", "params": {"factors": -1}}], "invalid ALSConfig: factors"),
    ):
        with pytest.raises(ConfigError, match=message):
            TwoStage(**BASE, sources=sources).fit(checkerboard(8), item_texts=board_texts(8))


def test_any_model_kind_is_a_source(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    sources = [
        {"name": "knn", "kind": "item_knn", "params": {"K": 5}},
        {"name": "bpr", "kind": "bpr", "params": {"factors": 4, "iterations": 5}},
        {"name": "pop", "kind": "pop"},
    ]
    model = TwoStage(**BASE, sources=sources).fit(checkerboard(30), item_texts=board_texts(30))
    features = dense_features(model.config)
    assert features[:8] == (
        *("two_tower_score", "two_tower_rank", "knn_score", "knn_rank"),
        *("bpr_score", "bpr_rank", "pop_score", "pop_rank"),
    )
    assert model.dense_mean.shape == (len(features),)
    assert set(model.indexes) == {"two_tower", "bpr"}  # factor models get a FAISS index
    candidates, dense = model._pairs(np.arange(4))
    assert dense.shape == (*candidates.shape, len(features)) and np.isfinite(dense).all()
    back = RecommenderBase.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_allclose(back.score(np.arange(4)), model.score(np.arange(4)), rtol=1e-5)


def test_weights_saved_before_the_source_list_still_load(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    config = {**BASE, "cf": {"factors": 8, "iterations": 5}, "ease": {"reg_weight": 10.0}}
    model = TwoStage(**config).fit(checkerboard(30), item_texts=board_texts(30))
    state = model._state()
    old = {k: v for k, v in state.items() if not k.startswith("source.")}
    old.update({f"cf.{k[11:]}": v for k, v in state.items() if k.startswith("source.als.")})
    old["ease.weights"] = state["source.ease.weights"]  # the old format kept train once
    loaded = TwoStage(**config)
    loaded._set_state(old)
    loaded.n_items = model.n_items
    np.testing.assert_allclose(loaded.score(np.arange(6)), model.score(np.arange(6)), rtol=1e-6)


def test_a_source_fitted_on_other_data_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    model = TwoStage(**BASE).fit(checkerboard(30), item_texts=board_texts(30))
    state = model._state()
    state["source.als.user_factors"] = state["source.als.user_factors"][:-1]
    with pytest.raises(ValueError, match=r"source\.als\.user_factors"):
        TwoStage(**BASE)._set_state(state)
