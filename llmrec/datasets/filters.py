"""RecBole's dataset filters: a minimum rating and iterative user/item k-core.

``DatasetFilters(min_rating=4, user_core=10, item_core=10)`` is RecBole's
``val_interval: {rating: "[4,inf)"}``, ``user_inter_num_interval: "[10,inf)"`` and
``item_inter_num_interval: "[10,inf)"``, applied in RecBole's order: rating first, then k-core.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from llmrec.datasets.dataset import Dataset
from llmrec.errors import DataError

logger = logging.getLogger(__name__)


class DatasetFilters(BaseModel):
    """Which interactions, users and items to keep. All None: no filtering.

    Attributes:
        min_rating: keep interactions rated at least this (RecBole ``val_interval`` on rating).
        user_core: keep users with at least this many interactions (RecBole
            ``user_inter_num_interval: "[k,inf)"``).
        item_core: keep items with at least this many interactions (RecBole
            ``item_inter_num_interval: "[k,inf)"``).
    """

    model_config = ConfigDict(extra="forbid")

    min_rating: float | None = Field(default=None, allow_inf_nan=False)
    user_core: int | None = Field(default=None, ge=1)
    item_core: int | None = Field(default=None, ge=1)

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in self.model_dump().values())

    def label(self) -> str:
        """The set options as ``name=value`` pairs, for messages."""
        return ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude_none=True).items())


@dataclass
class FilteredDataset(Dataset):
    """A :class:`Dataset` made by :func:`apply_filters`, which records what the filters did.

    Attributes:
        filters: the options, the counts before and after, what each step removed, and the
            catalogue users and items dropped for having no interactions at all.
    """

    filters: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        """The :meth:`Dataset.describe` counts plus the applied filters."""
        return {**super().describe(), "filters": self.filters}


def apply_filters(dataset: Dataset, filters: DatasetFilters | Mapping[str, Any] | None) -> Dataset:
    """Filter a dataset as RecBole does and re-index it.

    ``min_rating`` drops interactions rated below it; then ``user_core``/``item_core`` drop the
    users and items with fewer interactions, pass after pass, until every remaining user and item
    meets its bound (dropping an item can take a user below ``user_core`` and so on). The result
    keeps only the users and items that still have interactions, indexed contiguously from 0 in
    their original order, with their metadata rows.

    Args:
        dataset: the dataset to filter.
        filters: the options (a mapping is validated as :class:`DatasetFilters`).

    Returns:
        ``dataset`` itself when no filter is set; otherwise a new :class:`FilteredDataset` whose
        checksum covers the source checksum and the options, and whose ``filters`` attribute
        (also in ``describe()``) records the options and what each step removed.

    Raises:
        DataError: ``min_rating`` on a dataset without ratings, or filters that leave no
            interactions (the message names the options and what they removed).
        pydantic.ValidationError: a mapping that is not valid :class:`DatasetFilters`.
    """
    if filters is None:
        return dataset
    if not isinstance(filters, DatasetFilters):
        filters = DatasetFilters.model_validate(dict(filters))
    if not filters.active:
        return dataset

    inter = dataset.interactions
    keep = np.ones(len(inter), dtype=bool)
    steps: dict[str, dict[str, int]] = {}
    if filters.min_rating is not None:
        ratings = inter["rating"].to_numpy()
        # Dataset fills a missing rating column with 1.0, so a constant 1.0 means "no ratings".
        if np.all(ratings == 1.0):
            raise DataError(
                f"min_rating={filters.min_rating} needs ratings, but dataset {dataset.name!r} "
                "has none (every rating is 1.0, the value given to interactions without one)"
            )
        after = keep & (ratings >= filters.min_rating)
        steps["min_rating"] = _removed(inter, keep, after)
        keep = after
        if not keep.any():
            _raise_empty(dataset, filters, steps)
    if filters.user_core is not None or filters.item_core is not None:
        after, passes = _k_core(inter, keep, filters.user_core, filters.item_core)
        steps["k_core"] = {**_removed(inter, keep, after), "passes": passes}
        keep = after
        if not keep.any():
            _raise_empty(dataset, filters, steps)

    result = _rebuild(dataset, inter[keep], filters)
    # Catalogue rows that never had an interaction go too; counted apart so the steps' counts
    # and before - after add up.
    unused = {
        "users": dataset.n_users - inter["user_idx"].nunique(),
        "items": dataset.n_items - inter["item_idx"].nunique(),
    }
    result.filters = {
        **filters.model_dump(),
        "before": _counts(dataset),
        "after": _counts(result),
        "removed": steps,
        "removed_without_interactions": unused,
    }
    if isinstance(dataset, FilteredDataset):
        result.filters["previous"] = dataset.filters
    logger.info("%s", _summary(dataset.name, filters, steps, unused, result))
    return result


def _k_core(
    inter: pd.DataFrame, keep: np.ndarray, user_core: int | None, item_core: int | None
) -> tuple[np.ndarray, int]:
    """Iterate to the k-core: RecBole bans users and items together each pass, until none.

    The fixed point is the largest sub-table meeting both bounds, so the pass order does not
    change the result, only how many passes it takes.
    """
    users = inter["user_idx"].to_numpy()
    items = inter["item_idx"].to_numpy()
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    keep = keep.copy()
    passes = 0
    while True:
        ban = np.zeros(len(keep), dtype=bool)
        for ids, size, core in ((users, n_users, user_core), (items, n_items, item_core)):
            if core is None:
                continue
            counts = np.bincount(ids[keep], minlength=size)
            ban |= keep & (counts[ids] < core)
        if not ban.any():
            return keep, passes
        keep &= ~ban
        passes += 1


def _removed(inter: pd.DataFrame, before: np.ndarray, after: np.ndarray) -> dict[str, int]:
    """Interactions, and users and items left with none, that a step removed."""
    counts = {"interactions": int(before.sum() - after.sum())}
    for what, col in (("users", "user_idx"), ("items", "item_idx")):
        ids = inter[col].to_numpy()
        counts[what] = len(np.unique(ids[before])) - len(np.unique(ids[after]))
    return counts


def _counts(dataset: Dataset) -> dict[str, int]:
    return {
        "interactions": len(dataset.interactions),
        "users": dataset.n_users,
        "items": dataset.n_items,
    }


def _rebuild(dataset: Dataset, inter: pd.DataFrame, filters: DatasetFilters) -> FilteredDataset:
    """A new dataset of the kept rows; Dataset re-derives the index maps and index columns."""
    kept_users = pd.unique(inter["user_id"])
    kept_items = pd.unique(inter["item_id"])
    # Keeping catalogue order makes the new indices the old ones with the gaps closed.
    users = dataset.users[dataset.users["user_id"].isin(kept_users)]
    items = dataset.items[dataset.items["item_id"].isin(kept_items)]
    digest = hashlib.sha256(
        f"{dataset.checksum}\nfilters {filters.model_dump_json()}".encode()
    ).hexdigest()
    return FilteredDataset(
        dataset.name,
        inter.drop(columns=["user_idx", "item_idx"]).reset_index(drop=True),
        items.reset_index(drop=True),
        users.reset_index(drop=True),
        digest,
        dataset.source,
        dict(dataset.text_columns),
    )


def _raise_empty(
    dataset: Dataset, filters: DatasetFilters, steps: dict[str, dict[str, int]]
) -> None:
    done = "; ".join(
        f"{_step_label(step, filters)} removed {c['interactions']} interactions, "
        f"{c['users']} users and {c['items']} items"
        for step, c in steps.items()
    )
    raise DataError(
        f"filters {filters.label()} leave no interactions of dataset {dataset.name!r} "
        f"({len(dataset.interactions)} interactions, {dataset.n_users} users, "
        f"{dataset.n_items} items): {done}; relax {_step_label(next(reversed(steps)), filters)}"
    )


def _step_label(step: str, filters: DatasetFilters) -> str:
    if step == "min_rating":
        return f"min_rating={filters.min_rating}"
    parts = [f"{k}={getattr(filters, k)}" for k in ("user_core", "item_core")]
    return " and ".join(p for p in parts if not p.endswith("=None"))


def _summary(
    name: str,
    filters: DatasetFilters,
    steps: dict[str, dict[str, int]],
    unused: dict[str, int],
    result: Dataset,
) -> str:
    done = []
    for step, c in steps.items():
        passes = f" in {c['passes']} passes" if "passes" in c else ""
        done.append(
            f"{_step_label(step, filters)} removed {c['interactions']} interactions, "
            f"{c['users']} users, {c['items']} items{passes}"
        )
    if any(unused.values()):
        done.append(
            f"dropped {unused['users']} users and {unused['items']} items that had no interactions"
        )
    return (
        f"filtered {name!r}: {'; '.join(done)}; kept {len(result.interactions)} interactions, "
        f"{result.n_users} users, {result.n_items} items"
    )
