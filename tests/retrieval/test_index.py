from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from llmrec.retrieval import ItemIndex, candidate_recall


def clustered(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, d))
    return (centers[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, d))).astype(np.float32)


ITEMS = clustered(2000)
QUERIES = clustered(50, seed=1)


def exact_top(queries: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(q @ unit.T), axis=1, kind="stable")[:, :k]


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth, strict=True)])
    )


def test_flat_is_exact_cosine():
    index = ItemIndex.build(ITEMS, spec="Flat")
    ids, scores = index.search(QUERIES, 10)
    assert ids.shape == scores.shape == (50, 10) and ids.dtype == np.int64
    assert overlap(ids, exact_top(QUERIES, ITEMS, 10)) > 0.99
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_item_ids_are_mapped():
    labels = np.arange(len(ITEMS)) * 10 + 7
    ids, _ = ItemIndex.build(ITEMS, labels).search(QUERIES, 5)
    plain, _ = ItemIndex.build(ITEMS).search(QUERIES, 5)
    np.testing.assert_array_equal(ids, plain * 10 + 7)


@pytest.mark.parametrize(
    ("spec", "params", "floor"),
    [
        ("IVF32,Flat", {"nprobe": 8}, 0.9),
        ("HNSW16", {"efSearch": 128}, 0.9),
        ("IVF32,PQ8x4", {"nprobe": 8}, 0.4),
    ],
)
def test_approximate_specs_train_and_recall(spec, params, floor):
    index = ItemIndex.build(ITEMS, spec=spec, seed=3)
    index.set_search_params(**params)
    ids, _ = index.search(QUERIES, 20)
    recall = overlap(ids, exact_top(QUERIES, ITEMS, 20))
    assert recall >= floor, recall
    again = ItemIndex.build(ITEMS, spec=spec, seed=3)
    again.set_search_params(**params)
    np.testing.assert_array_equal(again.search(QUERIES, 20)[0], ids)  # seeded training


def test_exclude_filters_and_still_returns_k():
    index = ItemIndex.build(ITEMS)
    top, _ = index.search(QUERIES, 30)
    exclude = [row[:25] for row in top]  # the best 25 of each query are "seen"
    ids, _ = index.search(QUERIES, 10, exclude=exclude)
    assert (ids >= 0).all()
    for row, seen in zip(ids, exclude, strict=True):
        assert not set(row) & set(seen)
    np.testing.assert_array_equal(ids[:, :5], top[:, 25:30])
    matrix = sp.csr_matrix(
        (np.ones(50 * 25), (np.repeat(np.arange(50), 25), np.concatenate(exclude))),
        shape=(50, len(ITEMS)),
    )
    np.testing.assert_array_equal(index.search(QUERIES, 10, exclude=matrix)[0], ids)


def test_heavy_user_is_requeried():
    index = ItemIndex.build(ITEMS, spec="HNSW16")
    exclude = [np.arange(1500)] + [[]] * 49  # one user saw 75% of the catalogue
    ids, _ = index.search(QUERIES, 20, exclude=exclude)
    assert (ids[0] >= 1500).all() and (ids >= 0).all()


def test_everything_excluded_pads_with_minus_one():
    index = ItemIndex.build(ITEMS[:5])
    ids, scores = index.search(QUERIES[:1], 4, exclude=[[0, 1, 2]])
    assert sorted(ids[0][:2]) == [3, 4] and (ids[0][2:] == -1).all()
    assert np.isneginf(scores[0][2:]).all()


@pytest.mark.parametrize("spec", ["Flat", "HNSW16"])
def test_add_and_remove(spec):
    index = ItemIndex.build(ITEMS[:1000], spec=spec)
    index.add(ITEMS[1000:], np.arange(1000, 2000))
    assert len(index) == 2000
    best, _ = index.search(ITEMS[1500:1501], 1)
    assert best[0, 0] == 1500
    assert index.remove([1500]) == 1 and len(index) == 1999
    after, _ = index.search(ITEMS[1500:1501], 5)
    assert 1500 not in after[0] and (after >= 0).all()
    with pytest.raises(ValueError, match="already in the index"):
        index.add(ITEMS[:1], [0])
    with pytest.raises(ValueError, match="unknown item id"):
        index.remove([99999])


