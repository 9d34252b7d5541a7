"""Family 3, silent wrong results, items 5-7 of the issue: a same-size other encoder, damaged
cached rows, model parts that do not belong together."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifact_verdicts import cache_verdict, model_verdict
from cases import Ctx, Run, add
from commands import encode_args, recommend_cli
from files import cache_copy, copy, edit_json, edit_tensors, reseal
from outputs import emb_arrays, recommend_diff
from processes import cli
from settings import FAMILIES, HISTORY, USERS
from verdicts import (
    Verdict,
    api_refused,
    attempt,
    cli_refused,
    failed,
    handled,
    harness_error,
    short,
)


def encoded(data: Any, model: Path, cache: Path) -> Any:
    """The vectors of ``data``'s items encoded by ``model`` through the API, with ``cache``."""
    from llmrec.encoders.job import EncodeConfig, encode_dataset

    config = EncodeConfig.model_validate({"encoder": {"model": str(model)}})
    return encode_dataset(data, config, cache).vectors


def vectors_match(got: Any, truth: Any, other: Any) -> Verdict:
    """Handled when ``got`` are the ``truth``, not the ``other`` model's vectors."""
    import numpy as np

    if np.allclose(truth, other, atol=1e-4):
        return harness_error("the tuned copy encodes like the base model; cannot tell them apart")
    error = float(np.abs(got - truth).max())
    if error > 1e-4:
        return failed(f"served the base model's cached vectors (max error {error:.3f})")
    return handled("vectors of the tuned copy, not the base model's cached ones")


def case_fingerprint_cli(ctx: Ctx) -> Verdict:
    """Issue 5: a same-size fine-tuned copy must not get the base model's cached vectors."""
    from llmrec.datasets import load

    fx, cache = ctx.fx, ctx.work / "cache.sqlite"
    base = cli(*encode_args(fx.data_a, fx.bert, ctx.work / "base", "--cache", cache))
    tuned = cli(*encode_args(fx.data_a, fx.bert_tuned, ctx.work / "tuned", "--cache", cache))
    if base.rc or tuned.rc:
        return failed(f"encode failed: {short(base.err + tuned.err)}")
    truth = encoded(load(fx.data_a), fx.bert_tuned, ctx.work / "fresh.sqlite")
    return vectors_match(emb_arrays(ctx.work / "tuned")[1], truth, emb_arrays(ctx.work / "base")[1])


def case_fingerprint_inplace(ctx: Ctx) -> Verdict:
    """Issue 5: the encoder's weights replaced in place by others of the same size."""
    from llmrec.datasets import load

    model = copy(ctx.fx.bert, ctx.work / "my-model")
    data = load(ctx.fx.data_a)
    before = encoded(data, model, ctx.work / "cache.sqlite")
    time.sleep(0.01)
    shutil.copyfile(ctx.fx.bert_tuned / "model.safetensors", model / "model.safetensors")
    after = encoded(data, model, ctx.work / "cache.sqlite")
    return vectors_match(after, encoded(data, model, ctx.work / "fresh.sqlite"), before)


def case_fingerprint_api(ctx: Ctx) -> Verdict:
    from llmrec.encoders.transformer import TransformerEncoder

    a = TransformerEncoder(ctx.fx.bert).fingerprint
    b = TransformerEncoder(ctx.fx.bert_tuned).fingerprint
    if a == b:
        return failed(f"same fingerprint {a} for two models with different weights")
    return handled("different weights of the same size give different fingerprints")


def case_model_other_encoder(ctx: Ctx) -> Verdict:
    from llmrec import Recommender

    folder = copy(ctx.fx.model_a, ctx.work / "mut-model")

    def point(meta: dict) -> dict:
        meta["config"]["retriever"]["text_model"] = str(ctx.fx.bert_tuned)
        return meta

    edit_json(folder / "config.json", point)
    reseal(folder)
    a = attempt(lambda: Recommender.load(folder))
    return api_refused(a, ["encoder", "embedding model", "fingerprint"])


SET_VECTOR = "UPDATE embeddings SET vector = ? WHERE fingerprint = ? AND text_hash = ?"
SET_DIGEST = "UPDATE checksums SET digest = ? WHERE fingerprint = ? AND text_hash = ?"


