"""Family 1, data loss: foreign files at --out, artifacts of another kind, re-saves, kills."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cases import Ctx, Fixtures, Run, add
from commands import CLI_WRITERS, KIND_OF, own_artifact, writer_args
from files import copy, leftovers
from kills import KILL_TARGETS, case_kill, kill_stages
from outputs import served_model
from processes import cli
from settings import FAMILIES, THESIS
from verdicts import (
    Verdict,
    api_refused,
    attempt,
    cli_refused,
    failed,
    handled,
    intact,
    kept_then_refused,
    short,
)


def foreign_content(target: Path, variant: str, outside: Path) -> dict[Path, str]:
    """Put someone's file in ``target`` (a file, nested, hidden, or a symlink to ``outside``);
    returns the files that must survive, path -> text."""
    target.mkdir(parents=True, exist_ok=True)
    files = {
        "file": target / "thesis.txt",
        "nested": target / "notes" / "draft.md",
        "hidden": target / ".env",
    }
    if variant == "symlink":
        outside.write_text(THESIS)
        (target / "link").symlink_to(outside)
        return {outside: THESIS}
    path = files[variant]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(THESIS)
    return {path: THESIS}


def symlink_kept(target: Path, variant: str) -> str | None:
    if variant == "symlink" and not (target / "link").is_symlink():
        return "the symlink in the folder was deleted"
    return None


def case_foreign_cli(writer: str, variant: str) -> Run:
    def run(ctx: Ctx) -> Verdict:
        target = ctx.work / "my-documents"
        files = foreign_content(target, variant, ctx.work / "outside.txt")
        p = cli(*writer_args(ctx.fx, writer, target))
        lost = symlink_kept(target, variant)
        return kept_then_refused(p, files, [target.name], accepted=lambda: None, lost=lost)

    return run


def api_saver(kind: str, fx: Fixtures) -> Callable[[Path], Any]:
    """An API save of a fixture to a path given later."""

    def save(target: Path) -> Any:
        if kind == "Recommender.save":
            return served_model(fx).save(target)
        if kind == "EmbeddingSet.save":
            from llmrec.encoders.job import EmbeddingSet

            return EmbeddingSet.load(fx.emb_items).save(target)
        if kind == "ItemIndex.save":
            from llmrec.retrieval import ItemIndex

            return ItemIndex.load(fx.index_flat).save(target)
        from llmrec.datasets import load, split

        return split(load(fx.data_a), "random", 3).save(target)

    return save


def case_foreign_api(kind: str) -> Run:
    def run(ctx: Ctx) -> Verdict:
        target = ctx.work / "my-documents"
        files = foreign_content(target, "file", ctx.work / "outside.txt")
        a = attempt(lambda: api_saver(kind, ctx.fx)(target))
        lost = intact(files)
        if lost:
            return failed(lost)
        return api_refused(a, [target.name], accepted=lambda _: None)

    return run


def case_extra_file(writer: str) -> Run:
    def run(ctx: Ctx) -> Verdict:
        target = copy(own_artifact(ctx.fx, writer), ctx.work / "my-artifact")
        files = {target / "notes.txt": THESIS}
        (target / "notes.txt").write_text(THESIS)
        p = cli(*writer_args(ctx.fx, writer, target))
        return kept_then_refused(p, files, [target.name], accepted=lambda: None)

    return run


OTHER_KIND = {
    "encode": "index build",
    "index build": "encode",
    "train": "data split",
    "data split": "train",
}
"""The writer whose artifact another writer's --out names."""


def case_other_kind(writer: str) -> Run:
    """--out naming an artifact of another kind: refused, and that artifact kept intact."""

    def run(ctx: Ctx) -> Verdict:
        from llmrec.artifacts import verify_artifact

        other = OTHER_KIND[writer]
        target = copy(own_artifact(ctx.fx, other), ctx.work / "their-artifact")
        p = cli(*writer_args(ctx.fx, writer, target))
        check = attempt(lambda: verify_artifact(target, KIND_OF[other]))
        if check.exc is not None and p.rc != 0:
            return failed(f"refused, but the {KIND_OF[other]} there is damaged: {check.exc}")
        return cli_refused(
            p,
            [target.name],
            accepted=lambda: f"the {KIND_OF[other]} folder was replaced by {KIND_OF[writer]}",
        )

    return run


def case_resave(writer: str) -> Run:
    """Writing over one's own previous artifact: succeeds, verifies, leaves nothing behind."""

    def run(ctx: Ctx) -> Verdict:
        from llmrec.artifacts import verify_artifact

        parent = ctx.work / "p"
        parent.mkdir()
        if writer == "Recommender.save":
            target = copy(ctx.fx.model_a, parent / "art")
            from llmrec import Recommender

            a = attempt(lambda: Recommender.load(ctx.fx.model_b, check_encoder=False).save(target))
            if a.exc is not None:
                return failed(f"re-saving a model over an older one raised {a.exc!r}")
            kind = "model"
        else:
            target = copy(own_artifact(ctx.fx, writer), parent / "art")
            args = writer_args(ctx.fx, writer, target)
            if writer == "index build":
                args = [*args, "--spec", "HNSW32"]
            p = cli(*args)
            if p.rc != 0:
                return failed(f"re-writing its own {writer} folder failed: {short(p.err)}")
            kind = KIND_OF[writer]
        check = attempt(lambda: verify_artifact(target, kind))
        if check.exc is not None:
            return failed(f"the new {kind} does not verify: {check.exc}")
        left = leftovers(parent, ["art"])
        if left:
            return failed(f"leftovers beside the artifact: {left}")
        return handled("replaced its own artifact; verifies; no leftovers")

    return run


def register() -> None:
    fam = FAMILIES[0]
    for writer in CLI_WRITERS:
        for variant in ("file", "nested", "hidden", "symlink"):
            add(
                fam,
                f"llmrec {writer} --out folder with a foreign {variant}",
                case_foreign_cli(writer, variant),
            )
    for kind in ("Recommender.save", "EmbeddingSet.save", "ItemIndex.save", "Split.save"):
        add(fam, f"{kind} into a folder with a foreign file", case_foreign_api(kind))
    for writer in CLI_WRITERS:
        add(fam, f"llmrec {writer} --out its own kind plus a foreign file", case_extra_file(writer))
    for writer in CLI_WRITERS:
        add(fam, f"llmrec {writer} --out an artifact of another kind", case_other_kind(writer))
    for writer in ("encode", "index build", "data split", "Recommender.save"):
        add(fam, f"{writer} replaces its own previous artifact", case_resave(writer), slow=True)
    for writer in KILL_TARGETS:
        for stage in kill_stages():
            add(fam, f"{writer} killed at {stage!r}", case_kill(writer, [stage], False))
    for writer in ("Recommender.save", "llmrec data split"):
        add(
            fam,
            f"{writer} killed at 'old-moved', then killed at 'written'",
            case_kill(writer, ["old-moved", "written"], False),
        )
        add(
            fam,
            f"{writer} killed at 'old-moved', then a failing save",
            case_kill(writer, ["old-moved"], True),
        )
