"""An index folder is readable by plain FAISS: the manifest names the id map, and a search
through ``faiss.read_index`` finds what ``ItemIndex.search`` finds."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from llmrec.errors import DataError
from llmrec.retrieval import ItemIndex


@pytest.mark.parametrize("spec", ["Flat", "HNSW16"])
def test_plain_faiss_reads_an_index_folder(tmp_path, spec):
    vectors = np.random.default_rng(1).normal(size=(200, 16)).astype(np.float32)
    ours = ItemIndex.build(vectors, spec=spec)
    names = [f"item-{i}" for i in range(200)]
    folder = ours.save(tmp_path / "idx", item_ids=names)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["item_ids"] == "item_ids.npy" and manifest["normalize"] is True
    index = faiss.read_index(str(folder / "index.faiss"))
    id_map = np.load(folder / manifest["item_ids"])  # no allow_pickle needed
    query = vectors[:3] / np.linalg.norm(vectors[:3], axis=1, keepdims=True)
    _, plain = index.search(query, 10)
    expected, _ = ours.search(vectors[:3], 10)
    assert (plain == expected).all()
    assert list(id_map[plain[:, 0]]) == ["item-0", "item-1", "item-2"]


def test_item_ids_must_cover_the_index(tmp_path):
    index = ItemIndex.build(np.eye(4, dtype=np.float32), spec="Flat")
    with pytest.raises(DataError, match="3 item_ids for an index whose largest faiss id is 3"):
        index.save(tmp_path / "idx", item_ids=["a", "b", "c"])
    assert not (tmp_path / "idx").exists()
    folder = index.save(tmp_path / "plain")
    assert json.loads((folder / "manifest.json").read_text())["item_ids"] is None
