from __future__ import annotations

import numpy as np
import pytest

from llmrec.encoders.describe import ItemDescriber
from llmrec.encoders.job import EncodeConfig, EncoderSpec, encode_dataset
from llmrec.errors import ConfigError
from tests.encoders.tiny_models import save_tiny_bert, save_tiny_llama

ITEMS = ["Heat (1995). Genres: Action, Crime, Thriller.", "Emma (1996). Genres: Comedy."]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("llama"))


def test_descriptions_are_deterministic_and_cached(llama, tmp_path):
    describer = ItemDescriber(llama, tmp_path / "cache.sqlite", max_new_tokens=5)
    first = describer.describe(ITEMS + ITEMS[:1], batch_size=2)
    assert len(first) == 3 and first[0] == first[2]
    assert all(first) and all(len(d.split()) <= 5 for d in first)

    def fail(items):
        raise AssertionError("a cached description was generated again")

    describer._generate = fail
    assert describer.describe(ITEMS) == first[:2]
    again = ItemDescriber(llama, tmp_path / "cache.sqlite", max_new_tokens=5)
    assert again.describe(ITEMS) == first[:2]
    enriched = again.enrich(ITEMS)
    assert enriched[0].startswith(ITEMS[0])


def test_bad_prompt_and_folder(llama, tmp_path):
    with pytest.raises(ConfigError, match=r"\{item\} slot"):
        ItemDescriber(llama, tmp_path / "c.sqlite", prompt="Describe:")
    with pytest.raises(ConfigError, match="not a model folder"):
        ItemDescriber(tmp_path, tmp_path / "c.sqlite")


def test_encode_items_with_descriptions(ml100k_small, llama, tmp_path):
    spec = EncoderSpec(model=str(save_tiny_bert(tmp_path / "bert")), max_length=64)
    cache = tmp_path / "cache.sqlite"
    plain = encode_dataset(ml100k_small, EncodeConfig(encoder=spec), cache)
    described = encode_dataset(
        ml100k_small, EncodeConfig(encoder=spec, describe_with=str(llama)), cache
    )
    assert described.vectors.shape == plain.vectors.shape
    assert described.manifest["config"]["describe_with"] == str(llama)
    assert not np.allclose(described.vectors, plain.vectors)
