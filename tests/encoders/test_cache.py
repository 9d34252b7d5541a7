from __future__ import annotations

import numpy as np
import pytest

from llmrec.encoders import TransformerEncoder
from llmrec.encoders.cache import CachedEncoder, EmbeddingCache
from tests.encoders.tiny_models import WORDS, save_tiny_bert


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def tiny(tiny_folder) -> TransformerEncoder:
    return TransformerEncoder(tiny_folder)


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=4)) + f" {i}" for i in range(n)]


class Counting:
    """Counts the texts that reach the real encoder; can fail after some calls."""

    def __init__(self, encoder: TransformerEncoder, fail_after: int | None = None) -> None:
        self.encoder, self.fail_after, self.calls, self.seen = encoder, fail_after, 0, 0
        self.dimension, self.fingerprint = encoder.dimension, encoder.fingerprint

    def encode(self, texts, **kwargs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.seen += len(texts)
        return self.encoder.encode(texts, **kwargs)


def test_cached_equals_uncached_and_second_run_is_free(tiny, tmp_path):
    texts = _texts(50) + _texts(5)  # duplicates too
    counting = Counting(tiny)
    cached = CachedEncoder(counting, tmp_path / "c.sqlite", chunk_size=16)
    first = cached.encode(texts)
    assert np.allclose(first, tiny.encode(texts), atol=1e-6)
    assert counting.seen == 50
    second = cached.encode(texts, normalize_embeddings=True)
    assert counting.seen == 50
    assert np.allclose(second, first / np.linalg.norm(first, axis=1, keepdims=True))


def test_interrupted_run_resumes(tiny, tmp_path):
    texts = _texts(64)
    path = tmp_path / "c.sqlite"
    with pytest.raises(KeyboardInterrupt):
        CachedEncoder(Counting(tiny, fail_after=2), path, chunk_size=16).encode(texts)
    assert len(EmbeddingCache(path, tiny.fingerprint, tiny.dimension)) == 32
    resumed = Counting(tiny)
    out = CachedEncoder(resumed, path, chunk_size=16).encode(texts)
    assert resumed.seen == 32
    assert np.allclose(out, tiny.encode(texts), atol=1e-6)


def test_dimension_mismatch_is_an_error(tiny, tmp_path):
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path, "model-a", 384).close()
    with pytest.raises(ValueError, match=r"holds 384-d embeddings.*makes 32-d"):
        EmbeddingCache(path, "model-a", 32)
    EmbeddingCache(path, "model-b", 32).close()  # another model shares the file


def test_not_a_cache_file(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not an embedding cache"):
        EmbeddingCache(path, "m", 8)


def test_damaged_rows_are_encoded_again_not_served(tiny, tmp_path, caplog):
    import sqlite3

    texts = _texts(20)
    path = tmp_path / "c.sqlite"
    fresh = CachedEncoder(tiny, path).encode(texts)
    db = sqlite3.connect(path)
    rows = db.execute("SELECT text_hash, vector FROM embeddings ORDER BY text_hash").fetchall()
    flipped = bytearray(rows[0][1])
    flipped[5] ^= 0x40  # one bit inside a stored vector
    nan = np.frombuffer(rows[1][1], dtype=np.float32).copy()
    nan[0] = np.nan
    with db:
        db.execute(
            "UPDATE embeddings SET vector = ? WHERE text_hash = ?", (bytes(flipped), rows[0][0])
        )
        db.execute(
            "UPDATE embeddings SET vector = ? WHERE text_hash = ?", (nan.tobytes(), rows[1][0])
        )
        db.execute("UPDATE embeddings SET vector = ? WHERE text_hash = ?", (rows[3][1], rows[2][0]))
        db.execute("DELETE FROM checksums WHERE text_hash = ?", (rows[4][0],))  # an older row
    db.close()
    counting = Counting(tiny)
    with caplog.at_level("WARNING", logger="llmrec.encoders.cache"):
        again = CachedEncoder(counting, path).encode(texts)
    assert counting.seen == 3 and "3 cached vector(s) are damaged" in caplog.text
    np.testing.assert_allclose(again, fresh, atol=1e-6)
    counting = Counting(tiny)
    CachedEncoder(counting, path).encode(texts)
    assert counting.seen == 0


def test_commits_every_chunk_when_asked_and_keeps_work_on_kill(tiny, tiny_folder, tmp_path):
    """commit_seconds=0: each chunk is committed before the next starts, so a kill -9 (seen
    here as a process that exits hard mid-run) loses at most the chunk in flight."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "c.sqlite"
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from llmrec.encoders import TransformerEncoder
from llmrec.encoders.cache import CachedEncoder
from tests.encoders.test_cache import Counting, _texts

class Killing(Counting):
    def encode(self, texts, **kwargs):
        if self.calls == 3:
            os._exit(137)
        return super().encode(texts, **kwargs)

enc = TransformerEncoder({str(tiny_folder)!r})
CachedEncoder(Killing(enc), {str(path)!r}, chunk_size=8, commit_seconds=0).encode(_texts(64))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == 137, result.stderr.decode()[-2000:]
    assert len(EmbeddingCache(path, tiny.fingerprint, tiny.dimension)) == 24
    counting = Counting(tiny)
    out = CachedEncoder(counting, path, chunk_size=8).encode(_texts(64))
    assert counting.seen == 40
    np.testing.assert_allclose(out, tiny.encode(_texts(64)), atol=1e-6)


def test_one_progress_bar_and_bad_options(tiny, tmp_path):
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        CachedEncoder(tiny, tmp_path / "c.sqlite", chunk_size=0)
    with pytest.raises(ValueError, match="commit_seconds"):
        CachedEncoder(tiny, tmp_path / "c.sqlite", commit_seconds=-1)
    with pytest.raises(ValueError, match=r"unknown encode\(\) argument.*valid: batch_size"):
        CachedEncoder(tiny, tmp_path / "c.sqlite").encode(["a b"], batch=3)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 2\.5"):
        CachedEncoder(tiny, tmp_path / "c.sqlite").encode(["a b"], batch_size=2.5)


def test_sqlite_problems_name_the_cache_file(tiny, tmp_path):
    import sqlite3

    from llmrec.errors import DataError

    folder = tmp_path / "cache-dir"
    folder.mkdir()
    with pytest.raises(DataError, match="is a folder"):
        EmbeddingCache(folder, "m", 8)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE embeddings (a, b)")  # another program's table of that name
    db.commit()
    db.close()
    cache = EmbeddingCache(other, "m", 8)
    with pytest.raises(DataError, match=f"{other}.*another schema"):
        cache.get([b"k"])
    path = tmp_path / "c.sqlite"
    CachedEncoder(tiny, path).encode(_texts(300))
    data = bytearray(path.read_bytes())
    data[4096:] = bytes(len(data) - 4096)  # everything after the first page zeroed
    path.write_bytes(bytes(data))
    for wal in tmp_path.glob("c.sqlite-*"):
        wal.unlink()
    with pytest.raises(DataError, match=str(path)):
        CachedEncoder(tiny, path).encode(_texts(300))
