from __future__ import annotations

import numpy as np
import pytest

from llmrec.datasets import Dataset
from llmrec.encoders.describe import ItemDescriber
from llmrec.encoders.job import EncodeConfig, EncoderSpec, encode_dataset
from llmrec.errors import ConfigError
from tests.encoders.tiny_models import save_tiny_bert, save_tiny_llama

ITEMS = ["Heat (1995). Genres: Action, Crime, Thriller.", "Emma (1996). Genres: Comedy."]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("llama"))


def test_descriptions_are_deterministic_and_cached(llama, tmp_path):
    describer = ItemDescriber(llama, tmp_path / "cache.sqlite", max_new_tokens=8)
    first = describer.describe(ITEMS + ITEMS[:1], batch_size=2)
    assert len(first) == 3 and first[0] == first[2]
    # a random model writes noise: cleaning keeps it or drops it, and counts what it dropped
    assert sum(not d for d in first) == sum(describer.dropped.values())
    again = ItemDescriber(llama, tmp_path / "cache.sqlite", max_new_tokens=8)
    assert again.describe(ITEMS) == first[:2]
    assert again.generator.stats.generated == 0
    enriched = again.enrich(ITEMS)
    assert all(e.startswith(i) for e, i in zip(enriched, ITEMS, strict=True))


def test_bad_prompt_and_folder(llama, tmp_path):
    with pytest.raises(ConfigError, match=r"\{item\} slot"):
        ItemDescriber(llama, tmp_path / "c.sqlite", prompt="Describe:")
    with pytest.raises(ConfigError, match="not a model folder"):
        ItemDescriber(tmp_path, tmp_path / "c.sqlite")


def test_encode_items_with_descriptions(ml100k_small, tmp_path):
    """The shipped SmolLM2 describes a few real items; their vectors change, the rest don't."""
    items = ml100k_small.items.head(6)
    inter = ml100k_small.interactions
    inter = inter[inter["item_id"].isin(items["item_id"])][["user_id", "item_id", "rating"]]
    few = Dataset("few", inter, items, ml100k_small.users, "test")
    spec = EncoderSpec(model=str(save_tiny_bert(tmp_path / "bert")), max_length=64)
    cache = tmp_path / "cache.sqlite"
    plain = encode_dataset(few, EncodeConfig(encoder=spec), cache)
    described = encode_dataset(few, EncodeConfig(encoder=spec, describe_with="default"), cache)
    assert described.vectors.shape == plain.vectors.shape
    assert described.manifest["config"]["describe_with"] == "default"
    info = described.manifest["descriptions"]
    assert info["model"].startswith("SmolLM2")
    kept = 6 - sum(info["dropped"].values())
    assert kept >= 4
    changed = ~np.isclose(described.vectors, plain.vectors).all(axis=1)
    assert changed.sum() == kept
