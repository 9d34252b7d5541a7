"""Artifact folders: every folder llmrec writes (model, index, embeddings, split).

:func:`write_artifact` writes the parts into a hidden temporary folder beside the target, adds an
``artifact.json`` manifest (kind, format version, SHA-256 and size of each part) and swaps the
folder in by two renames. The rules that keep users' data safe:

* a target that holds anything llmrec did not write (no manifest, another kind, or files the
  manifest does not list) is refused unless the caller passes ``overwrite``;
* a kill between the two renames leaves the previous artifact at ``.NAME.old``; the next save
  or load puts it back (or, when the new one is complete, removes it), never deletes it blindly;
* leftovers of interrupted writes (``.NAME.PID.*.tmp``) are removed by the next write once the
  process that made them is gone.

Loaders call :func:`open_artifact`, which recovers an interrupted save and checks every part
against the manifest, naming the part that does not match.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from llmrec.errors import ArtifactError
from llmrec.io import clean_leftovers, remove_path, sha256_file, umask

log = logging.getLogger(__name__)

ARTIFACT_FILE = "artifact.json"
ARTIFACT_FORMAT = 1
KILL_ENV = "LLMREC_TEST_KILL_AT"
"""Test hook: when set to one of :data:`KILL_STAGES`, the outermost writer kills its own process
there (``os._exit(137)``, as ``kill -9`` would), so tests can interrupt a save at any point."""
KILL_STAGES = ("started", "written", "old-moved", "swapped")


_nesting = threading.local()


def _checkpoint(stage: str) -> None:
    # Only the outermost save: a nested one (a model's index) is part of its parent's write.
    if os.environ.get(KILL_ENV) == stage and getattr(_nesting, "depth", 0) == 1:
        os._exit(137)


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _old_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` as sorted relative POSIX paths (symlinks count as files)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        base = Path(root)
        out += [(base / f).relative_to(folder).as_posix() for f in files]
        out += [(base / d).relative_to(folder).as_posix() for d in dirs if (base / d).is_symlink()]
    return sorted(out)


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The ``artifact.json`` of a folder, or None when it has none.

    Raises:
        ArtifactError: the manifest is unreadable or lacks ``kind``/``parts``.
    """
    file = Path(folder) / ARTIFACT_FILE
    if not file.is_file():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{file}: unreadable artifact manifest ({exc})") from exc
    parts = manifest.get("parts") if isinstance(manifest, dict) else None
    if (
        not isinstance(parts, dict)
        or not isinstance(manifest.get("kind"), str)
        or not all(isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in parts.values())
    ):
        raise ArtifactError(f"{file}: not an llmrec artifact manifest (no kind or parts)")
    return manifest


def _foreign(path: Path, kind: str) -> str | None:
    """Why replacing the existing folder ``path`` could lose data not written by llmrec."""
    try:
        present = _files(path)
    except OSError as exc:
        return f"cannot be read ({exc})"
    if not present:  # empty, or only empty folders: nothing to lose
        return None
    try:
        manifest = read_manifest(path)
    except ArtifactError as exc:
        return str(exc)
    if manifest is None:
        return f"is not an llmrec {kind} folder (no {ARTIFACT_FILE}); it holds {present[:3]}"
    if manifest["kind"] != kind:
        return f"is an llmrec {manifest['kind']} folder, not {_a(kind)} folder"
    extra = [f for f in present if f != ARTIFACT_FILE and f not in manifest["parts"]]
    if extra:
        return f"holds files llmrec did not write: {extra[:3]}"
    return None


def _recover(path: Path) -> None:
    """Undo a save killed between its two renames (``path`` gone, ``.NAME.old`` left)."""
    old = _old_path(path)
    if not (old.exists() or old.is_symlink()):
        return
    if not (path.exists() or path.is_symlink()):
        os.replace(old, path)
        log.warning("%s: restored the previous artifact after an interrupted save", path)
        return
    try:
        complete = verify_artifact(path) is not None
    except ArtifactError:
        complete = False
    if not complete:
        raise ArtifactError(
            f"{path} and {old} both exist and {path} is not a complete llmrec artifact: an "
            f"earlier save was interrupted. Keep the one you want (move the other away) and retry"
        )
    # The new artifact was swapped in; only the old one's removal was cut short.
    remove_path(old)


def check_target(path: str | Path, kind: str, overwrite: bool = False) -> Path:
    """Check, before any long work, that an artifact of ``kind`` may be written at ``path``.

    An earlier save of ``path`` that was killed between its renames is recovered first.

    Args:
        path: the folder to write.
        kind: ``model``, ``index``, ``embeddings``, ``split``, ...
        overwrite: replace a folder that is not an llmrec artifact of this kind.

    Returns:
        ``path`` made absolute.

    Raises:
        ArtifactError: ``path`` is a file, a folder with files llmrec did not write (without
            ``overwrite``), or in a folder that cannot be written.
    """
    path = Path(os.path.abspath(path))
    if not path.name:
        raise ArtifactError(f"{path}: give a folder to write the {kind} into, not a root")
    _recover(path)
    if path.exists() and not path.is_dir():
        raise ArtifactError(f"{path} is a file; give a folder path for the {kind}")
    if path.is_dir():
        reason = _foreign(path, kind)
        if reason and not overwrite:
            raise ArtifactError(
                f"{path} {reason}; refusing to replace it (llmrec replaces only its own {kind} "
                f"folders): choose another path, or pass --overwrite to replace it"
            )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    for folder in (parent, path) if path.is_dir() else (parent,):
        # Renaming a folder needs write access to it as well (its ".." entry changes).
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ArtifactError(f"{path}: folder {folder} is not writable")
    return path


