"""Full-ranking evaluation: every user is ranked against every item, no sampled negatives."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from llmrec.evaluation.metrics import METRICS, coverage

Scorer = Callable[[np.ndarray], np.ndarray]
"""Maps user indices ``(n,)`` to scores ``(n, n_items)``; higher is better."""

DEFAULT_METRICS = ("recall", "ndcg", "mrr", "hit", "precision")


@dataclass
class EvalResult:
    """Mean metric values, keyed ``"ndcg@10"``, plus ``coverage@K``, users and timing.

    Attributes:
        metrics: mean metric values over the evaluated users.
        n_users: users with at least one relevant item after exclusion and candidate restriction.
        seconds: wall time of the ranking and scoring loop.
        per_user: per-user metric arrays, aligned with ``users``; empty unless asked for.
        users: int64 ``(n_users,)`` user indices evaluated, in order; None unless ``keep_top``.
        top: int64 ``(n_users, max_k)`` ranked item indices, best first, ``-1`` where fewer
            items could be ranked; None unless ``keep_top``.
        truth: CSR ``(n_users, n_items)`` relevant items per evaluated user, after exclusion
            and candidate restriction (what the metrics were computed against); None unless
            ``keep_top``.
    """

    metrics: dict[str, float]
    n_users: int
    seconds: float
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    users: np.ndarray | None = field(default=None, repr=False)
    top: np.ndarray | None = field(default=None, repr=False)
    truth: sp.csr_matrix | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def tie_keys(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A pseudo-random key per (row, item) pair, used to order tied scores.

    Breaking ties by item index would leak whatever the ids encode (in MovieLens, low ids are
    popular films), so a model with constant scores would look better than chance. The key is a
    hash of the pair (splitmix64), so it does not depend on batching and needs no state.
    """
    x = (rows.astype(np.uint64)[:, None] << np.uint64(32)) ^ items.astype(np.uint64)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def top_k(scores: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first; ``-1`` where the score is -inf.

    Args:
        scores: ``(n, n_items)`` scores.
        k: how many.
        rows: ids of the rows (users); equal scores are then ordered by :func:`tie_keys`,
            else by item index. Ties at the k-th place are resolved over the whole row, never
            by argpartition's arbitrary choice.

    Returns:
        int64 ``(n, k)`` item indices.
    """
    n_items = scores.shape[1]
    k_eff = min(k, n_items)
    if k_eff < n_items:
        # Take every item tied with the k-th score, so the tie-break, not argpartition, decides.
        kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1 : k_eff]
        width = int((scores >= kth).sum(axis=1).max())
        part = np.argpartition(-scores, width - 1, axis=1)[:, :width] if width < n_items else None
    else:
        part = None
    if part is None:
        part = np.broadcast_to(np.arange(n_items), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order_key = part if rows is None else tie_keys(np.asarray(rows), part)
    order = np.lexsort((order_key, -part_scores), axis=1)[:, :k_eff]
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    top = np.where(np.isneginf(top_scores), -1, top)
    if k_eff < k:
        top = np.pad(top, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return top


def evaluate_scores(
    scorer: Scorer,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None = None,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = DEFAULT_METRICS,
    candidates: np.ndarray | None = None,
    batch_size: int = 1024,
    show_progress_bar: bool | None = None,
    keep_per_user: bool = False,
    keep_top: bool = False,
) -> EvalResult:
    """Rank every item for every user with test items and score the top K.

    Args:
        scorer: user indices -> ``(n, n_items)`` scores.
        truth: CSR user x item matrix of relevant (test) items.
        exclude: CSR matrix of items not to rank per user (seen in train, and valid for test).
        ks: cut-offs.
        metrics: names among ``recall, ndcg, mrr, hit, precision``.
        candidates: item indices to rank among (e.g. held-out cold items); None = all items.
        batch_size: users scored per call.
        show_progress_bar: tqdm bar over user batches; None shows it only on a terminal.
        keep_per_user: keep per-user metric arrays in the result.
        keep_top: keep the evaluated users, their top ``max(ks)`` items and their effective
            truth rows in the result (for significance tests, see
            :mod:`llmrec.evaluation.significance`).

    Returns:
        :class:`EvalResult` with means over users who have at least one relevant item.

    Raises:
        ValueError: unknown metric, bad ``ks``, shape mismatch, or NaN scores.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; valid: {', '.join(METRICS)}")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    if exclude is not None and exclude.shape != truth.shape:
        raise ValueError(f"exclude has shape {exclude.shape}, truth has {truth.shape}")
    n_items = truth.shape[1]
    truth = truth.tocsr()
    n_rankable = n_items if candidates is None else len(np.unique(candidates))
    if candidates is not None:
        allowed = np.zeros(n_items, dtype=bool)
        allowed[np.asarray(candidates)] = True
        truth = truth.multiply(allowed[None, :]).tocsr()
    truth.eliminate_zeros()
    if exclude is not None:
        # An excluded item cannot be ranked, so it cannot count as relevant either.
        truth = (truth - truth.multiply(exclude.astype(bool))).tocsr()
        truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    max_k = max(ks)
    per_user = {f"{m}@{k}": np.empty(len(users)) for m in metrics for k in ks}
    tops = []
    start = time.perf_counter()
    batches = range(0, len(users), batch_size)
    disable = None if show_progress_bar is None else not show_progress_bar
    for lo in tqdm(batches, desc="evaluate", unit="batch", disable=disable, leave=False):
        batch = users[lo : lo + batch_size]
        scores = np.asarray(scorer(batch), dtype=np.float32)
        if scores.shape != (len(batch), n_items):
            raise ValueError(
                f"scorer returned shape {scores.shape}, expected {(len(batch), n_items)}"
            )
        if np.isnan(scores).any():
            raise ValueError(
                f"scorer returned NaN scores for {np.isnan(scores).any(axis=1).sum()} users"
            )
        if candidates is not None:
            scores = np.where(allowed[None, :], scores, -np.inf)
        if exclude is not None:
            seen = exclude[batch]
            scores[np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = top_k(scores, max_k, batch)
        rel = truth[batch]
        relevant = rel.toarray() > 0
        hits = np.take_along_axis(relevant, np.maximum(top, 0), axis=1) & (top >= 0)
        n_rel = np.diff(rel.indptr)
        for k in ks:
            for m in metrics:
                per_user[f"{m}@{k}"][lo : lo + len(batch)] = METRICS[m]()(hits[:, :k], n_rel)
        tops.append(top)
    all_top = np.concatenate(tops) if tops else np.empty((0, max_k), dtype=np.int64)
    means = {key: float(values.mean()) if len(values) else 0.0 for key, values in per_user.items()}
    for k in ks:
        means[f"coverage@{k}"] = coverage(all_top[:, :k], n_rankable)
    return EvalResult(
        metrics=means,
        n_users=len(users),
        seconds=time.perf_counter() - start,
        per_user=per_user if keep_per_user else {},
        users=users.astype(np.int64) if keep_top else None,
        top=all_top.astype(np.int64, copy=False) if keep_top else None,
        truth=truth[users] if keep_top else None,
    )
