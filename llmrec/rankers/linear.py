"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from llmrec.rankers.base import FitInputs, RecommenderBase, RecommenderConfig, TagBags
from llmrec.rankers.state import check_finite, check_shape, csr_from_state, csr_state, grown


class EASEConfig(RecommenderConfig):
    """EASE's one hyper-parameter, the L2 weight on the item-item matrix."""

    reg_weight: float = Field(default=250.0, gt=0)


class EASE(RecommenderBase):
    """EASE: ``B = I - P / diag(P)`` with ``P = (X^T X + reg I)^-1`` and a zero diagonal.

    The same computation as RecBole 1.2.1's ``EASE`` (``tests/rankers/test_linear.py`` checks
    equal scores on ml-100k); it exists here because the two-stage model uses it as a candidate
    source and ranker feature, where RecBole's file-based training loop cannot run.
    """

    kind = "ease"
    config_class = EASEConfig
    config: EASEConfig

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        self.train_ = sp.csr_matrix(user_items, dtype=np.float32)
        self.train_.data[:] = 1.0
        gram = (self.train_.T @ self.train_).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.config.reg_weight
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights.astype(np.float32)
        self.n_items = user_items.shape[1]
        return self

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        # The closed form gives an item without interactions a zero row and column.
        n = self.n_items + n_new
        weights = np.zeros((n, n), dtype=np.float32)
        weights[: self.n_items, : self.n_items] = self.weights
        self.weights = weights
        self.train_ = grown(self.train_, (self.train_.shape[0], n))
        self.n_items = n

    def score(self, userids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.train_[np.asarray(userids)] @ self.weights, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.weights

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, **csr_state("train", self.train_)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.train_ = csr_from_state("train", state)
        weights = state["weights"]
        check_shape("weights", weights, (self.train_.shape[1],) * 2)
        check_finite("weights", weights)
        self.weights = weights
