"""The two-stage ranker's training data: a holdout of fit's own interactions, and candidate
lists merged across sources with each candidate's rank and label."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def holdout_split(
    user_items: sp.csr_matrix,
    fraction: float,
    seed: int,
    timestamps: sp.csr_matrix | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out ``fraction`` of each user's items, at least one for users with 2+ items (who
    keep 1+): the latest ones when ``timestamps`` (same shape) are given, else seeded random."""
    rng = np.random.default_rng(seed)
    coo = user_items.tocoo()
    key = rng.random(coo.nnz)
    if timestamps is not None:
        times = sp.csr_matrix(timestamps)[coo.row, coo.col]
        # Latest first; the random key only orders equal times.
        key = np.lexsort((key, -np.asarray(times, dtype=np.float64).ravel())).argsort()
    order = np.lexsort((key, coo.row))
    rows = coo.row[order]
    start = np.searchsorted(rows, rows, side="left")
    position = np.arange(len(rows)) - start
    counts = np.bincount(rows, minlength=user_items.shape[0])[rows]
    held = (position < np.maximum(np.floor(counts * fraction), 1)) & (counts >= 2)
    mask = np.zeros(coo.nnz, dtype=bool)
    mask[order[held]] = True

    def part(keep: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(
            (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=user_items.shape
        )

    return part(~mask), part(mask)


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise union of two id arrays (-1 = none); duplicates and gaps become -1."""
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    dup = np.zeros_like(both, dtype=bool)
    dup[:, 1:] = both[:, 1:] == both[:, :-1]
    return np.where(dup, -1, both)


def ranks(candidates: np.ndarray, retrieved: np.ndarray) -> np.ndarray:
    """Rank of each candidate in ``retrieved`` (row-wise), ``retrieved.shape[1]`` if absent."""
    n, width = retrieved.shape
    ranks = np.full(candidates.shape, width, dtype=np.float32)
    for row in range(n):
        where = {item: r for r, item in enumerate(retrieved[row]) if item >= 0}
        ranks[row] = [where.get(item, width) for item in candidates[row]]
    return ranks


def labels(candidates: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """1.0 where the candidate is in the user's ``truth`` row, else 0.0."""
    truth = sp.csr_matrix(truth)
    out = np.zeros(candidates.shape, dtype=np.float32)
    for row in range(len(candidates)):
        positives = truth.indices[truth.indptr[row] : truth.indptr[row + 1]]
        out[row] = np.isin(candidates[row], positives) & (candidates[row] >= 0)
    return out
