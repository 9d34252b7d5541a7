"""Content fingerprints of model files, and the cache folder they are remembered in.

Shared by the text encoders and the LLM generator: both key their caches by a hash of the
model's weights, so that two models differ whenever a weight differs (a fine-tuned copy of the
same size included).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from llmrec.io import sha256_file, write_json

CACHE_ENV = "LLMREC_CACHE_DIR"
MODEL_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".txt", ".model", ".gguf")
HASH_STORE = "file-hashes.json"
_hashes: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """``$LLMREC_CACHE_DIR``, else ``~/.cache/llmrec``: embeddings, generations, file hashes."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmrec")


def folder_fingerprint(path: Path, settings: dict[str, object]) -> str:
    """Hash of the settings and the contents of the model files (config, weights, tokenizer) of
    a folder, or of one model file (a GGUF)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    files = [path] if path.is_file() else sorted(path.rglob("*"))
    for file in files:
        if file.is_file() and file.suffix in MODEL_SUFFIXES:
            digest.update(str(file.relative_to(path) if file != path else file.name).encode())
            digest.update(content_hash(file).encode())
    return digest.hexdigest()[:16]


def content_hash(file: Path) -> str:
    """SHA-256 of a file's bytes, remembered by path, size and modification time (in this process
    and in ``file-hashes.json`` in the cache folder), so a model's weights are read once, not on
    every run."""
    stat = file.stat()
    real = str(file.resolve())
    key = (real, stat.st_size, stat.st_mtime_ns)
    if key in _hashes:
        return _hashes[key]
    store_path = cache_dir() / HASH_STORE
    store = _read_store(store_path)
    entry = store.get(real)
    if isinstance(entry, dict) and [entry.get("size"), entry.get("mtime_ns")] == list(key[1:]):
        digest = str(entry.get("sha256"))
    else:
        digest = sha256_file(file)
        store = {p: e for p, e in store.items() if os.path.exists(p)}  # forget deleted files
        store[real] = {"size": key[1], "mtime_ns": key[2], "sha256": digest}
        with contextlib.suppress(OSError):  # a read-only cache only costs the hash next time
            write_json(store_path, store)
    _hashes[key] = digest
    return digest


def _read_store(path: Path) -> dict[str, object]:
    try:
        store = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return store if isinstance(store, dict) else {}
