"""Damaged model, index and embedding folders: truncated, bit-flipped, cut or grown parts,
parts swapped with another artifact of the same kind, deleted parts.

With its manifest, a folder loads with exactly the pristine results or is refused with an llmrec
error naming a damaged part. Without one (a folder from before manifests, whose damage nothing
can detect), a load may return other results, but never crashes the process and never raises
anything but llmrec's own errors. Loads run in the worker process, so a segfault fails the test.
The writer itself is fuzzed with random folders at the target: it never deletes what llmrec did
not write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec.artifacts import ARTIFACT_FILE, open_artifact, part_record, write_artifact
from llmrec.errors import ArtifactError
from tests.fuzz.conftest import Pair, budget
from tests.fuzz.faults import Damage, copy_artifact, damages, tree_snapshot


def _explain(answer: dict, damage: list[Damage]) -> str:
    return f"{damage}: {answer.get('type')} at {answer.get('origin')}\n{answer.get('traceback')}"


@budget(1.5)
@given(data=st.data())
def test_damaged_folder_loads_identically_or_is_refused(worker, scratch, pair, data):
    kind = pair.kind
    damage = data.draw(st.lists(damages(pair.parts), min_size=1, max_size=3), label="damage")
    with scratch() as root:
        folder = copy_artifact(pair.a, root / kind)
        for one in damage:
            one.apply(folder, pair.b)
        legacy = not (folder / ARTIFACT_FILE).exists()
        answer = worker.call(kind, path=str(folder), **pair.request)
    if legacy:
        # Deleting the manifest makes it a folder from before manifests: nothing can tell
        # its damage, and the test below applies.
        _check_unprotected(kind, answer, damage, unchanged=False, pair=pair)
        return
    if answer["ok"]:
        assert answer["result"] == pair.expected_a, f"{damage}: loaded with other results"
        return
    assert answer["llmrec"], _explain(answer, damage)
    if answer["type"].endswith("ArtifactError") and all(d.part != ARTIFACT_FILE for d in damage):
        named = [d.part for d in damage if d.part in answer["message"]]
        assert named, f"{damage}: the error names no damaged part: {answer['message']}"


@budget(1.5)
@given(data=st.data())
def test_damaged_folder_without_manifest_never_crashes(worker, scratch, pair, data):
    parts = [p for p in pair.parts if not p.endswith(ARTIFACT_FILE)]
    damage = data.draw(st.lists(damages(parts), min_size=1, max_size=3), label="damage")
    _load_unprotected(worker, scratch, pair, damage)


HEADER_LENGTH_40 = tuple((8, bit) for bit in (1, 2, 3, 4, 6))
"""Flips that turn an ``.npy`` header length of 118 (0x76) into 40 (0x28): a cut header."""
FOUND = [
    ("index", Damage("truncate", "removed.npy", at=0)),  # EOFError from numpy
    ("index", Damage("flip", "removed.npy", positions=HEADER_LENGTH_40)),  # tokenize.TokenError
    ("index", Damage("cut", "index.faiss", at=70, size=20)),  # MemoryError from faiss
    ("model", Damage("truncate", "index/removed.npy", at=0)),
    ("model", Damage("cut", "index/index.faiss", at=82, size=20)),
    ("embeddings", Damage("truncate", "fallback.npy", at=0)),
    ("embeddings", Damage("flip", "vectors.npy", positions=HEADER_LENGTH_40)),
]
"""Damage the fuzzer found mishandled (folders without a manifest), replayed on every run."""


@pytest.mark.parametrize(("kind", "damage"), FOUND, ids=[f"{k}-{d.how}-{d.part}" for k, d in FOUND])
def test_damage_found_by_fuzzing(request, worker, scratch, kind, damage):
    _load_unprotected(worker, scratch, request.getfixturevalue(f"{kind}_pair"), [damage])


def _load_unprotected(worker, scratch, pair: Pair, damage: list[Damage]) -> None:
    with scratch() as root:
        folder = copy_artifact(pair.a, root / pair.kind, manifest=False)
        pristine = tree_snapshot(folder)
        for one in damage:
            one.apply(folder, pair.b)
        unchanged = tree_snapshot(folder) == pristine
        answer = worker.call(pair.kind, path=str(folder), **pair.request)
    _check_unprotected(pair.kind, answer, damage, unchanged, pair)


def _check_unprotected(
    kind: str, answer: dict, damage: list[Damage], unchanged: bool, pair: Pair
) -> None:
    if answer["ok"]:
        result = answer["result"]
        if unchanged:
            assert result == pair.expected_a, f"{damage} changed nothing, yet other results"
        if kind == "model":
            # Whatever the weights hold, the ids served are items of the catalogue, with
            # finite scores; empty slots are None and -inf.
            assert set(result["ids"]) <= {*result["catalogue"], None}, damage
            assert result["finite"], f"{damage}: non-finite scores served"
        return
    # llmrec's errors, or a ValueError raised on purpose by llmrec's own checks (the
    # documented contract of the loaders); never an error from inside numpy, faiss, torch...
    deliberate = answer["type"] == "builtins.ValueError" and answer["from_llmrec"]
    assert answer["llmrec"] or deliberate, _explain(answer, damage)


# ---- the writer never deletes what it did not write ---------------------------------------

NAME = st.text(alphabet="abcdefghij._-0123456789", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
ENTRY = st.tuples(st.lists(NAME, min_size=1, max_size=3).map("/".join), st.binary(max_size=32))


@st.composite
def targets(draw) -> dict:
    """What is at the target path before a save: nothing, a file, or a folder of random
    files (some symlinks out of it) with no manifest, a broken one, or a manifest of some kind
    listing some of the files."""
    shape = draw(st.sampled_from(["missing", "file", "folder", "folder", "folder"]))
    files = draw(st.lists(ENTRY, max_size=5, unique_by=lambda e: e[0])) if shape == "folder" else []
    manifest = draw(st.sampled_from(["none", "garbage", "thing", "index"]))
    listed = draw(st.sets(st.sampled_from([f for f, _ in files]))) if files else set()
    links = draw(st.lists(NAME, max_size=2, unique=True)) if shape == "folder" else []
    return {
        "shape": shape,
        "files": files,
        "manifest": manifest,
        "listed": listed,
        "links": links,
        "garbage": draw(st.binary(max_size=40)),
    }


def _build(root: Path, spec: dict) -> Path:
    target = root / "target"
    outside = root / "outside.txt"
    outside.write_text("a user's file beside the target")
    if spec["shape"] == "file":
        target.write_bytes(spec["garbage"])
        return target
    if spec["shape"] == "missing":
        return target
    target.mkdir()
    for name, content in spec["files"]:
        path = target / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue  # a path under a file, or a file where a folder is: not drawable
    for name in spec["links"]:
        link = target / f"link-{name}"
        if not (link.exists() or link.is_symlink()):
            link.symlink_to(outside if len(name) % 2 else root)
    kind = spec["manifest"]
    if kind == "garbage":
        (target / ARTIFACT_FILE).write_bytes(spec["garbage"])
    elif kind in ("thing", "index"):
        parts = {}
        for name in sorted(spec["listed"]):
            path = target / name
            if path.is_file() and not path.is_symlink():
                parts[name] = part_record(path)
        manifest = {"kind": kind, "format_version": 1, "parts": parts}
        (target / ARTIFACT_FILE).write_text(json.dumps(manifest))
    return target


def _own_artifact(target: Path) -> bool:
    """Whether replacing ``target`` loses nothing llmrec did not write: no folder, an empty
    one, or an llmrec "thing" artifact whose manifest lists every file in it."""
    if not target.exists() and not target.is_symlink():
        return True
    if target.is_symlink() or not target.is_dir():
        return False
    files = set()
    for dirpath, dirnames, filenames in os.walk(target):  # symlinks are entries, not followed
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        files |= {(base / f).relative_to(target).as_posix() for f in [*filenames, *links]}
    if not files:
        return True
    try:
        manifest = json.loads((target / ARTIFACT_FILE).read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    parts = manifest.get("parts")
    if manifest.get("kind") != "thing" or not isinstance(parts, dict):
        return False
    if not all(isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in parts.values()):
        return False
    return files - {ARTIFACT_FILE} <= set(parts)


@budget(2)
@given(spec=targets(), overwrite=st.booleans())
def test_writer_replaces_only_its_own_folders(scratch, spec, overwrite):
    with scratch() as root:
        target = _build(root, spec)
        allowed = _own_artifact(target) or (overwrite and not target.is_file())
        before = tree_snapshot(root)

        def write(tmp: Path) -> None:
            (tmp / "v.txt").write_text("new")

        try:
            write_artifact(target, "thing", write, overwrite=overwrite)
        except ArtifactError:
            assert not allowed, f"{spec}: refused a folder llmrec may replace"
            assert tree_snapshot(root) == before, f"{spec}: a refused save changed files"
            return
        assert allowed, f"{spec}: replaced a folder holding files llmrec did not write"
        open_artifact(target, "thing")
        assert (target / "v.txt").read_text() == "new"
        after = tree_snapshot(root)
        assert sorted(p.name for p in root.iterdir()) == ["outside.txt", "target"]
        assert after["outside.txt"] == before["outside.txt"]
        # Nothing the symlinks pointed at was followed and deleted.
        assert {k: v for k, v in after.items() if not k.startswith("target")} == {
            k: v for k, v in before.items() if not k.startswith("target")
        }
