"""Side information for models: item genre bags, user attribute bags, interaction times.

Models that embed categories (TorchRec tables over a ``KeyedJaggedTensor``) read them as one bag
of string tokens per item or user, in index order; a bag may be empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from llmrec.datasets.dataset import to_csr
from llmrec.datasets.text import clean_value, split_tags
from llmrec.errors import DataError

log = logging.getLogger(__name__)

MAX_ATTRIBUTE_VALUES = 1000
"""A user column with more distinct values than this is an identifier, not an attribute."""
REGION_COLUMNS = ("zip_code", "zip", "postcode")
"""Kept as their first character only: a coarse region instead of a near-unique value."""


@dataclass(frozen=True)
class SideFeatures:
    """Bags of tokens per item and per user, in index order (``None``: the dataset has none),
    and the training interactions' Unix times (a CSR with the train matrix's pattern)."""

    item_tags: list[list[str]] | None = None
    user_tags: list[list[str]] | None = None
    timestamps: sp.csr_matrix | None = None

    def check(self, n_users: int, n_items: int) -> None:
        """Raise a DataError when a bag list does not have one entry per user or item."""
        for name, bags, n in (
            ("item_tags", self.item_tags, n_items),
            ("user_tags", self.user_tags, n_users),
        ):
            if bags is not None and len(bags) != n:
                raise DataError(f"{name} has {len(bags)} bags for {n} {name.split('_')[0]}s")


def item_tags(items: pd.DataFrame, genres_column: str | None) -> list[list[str]] | None:
    """One genre bag per item (``genre=Comedy``), or None without a genres column."""
    if genres_column is None:
        return None
    return [[f"genre={t}" for t in split_tags(v)] for v in items[genres_column]]


def user_tags(users: pd.DataFrame) -> list[list[str]] | None:
    """One ``column=value`` bag per user from every attribute column, or None without any.

    Region columns keep their first character; columns with more than
    :data:`MAX_ATTRIBUTE_VALUES` distinct values are skipped as identifiers.
    """
    columns = []
    for col in users.columns:
        if col == "user_id":
            continue
        values = users[col].map(clean_value)
        if col in REGION_COLUMNS:
            values = values.str[:1]
        elif values.nunique() > MAX_ATTRIBUTE_VALUES:
            log.info(
                "user column %r has %d values; skipped as an identifier", col, values.nunique()
            )
            continue
        columns.append(np.where(values != "", col + "=" + values, ""))
    if not columns:
        return None
    return [[t for t in row if t] for row in zip(*columns, strict=True)]


def side_features(dataset, train: pd.DataFrame | None = None) -> SideFeatures:
    """Genre bags and user attribute bags of a :class:`~llmrec.datasets.Dataset`, and the
    timestamps of ``train`` (its interactions with ``user_idx``/``item_idx``) when it has them."""
    times = None
    if train is not None and train["timestamp"].notna().all():
        times = to_csr(train, dataset.n_users, dataset.n_items, "timestamp", dtype=np.float64)
    return SideFeatures(
        item_tags=item_tags(dataset.items, dataset.text_columns.get("genres")),
        user_tags=user_tags(dataset.users),
        timestamps=times,
    )
