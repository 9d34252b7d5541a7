from __future__ import annotations

import os
import stat

import pytest

from llmrec.io import atomic_write, atomic_write_text


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = atomic_write_text(tmp_path / "report.json", "one")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(target, broken)
    assert target.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_atomic_write_cleans_dead_writers_leftovers_and_follows_umask(tmp_path):
    dead = tmp_path / ".report.json.999999999.abc_12.tmp"
    live = tmp_path / f".report.json.{os.getpid()}.abc_12.tmp"
    other = tmp_path / ".report.json.old.999999999.abc_12.tmp"
    for path in (dead, live, other):
        path.write_text("left over")
    previous = os.umask(0o027)
    try:
        target = atomic_write_text(tmp_path / "report.json", "one")
    finally:
        os.umask(previous)
    assert not dead.exists() and live.exists() and other.exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
