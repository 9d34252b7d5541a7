from __future__ import annotations

import inspect

import numpy as np
import pytest

from llmrec.evaluation.metrics import MRR, NDCG, Hit, Precision, Recall, coverage

LOG2 = np.log2


def test_ndcg_perfect():
    hits = np.array([[True, True, False]])
    assert NDCG()(hits, np.array([2]))[0] == pytest.approx(1.0)


def test_ndcg_no_match():
    assert NDCG()(np.zeros((1, 5), dtype=bool), np.array([3]))[0] == 0.0


def test_ndcg_hand_computed():
    # relevant at ranks 2 and 4, three relevant items in all
    hits = np.array([[False, True, False, True]])
    dcg = 1 / LOG2(3) + 1 / LOG2(5)
    idcg = 1 / LOG2(2) + 1 / LOG2(3) + 1 / LOG2(4)
    assert NDCG()(hits, np.array([3]))[0] == pytest.approx(dcg / idcg)


def test_ndcg_ideal_is_capped_at_k():
    hits = np.array([[True, True]])
    assert NDCG()(hits, np.array([10]))[0] == pytest.approx(1.0)


def test_recall_precision_hit_mrr_hand_computed():
    hits = np.array([[False, True, False, True], [False, False, False, False]])
    n_rel = np.array([4, 1])
    assert Recall()(hits, n_rel).tolist() == [0.5, 0.0]
    assert Precision()(hits, n_rel).tolist() == [0.5, 0.0]
    assert Hit()(hits, n_rel).tolist() == [1.0, 0.0]
    assert MRR()(hits, n_rel).tolist() == [0.5, 0.0]


def test_coverage_ignores_empty_slots():
    assert coverage(np.array([[0, 1], [1, -1]]), n_items=4) == 0.5


@pytest.mark.parametrize("name", ["recall", "ndcg", "mrr", "hit", "precision"])
def test_matches_recbole_on_random_case(name, monkeypatch):
    """RecBole's evaluator is an independent implementation of the same definitions."""
    from recbole.evaluator import metrics as rb

    monkeypatch.setattr(np, "float", float, raising=False)  # RecBole 1.2.1 predates numpy 1.24

    rng = np.random.default_rng(0)
    k = 10
    hits = rng.random((200, k)) < 0.2
    n_rel = rng.integers(1, 15, size=200)
    ours = {"recall": Recall, "ndcg": NDCG, "mrr": MRR, "hit": Hit, "precision": Precision}[name]()
    cls = {
        "recall": rb.Recall,
        "ndcg": rb.NDCG,
        "mrr": rb.MRR,
        "hit": rb.Hit,
        "precision": rb.Precision,
    }[name]
    metric = cls.__new__(cls)
    needs_len = "pos_len" in inspect.signature(cls.metric_info).parameters
    theirs = metric.metric_info(hits, n_rel) if needs_len else metric.metric_info(hits)
    assert np.allclose(ours(hits, n_rel), theirs[:, k - 1])
