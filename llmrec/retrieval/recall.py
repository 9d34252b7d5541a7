"""Candidate recall: how much of each user's test set the retrieval stage lets through."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from llmrec.errors import DataError
from llmrec.retrieval.index import ItemIndex


def candidate_recall(
    index: ItemIndex,
    user_vectors: np.ndarray,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None = None,
    sizes: Sequence[int] = (50, 100, 200, 500),
) -> dict[int, float]:
    """Mean over users with test items of |top-N candidates ∩ test items| / |test items|.

    Args:
        index: item index whose ids are the column indices of ``truth``.
        user_vectors: one query vector per row of ``truth``.
        truth: CSR users x items of held-out interactions.
        exclude: CSR users x items filtered from candidates (the training history).
        sizes: candidate counts N.

    Returns:
        ``{N: recall}``.
    """
    truth = sp.csr_matrix(truth)
    if len(user_vectors) != truth.shape[0]:
        raise DataError(f"{len(user_vectors)} user vectors for {truth.shape[0]} truth rows")
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    largest = min(max(sizes), len(index))
    ids, _ = index.search(
        user_vectors[users], largest, None if exclude is None else sp.csr_matrix(exclude)[users]
    )
    relevant = (truth[users] > 0).astype(np.float32)
    counts = np.diff(relevant.indptr)
    result = {}
    for n in sorted(sizes):
        top = ids[:, : min(n, largest)]
        rows = np.repeat(np.arange(len(users)), top.shape[1])
        keep = top.ravel() >= 0
        candidates = sp.csr_matrix(
            (np.ones(keep.sum(), dtype=np.float32), (rows[keep], top.ravel()[keep])),
            shape=relevant.shape,
        )
        hits = np.asarray(candidates.multiply(relevant).sum(axis=1)).ravel()
        result[n] = float(np.mean(hits / counts))
    return result
