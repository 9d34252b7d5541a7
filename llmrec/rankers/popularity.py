"""Most-popular baseline: every user gets the items with most training interactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from llmrec.rankers.base import FitInputs, RecommenderBase, TagBags


class Popularity(RecommenderBase):
    """Scores each item by its number of training interactions."""

    kind = "pop"

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        counts = np.asarray((sp.csr_matrix(user_items) > 0).sum(axis=0)).ravel()
        self.counts = counts.astype(np.float32)
        self.n_items = user_items.shape[1]
        return self

    def score(self, userids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.counts, (len(np.atleast_1d(userids)), self.n_items)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        self.counts = np.concatenate([self.counts, np.zeros(n_new, dtype=np.float32)])
        self.n_items += n_new

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.counts = state["counts"]
