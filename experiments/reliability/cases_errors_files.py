"""Family 4, raw tracebacks and unclear errors, from files: other encodings, unreadable
files and folders, --out that is a file, read-only or '.'."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cases import Ctx, Run, add
from commands import (
    CLI_WRITERS,
    Args,
    build_args,
    encode_args,
    out_args,
    search_args,
    writer_args,
)
from files import atomic_copy, cache_copy, chmod, copy, read_atomic
from processes import cli
from settings import DROP_CAPS, FAMILIES, HANDLED, THESIS
from verdicts import (
    PERMISSIONS_IGNORED,
    Verdict,
    attempt,
    cli_accepted,
    cli_refused,
    failed,
    kept_then_refused,
)

Decoded = tuple[Path, str, Callable[[Any], bool]]
"""A file to read, the name that an error must give, and a test of what was read."""
ENCODINGS = {"latin-1": "latin-1", "utf-16": "utf-16", "BOM": "utf-8-sig"}


def _atomic_encoded(ctx: Ctx, kind: str) -> Decoded:
    """Dataset A with a few accented names, one atomic file (``kind``'s suffix) in another
    encoding than UTF-8."""
    import pandas as pd

    src, folder = ctx.fx.data_a, ctx.work / "latin"
    folder.mkdir()
    inter, items = read_atomic(src / f"{src.name}.inter"), read_atomic(src / f"{src.name}.item")
    suffix, encoding = kind.split()[1], ENCODINGS[kind.split()[-1]]
    inter.loc[inter["user_id:token"] == "10", "user_id:token"] = "José"
    items.loc[items["item_id:token"] == "1", "movie_title:token_seq"] = "Café"
    files = {".inter": inter, ".item": items}
    if suffix == ".user":
        files[".user"] = pd.DataFrame(
            {"user_id:token": ["10", "20"], "occupation:token": ["médico", "writer"]}
        )
    for ext, frame in files.items():
        enc = encoding if ext == suffix else "utf-8"
        frame.to_csv(folder / f"latin{ext}", sep="\t", index=False, encoding=enc)
    want = {
        ".item": lambda d: "Café" in set(d.items.get("movie_title", [])),
        ".inter": lambda d: "José" in set(d.user_ids),
        ".user": lambda d: "médico" in set(d.users.get("occupation", [])),
    }[suffix]
    return folder, f"latin{suffix}", want


def _raw_movielens(ctx: Ctx) -> Decoded:
    """Raw MovieLens files (u.data, u.item) with a Latin-1 u.item, as the originals are."""
    src, folder = ctx.fx.data_a, ctx.work / "latin"
    folder.mkdir()
    inter = read_atomic(src / f"{src.name}.inter")
    numeric = inter[inter["item_id:token"].str.isdigit()]
    numeric.to_csv(folder / "u.data", sep="\t", header=False, index=False)
    lines = [
        f"{i}|{'Café' if i == '1' else 'Movie ' + i} (1995)|01-Jan-1995||url|"
        + "|".join(["0"] * 19)
        for i in sorted(set(numeric["item_id:token"]), key=int)
    ]
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder, "u.item", lambda d: "Café" in set(d.items["title"])


def _latin_csv(ctx: Ctx) -> Decoded:
    target = ctx.work / "ratings.csv"
    target.write_bytes("user_id,item_id,rating\nJosé,1,4\nJosé,2,3\nAnn,1,5\n".encode("latin-1"))
    return target, "ratings.csv", lambda d: "José" in set(d.user_ids)


def case_encoding(kind: str) -> Run:
    """Non-UTF-8 files: refused naming the file, or read with the right characters."""

    def run(ctx: Ctx) -> Verdict:
        from llmrec.datasets import load

        if kind.startswith("atomic "):
            target, culprit, want = _atomic_encoded(ctx, kind)
        elif kind == "raw MovieLens u.item latin-1":
            target, culprit, want = _raw_movielens(ctx)
        else:
            target, culprit, want = _latin_csv(ctx)
        p = cli("data", "describe", target)

        def check() -> str | None:
            a = attempt(lambda: load(target))
            if a.exc is not None:
                return f"the CLI accepted it, the API raised {a.exc!r}"
            return None if want(a.value) else "characters decoded wrongly"

        if kind.startswith("raw MovieLens"):  # the original ml-100k files are Latin-1
            return cli_accepted(p, check)
        return cli_refused(p, [culprit], accepted=check)

    return run


Locked = tuple[Args, Path, list[str]]
"""A command, the path to make unreadable for it, and the names that its error must give."""


def perm_case(lock: Callable[[Ctx], Locked]) -> Run:
    """Run a CLI command without root's permission override, ``path`` made unreadable."""

    def run(ctx: Ctx) -> Verdict:
        if DROP_CAPS is None:
            return PERMISSIONS_IGNORED
        args, path, names = lock(ctx)
        with chmod(path, 0):
            p = cli(*args, drop_caps=True)
        return cli_refused(p, names, accepted=lambda: "exit 0 although the path was unreadable")

    return run


def _locked_copy(ctx: Ctx, fixture: Path, name: str, part: str) -> tuple[Path, Path]:
    """A copy of a fixture, and the path in it to lock: the folder or one of its parts."""
    folder = copy(fixture, ctx.work / name)
    return folder, folder if part == "folder" else folder / part


def _perm_dataset(part: str) -> Callable[[Ctx], Locked]:
    def lock(ctx: Ctx) -> Locked:
        folder = atomic_copy(ctx, "locked")
        path = folder if part == "folder" else folder / f"locked.{part}"
        return ["data", "describe", folder], path, [path.name, "permission"]

    return lock


def _perm_model(part: str) -> Callable[[Ctx], Locked]:
    def lock(ctx: Ctx) -> Locked:
        folder, path = _locked_copy(ctx, ctx.fx.model_a, "locked-model", part)
        return ["recommend", "--model", folder, "--users", "10"], path, [path.name]

    return lock


def _perm_emb(part: str) -> Callable[[Ctx], Locked]:
    def lock(ctx: Ctx) -> Locked:
        folder, path = _locked_copy(ctx, ctx.fx.emb_items, "locked-emb", part)
        return build_args(folder, ctx.work / "idx"), path, [path.name]

    return lock


def _perm_index(ctx: Ctx) -> Locked:
    folder, _ = _locked_copy(ctx, ctx.fx.index_flat, "locked-index", "folder")
    return search_args(folder, ctx.fx.emb_users, "10"), folder, [folder.name]


def _perm_cache(part: str) -> Callable[[Ctx], Locked]:
    def lock(ctx: Ctx) -> Locked:
        folder = ctx.work / "locked-cache"
        folder.mkdir()
        cache = cache_copy(ctx.fx, folder / "cache.sqlite")
        path = folder if part == "folder" else cache
        args = encode_args(ctx.fx.data_a, ctx.fx.bert, ctx.work / "emb", "--cache", cache)
        return args, path, [path.name]

    return lock


def _perm_encoder(ctx: Ctx) -> Locked:
    model, _ = _locked_copy(ctx, ctx.fx.bert, "locked-encoder", "folder")
    return encode_args(ctx.fx.data_a, model, ctx.work / "emb"), model, [model.name]


PERMISSIONS: list[tuple[str, Callable[[Ctx], Locked]]] = [
    ("data describe: dataset folder unreadable", _perm_dataset("folder")),
    ("data describe: .inter unreadable", _perm_dataset("inter")),
    ("data describe: .item unreadable", _perm_dataset("item")),
    ("recommend: model folder unreadable", _perm_model("folder")),
    ("recommend: weights.safetensors unreadable", _perm_model("weights.safetensors")),
    ("index build: embeddings folder unreadable", _perm_emb("folder")),
    ("index build: vectors.npy unreadable", _perm_emb("vectors.npy")),
    ("index search: index folder unreadable", _perm_index),
    ("encode: cache file unreadable", _perm_cache("file")),
    ("encode: cache folder unreadable", _perm_cache("folder")),
    ("encode: encoder folder unreadable", _perm_encoder),
]


def case_out_file(writer: str) -> Run:
    """--out naming a file (for evaluate, whose --out is a file: a folder)."""

    def run(ctx: Ctx) -> Verdict:
        if writer == "evaluate":  # its --out is a file: a folder is the wrong kind here
            target = ctx.work / "reports"
            target.mkdir()
            (target / "thesis.txt").write_text(THESIS)
            files = {target / "thesis.txt": THESIS}
        else:
            target = ctx.work / "notes.txt"
            target.write_text(THESIS)
            files = {target: THESIS}
        p = cli(*out_args(ctx.fx, writer, target))
        return kept_then_refused(p, files, [target.name, "--out"])

    return run


def case_out_readonly(writer: str) -> Run:
    """--out in a read-only folder: refused before any fitting."""

    def run(ctx: Ctx) -> Verdict:
        if DROP_CAPS is None:
            return PERMISSIONS_IGNORED
        parent = ctx.work / "readonly"
        parent.mkdir()
        target = parent / ("report.json" if writer == "evaluate" else "new")
        with chmod(parent, 0o555):
            p = cli(*out_args(ctx.fx, writer, target), drop_caps=True)
        verdict = cli_refused(p, [parent.name, "--out"])
        if verdict.outcome == HANDLED and re.search(r"^fit |\bfit \S+", p.out, re.M):
            return failed(f"refused only after fitting: {verdict.reason}")
        return verdict

    return run


def case_out_dot(writer: str) -> Run:
    """--out . in a working folder that holds someone's file."""

    def run(ctx: Ctx) -> Verdict:
        here = ctx.work / "my-project"
        here.mkdir()
        (here / "thesis.txt").write_text(THESIS)
        p = cli(*writer_args(ctx.fx, writer, "."), cwd=here)
        replaced = None if here.is_dir() else "the working folder was replaced"
        files = {here / "thesis.txt": THESIS}
        return kept_then_refused(p, files, [here.name, "'.'", "--out"], lost=replaced)

    return run


def register() -> None:
    fam = FAMILIES[3]
    for kind in (
        "atomic .item latin-1",
        "atomic .inter latin-1",
        "atomic .user latin-1",
        "atomic .inter utf-16",
        "atomic .inter utf-8 BOM",
        "raw MovieLens u.item latin-1",
        "CSV latin-1",
    ):
        add(fam, f"data describe: {kind}", case_encoding(kind))
    for label, lock in PERMISSIONS:
        add(fam, label, perm_case(lock), slow=label.startswith(("recommend", "encode")))
    for writer in (*CLI_WRITERS, "evaluate"):
        kind = "a folder" if writer == "evaluate" else "a file"
        add(fam, f"{writer} --out {kind}", case_out_file(writer))
    for writer in (*CLI_WRITERS, "evaluate"):
        add(fam, f"{writer} --out in a read-only folder", case_out_readonly(writer))
    for writer in CLI_WRITERS:
        add(fam, f"{writer} --out . (a folder with a foreign file)", case_out_dot(writer))
