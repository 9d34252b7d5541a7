"""Killing a writer at each stage of an artifact save, and checking what the path holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cases import Ctx, Fixtures, Run
from commands import build_args, writer_args
from files import copy, leftovers
from processes import cli, fork_call
from settings import THESIS
from verdicts import Verdict, attempt, failed, handled, harness_error, intact, short


@dataclass
class KillTarget:
    """A writer to kill: how to put the old artifact at the path, write the new one over it
    (with extra environment; returns the exit code), tell which of the two the path holds
    ("old", "new" or anything else), and run a save that fails."""

    old: Callable[[Fixtures, Path], None]
    write: Callable[[Fixtures, Path, dict[str, str]], int]
    identity: Callable[[Fixtures, Path], str]
    fail_write: Callable[[Fixtures, Path], int]


def _model_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    from llmrec import Recommender

    return fork_call(lambda: Recommender.load(fx.model_b, check_encoder=False).save(target), env)


def _model_identity(fx: Fixtures, target: Path) -> str:
    from llmrec import Recommender

    checksum = Recommender.load(target, check_encoder=False).data_checksum
    return {fx.ref["checksum"]["a"]: "old", fx.ref["checksum"]["b"]: "new"}.get(checksum, "?")


def _broken_write(fx: Fixtures, target: Path) -> int:
    """A save whose writer fails halfway (a full disk)."""
    from llmrec.artifacts import write_artifact

    def broken(tmp: Path) -> None:
        (tmp / "weights.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    return fork_call(lambda: write_artifact(target, "model", broken))


def _emb_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    from llmrec.encoders.job import EmbeddingSet

    return fork_call(lambda: EmbeddingSet.load(fx.emb_users).save(target), env)


def _emb_identity(fx: Fixtures, target: Path) -> str:
    from llmrec.encoders.job import EmbeddingSet

    return {"items": "old", "users": "new"}.get(EmbeddingSet.load(target).manifest["what"], "?")


def _index_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    return cli(*build_args(fx.emb_items, target, "--spec", "HNSW32"), env=env).rc


def _index_identity(fx: Fixtures, target: Path) -> str:
    import numpy as np

    from llmrec.retrieval import ItemIndex

    spec = ItemIndex.load(target).spec
    np.load(target / "item_ids.npy", allow_pickle=False)
    return {"Flat": "old", "HNSW32": "new"}.get(spec, "?")


def _split_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    return cli(*writer_args(fx, "data split", target), env=env).rc


def _split_identity(fx: Fixtures, target: Path) -> str:
    import pandas as pd

    from llmrec.artifacts import open_artifact

    open_artifact(target, "split")
    seed = json.loads((target / "split.json").read_text())["seed"]
    ref = {1: fx.split_s1, 2: fx.split_s2}.get(seed)
    if ref is None:
        return "?"
    for part in ("train", "valid", "test"):
        if not pd.read_parquet(target / f"{part}.parquet").equals(
            pd.read_parquet(ref / f"{part}.parquet")
        ):
            return f"mixed (split.json says seed {seed}, {part} is not from it)"
    return {1: "old", 2: "new"}[seed]


def _split_fail(fx: Fixtures, target: Path) -> int:
    return cli("data", "split", fx.root / "no-such-dataset", "--out", target).rc


def _copier(attr: str) -> Callable[[Fixtures, Path], None]:
    def put(fx: Fixtures, target: Path) -> None:
        copy(getattr(fx, attr), target)

    return put


KILL_TARGETS = {
    "Recommender.save": KillTarget(
        _copier("model_a"), _model_write, _model_identity, _broken_write
    ),
    "EmbeddingSet.save": KillTarget(_copier("emb_items"), _emb_write, _emb_identity, _broken_write),
    "llmrec index build": KillTarget(
        _copier("index_flat"), _index_write, _index_identity, _broken_write
    ),
    "llmrec data split": KillTarget(
        _copier("split_s1"), _split_write, _split_identity, _split_fail
    ),
}
KILL_ENV = "LLMREC_TEST_KILL_AT"


DEFAULT_KILL_STAGES = ("started", "written", "old-moved", "swapped")


def kill_stages() -> tuple[str, ...]:
    """The writer's kill points (``llmrec.artifacts.KILL_STAGES``; the issue's four when this
    llmrec has no such hook, whose cases then report that the hook did not fire)."""
    try:
        from llmrec.artifacts import KILL_STAGES
    except ImportError:
        return DEFAULT_KILL_STAGES
    return tuple(KILL_STAGES)


def case_kill(writer: str, stages: list[str], then_fail: bool) -> Run:
    """Kill ``writer`` at each of ``stages`` in turn (then, with ``then_fail``, run a save that
    fails): the path must hold the old or the new artifact, the file beside it must survive, and
    the next save must succeed and leave nothing behind."""

    def run(ctx: Ctx) -> Verdict:
        kt = KILL_TARGETS[writer]
        parent = ctx.work / "p"
        parent.mkdir()
        target = parent / "art"
        kt.old(ctx.fx, target)
        (parent / "thesis.txt").write_text(THESIS)
        for stage in stages:
            code = kt.write(ctx.fx, target, {KILL_ENV: stage})
            if code != 137:
                return harness_error(f"the kill hook did not fire at {stage!r} (exit {code})")
        if then_fail and kt.fail_write(ctx.fx, target) == 0:
            return harness_error("the failing save did not fail")
        lost = intact({parent / "thesis.txt": THESIS})
        if lost:
            return failed(lost)
        who = attempt(lambda: kt.identity(ctx.fx, target))
        if who.exc is not None:
            return failed(f"after the kill nothing loads at the path: {short(repr(who.exc))}")
        if who.value not in ("old", "new"):
            return failed(f"after the kill the path holds {who.value}")
        code = kt.write(ctx.fx, target, {})
        if code != 0:
            return failed(
                f"after the kill ({who.value} artifact loaded) the next save exits {code}"
            )
        again = attempt(lambda: kt.identity(ctx.fx, target))
        if again.value != "new":
            return failed(f"the next save left {again.value or again.exc!r}, not the new artifact")
        left = leftovers(parent, ["art", "thesis.txt"])
        if left:
            return failed(f"leftovers after the next save: {left}")
        return handled(f"the {who.value} artifact loaded after the kill; next save clean")

    return run
