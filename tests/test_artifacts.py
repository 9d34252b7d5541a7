"""The artifact-folder writer: refusal of foreign folders, recovery after kills, manifests."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec.artifacts import (
    ARTIFACT_FILE,
    KILL_ENV,
    KILL_STAGES,
    check_target,
    open_artifact,
    verify_artifact,
    write_artifact,
)
from llmrec.errors import ArtifactError

ROOT = Path(__file__).resolve().parents[1]
WRITER = (
    "import sys\n"
    "from llmrec.artifacts import write_artifact\n"
    "def write(tmp):\n"
    "    (tmp / 'v.txt').write_text(sys.argv[2])\n"
    "    (tmp / 'sub').mkdir()\n"
    "    (tmp / 'sub' / 'w.txt').write_text(sys.argv[2] * 100)\n"
    "write_artifact(sys.argv[1], 'thing', write)\n"
)


def put(path: Path, text: str, kind: str = "thing") -> Path:
    def write(tmp: Path) -> None:
        (tmp / "v.txt").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "w.txt").write_text(text * 100)

    return write_artifact(path, kind, write)


def killed_write(path: Path, text: str, stage: str) -> int:
    env = {**os.environ, KILL_ENV: stage, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), text], env=env, check=False)
    return done.returncode


def value(path: Path) -> str:
    open_artifact(path, "thing")
    return (path / "v.txt").read_text()


def test_round_trip_and_manifest(tmp_path):
    folder = put(tmp_path / "a", "one")
    manifest = verify_artifact(folder, "thing")
    assert manifest["kind"] == "thing" and set(manifest["parts"]) == {"v.txt", "sub/w.txt"}
    put(folder, "two")
    assert value(folder) == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_failed_write_keeps_the_old_artifact(tmp_path):
    folder = put(tmp_path / "a", "one")

    def broken(tmp: Path) -> None:
        (tmp / "v.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_artifact(folder, "thing", broken)
    assert value(folder) == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_foreign_folder_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "thesis.txt").write_text("years of work")
    with pytest.raises(ArtifactError, match=r"not an llmrec thing folder.*--overwrite"):
        put(target, "one")
    assert (target / "thesis.txt").read_text() == "years of work"
    write_artifact(target, "thing", lambda tmp: (tmp / "v.txt").write_text("x"), overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == [ARTIFACT_FILE, "v.txt"]


def test_other_kind_and_unlisted_files_are_refused(tmp_path):
    folder = put(tmp_path / "a", "one", kind="index")
    with pytest.raises(ArtifactError, match="llmrec index folder, not a thing folder"):
        put(folder, "two")
    folder = put(tmp_path / "b", "one")
    (folder / "sub" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"did not write: \['sub/notes.txt'\]"):
        put(folder, "two")
    assert (folder / "sub" / "notes.txt").read_text() == "mine"


def test_file_target_and_empty_folder(tmp_path):
    (tmp_path / "f").write_text("data")
    with pytest.raises(ArtifactError, match="is a file"):
        put(tmp_path / "f", "one")
    (tmp_path / "empty").mkdir()
    assert value(put(tmp_path / "empty", "one")) == "one"
    with pytest.raises(ArtifactError, match="not a root"):
        check_target("/", "thing")


def test_load_names_the_damaged_or_missing_part(tmp_path):
    folder = put(tmp_path / "a", "one")
    (folder / "sub" / "w.txt").write_text("two" * 100)
    with pytest.raises(ArtifactError, match=r"part sub/w\.txt does not match its SHA-256"):
        open_artifact(folder, "thing")
    (folder / "sub" / "w.txt").unlink()
    with pytest.raises(ArtifactError, match=r"part sub/w\.txt is missing"):
        open_artifact(folder, "thing")
    (folder / ARTIFACT_FILE).write_text("{}")
    with pytest.raises(ArtifactError, match="not an llmrec artifact manifest"):
        open_artifact(folder, "thing")
    manifest = {"kind": "thing", "format_version": 1, "parts": {"../x": {"sha256": "0"}}}
    (folder / ARTIFACT_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="outside the folder"):
        open_artifact(folder, "thing")
    assert open_artifact(tmp_path / "missing", "thing") is None


@pytest.mark.parametrize("stage", KILL_STAGES)
def test_kill_at_any_stage_keeps_old_or_new(tmp_path, stage):
    folder = put(tmp_path / "model", "old")
    (tmp_path / "keep.txt").write_text("not ours")
    assert killed_write(folder, "new", stage) == 137
    # A load finds a complete artifact, the old one or the new one, never a mix.
    assert value(folder) in ("old", "new")
    if stage == "old-moved":
        assert value(folder) == "old"
    put(folder, "next")
    assert value(folder) == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "model"]


def test_failing_save_after_a_kill_between_renames_keeps_the_old_one(tmp_path):
    folder = put(tmp_path / "model", "old")
    assert killed_write(folder, "new", "old-moved") == 137
    assert not folder.exists() and (tmp_path / ".model.old").is_dir()

    def broken(tmp: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_artifact(folder, "thing", broken)
    assert value(folder) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_kill_after_swap_removes_the_stale_old_copy(tmp_path):
    folder = put(tmp_path / "model", "old")
    assert killed_write(folder, "new", "swapped") == 137
    assert (tmp_path / ".model.old").is_dir()
    assert value(folder) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_old_copy_beside_a_foreign_folder_is_never_deleted(tmp_path):
    folder = put(tmp_path / "model", "old")
    assert killed_write(folder, "new", "old-moved") == 137
    folder.mkdir()
    (folder / "mine.txt").write_text("user data")
    with pytest.raises(ArtifactError, match="both exist"):
        put(folder, "next")
    assert (tmp_path / ".model.old" / "v.txt").read_text() == "old"
    assert (folder / "mine.txt").read_text() == "user data"


def test_leftovers_of_dead_writers_are_cleaned(tmp_path):
    folder = put(tmp_path / "model", "old")
    for _ in range(3):
        assert killed_write(folder, "new", "written") == 137
    # Each write cleans what the previous killed one left: at most one leftover at a time.
    assert len(list(tmp_path.glob(".model.*.tmp"))) == 1
    live = tmp_path / f".model.{os.getpid()}.abc123.tmp"
    live.mkdir()
    put(folder, "next")
    assert [p.name for p in tmp_path.glob(".model.*.tmp")] == [live.name]


def test_permissions_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        folder = put(tmp_path / "model", "one")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "v.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((folder / ARTIFACT_FILE).stat().st_mode) == 0o644
