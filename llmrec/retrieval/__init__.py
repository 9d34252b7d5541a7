"""Candidate retrieval: FAISS indexes over item embeddings."""

from __future__ import annotations

from llmrec.retrieval.index import ItemIndex
from llmrec.retrieval.recall import candidate_recall

__all__ = ["ItemIndex", "candidate_recall"]
