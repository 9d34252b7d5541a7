"""Paired significance tests between models, pooled over split seeds, via ranx.

Each model is evaluated with ``evaluate_scores(..., keep_top=True)`` once per split seed. Every
(seed, user) pair becomes one ranx query with id ``"s{seed}:u{user}"``, so the per-query metric
values of all seeds pool into a single paired sample, and ranx's paired tests compare models on
it.

For binary relevance ranx's ``ndcg@k`` (Järvelin's gain), ``recall@k``, ``precision@k``,
``mrr@k`` and ``hit_rate@k`` have the same definitions as our ``ndcg``, ``recall``,
``precision``, ``mrr`` and ``hit`` (:mod:`llmrec.evaluation.metrics`): precision divides by k
even when fewer than k items could be ranked, and the ideal DCG counts ``min(n_relevant, k)``
hits. Relevance is always 1 here, whatever values the truth matrix holds, as in our metrics.
The tests check this against a real run.

ranx compiles its numba kernels on first use (about 35 s on two cores) and caches them next to
its sources (``cache=True``), so later processes pay only a few seconds to load them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec.errors import ConfigError, DataError
from llmrec.evaluation.evaluator import EvalResult

if TYPE_CHECKING:
    import scipy.sparse as sp

    # ranx is imported where used: it pulls in numba, too slow an import for the package.
    from ranx import Qrels, Run

RANX_METRICS: dict[str, str] = {
    "ndcg": "ndcg",
    "recall": "recall",
    "precision": "precision",
    "mrr": "mrr",
    "hit": "hit_rate",
}
"""Our metric names -> ranx's names for the same definitions."""

STAT_TESTS = ("student", "fisher", "tukey")
"""ranx 0.3.21's tests: paired two-sided t-test, Fisher's randomization test, Tukey's HSD."""


def _as_list(results: EvalResult | Sequence[EvalResult]) -> list[EvalResult]:
    return [results] if isinstance(results, EvalResult) else list(results)


def _seeds(results: list[EvalResult], seeds: Sequence[int] | None) -> list[int]:
    if seeds is None:
        return list(range(len(results)))
    seeds = list(seeds)
    if len(seeds) != len(results):
        raise ConfigError(f"got {len(seeds)} seeds for {len(results)} results")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    return seeds


def _kept(result: EvalResult, where: str) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """``result``'s ``users``, ``top`` and ``truth``, which ``keep_top=True`` keeps.

    Raises:
        DataError: the result kept no top lists.
    """
    if result.users is None or result.top is None or result.truth is None:
        raise DataError(
            f"{where} has no users/top/truth; evaluate with evaluate_scores(..., keep_top=True)"
        )
    return result.users, result.top, result.truth


DOC_ID_WIDTH = 10
"""Digits of a ranx doc id: ranx stores ids as numpy ``<U{longest}`` arrays and numba compiles
its kernels once per width (about 20 s each, then cached), so a fixed width means one compile
for every dataset instead of one per catalogue size."""


def query_id(seed: int, user: int) -> str:
    """The ranx query id of one (seed, user) pair: ``"s{seed}:u{user}"``."""
    return f"s{seed}:u{user}"


def doc_id(item: int) -> str:
    """The ranx doc id of an item index: zero-padded to :data:`DOC_ID_WIDTH` digits."""
    return f"{item:0{DOC_ID_WIDTH}d}"


