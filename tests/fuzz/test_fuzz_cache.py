"""A damaged embedding cache: a bad vector is encoded again or reported, never served.

Row damage (bit flips, NaN or infinity, short or long blobs, another row's vector, each with
its checksum left or rewritten to match) is repaired: the output is bit-identical to a fresh
encode and exactly the damaged rows are encoded again. File damage (truncation, bit flips, cut
or inserted bytes anywhere in the SQLite file) gives the fresh vectors or an llmrec error that
names the cache file, never SQLite's own exception and never other vectors.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec.encoders.cache import CachedEncoder, row_digest
from llmrec.errors import LLMRecError
from tests.encoders.test_cache import Counting
from tests.fuzz.conftest import budget
from tests.fuzz.faults import damages

TEXTS = [f"text number {n} " + "word " * (n % 5) for n in range(16)]


class HashEncoder:
    """A deterministic stand-in for a model: each text's vector comes from its hash."""

    dimension = 8
    fingerprint = "hash-encoder-v1"

    def encode(self, texts, **kwargs) -> np.ndarray:
        rows = [hashlib.blake2b(t.encode(), digest_size=32).digest() for t in texts]
        raw = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(texts), 32)
        return (raw[:, ::4].astype(np.float32) - 127.5) / 64.0


FRESH = HashEncoder().encode(TEXTS)


def _encode(path: Path) -> tuple[np.ndarray, Counting]:
    counting = Counting(HashEncoder())
    encoder = CachedEncoder(counting, path)
    try:
        return encoder.encode(TEXTS), counting
    finally:
        encoder.cache.close()


@pytest.fixture(scope="session")
def filled(tmp_path_factory) -> bytes:
    """The bytes of a cache file that holds every text's vector."""
    path = tmp_path_factory.mktemp("cache") / "cache.sqlite"
    out, counting = _encode(path)
    assert np.array_equal(out, FRESH) and counting.seen == len(TEXTS)
    assert not path.with_name(path.name + "-wal").exists()  # all in the one file
    return path.read_bytes()


def _filled(root: Path, content: bytes) -> Path:
    path = root / "cache.sqlite"
    path.write_bytes(content)
    return path


ROW_DAMAGE = st.tuples(
    st.integers(min_value=0, max_value=len(TEXTS) - 1),
    st.sampled_from(["flip", "nan", "inf", "short", "long", "other-row", "zeros"]),
    st.integers(min_value=0, max_value=10**6),
    st.booleans(),  # rewrite the checksum to match the damaged vector
)
PLAUSIBLE = ("nan", "inf", "short", "long")
"""Damage that a matching checksum does not hide (the vector is not finite, or not 32
bytes): a finite vector of the right length under its own checksum is a valid row, which the
cache cannot tell from a true one."""


def _damaged(blob: bytes, how: str, at: int, other: bytes) -> bytes:
    values = np.frombuffer(blob, dtype=np.float32).copy()
    if how == "flip":
        raw = bytearray(blob)
        raw[at % len(raw)] ^= 1 << (at % 8)
        return bytes(raw)
    if how in ("nan", "inf"):
        values[at % len(values)] = np.nan if how == "nan" else -np.inf
        return values.tobytes()
    if how == "short":
        return blob[: at % len(blob)]
    if how == "long":
        return blob + bytes(1 + at % 8)
    if how == "other-row":
        return other
    return bytes(len(blob))


@budget(1.5)
@given(damage=st.lists(ROW_DAMAGE, min_size=1, max_size=5, unique_by=lambda d: d[0]))
def test_damaged_rows_are_encoded_again_never_served(scratch, filled, damage):
    with scratch() as root:
        path = _filled(root, filled)
        db = sqlite3.connect(path)
        rows = db.execute("SELECT text_hash, vector FROM embeddings ORDER BY text_hash").fetchall()
        blobs = {key: blob for key, blob in rows}
        for row, how, at, rewrite in damage:
            key = rows[row][0]
            other = rows[(row + 1) % len(rows)][1]
            blobs[key] = _damaged(blobs[key], how, at, other)
            with db:
                db.execute(
                    "UPDATE embeddings SET vector = ? WHERE text_hash = ?", (blobs[key], key)
                )
                if rewrite and how in PLAUSIBLE:  # stored with a checksum that matches
                    db.execute(
                        "UPDATE checksums SET digest = ? WHERE text_hash = ?",
                        (row_digest(key, blobs[key]), key),
                    )
        db.close()
        changed = {key for key, blob in rows if blobs[key] != blob}
        out, counting = _encode(path)
        assert np.array_equal(out, FRESH), f"{damage}: a damaged vector was served"
        assert counting.seen == len(changed), f"{damage}: encoded {counting.seen} again"
        again, counting = _encode(path)
        assert np.array_equal(again, FRESH) and counting.seen == 0, "the repair was not stored"


@budget(1.5)
@given(damage=st.lists(damages(["cache.sqlite"], swap=False), min_size=1, max_size=3))
def test_damaged_cache_file_gives_fresh_vectors_or_an_error(scratch, filled, damage):
    with scratch() as root:
        path = _filled(root, filled)
        for one in damage:
            one.apply(root)
        try:
            out, _ = _encode(path)
        except LLMRecError as exc:
            assert str(path) in str(exc), f"{damage}: the error does not name the cache: {exc}"
            return
        except Exception as exc:  # a raw sqlite3 error, a numpy error...
            pytest.fail(f"{damage}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
        assert np.array_equal(out, FRESH), f"{damage}: other vectors were served"