def write_artifact(
    path: str | Path,
    kind: str,
    write: Callable[[Path], None],
    *,
    overwrite: bool = False,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write an artifact folder: ``write(tmp)`` fills a fresh folder, then it replaces ``path``.

    At every instant either the previous or the new complete artifact is at ``path``, or at
    ``.NAME.old`` for the instant between the two renames (the next :func:`check_target`,
    :func:`write_artifact` or :func:`open_artifact` puts it back).

    Args:
        path: the folder to write.
        kind: the artifact kind, recorded in ``artifact.json`` and checked on load.
        write: fills the folder it is given with every part.
        overwrite: replace a folder that is not an llmrec artifact of this kind.
        meta: extra facts for the manifest (ids and shapes that tie the parts together).

    Returns:
        ``path`` made absolute.

    Raises:
        ArtifactError: see :func:`check_target`.
    """
    path = check_target(path, kind, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    )
    old = _old_path(path)
    moved = False
    _nesting.depth = getattr(_nesting, "depth", 0) + 1
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; follow the umask instead
        _checkpoint("started")
        write(tmp)
        _follow_umask(tmp)
        parts = {name: part_record(tmp / name) for name in _files(tmp) if name != ARTIFACT_FILE}
        manifest = {
            **(meta or {}),
            "kind": kind,
            "format_version": ARTIFACT_FORMAT,
            "llmrec_version": _llmrec_version(),
            "parts": parts,
        }
        (tmp / ARTIFACT_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _checkpoint("written")
        if path.exists() or path.is_symlink():
            os.replace(path, old)
            moved = True
        _checkpoint("old-moved")
        os.replace(tmp, path)
        _checkpoint("swapped")
    except BaseException:
        if moved and not path.exists():
            os.replace(old, path)
        remove_path(tmp)
        raise
    finally:
        _nesting.depth -= 1
    remove_path(old)
    return path


def _follow_umask(folder: Path) -> None:
    """Give every file and folder under ``folder`` the mode a plain ``open``/``mkdir`` would
    (some writers, such as safetensors', create their files 0600 whatever the umask)."""
    mask = umask()
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        for name, mode in [*((d, 0o777) for d in dirs), *((f, 0o666) for f in files)]:
            if not (base / name).is_symlink():
                os.chmod(base / name, mode & ~mask)


def part_record(file: Path) -> dict[str, Any]:
    """A part's entry in ``artifact.json``: its SHA-256 and size."""
    return {"sha256": sha256_file(file), "bytes": file.stat().st_size}


def _llmrec_version() -> str:
    try:
        return metadata.version("llmrec")
    except metadata.PackageNotFoundError:
        return "unknown"


def verify_artifact(folder: str | Path, kind: str | None = None) -> dict[str, Any] | None:
    """Check an artifact folder against its manifest.

    Args:
        folder: the folder.
        kind: the kind the caller expects; None accepts any.

    Returns:
        The manifest, or None for a folder without one (written before llmrec had artifact
        manifests; its parts cannot be checked).

    Raises:
        ArtifactError: another kind or format, or a part missing or not matching its SHA-256.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    if kind is not None and manifest["kind"] != kind:
        raise ArtifactError(
            f"{folder} is an llmrec {manifest['kind']} folder, not {_a(kind)} folder"
        )
    if manifest.get("format_version") != ARTIFACT_FORMAT:
        raise ArtifactError(
            f"{folder}/{ARTIFACT_FILE}: artifact format {manifest.get('format_version')!r}; "
            f"this llmrec reads format {ARTIFACT_FORMAT}"
        )
    for name, expected in manifest["parts"].items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ArtifactError(f"{folder}/{ARTIFACT_FILE}: part {name!r} is outside the folder")
        part = folder / relative
        if not part.is_file():
            raise ArtifactError(f"{folder}: part {name} is missing")
        if part.stat().st_size != expected.get("bytes", part.stat().st_size) or (
            sha256_file(part) != expected["sha256"]
        ):
            raise ArtifactError(
                f"{folder}: part {name} does not match its SHA-256 in {ARTIFACT_FILE} "
                f"(damaged, truncated or replaced since it was written)"
            )
    return manifest


def open_artifact(folder: str | Path, kind: str) -> dict[str, Any] | None:
    """Recover an interrupted save of ``folder`` if needed, then verify it (see
    :func:`verify_artifact`). A folder that does not exist returns None: the caller's own
    loader names what is missing."""
    folder = Path(folder)
    try:
        _recover(folder)
    except OSError as exc:
        raise ArtifactError(
            f"{folder}: an interrupted save left the previous artifact at "
            f"{_old_path(folder)} and it cannot be moved back ({exc}); rename it to {folder}"
        ) from exc
    if not folder.is_dir():
        return None
    return verify_artifact(folder, kind)
