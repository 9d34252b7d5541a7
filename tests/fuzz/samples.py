"""Small artifacts of every kind, written and read back by version, for the fuzz tests.

Run as ``python -m tests.fuzz.samples KIND TARGET VERSION [SOURCES...]`` it is the writer that
the kill test interrupts: it makes version ``VERSION`` of a ``KIND`` artifact, prints ``ready``
(so that a timed kill lands inside the save, not in the imports), then saves it at ``TARGET``.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.encoders.tiny_models import WORDS

KINDS = ("thing", "index", "embeddings", "split", "model")


def tiny_interactions(n_users: int = 40, n_items: int = 30, per_user: int = 6, seed: int = 0):
    """A small deterministic dataset: ``(train, items)`` with string ids ``u0``, ``i0``..."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        for item in rng.choice(n_items, per_user, replace=False):
            rows.append((f"u{user}", f"i{item}", float(rng.integers(1, 6)), float(len(rows))))
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    titles = [" ".join(rng.choice(WORDS, 3)) for _ in range(n_items)]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": titles})
    return train, items


def tiny_config(text_model: str, seed: int) -> dict[str, Any]:
    """A two-stage config that trains in about a second on :func:`tiny_interactions`."""
    return {
        "seed": seed,
        "candidates": 10,
        "epochs": 3,
        "retriever": {
            "epochs": 3,
            "batch_size": 64,
            "dim": 8,
            "learning_rate": 0.01,
            "text_model": text_model,
            "seed": seed,
        },
        "cf": {"factors": 4, "iterations": 2, "seed": seed},
        "ease": None,
    }


def prepare(kind: str, version: int, sources: list[str] | None = None) -> Callable[[Path], Any]:
    """Make version ``version`` of a ``kind`` artifact; returns its save function (a model is
    loaded from ``sources[version % 2]``, whose seeds tell the versions apart)."""
    if kind == "thing":
        from llmrec.artifacts import write_artifact

        def parts(tmp: Path) -> None:
            (tmp / "sub").mkdir()
            for n in range(12):  # slow enough for a timed kill to land inside the write
                (tmp / "sub" / f"p{n}.bin").write_bytes(f"{version}:{n}".encode() * 500)
                time.sleep(0.002)
            (tmp / "v.txt").write_text(str(version))

        return lambda target: write_artifact(target, "thing", parts)
    import numpy as np  # here, not above: the "thing" writer starts faster without them
    import pandas as pd

    if kind == "index":
        from llmrec.retrieval import ItemIndex

        vectors = np.random.default_rng(version).standard_normal((50, 8)).astype(np.float32)
        return ItemIndex.build(vectors, spec="HNSW8", fingerprint=str(version)).save
    if kind == "embeddings":
        from llmrec.encoders.job import EmbeddingSet

        vectors = np.random.default_rng(version).standard_normal((30, 8)).astype(np.float32)
        ids = np.array([f"item-{n}" for n in range(30)], dtype=object)
        manifest = {"what": "items", "count": 30, "dimension": 8, "version": version}
        manifest.update(fingerprint="encoder", dataset="tiny")
        return EmbeddingSet(ids, vectors, manifest, np.zeros(30, dtype=bool)).save
    if kind == "split":
        import pyarrow.parquet  # noqa: F401  (imported by the save otherwise, after "ready")

        from llmrec.datasets import Dataset, split

        train, items = tiny_interactions()
        data = Dataset("tiny", train, items, pd.DataFrame(columns=["user_id"]), "sum")
        return split(data, "random", seed=version).save
    if kind == "model":
        import safetensors.numpy  # noqa: F401  (imported by the save otherwise)

        from llmrec import Recommender

        assert sources is not None
        return Recommender.load(sources[version % 2], check_encoder=False).save
    raise ValueError(f"unknown kind {kind!r}")


def write(kind: str, target: Path, version: int, sources: list[str] | None = None) -> None:
    """Save version ``version`` of a ``kind`` artifact at ``target``."""
    prepare(kind, version, sources)(target)


def read(kind: str, target: Path, sources: list[str] | None = None) -> int:
    """The version of the ``kind`` artifact at ``target``, through llmrec's loaders (which
    recover an interrupted save and check every part)."""
    import pandas as pd

    if kind == "thing":
        from llmrec.artifacts import open_artifact

        assert open_artifact(target, "thing") is not None
        return int((target / "v.txt").read_text())
    if kind == "index":
        from llmrec.retrieval import ItemIndex

        return int(ItemIndex.load(target).fingerprint)
    if kind == "embeddings":
        from llmrec.encoders.job import EmbeddingSet

        return int(EmbeddingSet.load(target).manifest["version"])
    if kind == "split":
        from llmrec.artifacts import open_artifact

        assert open_artifact(target, "split") is not None
        seed = json.loads((target / "split.json").read_text())["seed"]
        for part in ("train", "valid", "test"):
            assert len(pd.read_parquet(target / f"{part}.parquet")) > 0
        return int(seed)
    if kind == "model":
        from llmrec import Recommender

        seed = Recommender.load(target, check_encoder=False).config.seed
        assert sources is not None
        return [_seed(s) for s in sources].index(seed)  # which source it was saved from
    raise ValueError(f"unknown kind {kind!r}")


def marker(kind: str, version: int) -> int:
    """What :func:`read` returns for an artifact :func:`write` saved as ``version``."""
    return version % 2 if kind == "model" else version


@functools.lru_cache
def _seed(source: str) -> int:
    from llmrec import Recommender

    return Recommender.load(source, check_encoder=False).config.seed


if __name__ == "__main__":
    kind, target, version = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    sources = sys.argv[4:] or None
    save = prepare(kind, version, sources)
    print("ready", flush=True)  # a timed kill lands in the save, not in the imports
    save(target)
