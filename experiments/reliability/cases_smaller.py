"""Family 5, smaller: file modes under a umask, odd user ids, a killed encode's cache."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from cases import Ctx, Run, add
from commands import out_args, recommend_cli
from outputs import first_recs, recommend_rows, recs_diff, recs_of, served_model
from processes import cli, fork_call
from settings import FAMILIES
from verdicts import (
    Verdict,
    api_accepted,
    api_refused,
    attempt,
    cli_accepted,
    failed,
    handled,
    harness_error,
    short,
)


def modes_ok(folder: Path, mask: int) -> str | None:
    """A problem when a file or folder's mode does not follow ``mask`` (022 or 077)."""
    paths = [folder, *folder.rglob("*")] if folder.is_dir() else [folder]
    for path in paths:
        mode = path.stat().st_mode & 0o777
        if mask == 0o022:
            need = 0o755 if path.is_dir() else 0o644
            if mode & need != need:
                return f"{path.name} is {oct(mode)} under umask 022 (want {oct(need)})"
        elif mode & 0o077:
            return f"{path.name} is {oct(mode)} under umask 077"
    return None


def case_umask(writer: str, mask: int) -> Run:
    def run(ctx: Ctx) -> Verdict:
        os.umask(mask)
        target = ctx.work / ("report.json" if writer == "evaluate" else "art")
        if writer == "Recommender.save":
            served_model(ctx.fx).save(target)
        else:
            p = cli(*out_args(ctx.fx, writer, target))
            if p.rc != 0:
                return failed(f"{writer} failed: {short(p.err)}")
        problem = modes_ok(target, mask)
        return failed(problem) if problem else handled(f"modes follow umask {oct(mask)}")

    return run


def case_user_id(users: Any, expect_ok: bool) -> Run:
    """Odd user ids: refused naming the user id, or (``expect_ok``) served as user 10."""

    def run(ctx: Ctx) -> Verdict:
        rec = served_model(ctx.fx)
        a = attempt(lambda: recs_of(rec, users=users))
        if not expect_ok:
            return api_refused(a, ["user", "id"])
        return api_accepted(a, lambda got: recs_diff(got, first_recs(ctx.fx.ref["recs"], 1)))

    return run


def case_user_id_cli(ctx: Ctx) -> Verdict:
    p = recommend_cli(ctx.fx.model_a, " 10 ")

    def check() -> str | None:
        rows = recommend_rows(p.out)
        ref = ctx.fx.ref["recs"]
        served, items = next(iter(rows.values()), ("", []))
        if served != "model" or items != [i for i in ref["ids"][0] if i]:
            return f"' 10 ' served {served!r} {items[:3]}, not user 10's recommendations"
        return None

    return cli_accepted(p, check)


def case_resume(ctx: Ctx) -> Verdict:
    """The cache keeps finished work of a killed run (commits at least every few seconds)."""
    import numpy as np

    from llmrec.encoders.base import TextEncoder
    from llmrec.encoders.cache import CachedEncoder, EmbeddingCache

    calls = ctx.work / "calls"

    class Slow(TextEncoder):
        dimension = 4
        fingerprint = "campaign-slow-encoder"

        def __init__(self, die_after: int | None) -> None:
            self.die_after, self.calls = die_after, 0

        def _encode_batch(self, texts: list[str]) -> np.ndarray:
            self.calls += 1
            with calls.open("a") as fh:
                fh.write(f"{len(texts)}\n")
            if self.die_after is not None and self.calls > self.die_after:
                os._exit(137)
            time.sleep(0.5)
            return np.array([[len(t), 1.0, 2.0, 3.0] for t in texts], dtype=np.float32)

    texts = [f"text number {i}" for i in range(120)]
    cache = ctx.work / "cache.sqlite"
    code = fork_call(lambda: CachedEncoder(Slow(12), cache).encode(texts, batch_size=4))
    if code != 137:
        return harness_error(f"the slow encoder was not killed (exit {code})")
    db = EmbeddingCache(cache, Slow.fingerprint, 4)
    saved = len(db)
    db.close()
    if saved == 0:
        return failed("a run killed after 6 s of encoding (12 batches) left nothing in the cache")
    calls.write_text("")
    CachedEncoder(Slow(None), cache).encode(texts, batch_size=4)
    redone = sum(int(n) for n in calls.read_text().split())
    if redone > len(texts) - saved:
        return failed(f"the rerun encoded {redone} texts although {saved} were cached")
    return handled(f"{saved} of 48 finished texts survived the kill; the rerun encoded {redone}")


def register() -> None:
    fam = FAMILIES[4]
    for writer in ("encode", "index build", "data split", "Recommender.save", "evaluate"):
        add(
            fam,
            f"{writer} under umask 022: readable by group and others",
            case_umask(writer, 0o022),
            slow=writer == "encode",
        )
    for writer in ("index build", "data split"):
        add(fam, f"{writer} under umask 077: private", case_umask(writer, 0o077))
    add(fam, "recommend('')", case_user_id("", False))
    add(fam, "recommend(None)", case_user_id(None, False))
    add(fam, "recommend([nan])", case_user_id([float("nan")], False))
    add(fam, "recommend(['10', ''])", case_user_id(["10", ""], False))
    add(fam, "recommend(' 10 ') is user 10", case_user_id([" 10 "], True))
    add(fam, "llmrec recommend --users ' 10 ' is user 10", case_user_id_cli, slow=True)
    add(fam, "encode cache keeps work of a killed run", case_resume)
