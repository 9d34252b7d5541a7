from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from llmrec.datasets import Dataset, load
from llmrec.encoders.job import EncoderSpec
from tests.encoders.tiny_models import save_tiny_bert

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    return load("ml-100k")


@pytest.fixture(scope="session")
def ml100k_small(ml100k: Dataset) -> Dataset:
    """The first 150 users of ml-100k with their items: small enough for model training tests."""
    users = sorted(ml100k.interactions["user_id"].unique(), key=int)[:150]
    inter = ml100k.interactions[ml100k.interactions["user_id"].isin(users)]
    items = ml100k.items[ml100k.items["item_id"].isin(inter["item_id"])]
    public = inter[["user_id", "item_id", "rating", "timestamp"]]
    return Dataset("ml-100k-small", public, items, pd.DataFrame(columns=["user_id"]), "test")


def write_atomic(folder: Path, name: str, inter: str, item: str | None = None) -> Path:
    """Write a small atomic dataset; ``inter``/``item`` are the file texts."""
    folder = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.inter").write_text(inter)
    if item is not None:
        (folder / f"{name}.item").write_text(item)
    return folder


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory) -> EncoderSpec:
    folder = save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
    return EncoderSpec(model=str(folder), max_length=64)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One embedding cache for the tests that encode real item texts: MiniLM encodes each
    catalogue once per session instead of once per test."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def fitted(ml100k_small, shared_cache):
    """A two-stage Recommender fitted on ml100k_small's random train, with the split."""
    from llmrec import Recommender
    from llmrec.datasets import split
    from tests.rankers.test_two_stage import FAST

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMREC_CACHE_DIR", str(shared_cache))
        data = split(ml100k_small, "random", 42)
        rec = Recommender(**FAST).fit(
            data.train, items=ml100k_small.items, users=ml100k_small.users
        )
        yield rec, data


def reseal(folder: Path) -> None:
    """Rewrite a folder's ``artifact.json`` hashes after a test changed its parts: the damage a
    checksum cannot catch (a part rewritten consistently), left to the loaders' own checks."""
    import json

    from llmrec.artifacts import part_record

    file = folder / "artifact.json"
    manifest = json.loads(file.read_text())
    manifest["parts"] = {name: part_record(folder / name) for name in manifest["parts"]}
    file.write_text(json.dumps(manifest))
