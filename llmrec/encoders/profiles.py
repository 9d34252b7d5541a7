"""User histories to text (profiles) and to vectors (pooled item embeddings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from llmrec.errors import DataError


class ProfileConfig(BaseModel):
    """How a user's history becomes text."""

    model_config = ConfigDict(extra="forbid")

    max_items: int = 30
    min_rating: float | None = None
    """Keep only interactions rated at least this (e.g. 4 for 'liked'); None keeps all."""
    order: Literal["recent", "oldest", "rating"] = "recent"
    include_rating: bool = True
    max_tokens: int | None = 256
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
                raise ValueError("max_tokens needs count_tokens (the encoder's token counter)")
            if count_tokens("\n".join([*lines, line])) > config.max_tokens and n > 1:
                break
        lines.append(line)
    return "\n".join(lines)


Weighting = Literal["mean", "rating", "recency"]


def pool_item_embeddings(
    interactions: pd.DataFrame,
    item_vectors: np.ndarray,
    n_users: int,
    weighting: Weighting = "rating",
    half_life_days: float = 180.0,
) -> tuple[np.ndarray, np.ndarray]:
    """User vectors as weighted means of their items' embeddings (one sparse product).

    Args:
        interactions: rows with ``user_idx``, ``item_idx``, ``rating``, ``timestamp``.
        item_vectors: ``(n_items, d)`` item embeddings.
        n_users: rows of the result.
        weighting: ``mean``; ``rating`` (weight = rating - the user's mean rating + 1, floored
            at 0.1, so liked items count more); ``recency`` (halves every ``half_life_days``
            before the user's latest interaction).
        half_life_days: for ``recency``.

    Returns:
        ``(vectors, has_history)``: float32 ``(n_users, d)`` and a bool mask; users without
        history get NaN rows, never a silent zero vector.
    """
    users = interactions["user_idx"].to_numpy()
    if weighting == "mean":
        weights = np.ones(len(interactions))
    elif weighting == "rating":
        rating = interactions["rating"].to_numpy(dtype=np.float64)
        mean = pd.Series(rating).groupby(users).transform("mean").to_numpy()
        weights = np.maximum(rating - mean + 1.0, 0.1)
    elif weighting == "recency":
        ts = interactions["timestamp"].to_numpy(dtype=np.float64)
        latest = pd.Series(ts).groupby(users).transform("max").to_numpy()
        weights = 0.5 ** ((latest - ts) / (half_life_days * 86400.0))
    else:
        raise ValueError(f"weighting must be mean, rating or recency, got {weighting!r}")
    matrix = sp.csr_matrix(
        (weights, (users, interactions["item_idx"].to_numpy())),
        shape=(n_users, item_vectors.shape[0]),
    )
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    has_history = totals > 0
    vectors = np.asarray(matrix @ item_vectors, dtype=np.float64)
    vectors[has_history] /= totals[has_history, None]
    vectors[~has_history] = np.nan
    return vectors.astype(np.float32), has_history
