"""Saves killed at random points, one after another, for every kind of artifact folder.

Each step runs a save in a child process and kills it: at one of the writer's stages
(``LLMREC_TEST_KILL_AT``: after the start, once every part is written, between the two renames,
after the swap), after a random delay (anywhere, inside the parts too), or not at all. After
each step (or only after the last: kills then pile up) the folder loads as the previous or a new
version, never a mix; files beside it that llmrec did not write are untouched (a live writer's
temporary folder too); and the next complete save leaves nothing behind but the new artifact.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from llmrec.artifacts import KILL_ENV, KILL_STAGES
from tests.fuzz.conftest import Pair, budget
from tests.fuzz.faults import tree_snapshot
from tests.fuzz.samples import KINDS, marker, read, write

ROOT = Path(__file__).resolve().parents[2]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["complete", "timer", *KILL_STAGES]),
        st.integers(min_value=0, max_value=40),  # milliseconds, for "timer"
        st.booleans(),  # load and check after this step
    ),
    min_size=1,
    max_size=3,
)


def _save(kind: str, target: Path, version: int, how: str, delay_ms: int, sources: list[str]):
    """Run one save in a child process, interrupted as ``how`` says; True if it completed."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    env.pop(KILL_ENV, None)
    if how in KILL_STAGES:
        env[KILL_ENV] = how
    command = [sys.executable, "-m", "tests.fuzz.samples", kind, str(target), str(version)]
    child = subprocess.Popen(
        [*command, *sources],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    if how == "timer":
        assert child.stdout is not None
        child.stdout.readline()  # "ready": the imports are done, the save starts
        time.sleep(delay_ms / 1000)
        child.kill()
    _, err = child.communicate(timeout=300)
    status = child.returncode
    expected = {"complete": (0,), "timer": (0, -9)}.get(how, (137,))
    assert status in expected, f"{how}: exit status {status}\n{err.decode(errors='replace')}"
    return status == 0


def _foreign(root: Path) -> set[str]:
    """Files beside the target that are not llmrec's (or belong to a live writer)."""
    (root / "notes.txt").write_text("a user's notes")
    (root / ".target.keep").write_text("hidden, with the target's prefix")
    (root / ".target.notes").mkdir()
    (root / ".target.notes" / "a.txt").write_text("mine")
    (root / "target.bak").mkdir()
    (root / "target.bak" / "artifact.json").write_text("{}")
    live = root / f".target.{os.getpid()}.live.tmp"  # a writer that is still running
    live.mkdir()
    (live / "part").write_text("in progress")
    return {p.name for p in root.iterdir()}


def _check_kills(kind: str, root: Path, steps: list, sources: list[str]) -> None:
    target = root / "target"
    names = _foreign(root)
    beside = tree_snapshot(root)
    write(kind, target, 0, sources)
    possible = {0}  # the versions the target may hold
    for version, (how, delay_ms, check) in enumerate(steps, start=1):
        done = _save(kind, target, version, how, delay_ms, sources)
        if done or how == "swapped":
            possible = {version}
        elif how == "timer":
            possible |= {version}
        if check:
            found = read(kind, target, sources)
            assert found in {marker(kind, v) for v in possible}, (steps, version, found)
            possible = {v for v in possible if marker(kind, v) == found}
        now = tree_snapshot(root)
        assert {k: now.get(k) for k in beside} == beside, f"{steps}: a foreign file changed"
    found = read(kind, target, sources)
    assert found in {marker(kind, v) for v in possible}, (steps, found)
    final = len(steps) + 1
    write(kind, target, final, sources)
    assert read(kind, target, sources) == marker(kind, final)
    assert {p.name for p in root.iterdir()} == names | {"target"}, f"{steps}: leftovers"
    now = tree_snapshot(root)
    assert {k: now.get(k) for k in beside} == beside, f"{steps}: a foreign file changed"


@budget(0.4)
@given(steps=STEPS)
def test_killed_saves_of_a_folder(scratch, steps):
    with scratch() as root:
        _check_kills("thing", root, steps, [])


@budget(0.1)
@given(steps=STEPS)
def test_killed_saves_of_an_index(scratch, steps):
    with scratch() as root:
        _check_kills("index", root, steps, [])


@budget(0.1)
@given(steps=STEPS)
def test_killed_saves_of_embeddings(scratch, steps):
    with scratch() as root:
        _check_kills("embeddings", root, steps, [])


@budget(0.1)
@given(steps=STEPS)
def test_killed_saves_of_a_split(scratch, steps):
    with scratch() as root:
        _check_kills("split", root, steps, [])


@budget(0.05)
@given(steps=STEPS.map(lambda s: s[:2]))
def test_killed_saves_of_a_model(scratch, model_pair: Pair, steps):
    with scratch() as root:
        _check_kills("model", root, steps, [str(model_pair.a), str(model_pair.b)])


@budget(0.25)
@given(kind=st.sampled_from(KINDS), mask=st.sampled_from([0o002, 0o022, 0o027, 0o077]))
def test_every_part_follows_the_umask(scratch, model_pair: Pair, kind, mask):
    sources = [str(model_pair.a), str(model_pair.b)]
    with scratch() as root:
        previous = os.umask(mask)
        try:
            write(kind, root / "target", 1, sources)
        finally:
            os.umask(previous)
        for path in [root / "target", *(root / "target").rglob("*")]:
            want = (0o777 if path.is_dir() else 0o666) & ~mask
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert mode == want, f"{kind}: {path.relative_to(root)} is {mode:o}, umask {mask:03o}"
