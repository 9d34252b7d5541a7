"""``TextEncoder``: the one text -> embedding interface, after sentence-transformers'
``encode``."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from llmrec.errors import ConfigError, DataError

ENCODE_KWARGS = ("batch_size", "show_progress_bar", "convert_to_numpy", "normalize_embeddings")


def check_texts(texts: Sequence[Any]) -> list[str]:
    """Return ``texts`` as a list of non-empty strings.

    Raises:
        DataError: a text is None, NaN, not a string, or blank; the message gives its position.
    """
    if isinstance(texts, str):
        raise DataError("encode() takes a list of texts, got a single string; wrap it in a list")
    out = []
    for i, text in enumerate(texts):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            raise DataError(f"text {i} is missing (None/NaN); fill or drop it before encoding")
        if not isinstance(text, str):
            raise DataError(f"text {i} is a {type(text).__name__}, not a string: {text!r}")
        if not text.strip():
            raise DataError(f"text {i} is empty; an empty text has no meaningful embedding")
        out.append(text)
    return out


def check_encode_kwargs(kwargs: dict[str, Any]) -> int:
    """Validate ``encode``'s keyword arguments; returns the batch size.

    Raises:
        ConfigError: an unknown keyword (the valid ones are listed), a batch size below 1, or
            ``convert_to_numpy=False``.
    """
    unknown = sorted(set(kwargs) - set(ENCODE_KWARGS))
    if unknown:
        raise ConfigError(
            f"unknown encode() argument(s) {unknown}; valid: {', '.join(ENCODE_KWARGS)}"
        )
    batch_size = kwargs.get("batch_size", 32)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not kwargs.get("convert_to_numpy", True):
        raise ConfigError("only convert_to_numpy=True is supported")
    return int(batch_size)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 copy of ``vectors`` with each row (last axis) scaled to unit L2 norm."""
    vectors = np.array(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class TextEncoder(ABC):
    """Turns texts into float32 embeddings.

    Subclasses implement ``_encode_batch`` (texts of similar length, in order) and set
    ``dimension`` and ``fingerprint``; batching, ordering, progress and normalisation live here.
    """

    dimension: int
    fingerprint: str
    """Identifies the model weights and settings; cached embeddings are keyed by it."""

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Embeddings ``(len(texts), dimension)`` of one batch."""

    def _lengths(self, texts: list[str]) -> list[int]:
        """Sort keys for batching; encoders with a tokenizer return token counts."""
        return [len(t) for t in texts]

    def encode(self, sentences: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Encode texts.

        Args:
            sentences: the texts.
            **kwargs: ``batch_size`` (32), ``show_progress_bar`` (None: on a terminal),
                ``convert_to_numpy`` (True; only numpy output is supported),
                ``normalize_embeddings`` (False: L2-normalise each row when True).

        Returns:
            float32 array ``(len(sentences), dimension)`` in input order.

        Raises:
            ConfigError: an unknown keyword (the valid ones are listed).
            DataError: a bad text or non-finite embeddings.
        """
        batch_size = check_encode_kwargs(kwargs)
        texts = check_texts(sentences)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Longest first, so batches hold texts of similar length and padding is minimal.
        order = np.argsort(-np.asarray(self._lengths(texts)), kind="stable")
        show = kwargs.get("show_progress_bar")
        starts = range(0, len(texts), batch_size)
        for lo in tqdm(
            starts, desc="encode", unit="batch", disable=None if show is None else not show
        ):
            idx = order[lo : lo + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        if not np.isfinite(out).all():
            raise DataError(f"{type(self).__name__} produced non-finite embeddings")
        return normalize_rows(out) if kwargs.get("normalize_embeddings", False) else out
