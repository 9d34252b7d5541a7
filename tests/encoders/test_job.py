from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from llmrec.cli import app
from llmrec.encoders.job import EmbeddingSet, EncodeConfig, EncoderSpec, encode_dataset
from llmrec.errors import DataError


def config(spec: EncoderSpec, **fields) -> EncodeConfig:
    return EncodeConfig(encoder=spec, **fields)


def test_items_round_trip(ml100k_small, tiny_spec, tmp_path):
    result = encode_dataset(ml100k_small, config(tiny_spec), tmp_path / "cache.sqlite")
    n_items = len(ml100k_small.item_ids)
    assert result.vectors.shape == (n_items, 32) and result.vectors.dtype == np.float32
    assert np.isfinite(result.vectors).all()
    assert result.manifest["count"] == n_items and result.manifest["what"] == "items"
    assert result.manifest["dataset"]["checksum"] == ml100k_small.checksum
    loaded = EmbeddingSet.load(result.save(tmp_path / "out"))
    np.testing.assert_array_equal(loaded.vectors, result.vectors)
    assert loaded.ids.tolist() == list(ml100k_small.item_ids)
    assert loaded.manifest["fingerprint"] == result.manifest["fingerprint"]


def test_two_workers_equal_one_process(ml100k_small, tiny_spec, tmp_path):
    cfg = config(tiny_spec, what="users", profile={"max_items": 5, "max_tokens": 60})
    single = encode_dataset(ml100k_small, cfg, tmp_path / "single.sqlite")
    sharded = encode_dataset(ml100k_small, cfg, tmp_path / "sharded.sqlite", workers=2)
    assert sharded.vectors.shape == (len(ml100k_small.user_ids), 32)
    np.testing.assert_allclose(sharded.vectors, single.vectors, atol=1e-5)


def test_workers_report_one_progress_bar_for_all_of_them(tiny_spec, tmp_path, capsys):
    from llmrec.encoders.job import encode_texts

    texts = [f"item number {i}" for i in range(300)]
    cache = tmp_path / "cache.sqlite"
    out = encode_texts(texts, tiny_spec, cache, workers=2, batch_size=16, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "encode (2 workers)" in err and "300/300" in err
    assert out.shape == (300, 32)
    encode_texts(texts, tiny_spec, cache, workers=2, show_progress_bar=True)
    assert "workers" not in capsys.readouterr().err  # all cached: no worker starts


def test_users_without_liked_items_get_flagged_fallback(ml100k_small, tiny_spec, tmp_path):
    liked = {"max_items": 5, "max_tokens": 60, "min_rating": 5}
    counts = ml100k_small.interactions.query("rating >= 5").groupby("user_idx").size()
    expected = len(ml100k_small.user_ids) - len(counts)
    assert expected > 0
    for user_text in ("profile", "pool"):
        cfg = config(tiny_spec, what="users", user_text=user_text, profile=liked)
        result = encode_dataset(ml100k_small, cfg, tmp_path / "cache.sqlite")
        assert result.fallback.sum() == expected == result.manifest["fallback_users"]
        assert np.isfinite(result.vectors).all()
        fallback_rows = result.vectors[result.fallback]
        np.testing.assert_allclose(fallback_rows, fallback_rows[0:1].repeat(expected, 0))


def test_pooled_users_are_weighted_means_of_items(ml100k_small, tiny_spec, tmp_path):
    cache = tmp_path / "cache.sqlite"
    items = encode_dataset(ml100k_small, config(tiny_spec), cache).vectors
    users = encode_dataset(
        ml100k_small, config(tiny_spec, what="users", user_text="pool", weighting="mean"), cache
    )
    history = ml100k_small.interactions.query("user_idx == 0")["item_idx"]
    np.testing.assert_allclose(users.vectors[0], items[history].mean(axis=0), atol=1e-5)


def test_load_rejects_broken_folder(ml100k_small, tiny_spec, tmp_path):
    with pytest.raises(DataError, match="not an embedding folder"):
        EmbeddingSet.load(tmp_path)
    result = encode_dataset(ml100k_small, config(tiny_spec), tmp_path / "cache.sqlite")
    folder = result.save(tmp_path / "out")
    np.save(folder / "vectors.npy", result.vectors[:3])
    with pytest.raises(DataError, match=r"part vectors\.npy does not match its SHA-256"):
        EmbeddingSet.load(folder)
    (folder / "artifact.json").unlink()  # a folder from before manifests
    with pytest.raises(DataError, match="do not match the manifest"):
        EmbeddingSet.load(folder)


def test_cli_encode(ml100k_small, tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    args = ["encode", "--encoder", tiny_spec.model, "--out"]
    result = CliRunner().invoke(
        app, [*args, str(tmp_path / "items"), "--dataset", "ml-100k", "--batch-size", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "1682 items x 32" in " ".join(result.output.split())
    assert EmbeddingSet.load(tmp_path / "items").vectors.shape == (1682, 32)
    assert (tmp_path / "cache" / "embeddings.sqlite").is_file()
    bad = CliRunner().invoke(app, [*args, str(tmp_path / "x"), "--what", "movies"])
    assert bad.exit_code == 2 and "'items' or 'users'" in bad.output
    titleless = tmp_path / "small.csv"
    ml100k_small.interactions[["user_id", "item_id"]].to_csv(titleless, index=False)
    bad = CliRunner().invoke(app, [*args, str(tmp_path / "x"), "--dataset", str(titleless)])
    assert bad.exit_code == 2 and "no title column" in bad.output
    assert not (tmp_path / "x").exists()


def _small_set(vectors=None, ids=None, manifest=None) -> EmbeddingSet:
    vectors = np.eye(3, 4, dtype=np.float32) if vectors is None else vectors
    ids = np.array(["a", "b", "c"]) if ids is None else ids
    base = {"what": "items", "count": 3, "dimension": 4, "fingerprint": "f", "dataset": {}}
    return EmbeddingSet(ids, vectors, base if manifest is None else manifest, np.zeros(3, bool))


def test_load_refuses_consistent_but_wrong_parts(tmp_path):
    """Parts rewritten with matching hashes: NaN rows, duplicate ids, a manifest lacking keys."""
    from tests.conftest import reseal

    folder = _small_set().save(tmp_path / "e")
    assert EmbeddingSet.load(folder).ids.tolist() == ["a", "b", "c"]
    vectors = np.eye(3, 4, dtype=np.float32)
    vectors[1, 2] = np.nan
    np.save(folder / "vectors.npy", vectors)
    reseal(folder)
    with pytest.raises(DataError, match=r"vectors\.npy: 1 row\(s\) hold NaN or inf, first row 1"):
        EmbeddingSet.load(folder)
    folder = _small_set(ids=np.array(["a", "b", "a"])).save(tmp_path / "dup")
    with pytest.raises(DataError, match=r"ids\.npy: duplicate id\(s\) \['a'\]"):
        EmbeddingSet.load(folder)
    folder = _small_set().save(tmp_path / "keys")
    (folder / "manifest.json").write_text('{"count": 3, "dimension": 4}')
    reseal(folder)
    with pytest.raises(
        DataError, match=r"manifest\.json lacks \['what', 'fingerprint', 'dataset'\]"
    ):
        EmbeddingSet.load(folder)
    (folder / "manifest.json").write_text("[1, 2]")
    reseal(folder)
    with pytest.raises(DataError, match="expected a JSON object, found a list"):
        EmbeddingSet.load(folder)
