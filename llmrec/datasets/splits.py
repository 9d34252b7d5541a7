"""Seeded, deterministic train/valid/test splits: ``random``, ``temporal``, ``chronological``,
``cold_items``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from llmrec.artifacts import write_artifact
from llmrec.datasets.dataset import Dataset
from llmrec.errors import SplitError
from llmrec.io import write_json

SPLITS = ("random", "temporal", "chronological", "cold_items")
PUBLIC_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


@dataclass
class Split:
    """A train/valid/test split of one dataset.

    Attributes:
        dataset: the dataset it splits.
        name: ``random``, ``temporal``, ``chronological`` or ``cold_items``.
        seed: the seed it was made with.
        train, valid, test: interaction rows (with ``user_idx``/``item_idx``).
        test_candidates: item indices that test ranks among (the held-out items of
            ``cold_items``), or None for the full catalogue.
    """

    dataset: Dataset
    name: str
    seed: int
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    test_candidates: np.ndarray | None = None

    def matrix(self, part: str, values: str = "ones") -> sp.csr_matrix:
        """CSR user x item matrix of ``train``, ``valid``, ``test`` or ``train+valid``.

        Args:
            part: which rows.
            values: ``ones`` (implicit feedback) or ``rating``.
        """
        frames = [getattr(self, p) for p in part.split("+")]
        return self.dataset.user_items(pd.concat(frames) if len(frames) > 1 else frames[0], values)

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {"split": self.name, "seed": self.seed}
        for part in ("train", "valid", "test"):
            frame = getattr(self, part)
            info[f"{part}_interactions"] = len(frame)
            info[f"{part}_users"] = int(frame["user_idx"].nunique())
        if self.test_candidates is not None:
            info["held_out_items"] = len(self.test_candidates)
        return info

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write ``train/valid/test.parquet`` and ``split.json`` to ``out`` as one artifact
        folder: all four from this split, or the previous ones (see
        :func:`llmrec.artifacts.write_artifact`).

        Args:
            out: the folder.
            overwrite: replace a folder that is not an llmrec split folder.

        Raises:
            ArtifactError: ``out`` holds files llmrec did not write (without ``overwrite``).
        """
        meta = {
            **self.describe(),
            "dataset": self.dataset.name,
            "dataset_checksum": self.dataset.checksum,
            "held_out_item_ids": (
                self.dataset.item_ids[self.test_candidates].tolist()
                if self.test_candidates is not None
                else None
            ),
        }

        def write(tmp: Path) -> None:
            for part in ("train", "valid", "test"):
                frame = getattr(self, part)[PUBLIC_COLUMNS].reset_index(drop=True)
                frame.to_parquet(tmp / f"{part}.parquet", index=False)
            write_json(tmp / "split.json", meta)

        tie = {"dataset_checksum": self.dataset.checksum, "seed": self.seed}
        return write_artifact(out, "split", write, overwrite=overwrite, meta=tie)


def split(
    dataset: Dataset,
    name: str = "random",
    seed: int = 42,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    cold_fraction: float = 0.1,
) -> Split:
    """Split a dataset.

    Args:
        dataset: the dataset.
        name: ``random`` (RecBole's per-user random order: ``eval_args`` order RO, group_by
            user, split RS ``ratios``; each user's interactions shuffled, then cut by
            ``ratios``; the same procedure, not RecBole's rows, as the RNG differs),
            ``temporal`` (per user, chronological leave-one-out: last item test, second-to-last
            valid), ``chronological`` (RecBole's order TO, group_by user, split RS ``ratios``:
            each user's interactions by timestamp, ties in file order, the first ``ratios[0]``
            train, the next ``ratios[1]`` valid, the latest test; RecBole sorts its min-max
            normalised float32 timestamps, which tie times about a second apart, so a few
            boundary rows can differ from RecBole's) or ``cold_items``
            (a seeded ``cold_fraction`` of items held out; all their interactions are test; the
            rest split per user into train/valid by ``ratios[:2]``). Part sizes per user follow
            RecBole's ``_calcu_split_ids``.
        seed: random seed; the same seed gives the same split (``temporal`` and
            ``chronological`` do not use it).
        ratios: train/valid/test ratios for ``random`` and ``chronological``.
        cold_fraction: share of items held out by ``cold_items``.

    Returns:
        The :class:`Split`.

    Raises:
        SplitError: unknown name, missing timestamps for ``temporal`` or ``chronological``, an
            empty part, or a user with test items but no training history.
    """
    inter = dataset.interactions
    candidates = None
    if name == "random":
        _check_ratios(ratios)
        part = _random_parts(inter, seed, ratios)
    elif name == "temporal":
        _require_timestamps(dataset, name)
        part = _temporal_parts(inter)
    elif name == "chronological":
        _check_ratios(ratios)
        _require_timestamps(dataset, name)
        part = _chronological_parts(inter, ratios)
    elif name == "cold_items":
        if not 0 < cold_fraction < 1:
            raise SplitError(f"cold_fraction must be in (0, 1), got {cold_fraction}")
        _check_ratios(ratios)
        seen_items = np.unique(inter["item_idx"].to_numpy())
        rng = np.random.default_rng(seed)
        n_cold = max(1, round(cold_fraction * len(seen_items)))
        candidates = np.sort(rng.choice(seen_items, size=n_cold, replace=False))
        is_cold = np.isin(inter["item_idx"].to_numpy(), candidates)
        warm = inter[~is_cold]
        part = pd.Series(2, index=inter.index, dtype=np.int8)
        train_valid = (ratios[0], ratios[1], 0.0)
        part.loc[warm.index] = _random_parts(warm, seed + 1, train_valid)
    else:
        raise SplitError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    train, valid, test = (inter[part.to_numpy() == k] for k in range(3))
    result = Split(dataset, name, seed, train, valid, test, test_candidates=candidates)
    _check(result)
    return result