def test_save_load_round_trip(tmp_path):
    index = ItemIndex.build(ITEMS, spec="HNSW16", fingerprint="abc")
    index.set_search_params(efSearch=64)
    index.remove([3, 4])
    folder = index.save(tmp_path / "index")
    loaded = ItemIndex.load(folder, fingerprint="abc", dimension=16)
    assert len(loaded) == len(ITEMS) - 2 and loaded.search_params == {"efSearch": 64}
    np.testing.assert_array_equal(loaded.search(QUERIES, 10)[0], index.search(QUERIES, 10)[0])
    with pytest.raises(ValueError, match="embedding model 'abc', not 'other'"):
        ItemIndex.load(folder, fingerprint="other")
    with pytest.raises(ValueError, match="16-d vectors, not 384-d"):
        ItemIndex.load(folder, dimension=384)
    (folder / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(ValueError, match=r"part index\.faiss does not match its SHA-256"):
        ItemIndex.load(folder)
    (folder / "artifact.json").unlink()  # a folder from before manifests
    with pytest.raises(ValueError, match="corrupt or unreadable"):
        ItemIndex.load(folder)
    with pytest.raises(ValueError, match="not an index folder"):
        ItemIndex.load(tmp_path / "missing")


def test_bad_input_names_the_problem():
    index = ItemIndex.build(ITEMS[:100])
    with pytest.raises(ValueError, match=r"shape \(2, 8\); this index holds 16-d"):
        index.search(np.ones((2, 8), dtype=np.float32), 5)
    queries = QUERIES[:3].copy()
    queries[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"contain NaN or inf, e.g. rows \[1\]"):
        index.search(queries, 5)
    with pytest.raises(ValueError, match="catalog size 100, got 101"):
        index.search(QUERIES, 101)
    with pytest.raises(ValueError, match=r"unknown item id\(s\) in exclude: \[555\]"):
        index.search(QUERIES[:1], 5, exclude=[[1, 555]])
    with pytest.raises(ValueError, match="exclude has 2 rows for 1 queries"):
        index.search(QUERIES[:1], 5, exclude=[[1], [2]])
    with pytest.raises(ValueError, match="cannot build index spec 'Nonsense7'"):
        ItemIndex("Nonsense7", 16)
    with pytest.raises(ValueError, match="no search parameter 'nprobe'"):
        index.set_search_params(nprobe=4)
    with pytest.raises(ValueError, match="duplicate item ids"):
        ItemIndex("Flat", 16).add(ITEMS[:2], [1, 1])
    bad = ITEMS[:3].copy()
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="item vectors contain NaN"):
        ItemIndex.build(bad)


def test_candidate_recall_hand_computed():
    items = np.eye(4, dtype=np.float32)
    index = ItemIndex.build(items)
    users = np.array([[1, 0.5, 0, 0], [0, 0, 1, 0.1]], dtype=np.float32)
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 0, 1]], dtype=np.float32))
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    # user 0 (item 0 excluded): ranking 1, then 2/3 tie; user 1: 2, 3
    recall = candidate_recall(index, users, truth, exclude, sizes=(1, 2, 4))
    assert recall[1] == pytest.approx((0.5 + 0.0) / 2)
    assert recall[2] == pytest.approx((0.5 + 1.0) / 2) or recall[2] == pytest.approx(1.0)
    assert recall[4] == pytest.approx(1.0)


def test_search_parameters_must_be_positive(tmp_path):
    index = ItemIndex.build(ITEMS[:300], spec="HNSW16")
    for bad in (-5, 0, 2.5, True):
        with pytest.raises(ValueError, match="efSearch must be an integer >= 1"):
            index.set_search_params(efSearch=bad)
    folder = index.save(tmp_path / "ix")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(
        json.dumps({**manifest, "search_params": {"efSearch": -5}})
    )
    (folder / "artifact.json").unlink()
    with pytest.raises(ValueError, match="efSearch must be an integer >= 1"):
        ItemIndex.load(folder)


def test_manifest_lacking_keys_is_named(tmp_path):
    import json

    from tests.conftest import reseal

    folder = ItemIndex.build(ITEMS, spec="Flat").save(tmp_path / "index")
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("fingerprint", "search_params"):
        broken = {k: v for k, v in manifest.items() if k != key}
        (folder / "manifest.json").write_text(json.dumps(broken))
        reseal(folder)
        with pytest.raises(ValueError, match=rf"manifest\.json lacks \['{key}'\]"):
            ItemIndex.load(folder)
