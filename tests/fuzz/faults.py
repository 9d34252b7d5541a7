"""Damage to files and folders, drawn by hypothesis: truncation, bit flips, inserted and
deleted bytes, parts swapped with another artifact of the same kind, deleted parts."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from llmrec.artifacts import ARTIFACT_FILE


@dataclass(frozen=True)
class Damage:
    """One change to one part (a file path relative to the artifact folder).

    ``how`` is ``truncate`` (keep ``at`` bytes), ``flip`` (xor one bit at each of
    ``positions``), ``insert`` (``data`` before ``at``), ``cut`` (drop ``size`` bytes from
    ``at``), ``swap`` (the other artifact's copy of the part) or ``delete``. Positions are taken
    modulo the file size, so one drawn value fits any file.
    """

    how: str
    part: str
    at: int = 0
    size: int = 0
    positions: tuple[tuple[int, int], ...] = ()
    data: bytes = b""

    def apply(self, folder: Path, other: Path | None = None, part: str | None = None) -> None:
        """Damage ``folder / part`` (default: this damage's own part name)."""
        file = folder / (part or self.part)
        if self.how == "delete":
            file.unlink(missing_ok=True)
            return
        if self.how == "swap":
            assert other is not None, "a swap needs the other artifact"
            if (other / (part or self.part)).is_file():
                shutil.copyfile(other / (part or self.part), file)
            else:
                file.unlink(missing_ok=True)
            return
        if not file.is_file():
            return  # deleted by an earlier damage
        raw = bytearray(file.read_bytes())
        n = len(raw)
        if self.how == "replace":
            raw = bytearray(self.data)
        elif self.how == "truncate":
            raw = raw[: self.at % (n + 1)]
        elif self.how == "flip" and n:
            for position, bit in self.positions:
                raw[position % n] ^= 1 << bit
        elif self.how == "insert":
            at = self.at % (n + 1)
            raw[at:at] = self.data
        elif self.how == "cut" and n:
            at = self.at % n
            del raw[at : at + self.size]
        file.write_bytes(bytes(raw))


def damages(parts: list[str], swap: bool = True) -> st.SearchStrategy[Damage]:
    """One damage to one of ``parts``."""
    part = st.sampled_from(parts)
    offset = st.integers(min_value=0, max_value=2**31)
    kinds = [
        st.builds(Damage, how=st.just("truncate"), part=part, at=offset),
        st.builds(
            Damage,
            how=st.just("flip"),
            part=part,
            positions=st.lists(st.tuples(offset, st.integers(0, 7)), min_size=1, max_size=6).map(
                tuple
            ),
        ),
        st.builds(
            Damage,
            how=st.just("insert"),
            part=part,
            at=offset,
            data=st.binary(min_size=1, max_size=16),
        ),
        st.builds(Damage, how=st.just("cut"), part=part, at=offset, size=st.integers(1, 64)),
        st.builds(Damage, how=st.just("delete"), part=part),
    ]
    if swap:
        kinds.append(st.builds(Damage, how=st.just("swap"), part=part))
    return st.one_of(kinds)


def parts_of(folder: Path) -> list[str]:
    """Every file under ``folder``, as sorted relative POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def copy_artifact(source: Path, target: Path, manifest: bool = True) -> Path:
    """A fresh copy of an artifact folder; ``manifest=False`` drops every ``artifact.json``
    (a folder written before llmrec had manifests, whose parts nothing can check)."""
    shutil.copytree(source, target)
    if not manifest:
        for found in target.rglob(ARTIFACT_FILE):
            found.unlink()
    return target


def tree_snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` (files by content, symlinks by target, folders by name)."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[key] = "dir"
            else:
                out[key] = path.read_bytes()
    return out