def _check_ratios(ratios: tuple[float, float, float]) -> None:
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
        raise SplitError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")


def _require_timestamps(dataset: Dataset, name: str) -> None:
    missing = int(dataset.interactions["timestamp"].isna().sum())
    if missing:
        raise SplitError(
            f"{name} split of {dataset.name!r} needs timestamps; {missing} of "
            f"{len(dataset.interactions)} interactions have none"
        )


def _split_counts(total: int, ratios: tuple[float, ...]) -> list[int]:
    """RecBole's ``_calcu_split_ids``: floor each part, the rest to train, then give each small
    non-zero part one interaction while train keeps more than one."""
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def _random_parts(inter: pd.DataFrame, seed: int, ratios: tuple[float, ...]) -> pd.Series:
    rng = np.random.default_rng(seed)
    shuffled = inter.assign(_key=rng.random(len(inter)))
    shuffled = shuffled.sort_values(["user_idx", "_key"], kind="stable")
    return _assign_parts(shuffled, ratios).reindex(inter.index)


def _temporal_parts(inter: pd.DataFrame) -> pd.Series:
    ordered = inter.sort_values(["user_idx", "timestamp"], kind="stable")
    sizes = ordered.groupby("user_idx", sort=False).size()
    position = ordered.groupby("user_idx", sort=False).cumcount().to_numpy()
    from_end = np.repeat(sizes.to_numpy(), sizes.to_numpy()) - position  # 1 = last item
    # Users with fewer than 3 interactions keep the earliest in train; test before valid.
    size = np.repeat(sizes.to_numpy(), sizes.to_numpy())
    part = np.zeros(len(ordered), dtype=np.int8)
    part[(from_end == 1) & (size >= 2)] = 2
    part[(from_end == 2) & (size >= 3)] = 1
    return pd.Series(part, index=ordered.index).reindex(inter.index)


def _chronological_parts(inter: pd.DataFrame, ratios: tuple[float, ...]) -> pd.Series:
    # As RecBole: a stable sort of all rows by time, then a stable grouping by user, so equal
    # timestamps keep the file order (which Dataset preserves).
    by_time = np.argsort(inter["timestamp"].to_numpy(), kind="stable")
    users = inter["user_idx"].to_numpy()[by_time]
    order = by_time[np.argsort(users, kind="stable")]
    return _assign_parts(inter.iloc[order], ratios).reindex(inter.index)


def _assign_parts(ordered: pd.DataFrame, ratios: tuple[float, ...]) -> pd.Series:
    """Per user (rows grouped by user in order), label the first rows 0, the next 1, the rest 2."""
    sizes = ordered.groupby("user_idx", sort=False).size().to_numpy()
    position = ordered.groupby("user_idx", sort=False).cumcount().to_numpy()
    bounds = np.array([np.cumsum(_split_counts(int(n), ratios))[:2] for n in sizes]).reshape(-1, 2)
    bounds = np.repeat(bounds, sizes, axis=0)
    part = (position >= bounds[:, 0]).astype(np.int8) + (position >= bounds[:, 1]).astype(np.int8)
    return pd.Series(part, index=ordered.index)


def _check(result: Split) -> None:
    name = result.dataset.name
    for part in ("train", "test"):
        if getattr(result, part).empty:
            raise SplitError(f"{result.name} split of {name!r} left the {part} set empty")
    orphans = np.setdiff1d(result.test["user_idx"].unique(), result.train["user_idx"].unique())
    if len(orphans):
        ids = result.dataset.user_ids[orphans[:5]].tolist()
        raise SplitError(
            f"{result.name} split of {name!r} leaves {len(orphans)} test user(s) with no training "
            f"history, e.g. {ids}; filter users with few interactions first"
        )
