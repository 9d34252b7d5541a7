from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from llmrec.encoders import TransformerEncoder, default_model_path
from llmrec.errors import ConfigError
from tests.encoders.tiny_models import save_tiny_bert, save_tiny_llama

TEXTS = [
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    "Heat (1995). Genres: Action, Crime, Thriller.",
    "A long description of a film that goes on " * 6,
]


@pytest.fixture(scope="module")
def minilm() -> TransformerEncoder:
    return TransformerEncoder()


def test_default_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_path()), device="cpu")
    ours = minilm.encode(TEXTS, normalize_embeddings=True)
    theirs = reference.encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    assert np.allclose(ours, theirs, atol=1e-5)


def test_batching_and_order_do_not_change_results(minilm):
    one = minilm.encode(TEXTS, batch_size=1)
    many = minilm.encode(TEXTS[::-1], batch_size=3)[::-1]
    assert np.allclose(one, many, atol=1e-5)


def test_normalize(minilm):
    out = minilm.encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", float("nan")], "text 1 is missing"),
        (["ok", None], "text 1 is missing"),
        (["ok", "   "], "text 1 is empty"),
        (["ok", 3], "text 1 is a int"),
        ("just one string", "single string"),
    ],
)
def test_bad_texts(minilm, texts, message):
    with pytest.raises(ValueError, match=message):
        minilm.encode(texts)


def test_unknown_kwarg_lists_valid_ones(minilm):
    with pytest.raises(ValueError, match=r"unknown encode.*device.*valid: batch_size"):
        minilm.encode(TEXTS, device="cpu")


def test_tiny_bert_folder_mean_pooling(tmp_path):
    encoder = TransformerEncoder(save_tiny_bert(tmp_path / "bert"))
    out = encoder.encode(["toy story", "heat action film", "toy story"])
    assert out.shape == (3, 32)
    assert np.allclose(out[0], out[2]) and not np.allclose(out[0], out[1])


def test_tiny_llama_last_token_with_instruction(tmp_path):
    folder = save_tiny_llama(tmp_path / "llama")
    plain = TransformerEncoder(folder, pooling="last")
    prefixed = TransformerEncoder(folder, pooling="last", instruction="the film ")
    texts = ["toy story", "heat action film crime thriller drama"]
    a, b = plain.encode(texts, batch_size=2), plain.encode(texts, batch_size=1)
    # padding must not move the pooled token: batched equals one at a time
    assert np.allclose(a, b, atol=1e-5)
    assert not np.allclose(a, prefixed.encode(texts))
    assert plain.fingerprint != prefixed.fingerprint


def test_bfloat16(tmp_path):
    encoder = TransformerEncoder(save_tiny_bert(tmp_path / "bert"), dtype="bfloat16")
    assert encoder.encode(["toy story"]).dtype == np.float32


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a model folder"):
        TransformerEncoder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="cannot load a model"):
        TransformerEncoder(tmp_path)
    with pytest.raises(ConfigError, match="pooling must be"):
        TransformerEncoder(pooling="max")


def test_max_length_capped_at_model_positions(tmp_path):
    encoder = TransformerEncoder(save_tiny_bert(tmp_path / "bert"), max_length=512)
    assert encoder.max_length == 64
    assert encoder.encode(["crime " * 200]).shape == (1, 32)


def test_fingerprint_hashes_weight_contents_once(tmp_path, monkeypatch):
    import shutil

    from llmrec import fingerprints as transformer

    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    base = save_tiny_bert(tmp_path / "base")
    copy = Path(shutil.copytree(base, tmp_path / "copy"))
    tuned = Path(shutil.copytree(base, tmp_path / "tuned"))
    weights = tuned / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0x01  # one bit of one weight: same size, another model
    weights.write_bytes(bytes(raw))
    settings = {"pooling": "mean"}
    fingerprint = transformer.folder_fingerprint
    assert fingerprint(base, settings) == fingerprint(copy, settings)
    assert fingerprint(base, settings) != fingerprint(tuned, settings)
    assert (tmp_path / "cache" / "file-hashes.json").is_file()

    # Hashes are remembered by path, size and mtime: the second time reads no weights ...
    transformer._hashes.clear()

    def no_reading(path):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(transformer, "sha256_file", no_reading)
    assert fingerprint(base, settings) == fingerprint(copy, settings)
    # ... unless a file changed.
    os.utime(weights, ns=(0, 1))
    with pytest.raises(AssertionError, match="re-hashed"):
        fingerprint(tuned, settings)
