from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.evaluation import evaluate_scores, top_k
from llmrec.evaluation.metrics import NDCG


def _fixed(scores: np.ndarray):
    return lambda users: scores[users]


def test_top_k_orders_and_pads():
    scores = np.array([[0.1, 0.9, -np.inf, 0.5]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[1, 3, 0]]
    assert top_k(scores, 6).tolist() == [[1, 3, 0, -1, -1, -1]]


def test_ties_do_not_follow_item_ids():
    """Constant scores must rank like chance, not like the catalogue's id order."""
    scores = np.zeros((500, 50), dtype=np.float32)
    top = top_k(scores, 1, np.arange(500))
    assert len(np.unique(top)) > 30
    assert top_k(scores[:1], 1, np.array([7])).tolist() == top[7:8].tolist()


def test_exclusion_and_perfect_model():
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]))
    # seen items get the highest scores: exclusion must drop them, leaving a perfect ranking
    scores = truth.toarray() + 10.0 * seen.toarray()
    result = evaluate_scores(_fixed(scores.astype(np.float32)), truth, exclude=seen, ks=[2])
    assert result.n_users == 2
    assert result["ndcg@2"] == pytest.approx(1.0)
    assert result["recall@2"] == pytest.approx(1.0)
    unexcluded = evaluate_scores(_fixed(scores.astype(np.float32)), truth, ks=[2])
    assert unexcluded["ndcg@2"] < 1.0


def test_candidates_restrict_ranking():
    truth = sp.csr_matrix(np.array([[0, 0, 1, 0]]))
    scores = np.array([[4, 3, 2, 1]], dtype=np.float32)
    assert evaluate_scores(_fixed(scores), truth, ks=[1])["hit@1"] == 0.0
    result = evaluate_scores(_fixed(scores), truth, ks=[1], candidates=np.array([2, 3]))
    assert result["hit@1"] == 1.0
    assert result["coverage@1"] == 0.5


def test_matches_brute_force_per_user():
    rng = np.random.default_rng(1)
    n_users, n_items, k = 60, 40, 10
    truth = sp.csr_matrix(rng.random((n_users, n_items)) < 0.1)
    seen = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2) & ~truth.toarray())
    scores = rng.random((n_users, n_items)).astype(np.float32)
    result = evaluate_scores(_fixed(scores), truth, exclude=seen, ks=[k], batch_size=7)
    expected = []
    for u in range(n_users):
        relevant = set(truth[u].indices)
        if not relevant:
            continue
        ranked = [i for i in np.argsort(-scores[u]) if i not in set(seen[u].indices)][:k]
        hits = np.array([[i in relevant for i in ranked]])
        expected.append(NDCG()(hits, np.array([len(relevant)]))[0])
    assert result["ndcg@10"] == pytest.approx(np.mean(expected))


def test_bad_scorer_output():
    truth = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="NaN scores"):
        evaluate_scores(lambda u: np.full((len(u), 3), np.nan), truth)
    with pytest.raises(ValueError, match="scorer returned shape"):
        evaluate_scores(lambda u: np.zeros((len(u), 2)), truth)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_scores(lambda u: np.zeros((len(u), 3)), truth, metrics=["auc"])


def test_ml1m_full_ranking_at_scale():
    """Not a timing test: checks the evaluator handles ml-1m scale in one vectorised pass."""
    from llmrec.datasets import load, split
    from llmrec.rankers import Popularity

    s = split(load("ml-1m"), "temporal")
    model = Popularity().fit(s.matrix("train"))
    result = evaluate_scores(model.score, s.matrix("test"), exclude=s.matrix("train+valid"))
    assert result.n_users == 6040
    assert 0.0 < result["ndcg@10"] < 1.0


def test_keep_top_fields():
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    seen = sp.csr_matrix(np.array([[0, 0, 0, 1, 0], [1, 1, 1, 0, 0], [0, 0, 1, 0, 0]]))
    scores = np.arange(15, dtype=np.float32).reshape(3, 5)
    plain = evaluate_scores(_fixed(scores), truth, exclude=seen, ks=[2, 4])
    assert plain.users is None and plain.top is None and plain.truth is None
    result = evaluate_scores(_fixed(scores), truth, exclude=seen, ks=[2, 4], keep_top=True)
    # user 1's only relevant item is excluded, so only user 0 is evaluated
    assert result.users.tolist() == [0]
    assert result.users.dtype == np.int64 and result.top.dtype == np.int64
    assert result.top.tolist() == [[4, 2, 1, 0]]
    assert result.truth.shape == (1, 5)
    assert result.truth.indices.tolist() == [1]
    # user 1 now has one relevant item and only two rankable ones: the rest is padded
    truth2 = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]))
    padded = evaluate_scores(
        _fixed(scores), truth2, exclude=seen, ks=[4], keep_top=True, candidates=np.arange(1, 5)
    )
    assert padded.users.tolist() == [0, 1]
    assert padded.top.shape == (2, 4)
    assert padded.top.tolist() == [[4, 2, 1, -1], [4, 3, -1, -1]]
    assert padded.truth.toarray().tolist() == [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]]
