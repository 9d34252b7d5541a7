"""Item-kNN: implicit's ``CosineRecommender`` / ``BM25Recommender`` / ``TFIDFRecommender``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from llmrec.rankers.base import (
    FitInputs,
    RecommenderBase,
    RecommenderConfig,
    TagBags,
    progress_enabled,
)
from llmrec.rankers.state import csr_from_state, csr_state, grown


class ItemKNNConfig(RecommenderConfig):
    """Which similarity and how many neighbours each item keeps."""

    similarity: Literal["cosine", "bm25", "tfidf"] = "cosine"
    K: int = Field(default=100, ge=1)
    K1: float = Field(default=1.2, gt=0)
    """BM25 term saturation."""
    B: float = Field(default=0.75, ge=0, le=1)
    """BM25 length normalisation."""


class ItemKNN(RecommenderBase):
    """Item-based k-nearest neighbours (Sarwar et al. 2001) through the ``implicit`` package.

    A user's score for an item is the sum of the item's similarities to the user's train items
    (implicit's ``ItemItemRecommender.recommend``), so the model keeps the train matrix.
    """

    kind = "item_knn"
    config_class = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        show_progress_bar = inputs.show_progress_bar
        from implicit.nearest_neighbours import (
            BM25Recommender,
            CosineRecommender,
            TFIDFRecommender,
        )

        c = self.config
        if c.similarity == "bm25":
            model = BM25Recommender(K=c.K, K1=c.K1, B=c.B)
        elif c.similarity == "tfidf":
            model = TFIDFRecommender(K=c.K)
        else:
            model = CosineRecommender(K=c.K)
        self.train_ = sp.csr_matrix(user_items, dtype=np.float32)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # Our input is CSR; implicit's cosine weighting converts to COO internally and then
            # warns about its own intermediate.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(self.train_, show_progress=progress_enabled(show_progress_bar))
        self.similarity = sp.csr_matrix(model.similarity, dtype=np.float32)
        self.n_items = user_items.shape[1]
        return self

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        # no co-occurrence with anything: a zero row and column of the similarity
        n = self.n_items + n_new
        self.similarity = grown(self.similarity, (n, n))
        self.train_ = grown(self.train_, (self.train_.shape[0], n))
        self.n_items = n

    def score(self, userids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        rows = self.train_[np.asarray(userids)]
        return np.asarray((rows @ self.similarity).todense(), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.similarity.toarray()

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **csr_state("train", self.train_),
            **csr_state("similarity", self.similarity),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.train_ = csr_from_state("train", state)
        self.similarity = csr_from_state("similarity", state)
