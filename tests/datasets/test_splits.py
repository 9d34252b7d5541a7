from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrec.datasets import Dataset, split
from llmrec.datasets.splits import _split_counts
from llmrec.errors import SplitError


def _pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame.user_idx, frame.item_idx, strict=True))


def _pairs_ids(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame.user_id, frame.item_id, strict=True))


@pytest.mark.parametrize("name", ["random", "temporal", "chronological", "cold_items"])
def test_partition_is_disjoint_complete_and_seeded(ml100k, name):
    a, b = split(ml100k, name, seed=7), split(ml100k, name, seed=7)
    parts = [_pairs(a.train), _pairs(a.valid), _pairs(a.test)]
    assert sum(map(len, parts)) == len(ml100k.interactions)
    assert set.union(*parts) == _pairs(ml100k.interactions)
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))


def test_random_is_per_user_8_1_1_and_seed_dependent(ml100k):
    s = split(ml100k, "random", seed=1)
    per_user = s.test.groupby("user_idx").size() / ml100k.interactions.groupby("user_idx").size()
    assert per_user.between(0.05, 0.15).all()
    assert len(s.train) / len(ml100k.interactions) == pytest.approx(0.8, abs=0.01)
    assert _pairs(s.test) != _pairs(split(ml100k, "random", seed=2).test)


def test_split_counts_match_recbole():
    assert _split_counts(20, (0.8, 0.1, 0.1)) == [16, 2, 2]
    assert _split_counts(2, (0.8, 0.1, 0.1)) == [1, 0, 1]
    assert _split_counts(5, (0.8, 0.1, 0.1)) == [3, 1, 1]


def test_temporal_holds_out_the_latest(ml100k):
    s = split(ml100k, "temporal")
    assert s.test.groupby("user_idx").size().eq(1).all()
    last_train = s.train.groupby("user_idx")["timestamp"].max()
    valid = s.valid.set_index("user_idx")["timestamp"]
    test = s.test.set_index("user_idx")["timestamp"]
    assert (last_train <= valid.reindex(last_train.index)).all()
    assert (valid <= test.reindex(valid.index)).all()


def test_chronological_is_per_user_8_1_1_in_time_order(ml100k):
    s = split(ml100k, "chronological", seed=1)
    last = {p: getattr(s, p).groupby("user_idx")["timestamp"] for p in ("train", "valid", "test")}
    assert (last["train"].max() <= last["valid"].min().reindex(last["train"].max().index)).all()
    valid_max = last["valid"].max()
    assert (valid_max <= last["test"].min().reindex(valid_max.index)).all()
    sizes = ml100k.interactions.groupby("user_idx").size()
    expected = pd.DataFrame(
        [_split_counts(int(n), (0.8, 0.1, 0.1)) for n in sizes], index=sizes.index
    )
    for k, part in enumerate(("train", "valid", "test")):
        got = getattr(s, part).groupby("user_idx").size().reindex(sizes.index, fill_value=0)
        assert (got == expected[k]).all(), part
    # Time order, not the seed, decides the split.
    other = split(ml100k, "chronological", seed=2)
    pd.testing.assert_frame_equal(s.test, other.test)


def test_chronological_by_hand():
    # u1: ten items; i and j tie at t=8 across the train/valid boundary, so file order decides.
    frame = pd.DataFrame(
        {
            "user_id": ["u1"] * 10 + ["u2", "u2"],
            "item_id": [*"abcdefghij", "x", "y"],
            "timestamp": [10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 20, 5],
        }
    )
    s = split(Dataset("hand", frame, None, None, "x"), "chronological")
    assert _pairs_ids(s.train) == {("u1", i) for i in "bcdefghi"} | {("u2", "y")}
    assert _pairs_ids(s.valid) == {("u1", "j")}
    # RecBole's counts for 2 interactions are [1, 0, 1]: the earliest trains, the latest tests.
    assert _pairs_ids(s.test) == {("u1", "a"), ("u2", "x")}


def test_chronological_needs_timestamps_and_valid_ratios(ml100k):
    frame = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"]})
    data = Dataset("no-time", frame, None, None, "x")
    with pytest.raises(SplitError, match="chronological split of 'no-time' needs timestamps; 3 of"):
        split(data, "chronological")
    with pytest.raises(SplitError, match="summing to 1"):
        split(ml100k, "chronological", ratios=(0.9, 0.2, 0.1))


def test_cold_items_never_in_train_or_valid(ml100k):
    s = split(ml100k, "cold_items", seed=3)
    cold = set(s.test_candidates.tolist())
    assert len(cold) == round(0.1 * 1682)
    assert not cold & set(s.train.item_idx) and not cold & set(s.valid.item_idx)
    assert set(s.test.item_idx) == cold
    other = split(ml100k, "cold_items", seed=4)
    assert set(other.test_candidates.tolist()) != cold


def test_temporal_needs_timestamps():
    frame = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"]})
    data = Dataset("no-time", frame, None, None, "x")
    with pytest.raises(SplitError, match="needs timestamps"):
        split(data, "temporal")


def test_user_left_without_history_is_an_error():
    frame = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2"], "item_id": ["a", "b", "c", "z"]})
    data = Dataset("tiny", frame, None, None, "x")
    with pytest.raises(SplitError, match=r"no training history, e.g. \['u2'\]"):
        split(data, "cold_items", seed=0, cold_fraction=0.25)


def test_unknown_split_and_bad_ratios(ml100k):
    with pytest.raises(SplitError, match="unknown split 'weird'; valid splits: random"):
        split(ml100k, "weird")
    with pytest.raises(SplitError, match="summing to 1"):
        split(ml100k, "random", ratios=(0.5, 0.1, 0.1))


def test_save_writes_parquet_and_meta(ml100k, tmp_path):
    s = split(ml100k, "cold_items")
    s.save(tmp_path)
    test = pd.read_parquet(tmp_path / "test.parquet")
    assert list(test.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(test) == len(s.test)
    meta = pd.read_json(tmp_path / "split.json", typ="series")
    assert meta["dataset_checksum"] == ml100k.checksum
    assert sorted(meta["held_out_item_ids"]) == sorted(ml100k.item_ids[s.test_candidates])
    assert not list(tmp_path.glob(".*tmp"))


def test_matrix_parts(ml100k):
    s = split(ml100k, "random")
    both = s.matrix("train+valid")
    assert both.nnz == len(s.train) + len(s.valid)
    assert np.allclose(both.toarray(), s.matrix("train").toarray() + s.matrix("valid").toarray())


def test_interrupted_save_keeps_the_whole_previous_split(ml100k, tmp_path, monkeypatch):
    folder = split(ml100k, "random", seed=1).save(tmp_path / "split")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    written = []

    def to_parquet(frame, path, **kwargs):
        if written:
            raise OSError("killed after the first part")
        written.append(path)
        frame.to_csv(path)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    with pytest.raises(OSError, match="killed"):
        split(ml100k, "random", seed=2).save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]
