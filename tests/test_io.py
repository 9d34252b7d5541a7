from __future__ import annotations

import pytest

from llmrec.io import atomic_dir


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "model"
    atomic_dir(target, lambda tmp: (tmp / "a.txt").write_text("one"))
    atomic_dir(target, lambda tmp: (tmp / "b.txt").write_text("two"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_dir_failure_keeps_old_folder(tmp_path):
    target = tmp_path / "model"
    atomic_dir(target, lambda tmp: (tmp / "a.txt").write_text("one"))

    def broken(tmp):
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_dir(target, broken)
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
