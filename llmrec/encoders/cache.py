"""An on-disk embedding cache keyed by (model fingerprint, text hash), in SQLite.

Each chunk of new embeddings is committed in one transaction, so a run killed mid-way keeps what
it finished and the next run resumes; SQLite's journal means a kill never leaves a torn row.
Several processes may share one cache file (writers take turns on SQLite's lock). Every row has
a checksum over its key and vector (in a table of its own, which older llmrec versions ignore):
a row damaged on disk, or holding NaN, is treated as missing and encoded again, never served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.encoders.base import TextEncoder, check_texts, normalize_rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (fingerprint TEXT PRIMARY KEY, dimension INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    fingerprint TEXT NOT NULL, text_hash BLOB NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (fingerprint, text_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checksums (
    fingerprint TEXT NOT NULL, text_hash BLOB NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (fingerprint, text_hash)
) WITHOUT ROWID;
"""


CACHE_ENV = "LLMREC_CACHE_DIR"
log = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$LLMREC_CACHE_DIR/embeddings.sqlite``, else ``~/.cache/llmrec/embeddings.sqlite``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmrec"
    return Path(root) / "embeddings.sqlite"


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def row_digest(key: bytes, blob: bytes) -> bytes:
    """Checksum of one cached row: its key too, so a vector stored under another text fails."""
    return hashlib.blake2b(key + blob, digest_size=8).digest()


class EmbeddingCache:
    """Embeddings of one model (its fingerprint and dimension) in an SQLite file.

    Raises:
        ValueError: the file holds embeddings of this fingerprint with another dimension, or is
            not an embedding cache.
    """

    def __init__(self, path: str | Path, fingerprint: str, dimension: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fingerprint, self.dimension = fingerprint, int(dimension)
        self._db = sqlite3.connect(self.path, timeout=60)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            row = self._db.execute(
                "SELECT dimension FROM models WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not an embedding cache ({exc})") from exc
        if row is not None and row[0] != self.dimension:
            raise ValueError(
                f"{self.path}: cache holds {row[0]}-d embeddings for model {fingerprint}, "
                f"but the encoder makes {self.dimension}-d ones; use another cache file"
            )
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?)", (fingerprint, self.dimension)
            )

    def get(self, hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Cached vectors for those hashes that are present and intact.

        A row whose checksum, length or values (NaN, inf) are wrong is left out, so the caller
        encodes that text again and :meth:`put` replaces the row. Rows written before checksums
        existed have none and are checked for length and finite values only.
        """
        found: dict[bytes, np.ndarray] = {}
        damaged = 0
        for lo in range(0, len(hashes), 500):
            chunk = list(hashes[lo : lo + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT e.text_hash, e.vector, c.digest FROM embeddings e LEFT JOIN checksums c "
                f"ON c.fingerprint = e.fingerprint AND c.text_hash = e.text_hash "
                f"WHERE e.fingerprint = ? AND e.text_hash IN ({marks})",
                [self.fingerprint, *chunk],
            )
            for key, blob, digest in rows:
                vector = np.frombuffer(blob, dtype=np.float32) if len(blob) % 4 == 0 else None
                if (
                    vector is None
                    or len(vector) != self.dimension
                    or (digest is not None and digest != row_digest(key, blob))
                    or not np.isfinite(vector).all()
                ):
                    damaged += 1
                    continue
                found[key] = vector
        if damaged:
            log.warning(
                "%s: %d cached vector(s) are damaged (checksum, length or NaN); encoding them "
                "again",
                self.path,
                damaged,
            )
        return found

    def put(self, hashes: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store vectors in one transaction."""
        if vectors.shape != (len(hashes), self.dimension):
            raise ValueError(f"vectors shape {vectors.shape} != ({len(hashes)}, {self.dimension})")
        rows = [
            (self.fingerprint, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes())
            for key, vec in zip(hashes, vectors, strict=True)
        ]
        digests = [(f, key, row_digest(key, blob)) for f, key, blob in rows]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO checksums VALUES (?, ?, ?)", digests)

    def __len__(self) -> int:
        return self._db.execute(
            "SELECT COUNT(*) FROM embeddings WHERE fingerprint = ?", (self.fingerprint,)
        ).fetchone()[0]

    def close(self) -> None:
        self._db.close()


class CachedEncoder(TextEncoder):
    """Wraps an encoder so that texts already encoded by the same model cost nothing.

    Args:
        encoder: the encoder doing the work.
        cache: path of the SQLite cache file.
        chunk_size: texts encoded and committed together (the unit of resumption).
    """

    def __init__(self, encoder: TextEncoder, cache: str | Path, chunk_size: int = 2048) -> None:
        self.encoder = encoder
        self.dimension = encoder.dimension
        self.fingerprint = encoder.fingerprint
        self.cache = EmbeddingCache(cache, encoder.fingerprint, encoder.dimension)
        self.chunk_size = chunk_size

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.encoder._encode_batch(texts)

    def encode(self, sentences: Sequence[str], **kwargs: Any) -> np.ndarray:
        texts = check_texts(sentences)
        normalize = kwargs.pop("normalize_embeddings", False)
        keys = [text_hash(t) for t in texts]
        found = self.cache.get(list(dict.fromkeys(keys)))
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        for lo in range(0, len(missing), self.chunk_size):
            chunk = missing[lo : lo + self.chunk_size]
            vectors = self.encoder.encode(chunk, **kwargs)
            chunk_keys = [text_hash(t) for t in chunk]
            self.cache.put(chunk_keys, vectors)
            found.update(zip(chunk_keys, vectors, strict=True))
        out = (
            np.stack([found[k] for k in keys]).astype(np.float32)
            if keys
            else np.empty((0, self.dimension), dtype=np.float32)
        )
        return normalize_rows(out) if normalize else out
