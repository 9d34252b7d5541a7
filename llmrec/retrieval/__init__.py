"""Vector search: FAISS indexes over item embeddings (:class:`ItemIndex`) and candidate
recall. It holds no models; every model, retrievers included, is in :mod:`llmrec.rankers`."""

from __future__ import annotations

from llmrec.retrieval.index import ItemIndex
from llmrec.retrieval.recall import candidate_recall

__all__ = ["ItemIndex", "candidate_recall"]