def to_qrels(
    results: EvalResult | Sequence[EvalResult], seeds: Sequence[int] | None = None
) -> Qrels:
    """ranx ``Qrels`` of the effective truth of one or several results (one per split seed).

    Args:
        results: results of ``evaluate_scores(..., keep_top=True)``.
        seeds: seed label of each result, used in the query ids; None = ``0, 1, ...``.

    Returns:
        ``ranx.Qrels`` with query ``"s{seed}:u{user}"`` -> ``{doc_id(item): 1}`` per relevant item.

    Raises:
        DataError: a result kept no top lists.
        ConfigError: ``seeds`` does not match ``results``.
    """
    import ranx

    results = _as_list(results)
    qrels: dict[str, dict[str, int]] = {}
    for seed, result in zip(_seeds(results, seeds), results, strict=True):
        users, _, truth = _kept(result, f"result of seed {seed}")
        for row, user in enumerate(users.tolist()):
            items = truth.indices[truth.indptr[row] : truth.indptr[row + 1]]
            qrels[query_id(seed, user)] = {doc_id(i): 1 for i in items.tolist()}
    if not qrels:
        raise DataError("no evaluated users: the results hold no relevant items")
    return ranx.Qrels(qrels)


def to_run(
    results: EvalResult | Sequence[EvalResult],
    seeds: Sequence[int] | None = None,
    name: str | None = None,
) -> Run:
    """ranx ``Run`` of the top lists of one or several results (one per split seed).

    Item ``r`` (0-based) of a top list of width ``K`` scores ``K - r``, so ranx sorts the items in
    our order, ties included (already broken by :func:`~llmrec.evaluation.evaluator.top_k`).
    ``-1`` pads are dropped; a user with nothing ranked gets an empty result.

    Args:
        results: results of ``evaluate_scores(..., keep_top=True)``.
        seeds: seed label of each result, used in the query ids; None = ``0, 1, ...``.
        name: run name, shown by ranx's reports.

    Returns:
        ``ranx.Run`` with query ``"s{seed}:u{user}"`` -> ``{doc_id(item): score}``.

    Raises:
        DataError: a result kept no top lists.
        ConfigError: ``seeds`` does not match ``results``.
    """
    import ranx

    results = _as_list(results)
    run: dict[str, dict[str, float]] = {}
    for seed, result in zip(_seeds(results, seeds), results, strict=True):
        users, top, _ = _kept(result, f"result of seed {seed}")
        width = top.shape[1]
        for user, row in zip(users.tolist(), top.tolist(), strict=True):
            run[query_id(seed, user)] = {
                doc_id(item): float(width - rank) for rank, item in enumerate(row) if item >= 0
            }
    if not run:
        raise DataError("no evaluated users: the results hold no top lists")
    return ranx.Run(run, name=name)


def ranx_metric(metric: str) -> str:
    """Our metric name (``"hit@10"``) -> ranx's (``"hit_rate@10"``).

    Raises:
        ConfigError: not ``name@K`` with a known name and a positive integer K.
    """
    name, _, k = metric.partition("@")
    if name not in RANX_METRICS or not k.isdigit() or int(k) < 1:
        raise ConfigError(
            f"unknown metric {metric!r}; valid: name@K with K >= 1 and name among "
            f"{', '.join(RANX_METRICS)}"
        )
    return f"{RANX_METRICS[name]}@{int(k)}"


def _check_aligned(runs: dict[str, list[EvalResult]], k: int) -> None:
    """Every model must hold the same seeds, users and truth as the first one."""
    ref_name, ref = next(iter(runs.items()))
    for model, results in runs.items():
        if not results:
            raise DataError(f"model {model!r} has no results")
        if len(results) != len(ref):
            raise DataError(
                f"model {model!r} has {len(results)} seed results, {ref_name!r} has {len(ref)}; "
                "every model needs one result per seed, same seeds in the same order"
            )
        for seed, (result, base) in enumerate(zip(results, ref, strict=True)):
            users, top, truth = _kept(result, f"model {model!r} seed #{seed}")
            if top.shape[1] < k:
                raise DataError(
                    f"model {model!r} seed #{seed} kept top-{top.shape[1]} lists, "
                    f"the metric needs {k}; evaluate with ks including {k}"
                )
            # The reference model's results were checked on the first pass of the loop.
            base_users, _, base_truth = _kept(base, f"model {ref_name!r} seed #{seed}")
            if not np.array_equal(users, base_users):
                raise DataError(
                    f"model {model!r} seed #{seed} evaluates {len(users)} users, not the "
                    f"same ones as {ref_name!r} ({len(base_users)}); were both evaluated on the "
                    "same split, exclusion and candidates?"
                )
            if truth.shape != base_truth.shape or (truth != base_truth).nnz:
                raise DataError(
                    f"model {model!r} seed #{seed} has other relevant items than {ref_name!r}; "
                    "were both evaluated on the same split, exclusion and candidates?"
                )


