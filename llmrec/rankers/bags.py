"""Id bags as TorchRec inputs: padded id rows, tag vocabularies, mean-pooled tag tables and
``KeyedJaggedTensor`` batches, shared by the two-tower and the two-stage ranker."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def padded_bags(bags: Sequence[Sequence[int] | np.ndarray], width: int | None = None) -> np.ndarray:
    """Rows of ids padded with -1 (to the longest bag, or cut to ``width``)."""
    width = max((len(b) for b in bags), default=0) if width is None else width
    out = np.full((len(bags), max(width, 1)), -1, dtype=np.int64)
    for row, bag in enumerate(bags):
        bag = list(bag)[:width]
        out[row, : len(bag)] = bag
    return out


def tag_vocabulary(bags: list[list[str]] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(sorted vocabulary, padded index rows); an empty vocabulary without bags."""
    if not bags:
        return np.array([], dtype=str), None
    vocab = np.array(sorted({t for bag in bags for t in bag}), dtype=str)
    index = {t: i for i, t in enumerate(vocab)}
    return vocab, padded_bags([[index[t] for t in bag] for bag in bags])


def tag_tables(dim: int, n_user_tags: int, n_item_tags: int) -> list:
    """Mean-pooled ``user_tags``/``item_tags`` table configs, for the tag kinds that exist."""
    from torchrec import EmbeddingBagConfig, PoolingType

    return [
        EmbeddingBagConfig(
            name=f"{name}_table",
            embedding_dim=dim,
            num_embeddings=size,
            feature_names=[name],
            pooling=PoolingType.MEAN,
        )
        for name, size in (("user_tags", n_user_tags), ("item_tags", n_item_tags))
        if size
    ]


def padded_kjt(keys: Sequence[str], rows: dict[str, np.ndarray], n: int):
    """A ``KeyedJaggedTensor`` over ``keys`` from ``(n, width)`` id rows padded with -1; a key
    missing from ``rows`` gets empty bags."""
    import torch
    from torchrec import KeyedJaggedTensor

    empty = np.full((n, 1), -1, dtype=np.int64)
    lengths, values = [], []
    for key in keys:
        row = rows.get(key, empty)
        mask = row >= 0
        lengths.append(mask.sum(axis=1))
        values.append(row[mask])
    return KeyedJaggedTensor.from_lengths_sync(
        keys=list(keys),
        values=torch.from_numpy(np.concatenate(values).astype(np.int64)),
        lengths=torch.from_numpy(np.concatenate(lengths).astype(np.int32)),
    )
