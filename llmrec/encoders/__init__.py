"""Text encoders: items and user histories to embeddings."""

from __future__ import annotations

from llmrec.encoders.base import TextEncoder, check_texts
from llmrec.encoders.transformer import TransformerEncoder, default_model_path

__all__ = ["TextEncoder", "TransformerEncoder", "check_texts", "default_model_path"]
