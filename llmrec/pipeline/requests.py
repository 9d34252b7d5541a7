"""Checks and shapes of what a caller hands ``Recommender.recommend``: the aliases of its
options, histories, and the per-user exclusion rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from llmrec.datasets.dataset import normalize_ids
from llmrec.datasets.features import item_tags
from llmrec.datasets.text import item_text, resolve_text_columns
from llmrec.errors import ConfigError, DataError

OnUnknown = Literal["cold", "raise"]


def pick(name: str, value: object, alias: str, alias_value: object) -> object:
    """``value``, or ``alias_value`` when the caller used the other library's name for it;
    both given is an error (implicit spells ``k`` as ``N`` and ``filter_seen`` as
    ``filter_already_liked_items``)."""
    if alias_value is None:
        return value
    if value is not None:
        raise ConfigError(f"give {name} or its alias {alias}, not both")
    return alias_value


def check_histories(
    histories: Mapping[object, Sequence[object]] | None,
) -> dict[str, list[object]]:
    """``histories`` keyed by normalized user id; a string or scalar history is an error."""
    if histories is None:
        return {}
    if not isinstance(histories, Mapping):
        raise DataError(
            f"histories must map user ids to lists of item ids, got {type(histories).__name__}"
        )
    out: dict[str, list[object]] = {}
    for user, items in histories.items():
        # A string is a sequence too: "181" would be read as the items 1, 8, 1.
        if isinstance(items, str | bytes) or not isinstance(
            items, Sequence | np.ndarray | pd.Series | set | frozenset
        ):
            raise DataError(
                f"histories[{user!r}] must be a list of item ids, got {items!r}; "
                f"for one item write [{items!r}]"
            )
        out[str(normalize_ids(user, "histories user id")[0])] = list(items)
    return out


def rows_matrix(rows: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """A binary CSR with one row per array of item indices (duplicates counted once)."""
    matrix = sp.csr_matrix(
        (
            np.ones(sum(map(len, rows)), dtype=np.float32),
            np.concatenate(rows) if len(rows) else np.zeros(0, np.int64),
            np.concatenate([[0], np.cumsum([len(r) for r in rows])]),
        ),
        shape=(len(rows), n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def new_items(
    items: pd.DataFrame, text_columns: dict[str, str] | None, known: pd.Index
) -> tuple[np.ndarray, list[str], list[list[str]] | None]:
    """The ids, texts and genre bags of items to add, checked: a table with rows, ids that are
    distinct and not in ``known``, a title column.

    Raises:
        DataError: the first problem, with the ids concerned.
    """
    if not isinstance(items, pd.DataFrame) or "item_id" not in items.columns:
        raise DataError("items must be a pandas DataFrame with an item_id column")
    if len(items) == 0:
        raise DataError("items has no rows: nothing to add")
    ids = normalize_ids(items["item_id"].tolist(), "items.item_id")
    repeated = sorted({str(i) for i in ids[pd.Index(ids).duplicated()]})
    present = [str(i) for i in ids if i in known]
    if repeated or present:
        raise DataError(
            f"add_items takes new, distinct item ids; repeated: {repeated[:5]}, "
            f"already in the model: {present[:5]}"
        )
    columns = resolve_text_columns(items, text_columns)
    return ids, item_text(items, columns).tolist(), item_tags(items, columns.get("genres"))
