"""Adaptation: pick the part of a user's history that is relevant to a query.

The indirect-personalization workflow builds a prompt from the user data that matters for the
question at hand, not from a dump of everything. Here the query is a target item or a free text,
and relevance is cosine similarity of embeddings.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from llmrec.encoders.base import normalize_rows
from llmrec.encoders.profiles import ProfileConfig, profile_text
from llmrec.errors import ConfigError, DataError


def select_relevant(
    history_items: np.ndarray, query_vector: np.ndarray, item_vectors: np.ndarray, k: int
) -> np.ndarray:
    """The ``k`` history items most similar to the query, most similar first.

    Args:
        history_items: item indices of the user's history.
        query_vector: ``(d,)`` embedding of the query (a target item or a request).
        item_vectors: ``(n_items, d)`` item embeddings.
        k: how many to keep (all of them when the history is shorter).

    Returns:
        Item indices, a subset of ``history_items``.

    Raises:
        DataError: empty history or a dimension mismatch. ConfigError: ``k < 1``.
    """
    history_items = np.asarray(history_items, dtype=np.int64)
    if history_items.size == 0:
        raise DataError("empty history: nothing to select from; use a persona embedding instead")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if np.shape(query_vector) != (item_vectors.shape[1],):
        raise DataError(
            f"query vector has shape {np.shape(query_vector)}, item vectors are "
            f"{item_vectors.shape[1]}-d"
        )
    sims = normalize_rows(item_vectors[history_items]) @ normalize_rows(query_vector)
    order = np.argsort(-sims, kind="stable")[:k]
    return history_items[order]


def adapted_profile_text(
    history: pd.DataFrame,
    query_vector: np.ndarray,
    item_vectors: np.ndarray,
    item_texts: np.ndarray,
    k: int = 10,
    config: ProfileConfig | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> str:
    """A profile built only from the ``k`` history items most relevant to the query.

    Args:
        history: the user's rows (``item_idx``, ``rating``, ``timestamp``).
        query_vector: embedding of the query.
        item_vectors: item embeddings by item index.
        item_texts: item text by item index.
        k: history items kept.
        config: profile options (``min_rating`` applies before selection).
        count_tokens: the encoder's token counter, for ``config.max_tokens``.
    """
    config = config or ProfileConfig()
    rows = history
    if config.min_rating is not None:
        rows = rows[rows["rating"] >= config.min_rating]
    if rows.empty:
        raise DataError("empty history: nothing to select from; use a persona embedding instead")
    keep = select_relevant(rows["item_idx"].to_numpy(), query_vector, item_vectors, k)
    selected = rows[rows["item_idx"].isin(keep)]
    header = config.header.replace("watched", "watched that relate to the question")
    return profile_text(
        selected, item_texts, config.model_copy(update={"header": header}), count_tokens
    )


def adapted_scores(
    user_items: sp.csr_matrix,
    users: np.ndarray,
    item_similarity: np.ndarray,
    k: int,
) -> np.ndarray:
    """Score every item for each user by its mean similarity to the user's ``k`` most similar
    history items: query-relevant selection with each candidate item as the query.

    Args:
        user_items: CSR users x items history (non-zeros are the history).
        users: user indices to score.
        item_similarity: ``(n_items, n_items)`` cosine similarities of item embeddings.
        k: history items kept per candidate.

    Returns:
        float32 ``(len(users), n_items)``; users without history get NaN rows.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    out = np.full((len(users), item_similarity.shape[0]), np.nan, dtype=np.float32)
    for row, user in enumerate(np.asarray(users)):
        history = user_items.indices[user_items.indptr[user] : user_items.indptr[user + 1]]
        if history.size == 0:
            continue
        sims = item_similarity[history]
        if history.size > k:
            sims = -np.partition(-sims, k - 1, axis=0)[:k]
        out[row] = sims.mean(axis=0)
    return out
