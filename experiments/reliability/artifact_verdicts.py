"""Judging a damaged model, index, embedding folder or embedding cache by using it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cases import Ctx, Fixtures
from commands import encode_args, search_all_args
from outputs import (
    emb_arrays,
    emb_diff,
    recs_diff,
    recs_insane,
    recs_of,
    search_insane,
    search_rows,
)
from processes import cli
from verdicts import Verdict, api_error, attempt, cli_error, cli_refused, failed, handled

SANE = handled("accepted without crash; sane output (resealed manifest vouches for it)")
"""A resealed random damage that loads and serves sane output: nothing can tell it from real."""


def model_verdict(ctx: Ctx, folder: Path, names: list[str], lenient: bool) -> Verdict:
    """Load and serve a damaged model. ``lenient``: the manifest vouches for changed bytes, so
    any sane output counts (only crashes, raw errors and None/-inf items fail)."""
    from llmrec import Recommender

    a = attempt(lambda: recs_of(Recommender.load(folder)))
    verdict = api_error(a, [*names, folder.name])
    if verdict is not None:
        return verdict
    diff = recs_diff(a.value, ctx.fx.ref["recs"])
    if diff is None:
        return handled("accepted; recommendations identical to the intact model's")
    insane = recs_insane(a.value)
    if lenient and insane is None:
        return SANE
    return failed(f"loaded and served changed recommendations: {insane or diff}")


def index_verdict(ctx: Ctx, folder: Path, names: list[str], lenient: bool) -> Verdict:
    """Search the whole catalogue for one user, so that every item and name is shown."""
    k = ctx.fx.ref["n_items"]
    p = cli(*search_all_args(ctx.fx, folder))
    verdict = cli_error(p, [*names, folder.name])
    if verdict is not None:
        return verdict
    if search_rows(p.out) == ctx.fx.ref["search_all"]:
        return handled("accepted; search results identical to the intact index's")
    insane = search_insane(p.out, k)
    if lenient and insane is None:
        return SANE
    return failed(f"exit 0 with changed search results{': ' + insane if insane else ''}")


def emb_verdict(ctx: Ctx, folder: Path, names: list[str], lenient: bool) -> Verdict:
    import numpy as np

    a = attempt(lambda: emb_arrays(folder))
    verdict = api_error(a, [*names, folder.name])
    if verdict is not None:
        return verdict
    diff = emb_diff(a.value, ctx.fx.emb_items, atol=1e-2)
    if diff is None:
        return handled("accepted; vectors identical to the intact folder's")
    ids, vectors, fallback = a.value
    sane = (
        vectors.ndim == 2
        and len(ids) == len(vectors) == len(fallback)
        and np.isfinite(vectors).all()
        and len(set(map(str, ids))) == len(ids)
    )
    if lenient and sane:
        return SANE
    if not np.isfinite(vectors).all():
        diff = "NaN or inf vectors returned without an error"
    return failed(f"loaded changed embeddings: {diff}")


ARTIFACTS: dict[str, tuple[Callable[[Fixtures], Path], Callable[..., Verdict], str]] = {
    "model": (lambda fx: fx.model_a, model_verdict, "mut-model"),
    "index": (lambda fx: fx.index_flat, index_verdict, "mut-index"),
    "embeddings": (lambda fx: fx.emb_items, emb_verdict, "mut-emb"),
}


def cache_verdict(ctx: Ctx, cache: Path) -> Verdict:
    """Encode dataset A with a damaged embedding cache: refused naming the cache, or the same
    vectors as the intact embeddings."""
    out = ctx.work / "emb"
    p = cli(*encode_args(ctx.fx.data_a, ctx.fx.bert, out, "--cache", cache))
    return cli_refused(
        p, [cache.name], accepted=lambda: emb_diff(emb_arrays(out), ctx.fx.emb_items, atol=1e-4)
    )
