"""llmrec: language-model features for existing recommenders."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Recommender", "__version__"]


def __getattr__(name: str) -> Any:
    # The pipeline pulls in pandas, faiss and the rankers: load it on first use only.
    if name == "Recommender":
        from llmrec.pipeline import Recommender

        return Recommender
    raise AttributeError(f"module 'llmrec' has no attribute {name!r}")
