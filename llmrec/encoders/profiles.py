"""User histories to text (profiles) and to vectors (pooled item embeddings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from llmrec.errors import ConfigError, DataError


class ProfileConfig(BaseModel):
    """How a user's history becomes text."""

    model_config = ConfigDict(extra="forbid")

    max_items: int = Field(default=30, ge=1)
    min_rating: float | None = None
    """Keep only interactions rated at least this (e.g. 4 for 'liked'); None keeps all."""
    order: Literal["recent", "oldest", "rating"] = "recent"
    include_rating: bool = True
    max_tokens: int | None = Field(default=256, ge=1)
    """Token budget, counted with the encoder's tokenizer; whole lines are dropped past it."""
    header: str = "Movies this user watched, newest first:"


def profile_text(
    history: pd.DataFrame,
    item_texts: np.ndarray,
    config: ProfileConfig | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> str:
    """One user's history as numbered lines, e.g. ``1. Heat (1995). Genres: Action. Rated 5/5.``

    Args:
        history: the user's rows with ``item_idx``, ``rating``, ``timestamp``.
        item_texts: item text by item index.
        config: selection, order and budget.
        count_tokens: the encoder's token counter; needed when ``config.max_tokens`` is set.

    Returns:
        The profile text.

    Raises:
        DataError: nothing is left of the history (empty, or all below ``min_rating``).
    """
    config = config or ProfileConfig()
    rows = history
    if config.min_rating is not None:
        rows = rows[rows["rating"] >= config.min_rating]
    if rows.empty:
        raise DataError(
            "empty history: the user has no interactions"
            + (f" rated >= {config.min_rating}" if config.min_rating is not None else "")
            + "; use a persona or popularity embedding for such users"
        )
    if config.order == "rating":
        rows = rows.sort_values(["rating", "timestamp"], ascending=False, kind="stable")
    else:
        rows = rows.sort_values("timestamp", ascending=config.order == "oldest", kind="stable")
    rows = rows.head(config.max_items)
    header = (
        config.header if config.order == "recent" else config.header.replace(", newest first", "")
    )
    lines = [header]
    for n, (item, rating) in enumerate(zip(rows["item_idx"], rows["rating"], strict=True), 1):
        line = f"{n}. {item_texts[item]}"
        if config.include_rating:
            line += f" Rated {rating:g}/5."
        if config.max_tokens is not None:
            if count_tokens is None:
                raise ConfigError("max_tokens needs count_tokens (the encoder's token counter)")
            if count_tokens("\n".join([*lines, line])) > config.max_tokens and n > 1:
                break
        lines.append(line)
    return "\n".join(lines)


Weighting = Literal["mean", "rating", "recency"]


def history_weights(
    user_items: sp.csr_matrix,
    weighting: Weighting = "rating",
    timestamps: sp.csr_matrix | None = None,
    half_life_days: float = 180.0,
) -> sp.csr_matrix:
    """Per-interaction pooling weights, same sparsity as ``user_items``.

    Args:
        user_items: CSR users x items whose values are ratings (``rating``) or anything.
        weighting: ``mean`` (all 1); ``rating`` (rating - the user's mean rating + 1, floored at
            0.1, so liked items count more); ``recency`` (halves every ``half_life_days`` before
            the user's latest interaction; needs ``timestamps``, a CSR of the same pattern).
        half_life_days: for ``recency``.
    """
    matrix = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    if weighting == "mean":
        matrix.data[:] = 1.0
    elif weighting == "rating":
        counts = np.maximum(np.diff(matrix.indptr), 1)
        means = np.asarray(matrix.sum(axis=1)).ravel() / counts
        matrix.data = np.maximum(matrix.data - means[rows] + 1.0, 0.1)
    elif weighting == "recency":
        if timestamps is None or timestamps.nnz != matrix.nnz:
            raise DataError("recency weighting needs timestamps with the same pattern")
        ts = sp.csr_matrix(timestamps, dtype=np.float64)
        latest = np.asarray(ts.max(axis=1).todense()).ravel()
        matrix.data = 0.5 ** ((latest[rows] - ts.data) / (half_life_days * 86400.0))
    else:
        raise ConfigError(f"weighting must be mean, rating or recency, got {weighting!r}")
    return matrix


def pool_item_embeddings(
    weights: sp.csr_matrix, item_vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """User vectors as weighted means of their items' embeddings (one sparse product).

    Args:
        weights: CSR users x items of pooling weights (see :func:`history_weights`).
        item_vectors: ``(n_items, d)`` item embeddings.

    Returns:
        ``(vectors, has_history)``: float32 ``(n_users, d)`` and a bool mask; users without
        history get NaN rows, never a silent zero vector.
    """
    if weights.shape[1] != item_vectors.shape[0]:
        raise DataError(
            f"weights cover {weights.shape[1]} items but item_vectors has {item_vectors.shape[0]}"
        )
    totals = np.asarray(weights.sum(axis=1)).ravel()
    has_history = totals > 0
    vectors = np.asarray(weights @ item_vectors, dtype=np.float64)
    vectors[has_history] /= totals[has_history, None]
    vectors[~has_history] = np.nan
    return vectors.astype(np.float32), has_history
