"""Generated texts in SQLite, keyed by (model fingerprint, decoding settings, prompt).

A batch's generations are written in one transaction once the batch is complete, so a run killed
mid-way keeps the batches it finished and the next run resumes; nothing half-generated is ever
stored. Several processes may share the file (SQLite's lock serialises writers).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from llmrec.errors import DataError
from llmrec.fingerprints import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key BLOB PRIMARY KEY, fingerprint TEXT NOT NULL, text TEXT NOT NULL, digest BLOB NOT NULL
) WITHOUT ROWID;
"""


def default_generation_cache() -> Path:
    """``generations.sqlite`` in the llmrec cache folder (``$LLMREC_CACHE_DIR``)."""
    return cache_dir() / "generations.sqlite"


def generation_key(fingerprint: str, settings: str, prompt: str) -> bytes:
    """The cache key of one prompt under one model and one set of decoding settings."""
    raw = "\x00".join((fingerprint, settings, prompt)).encode("utf-8")
    return hashlib.blake2b(raw, digest_size=16).digest()


def _digest(key: bytes, text: str) -> bytes:
    return hashlib.blake2b(key + text.encode("utf-8"), digest_size=8).digest()


class GenerationCache:
    """An SQLite file of generated texts.

    Raises:
        DataError: the path is a folder, cannot be created, or is not a generation cache.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise DataError(f"generation cache {self.path} is a folder; give a file path")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            with self._db:
                self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"generation cache {self.path} is not an SQLite cache: {exc}") from exc
        except OSError as exc:
            raise DataError(f"generation cache {self.path}: cannot open it ({exc})") from exc

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, str]:
        """The cached texts of ``keys`` that are present and intact (a damaged row is missing)."""
        found: dict[bytes, str] = {}
        for key in dict.fromkeys(keys):
            row = self._db.execute(
                "SELECT text, digest FROM generations WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[1] == _digest(key, row[0]):
                found[key] = row[0]
        return found

    def put_many(self, fingerprint: str, rows: Iterable[tuple[bytes, str]]) -> None:
        """Store complete generations, all in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?)",
                [(key, fingerprint, text, _digest(key, text)) for key, text in rows],
            )

    def close(self) -> None:
        self._db.close()
