"""Copying and damaging files: bytes, JSON, tensors, arrays, atomic datasets, the cache."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cases import Ctx, Fixtures


def copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst)
    return dst


def corrupt_bytes(path: Path, kind: str, seed: int) -> None:
    data = path.read_bytes()
    rng = random.Random(seed)
    if kind == "truncate":
        new = data[: len(data) // 2]
    elif kind == "empty":
        new = b""
    elif kind == "bitflip":
        buf = bytearray(data)
        for _ in range(8):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        new = bytes(buf)
    elif kind == "garbage":
        new = rng.randbytes(len(data))
    else:
        raise ValueError(kind)
    path.write_bytes(new)


def reseal(folder: Path) -> None:
    """Rewrite every ``artifact.json`` under ``folder`` (innermost first) so its checksums match
    the parts as they are now: the damage then reaches the loaders' own validation."""
    from llmrec.artifacts import part_record  # after settings.py set the thread environment

    manifests = sorted(folder.rglob("artifact.json"), key=lambda p: -len(p.parts))
    for manifest in manifests:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            continue  # the damaged part itself: left as it is
        for name in data.get("parts", {}):
            part = manifest.parent / name
            if part.is_file():
                data["parts"][name] = part_record(part)
        manifest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def edit_json(path: Path, fn: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(fn(data), indent=2) + "\n", encoding="utf-8")


def edit_tensors(path: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata()
    state = load_file(str(path))
    fn(state)
    save_file(state, str(path), metadata=metadata)


def edit_npy(path: Path, fn: Callable[[Any], Any]) -> None:
    import numpy as np

    array = np.load(path, allow_pickle=False)
    np.save(path, fn(array), allow_pickle=False)


def leftovers(parent: Path, keep: Iterable[str]) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in set(keep))


@contextlib.contextmanager
def chmod(path: Path, mode: int) -> Any:
    old = path.stat().st_mode & 0o7777
    os.chmod(path, mode)
    try:
        yield
    finally:
        os.chmod(path, old)


def read_atomic(path: Path) -> Any:
    """An atomic (RecBole) file as a frame of strings, exactly as written."""
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def atomic_copy(ctx: Ctx, name: str, edit: Callable[[Any], Any] | None = None) -> Path:
    """A copy of dataset A as ``name/name.inter`` (+ .item), the interactions edited."""
    folder = ctx.work / name
    folder.mkdir()
    src = ctx.fx.data_a
    inter = read_atomic(src / f"{src.name}.inter")
    if edit is not None:
        inter = edit(inter)
    inter.to_csv(folder / f"{name}.inter", sep="\t", index=False)
    shutil.copyfile(src / f"{src.name}.item", folder / f"{name}.item")
    return folder


def cache_copy(fx: Fixtures, dst: Path) -> Path:
    with (
        contextlib.closing(sqlite3.connect(fx.cache)) as src,
        contextlib.closing(sqlite3.connect(dst)) as out,
    ):
        src.backup(out)
    return dst
