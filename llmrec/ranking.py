"""Ranking primitives shared by models (early stopping, ``recommend``) and the evaluator:
top-K with hashed tie-breaks, ranked batches with hits, and NDCG. Below both in the data flow,
so rankers never import the evaluation package."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp

from llmrec.errors import DataError

Scorer = Callable[[np.ndarray], np.ndarray]
"""Maps user indices ``(n,)`` to scores ``(n, n_items)``; higher is better."""


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


def ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-row binary-relevance DCG of the top K over the ideal DCG of ``min(n_relevant, K)``
    hits, ``K = hits.shape[1]`` (RecBole's definition)."""
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    ideal_cum = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cum[np.minimum(n_relevant, k)]
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def relevant_rows(
    truth: sp.csr_matrix, exclude: sp.csr_matrix | None, allowed: np.ndarray | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``truth`` restricted to ``allowed`` items and without ``exclude``d ones (an item that
    cannot be ranked cannot count as relevant), and the rows left with any relevant item."""
    if exclude is not None and exclude.shape != truth.shape:
        raise DataError(f"exclude has shape {exclude.shape}, truth has {truth.shape}")
    truth = truth.tocsr()
    if allowed is not None:
        truth = truth.multiply(allowed[None, :]).tocsr()
    truth.eliminate_zeros()
    if exclude is not None:
        truth = (truth - truth.multiply(exclude.astype(bool))).tocsr()
        truth.eliminate_zeros()
    return truth, np.flatnonzero(np.diff(truth.indptr) > 0)


def ranked_batches(
    scorer: Scorer,
    truth: sp.csr_matrix,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    allowed: np.ndarray | None = None,
    batch_size: int = 1024,
    batches: Iterator[int] | range | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Rank every allowed, not excluded item for ``users`` in batches.

    Yields:
        ``(batch, top, hits, n_relevant)``: user indices, their top-``k`` items (-1: none),
        bool hits against ``truth`` and each user's number of relevant items.

    Raises:
        DataError: the scorer returns the wrong shape or NaN.
    """
    n_items = truth.shape[1]
    for lo in batches if batches is not None else range(0, len(users), batch_size):
        batch = users[lo : lo + batch_size]
        scores = np.asarray(scorer(batch), dtype=np.float32)
        if scores.shape != (len(batch), n_items):
            raise DataError(
                f"scorer returned shape {scores.shape}, expected {(len(batch), n_items)}"
            )
        if np.isnan(scores).any():
            raise DataError(
                f"scorer returned NaN scores for {np.isnan(scores).any(axis=1).sum()} users"
            )
        if allowed is not None:
            scores = np.where(allowed[None, :], scores, -np.inf)
        if exclude is not None:
            seen = exclude[batch]
            scores[np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = top_k(scores, k, batch)
        rel = truth[batch]
        relevant = rel.toarray() > 0
        hits = np.take_along_axis(relevant, np.maximum(top, 0), axis=1) & (top >= 0)
        yield batch, top, hits, np.diff(rel.indptr)


def mean_ndcg(
    scorer: Scorer, truth: sp.csr_matrix, exclude: sp.csr_matrix | None = None, k: int = 10
) -> float:
    """Mean NDCG@k over users with relevant items, ranking all items but ``exclude``d ones
    (what models early-stop on; equal to the evaluator's ``ndcg@k``)."""
    truth, users = relevant_rows(truth, exclude)
    values = [
        ndcg(hits, n_rel) for _, _, hits, n_rel in ranked_batches(scorer, truth, users, k, exclude)
    ]
    return float(np.concatenate(values).mean()) if values else 0.0
