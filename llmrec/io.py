"""Atomic file writes, file hashes, and environment facts recorded with every result.

Artifact folders (model, index, embeddings, split) are written by :mod:`llmrec.artifacts` on top
of these."""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import tokenize
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TRACKED_PACKAGES = (
    "llmrec",
    "numpy",
    "pandas",
    "scipy",
    "torch",
    "torchrec",
    "fbgemm-gpu-cpu",
    "implicit",
    "faiss-cpu",
    "recbole",
    "transformers",
    "sentence-transformers",
)
_LEFTOVER = re.compile(r"(\d+)\.[A-Za-z0-9_]+\.tmp")


def umask() -> int:
    """The process umask (read without changing it for longer than an instant)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (not its target) or a folder tree; absent is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(path: Path) -> None:
    """Remove ``.NAME.PID.*.tmp`` left by writers of ``path`` that were killed."""
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _LEFTOVER.fullmatch(entry.name[len(prefix) :])
        if match and not _pid_alive(int(match.group(1))):
            log.info("removing %s, left by an interrupted write", entry)
            remove_path(entry)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file over ``path``.

    A crash mid-write leaves the old file (or nothing) in place, never a half-written one; the
    next write of the same path removes the temp file a killed writer left.

    Args:
        path: final destination.
        write: function that writes the complete content to the path it is given.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes 0600; follow the umask instead
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_file(path: str | Path) -> str:
    """SHA-256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the bytes of ``paths`` in sorted order, each prefixed by its file name."""
    digest = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        digest.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# ---- environment --------------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Versions of the packages that shape results, plus Python and platform."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_text_encoding(path: str | Path, encoding: str) -> None:
    """Check that a text file decodes with ``encoding``, before a parser meets it.

    Raises:
        DataError: an unknown encoding, or the first undecodable byte (its line and offset),
            with a hint when the file reads as Latin-1 (MovieLens-100k's ``u.item`` does).
    """
    from llmrec.errors import DataError

    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError as exc:
        raise DataError(f"{path}: unknown encoding {encoding!r}") from exc
    offset, lines = 0, 1
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                line = lines + block.count(b"\n", 0, exc.start)
                hint = (
                    "; if it is Latin-1 or Windows-1252, pass encoding='latin-1' "
                    "(load(..., encoding=...), a dataset preset's `encoding:` or --encoding)"
                    if encoding.replace("-", "").lower() in ("utf8", "ascii")
                    else ""
                )
                raise DataError(
                    f"{path}: line {line} is not valid {encoding} (byte 0x{block[exc.start]:02x} "
                    f"at offset {bad}){hint}"
                ) from exc
            offset += len(block)
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: ends inside a multi-byte {encoding} character") from exc


def read_json_object(
    path: str | Path, required: Iterable[str] = (), folder_kind: str = "an llmrec folder"
) -> dict[str, Any]:
    """A JSON file that must hold an object with ``required`` keys (a manifest, a config).

    Raises:
        DataError: the file is missing or unreadable, not a JSON object, or lacks a key (named).
    """
    from llmrec.errors import DataError

    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path.parent}: not {folder_kind} ({path.name} is missing or unreadable: {exc})"
        ) from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object, found a {type(value).__name__}")
    missing = [key for key in required if key not in value]
    if missing:
        raise DataError(f"{path} lacks {missing}: damaged or hand-edited")
    return value


def check_string_array(array: Any, where: str) -> None:
    """A loaded ``.npy`` of strings is what it claims: numpy unicode with valid code points.

    Damaged bytes can hold code points past U+10FFFF, which numpy turns into broken ``str``
    objects that crash whatever touches them later (a ``SystemError``), so they are refused here.

    Raises:
        DataError: another dtype, or an invalid code point.
    """
    from llmrec.errors import DataError

    if getattr(array, "dtype", None) is None or array.dtype.kind != "U":
        raise DataError(f"{where}: expected strings, found dtype {getattr(array, 'dtype', None)}")
    if array.size and int(array.view(np.uint32).max()) > 0x10FFFF:
        raise DataError(f"{where}: damaged strings (invalid code points)")


NPY_ERRORS = (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError, MemoryError)
"""What ``np.load`` raises on a damaged file: a short read (EOFError), a header that does not
parse (SyntaxError, TokenError), an absurd shape (ValueError, MemoryError)."""


def load_npy(path: str | Path, folder_kind: str) -> np.ndarray:
    """``np.load`` without pickles, any failure reported as a :class:`DataError` naming the file.

    Raises:
        DataError: the file is missing, damaged or not an array.
    """
    from llmrec.errors import DataError

    try:
        array = np.load(path, allow_pickle=False)
    except NPY_ERRORS as exc:
        raise DataError(f"{path}: missing or damaged part of {folder_kind} ({exc})") from exc
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: not a single array")
    return array
