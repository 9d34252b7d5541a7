from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.evaluation.evaluator import EvalResult, evaluate_scores
from llmrec.evaluation.significance import (
    STAT_TESTS,
    compare_models,
    doc_id,
    mean_std,
    ranx_metric,
    to_qrels,
    to_run,
)

ranx = pytest.importorskip("ranx")


@pytest.fixture(scope="module")
def als_result() -> EvalResult:
    """One real full-ranking run: ALS on ml-100k, random split."""
    from llmrec.datasets import load, split
    from llmrec.rankers import ImplicitALS

    s = split(load("ml-100k"), "random", seed=42)
    model = ImplicitALS(factors=32, iterations=5).fit(s.matrix("train"))
    return evaluate_scores(
        model.score,
        s.matrix("test"),
        exclude=s.matrix("train+valid"),
        ks=(10, 20),
        keep_per_user=True,
        keep_top=True,
    )


def _truth(seed: int, n_users: int = 40, n_items: int = 30) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    truth = rng.random((n_users, n_items)) < 0.1
    truth[:, 0] = False
    truth[np.arange(n_users), rng.integers(1, n_items, n_users)] = True
    return sp.csr_matrix(truth)


def _perfect(truth: sp.csr_matrix) -> EvalResult:
    return evaluate_scores(lambda u: truth[u].toarray() + 0.0, truth, ks=(10,), keep_top=True)


def _random(truth: sp.csr_matrix, seed: int = 0) -> EvalResult:
    rng = np.random.default_rng(seed)
    return evaluate_scores(
        lambda u: rng.random((len(u), truth.shape[1])), truth, ks=(10,), keep_top=True
    )


def test_our_metrics_equal_ranx(als_result):
    ours = {"ndcg@10", "ndcg@20", "recall@20", "mrr@10", "precision@10", "hit@10"}
    names = {m: ranx_metric(m) for m in ours}
    assert names["hit@10"] == "hit_rate@10"
    run = to_run(als_result, name="als")
    scores = ranx.evaluate(to_qrels(als_result), run, sorted(names.values()))
    for m in ours:
        assert scores[names[m]] == pytest.approx(als_result[m], abs=1e-6), m
    # per user too, not only the means: ranx keeps per-query values in the run
    per_query = run.scores["ndcg@10"]
    theirs = np.array([per_query[f"s0:u{u}"] for u in als_result.users])
    np.testing.assert_allclose(theirs, als_result.per_user["ndcg@10"], atol=1e-9)


def test_query_ids_scores_and_pads():
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]]))
    exclude = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 1, 1]]))
    scores = np.array([[0.0, 0.5, 0.0, 0.9], [0.2, 0.0, 0.0, 0.0]], dtype=np.float32)
    result = evaluate_scores(lambda u: scores[u], truth, exclude=exclude, ks=(3,), keep_top=True)
    run = to_run([result, result], seeds=[7, 8]).to_dict()
    assert run["s7:u0"] == {doc_id(3): 3.0, doc_id(1): 2.0}
    assert run["s8:u1"] == {"0000000000": 3.0}
    qrels = to_qrels(result, seeds=[7]).to_dict()
    assert qrels == {"s7:u0": {doc_id(1): 1, doc_id(3): 1}, "s7:u1": {doc_id(0): 1}}
    with pytest.raises(ValueError, match="2 seeds for 1 results"):
        to_qrels(result, seeds=[1, 2])


def test_model_against_itself_is_not_significant():
    result = _random(_truth(0))
    out = compare_models({"a": [result], "b": [result]})
    assert out["means"]["a"] == out["means"]["b"]
    assert out["pairs"]["a"]["b"] == {"p_value": 1.0, "significant": False, "better": None}
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("stat_test", STAT_TESTS)
def test_perfect_model_beats_random(stat_test):
    truths = [_truth(0), _truth(1)]
    runs = {
        "random": [_random(t, seed) for seed, t in enumerate(truths)],
        "perfect": [_perfect(t) for t in truths],
    }
    out = compare_models(runs, metric="ndcg@10", stat_test=stat_test, alpha=0.01)
    assert out["n_seeds"] == 2
    assert out["n_queries"] == 80
    assert out["means"]["perfect"] == pytest.approx(1.0)
    assert out["means"]["random"] == pytest.approx(np.mean([r["ndcg@10"] for r in runs["random"]]))
    for a, b in (("perfect", "random"), ("random", "perfect")):
        pair = out["pairs"][a][b]
        assert pair["significant"] and pair["p_value"] < 0.01
        assert pair["better"] == "perfect"
    assert json.loads(json.dumps(out, allow_nan=False))["stat_test"] == stat_test


def test_misaligned_models_are_rejected():
    truth = _truth(0)
    base = _random(truth)
    fewer_users = truth.toarray()
    fewer_users[3] = False
    other_users = _random(sp.csr_matrix(fewer_users))
    with pytest.raises(ValueError, match="model 'b' seed #0 evaluates 39 users"):
        compare_models({"a": [base], "b": [other_users]})
    with pytest.raises(ValueError, match="model 'b' has 1 seed results, 'a' has 2"):
        compare_models({"a": [base, base], "b": [base]})
    other_truth = truth.toarray()
    other_truth[0, 0] = True
    with pytest.raises(ValueError, match="model 'b' seed #0 has other relevant items"):
        compare_models({"a": [base], "b": [_random(sp.csr_matrix(other_truth))]})
    no_top = evaluate_scores(lambda u: np.zeros((len(u), 30)), truth, ks=(10,))
    with pytest.raises(ValueError, match=r"model 'b' seed #0 .*keep_top=True"):
        compare_models({"a": [base], "b": [no_top]})
    with pytest.raises(ValueError, match="at least two models"):
        compare_models({"a": [base]})


def test_unknown_test_or_metric_lists_valid_ones():
    result = _random(_truth(0))
    runs = {"a": [result], "b": [result]}
    with pytest.raises(ValueError, match="stat_test 'wilcoxon'; valid: student, fisher, tukey"):
        compare_models(runs, stat_test="wilcoxon")
    for bad in ("auc@10", "ndcg", "ndcg@0", "hit_rate@10"):
        with pytest.raises(ValueError, match=r"valid: name@K .* ndcg, recall, precision, mrr, hit"):
            compare_models(runs, metric=bad)
    with pytest.raises(ValueError, match="kept top-10 lists, the metric needs 20"):
        compare_models(runs, metric="recall@20")
    with pytest.raises(ValueError, match="alpha"):
        compare_models(runs, alpha=1.5)


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std(np.array([0.5])) == (0.5, 0.0)
    with pytest.raises(ValueError, match="at least one value"):
        mean_std([])