def cache_edit(kind: str) -> Callable[[sqlite3.Connection, str], None]:
    """Damage the cached rows of one encoder (fingerprint): bit flips, a NaN row, a short row,
    or two rows that exchange vectors (and checksums, where the cache has them)."""

    def edit(db: sqlite3.Connection, fp: str) -> None:
        import numpy as np

        rows = db.execute(
            "SELECT text_hash, vector FROM embeddings WHERE fingerprint = ? ORDER BY text_hash",
            (fp,),
        ).fetchall()
        if kind == "bitflip":
            for key, blob in rows[:41]:
                buf = bytearray(blob)
                buf[len(buf) // 2] ^= 0x40
                db.execute(SET_VECTOR, (bytes(buf), fp, key))
        elif kind == "nan":
            key, blob = rows[0]
            nan = np.full(len(blob) // 4, np.nan, dtype=np.float32).tobytes()
            db.execute(SET_VECTOR, (nan, fp, key))
            with contextlib.suppress(ImportError, sqlite3.Error):
                from llmrec.encoders.cache import row_digest

                db.execute(SET_DIGEST, (row_digest(key, nan), fp, key))
        elif kind == "short":
            key, blob = rows[0]
            db.execute(SET_VECTOR, (blob[:-4], fp, key))
        elif kind == "swapped":  # two rows exchange vectors and checksums
            (k1, b1), (k2, b2) = rows[0], rows[1]
            digests: dict[bytes, bytes] = {}
            if _has_table(db, "checksums"):
                found = db.execute(
                    "SELECT text_hash, digest FROM checksums WHERE fingerprint = ?", (fp,)
                ).fetchall()
                digests = {k: d for k, d in found if k in (k1, k2)}
            db.execute(SET_VECTOR, (b2, fp, k1))
            db.execute(SET_VECTOR, (b1, fp, k2))
            if len(digests) == 2:
                db.execute(SET_DIGEST, (digests[k2], fp, k1))
                db.execute(SET_DIGEST, (digests[k1], fp, k2))
        db.commit()

    return edit


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def case_cache_rows(kind: str) -> Run:
    """Issue 6: damaged cached vectors are recomputed or reported, never served."""

    def run(ctx: Ctx) -> Verdict:
        cache = cache_copy(ctx.fx, ctx.work / "cache.sqlite")
        with contextlib.closing(sqlite3.connect(cache)) as db:
            cache_edit(kind)(db, ctx.fx.ref["items_fingerprint"])
        return cache_verdict(ctx, cache)

    return run


def model_with_index_of_b(ctx: Ctx) -> Path:
    """A copy of model A whose index/ comes from model B (same data, another seed)."""
    folder = copy(ctx.fx.model_a, ctx.work / "mut-model")
    shutil.rmtree(folder / "index")
    copy(ctx.fx.model_b / "index", folder / "index")
    return folder


FOREIGN_PARTS: dict[str, tuple[str, tuple[str, ...], list[str]]] = {
    # what -> (the model they come from, the parts copied over A's, the words that name it)
    "weights from B": ("model_b", ("weights.safetensors",), ["weights.safetensors"]),
    "weights from C": ("model_c", ("weights.safetensors",), ["weights.safetensors"]),
    "config from C": ("model_c", ("config.json",), ["config.json"]),
    "weights and artifact.json from B": (
        "model_b",
        ("weights.safetensors", "artifact.json"),
        ["config.json", "weights.safetensors"],
    ),
}


def case_swap(what: str, mode: str = "checked") -> Run:
    """Issue 7: parts of a model folder that do not belong together."""

    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        names = ["mut-model"]
        if what == "index from B":
            folder = model_with_index_of_b(ctx)
            names += ["index"]
        else:
            folder = copy(fx.model_a, ctx.work / "mut-model")
        if what in FOREIGN_PARTS:
            other, parts, named = FOREIGN_PARTS[what]
            for part in parts:
                shutil.copyfile(getattr(fx, other) / part, folder / part)
            names += named
        elif what == "user_ids shifted by one":
            edit_json(
                folder / "config.json",
                lambda m: {**m, "user_ids": m["user_ids"][1:] + m["user_ids"][:1]},
            )
            names += ["config.json", "user_ids"]
        elif what == "item_ids one short":
            edit_json(folder / "config.json", lambda m: {**m, "item_ids": m["item_ids"][:-1]})
            names += ["config.json", "item_ids"]
        elif what == "NaN in a ranker weight":
            edit_tensors(folder / "weights.safetensors", _nan_tensor("ranker."))
            names += ["weights.safetensors", "ranker"]
        elif what == "NaN in retriever.item_factors":
            edit_tensors(folder / "weights.safetensors", _nan_tensor("retriever.item_factors"))
            names += ["weights.safetensors", "item_factors"]
        if mode == "resealed":
            reseal(folder)
        return model_verdict(ctx, folder, names, lenient=False)

    return run


def _nan_tensor(prefix: str) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        name = next(k for k in sorted(state) if k.startswith(prefix) and state[k].dtype.kind == "f")
        array = state[name].copy()
        array.flat[0] = float("nan")
        state[name] = array

    return edit


def case_swap_cli(ctx: Ctx) -> Verdict:
    folder = model_with_index_of_b(ctx)
    p = recommend_cli(folder, ",".join(USERS), "--history", ",".join(HISTORY))
    return cli_refused(
        p, ["mut-model", "index"], accepted=lambda: recommend_diff(p.out, ctx.fx.ref["recs"])
    )


def register() -> None:
    fam = FAMILIES[2]
    add(
        fam,
        "5 encode: same-size fine-tuned copy shares the cache (CLI)",
        case_fingerprint_cli,
        slow=True,
    )
    add(
        fam,
        "5 encode: model weights replaced in place, same size",
        case_fingerprint_inplace,
        slow=True,
    )
    add(fam, "5 fingerprints of two same-size models differ", case_fingerprint_api)
    add(fam, "5 model loaded with a same-size other encoder", case_model_other_encoder)
    for kind in ("bitflip", "nan", "short", "swapped"):
        add(fam, f"6 encode with cached rows damaged: {kind}", case_cache_rows(kind), slow=True)
    for what in (
        "index from B",
        "weights from B",
        "weights from C",
        "config from C",
        "weights and artifact.json from B",
        "user_ids shifted by one",
        "item_ids one short",
        "NaN in a ranker weight",
    ):
        add(fam, f"7 model part swapped: {what}", case_swap(what))
    for what in ("item_ids one short", "NaN in a ranker weight", "NaN in retriever.item_factors"):
        add(fam, f"7 model part swapped: {what} (resealed)", case_swap(what, "resealed"))
    add(fam, "7 llmrec recommend with index/ from another run", case_swap_cli, slow=True)
