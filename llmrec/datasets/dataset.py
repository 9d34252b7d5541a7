"""The in-memory dataset: interactions, item and user tables, contiguous index maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from llmrec.errors import ConfigError, DataError

REQUIRED = ("user_id", "item_id")


@dataclass
class Dataset:
    """A recommendation dataset.

    Ids are strings (RecBole tokens). ``user_ids``/``item_ids`` are the index maps: position ``i``
    of ``item_ids`` is the item with index ``i`` in every matrix and score array. The item catalogue
    is every item of the items table plus any item that only appears in interactions.

    Attributes:
        name: dataset name.
        interactions: ``user_id``, ``item_id``, ``rating``, ``timestamp`` plus the integer
            ``user_idx`` and ``item_idx`` columns.
        items: ``item_id`` plus metadata columns, one row per catalogue item, in index order.
        users: ``user_id`` plus attributes (may have no attribute columns).
        checksum: SHA-256 of the source files (or of the interaction table).
        source: where it was read from.
        text_columns: item columns for the text roles (title, year, genres); see ``item_text``.
        metadata: how the dataset was derived, e.g. ``enrichment`` (the item table joined into
            the items and its match report); shown by ``describe()``.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    checksum: str
    source: str = ""
    text_columns: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    user_ids: np.ndarray = field(init=False, repr=False)
    item_ids: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        inter = self.interactions
        missing = [c for c in REQUIRED if c not in inter.columns]
        if missing:
            raise DataError(
                f"dataset {self.name!r}: interactions lack column(s) {missing}; "
                f"found {list(inter.columns)}"
            )
        if inter.empty:
            raise DataError(f"dataset {self.name!r}: the interactions table is empty")
        inter = inter.copy()
        for col in REQUIRED:
            inter[col] = normalize_ids(inter[col], f"dataset {self.name!r}: interactions {col!r}")
        if "rating" not in inter.columns:
            inter["rating"] = 1.0
        if "timestamp" not in inter.columns:
            inter["timestamp"] = np.nan
        for col in ("rating", "timestamp"):
            try:
                inter[col] = inter[col].astype("float64")
            except (TypeError, ValueError) as exc:
                raise DataError(f"dataset {self.name!r}: column {col!r} is not numeric") from exc
        if inter["rating"].isna().any():
            raise DataError(f"dataset {self.name!r}: column 'rating' has missing values")
        for col in ("rating", "timestamp"):
            # inf passes every comparison with a threshold and then poisons sums and means
            infinite = np.isinf(inter[col].to_numpy())
            if infinite.any():
                row = int(np.flatnonzero(infinite)[0])
                raise DataError(
                    f"dataset {self.name!r}: column {col!r} row {row} is {inter[col].iloc[row]}; "
                    f"values must be finite"
                )

        items = self._catalogue(self.items, inter["item_id"], "item_id")
        users = self._catalogue(self.users, inter["user_id"], "user_id")
        self.item_ids = items["item_id"].to_numpy(dtype=object)
        self.user_ids = users["user_id"].to_numpy(dtype=object)
        self._item_index = pd.Index(self.item_ids)
        self._user_index = pd.Index(self.user_ids)
        inter["user_idx"] = self._user_index.get_indexer(inter["user_id"]).astype(np.int64)
        inter["item_idx"] = self._item_index.get_indexer(inter["item_id"]).astype(np.int64)
        # One row per (user, item): the latest interaction wins, as a re-rating replaces a rating.
        inter = inter.sort_values("timestamp", kind="stable")
        inter = inter.drop_duplicates(["user_idx", "item_idx"], keep="last").sort_index()
        self.interactions = inter.reset_index(drop=True)
        self.items = items
        self.users = users

    @staticmethod
    def _catalogue(table: pd.DataFrame, seen: pd.Series, key: str) -> pd.DataFrame:
        table = table.copy() if table is not None else pd.DataFrame(columns=[key])
        if key not in table.columns:
            raise DataError(
                f"{key[:4]} table lacks the {key!r} column; found {list(table.columns)}"
            )
        table[key] = normalize_ids(table[key], f"{key[:4]} table {key!r}")
        table = table.drop_duplicates(key, keep="first")
        extra = pd.unique(seen[~seen.isin(table[key])])
        if len(extra):
            table = pd.concat([table, pd.DataFrame({key: extra})], ignore_index=True)
        return table.reset_index(drop=True)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, ids: object) -> np.ndarray:
        """Map user ids to indices; raises DataError naming unknown ids."""
        return _lookup(self._user_index, ids, "user", self.name)

    def item_index(self, ids: object) -> np.ndarray:
        """Map item ids to indices; raises DataError naming unknown ids."""
        return _lookup(self._item_index, ids, "item", self.name)

    def user_items(
        self, interactions: pd.DataFrame | None = None, values: str = "ones"
    ) -> sp.csr_matrix:
        """A CSR user x item matrix (all users, all items) of ``interactions``.

        Args:
            interactions: rows with ``user_idx``/``item_idx``; the whole dataset when None.
            values: ``"ones"`` for implicit feedback or ``"rating"``.

        Returns:
            float32 CSR of shape ``(n_users, n_items)``.
        """
        frame = self.interactions if interactions is None else interactions
        return to_csr(frame, self.n_users, self.n_items, values)

    def describe(self) -> dict[str, object]:
        """Counts and density, for ``llmrec data describe``."""
        inter = self.interactions
        per_user = inter.groupby("user_idx").size()
        return {
            "name": self.name,
            "source": self.source,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(inter),
            "density": len(inter) / (self.n_users * self.n_items),
            "items_with_interactions": int(inter["item_idx"].nunique()),
            "interactions_per_user_min": int(per_user.min()),
            "interactions_per_user_median": float(per_user.median()),
            "rating_min": float(inter["rating"].min()),
            "rating_max": float(inter["rating"].max()),
            "has_timestamps": bool(inter["timestamp"].notna().all()),
            "item_columns": [c for c in self.items.columns if c != "item_id"],
            "user_columns": [c for c in self.users.columns if c != "user_id"],
            "checksum": self.checksum,
            **self.metadata,
        }


