"""Top-K ranking metrics as small classes over a hit matrix.

Every metric takes ``hits`` (bool, ``(n_users, K)``: is the item at rank ``r`` relevant) and
``n_relevant`` (``(n_users,)``: how many relevant items the user has) and returns one value per
user at cut-off ``K = hits.shape[1]``. Definitions follow RecBole's evaluator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from llmrec.ranking import ndcg


class Metric(ABC):
    """A per-user top-K metric."""

    name: ClassVar[str]

    @abstractmethod
    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        """Per-user values at ``K = hits.shape[1]``."""


class Recall(Metric):
    """Share of the user's relevant items found in the top K."""

    name = "recall"

    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        return hits.sum(axis=1) / np.maximum(n_relevant, 1)


class Precision(Metric):
    """Share of the top K that is relevant."""

    name = "precision"

    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        return hits.sum(axis=1) / hits.shape[1]


class Hit(Metric):
    """1 when any relevant item is in the top K."""

    name = "hit"

    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        return hits.any(axis=1).astype(np.float64)


class MRR(Metric):
    """Reciprocal rank of the first relevant item in the top K (0 if none)."""

    name = "mrr"

    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        first = hits.argmax(axis=1)
        return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


class NDCG(Metric):
    """Binary-relevance DCG of the top K over the ideal DCG of ``min(n_relevant, K)`` hits."""

    name = "ndcg"

    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        return ndcg(hits, n_relevant)


METRICS: dict[str, type[Metric]] = {m.name: m for m in (Recall, NDCG, MRR, Hit, Precision)}


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: share of all items that appear in anyone's top K (``-1`` = empty)."""
    shown = np.unique(top_items[top_items >= 0])
    return len(shown) / n_items if n_items else 0.0
