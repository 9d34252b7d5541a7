"""Family 4, raw tracebacks and unclear errors, from artifacts: manifests without a key,
embedding caches that are not caches."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from typing import Any

from artifact_verdicts import ARTIFACTS, cache_verdict
from cases import Ctx, Run, add
from commands import build_args
from files import cache_copy, copy, edit_json, reseal
from processes import cli
from settings import FAMILIES
from verdicts import Verdict, api_refused, attempt, cli_refused


def case_missing_key(artifact: str, part: str, key: str) -> Run:
    """A manifest without ``key`` (or a JSON list, or artifact.json with an odd part), resealed
    unless it is artifact.json itself: refused naming the file."""

    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        source = ARTIFACTS[artifact][0]
        folder = copy(source(fx), ctx.work / f"mut-{artifact}")
        if key == "a list":
            edit_json(folder / part, lambda _: [])
        elif part == "artifact.json" and key == "sha256 of a part":
            edit_json(
                folder / part, lambda m: {**m, "parts": {**m["parts"], "config.json": {"bytes": 1}}}
            )
        elif part == "artifact.json" and key == "a part outside the folder":
            edit_json(
                folder / part,
                lambda m: {
                    **m,
                    "parts": {**m["parts"], "../escape": {"sha256": "0" * 64, "bytes": 1}},
                },
            )
        else:
            edit_json(folder / part, lambda m: {k: v for k, v in m.items() if k != key})
        if part != "artifact.json":
            reseal(folder)
        names = [part, folder.name] + ([key] if key not in ("a list",) else [])
        if artifact == "model":
            from llmrec import Recommender

            return api_refused(attempt(lambda: Recommender.load(folder)), names)
        if artifact == "index":
            from llmrec.retrieval import ItemIndex

            def search() -> Any:
                index = ItemIndex.load(folder, fingerprint=fx.ref["items_fingerprint"])
                return index.search(__import__("numpy").ones((1, index.dimension), "float32"), 5)

            return api_refused(attempt(search), names)
        return cli_refused(cli(*build_args(folder, ctx.work / "idx")), names)

    return run


def case_cache_file(kind: str) -> Run:
    """An embedding cache that is not one: refused naming it, or encodes correctly."""

    def run(ctx: Ctx) -> Verdict:
        cache = ctx.work / "cache.sqlite"
        if kind == "garbage":
            cache.write_bytes(random.Random(ctx.seed).randbytes(8192))
        elif kind == "truncated":
            cache_copy(ctx.fx, cache)
            data = cache.read_bytes()
            cache.write_bytes(data[: len(data) // 2])
        elif kind == "a folder":
            cache.mkdir()
        elif kind == "another schema":
            with contextlib.closing(sqlite3.connect(cache)) as db:
                db.execute("CREATE TABLE embeddings (name TEXT, value REAL)")
                db.execute("CREATE TABLE models (x INTEGER)")
                db.commit()
        elif kind == "a text file":
            cache.write_text("hello, this is not a database\n" * 100)
        elif kind == "empty":
            cache.write_bytes(b"")
        return cache_verdict(ctx, cache)

    return run


def register() -> None:
    fam = FAMILIES[3]
    for key in (
        "format_version",
        "kind",
        "config",
        "strings",
        "encoder_fingerprint",
        "user_ids",
        "item_ids",
        "data_checksum",
    ):
        add(
            fam,
            f"model config.json without {key!r} (resealed)",
            case_missing_key("model", "config.json", key),
        )
    add(
        fam,
        "model config.json is a JSON list (resealed)",
        case_missing_key("model", "config.json", "a list"),
    )
    for key in ("what", "fingerprint", "count", "dimension"):
        add(
            fam,
            f"embeddings manifest.json without {key!r} (resealed)",
            case_missing_key("embeddings", "manifest.json", key),
        )
    for key in (
        "format_version",
        "fingerprint",
        "dimension",
        "spec",
        "normalize",
        "seed",
        "item_count",
        "search_params",
    ):
        add(
            fam,
            f"index manifest.json without {key!r} (resealed)",
            case_missing_key("index", "manifest.json", key),
        )
    for key in ("parts", "kind", "sha256 of a part", "a part outside the folder"):
        add(
            fam,
            f"model artifact.json without {key!r}"
            if key in ("parts", "kind")
            else f"model artifact.json with {key} missing/odd",
            case_missing_key("model", "artifact.json", key),
        )
    for kind in ("garbage", "truncated", "a folder", "another schema", "a text file", "empty"):
        add(fam, f"encode --cache that is {kind}", case_cache_file(kind), slow=True)