def to_csr(
    frame: pd.DataFrame,
    n_users: int,
    n_items: int,
    values: str = "ones",
    dtype: type = np.float32,
) -> sp.csr_matrix:
    """Build a CSR matrix from ``user_idx``/``item_idx`` columns.

    Args:
        values: ``ones``, or a numeric column of ``frame`` (``rating``, ``timestamp``).
        dtype: the matrix dtype (float64 keeps timestamps exact).
    """
    if values != "ones" and values not in frame.columns:
        raise ConfigError(f"values must be 'ones' or a column of {list(frame.columns)}: {values!r}")
    data = (
        np.ones(len(frame), dtype=dtype)
        if values == "ones"
        else frame[values].to_numpy(dtype=dtype)
    )
    rows = frame["user_idx"].to_numpy()
    cols = frame["item_idx"].to_numpy()
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_users, n_items), dtype=dtype)
    matrix.sum_duplicates()
    return matrix


def normalize_ids(values: object, what: str = "ids") -> np.ndarray:
    """Ids as the strings every reader and lookup uses.

    Integral numbers lose their ``.0`` (a float column from Parquet, or a CSV mixing ``196`` and
    ``196.0``, gives ``"196"``), surrounding whitespace is stripped, other values become their
    ``str``.

    Args:
        values: one id or a sequence (list, array, Series) of them.
        what: where they come from, for the error message.

    Returns:
        An object array of ``str``.

    Raises:
        DataError: an id that is None, NaN or empty (naming its row).
    """
    array = np.atleast_1d(np.asarray(values, dtype=object))
    if array.ndim != 1:
        raise DataError(f"{what}: ids must be one-dimensional, got shape {array.shape}")
    series = pd.Series(array, dtype=object)
    kind = pd.api.types.infer_dtype(series, skipna=False)
    if kind == "string":
        out = series.str.strip()
    elif kind == "integer":
        out = series.astype(str)
    else:
        out = series.map(_id_text)
    bad = out.isna().to_numpy() | (out.to_numpy() == "")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{what}: row {row} has an empty or missing id ({array[row]!r}); "
            f"{int(bad.sum())} such row(s)"
        )
    return out.to_numpy(dtype=object)


def _id_text(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip()


def _lookup(index: pd.Index, ids: object, what: str, dataset: str) -> np.ndarray:
    values = normalize_ids(ids, f"{what} ids").astype(str)
    positions = index.get_indexer(values)
    unknown = values[positions < 0]
    if len(unknown):
        shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
        raise DataError(f"{len(unknown)} unknown {what} id(s) in dataset {dataset!r}: {shown}")
    return positions.astype(np.int64)