def compare_models(
    runs: dict[str, list[EvalResult]],
    metric: str = "ndcg@10",
    stat_test: str = "student",
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Paired significance tests between every two models over the pooled (seed, user) pairs.

    Args:
        runs: model name -> one ``evaluate_scores(..., keep_top=True)`` result per split seed;
            every model needs the same seeds in the same order, each with the same users.
        metric: our metric name, ``name@K`` with name among ``ndcg, recall, precision, mrr,
            hit``; K must not exceed the kept top-list width.
        stat_test: ``"student"`` (paired two-sided t-test), ``"fisher"`` (randomization test,
            1000 permutations, seed 42) or ``"tukey"`` (Tukey's HSD).
        alpha: significance level; a pair is significant when ``p_value < alpha``.

    Returns:
        JSON-ready dict: ``metric``, ``ranx_metric``, ``stat_test``, ``alpha``, ``n_seeds``,
        ``n_queries`` (pooled (seed, user) pairs), ``means`` (model -> mean over the pooled
        queries) and ``pairs`` (model a -> model b -> ``{"p_value", "significant", "better"}``
        for every ordered pair, ``better`` naming the model with the higher mean, None on a
        tie). Identical per-query values give ``p_value`` 1.0, where the t-test gives NaN.

    Raises:
        ConfigError: fewer than two models, unknown metric or test, or ``alpha`` outside (0, 1).
        DataError: models whose seeds, users or truth do not line up.
    """
    import ranx
    from numba.core.errors import NumbaTypeSafetyWarning

    if stat_test not in STAT_TESTS:
        raise ConfigError(f"unknown stat_test {stat_test!r}; valid: {', '.join(STAT_TESTS)}")
    ranx_name = ranx_metric(metric)
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if len(runs) < 2:
        raise ConfigError(f"need at least two models to compare, got {list(runs)}")
    _check_aligned(runs, int(ranx_name.rsplit("@", 1)[1]))

    models = list(runs)
    qrels = to_qrels(runs[models[0]])
    ranx_runs = [to_run(runs[m], name=m) for m in models]
    with warnings.catch_warnings():
        # Compiling ranx's precision kernel warns of a uint64 -> int64 cast of k: harmless for
        # any real cut-off, and only noise to our users.
        warnings.filterwarnings("ignore", category=NumbaTypeSafetyWarning)
        report = ranx.compare(
            qrels, ranx_runs, metrics=[ranx_name], stat_test=stat_test, max_p=alpha
        )

    means = {m: float(report.results[m][ranx_name]) for m in models}
    pairs: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in models}
    for a in models:
        for b in models:
            if a == b:
                continue
            p_value = float(report.comparisons[frozenset((a, b))][ranx_name]["p_value"])
            if math.isnan(p_value):
                # ttest_rel's answer when every paired difference is 0: there is no evidence of
                # a difference, and NaN is not valid JSON.
                p_value = 1.0
            better = a if means[a] > means[b] else b if means[b] > means[a] else None
            pairs[a][b] = {"p_value": p_value, "significant": p_value < alpha, "better": better}
    return {
        "metric": metric,
        "ranx_metric": ranx_name,
        "stat_test": stat_test,
        "alpha": alpha,
        "n_seeds": len(runs[models[0]]),
        "n_queries": len(qrels),
        "means": means,
        "pairs": pairs,
    }


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of per-seed values; std is 0.0 for one value.

    Raises:
        DataError: no values.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise DataError("mean_std needs at least one value")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std
