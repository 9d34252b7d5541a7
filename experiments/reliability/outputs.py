"""Reading what llmrec returns or prints (recommendations, search tables, embeddings) and
comparing it with the reference outputs of the intact fixtures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cases import Fixtures
from settings import HISTORY, USERS

DEFAULT: Any = object()
"""Stands for "the usual argument" where None is itself a value under test."""
SCORE_ITEM = re.compile(r"(.+?) \((-?\d+\.\d+|-?inf|nan)\)(?:, |$)")


def served_model(fx: Fixtures) -> Any:
    """Model A, loaded to serve (its encoder is not checked)."""
    from llmrec import Recommender

    return Recommender.load(fx.model_a, check_encoder=False)


def recs_of(rec: Any, users: Any = DEFAULT, k: int | Any = 10, histories: Any = DEFAULT) -> dict:
    import numpy as np

    wanted = USERS if users is DEFAULT else users
    hist = {"ghost": HISTORY} if histories is DEFAULT else histories
    ids, scores = rec.recommend(wanted, k=k, histories=hist)
    ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
    return {
        "ids": [[None if i is None else str(i) for i in row] for row in ids],
        "served": [str(s) for s in rec.served_by_],
        "finite": bool(np.isfinite(scores).all()),
    }


def recs_diff(got: dict, ref: dict) -> str | None:
    if got["served"] != ref["served"]:
        return f"served_by {got['served']} instead of {ref['served']}"
    for n, (a, b) in enumerate(zip(got["ids"], ref["ids"], strict=True)):
        if a != b:
            at = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            return f"user {n}, rank {at + 1}: {a[at : at + 3]}... instead of {b[at : at + 3]}..."
    return None


def first_recs(ref: dict, n: int) -> dict:
    """The reference recommendations of the first ``n`` users, for :func:`recs_diff`."""
    return {"ids": ref["ids"][:n], "served": ref["served"][:n]}


def recs_insane(got: dict) -> str | None:
    if not got["finite"] or any(i is None for row in got["ids"] for i in row):
        return "None items with -inf scores served"
    return None


def table_rows(out: str) -> list[list[str]]:
    """The cells of a rich table; a cell wrapped over several lines is joined again."""
    rows: list[list[str]] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if rows and not cells[0] and len(cells) == len(rows[-1]):
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return rows


def scored_items(cell: str) -> list[tuple[str, float]]:
    return [(name, float(score)) for name, score in SCORE_ITEM.findall(cell)]


def search_rows(out: str) -> dict[str, list[str]]:
    return {row[0]: [n for n, _ in scored_items(row[-1])] for row in table_rows(out) if row}


def recommend_rows(out: str) -> dict[str, tuple[str, list[str]]]:
    return {
        row[0]: (row[1], [n for n, _ in scored_items(row[2])])
        for row in table_rows(out)
        if len(row) >= 3
    }


def search_insane(out: str, k: int) -> str | None:
    rows = table_rows(out)
    if not rows:
        return "no result table"
    for row in rows:
        items = scored_items(row[-1])
        if (
            len(items) != k
            or len({n for n, _ in items}) != k
            or any(s != s or abs(s) == float("inf") for _, s in items)
        ):
            return f"user {row[0]}: {len(items)} items or non-finite scores"
    return None


def recommend_diff(out: str, ref: dict) -> str | None:
    rows = recommend_rows(out)
    for n, user in enumerate(USERS):
        if user not in rows:
            continue
        served, items = rows[user]
        if served != ref["served"][n] or items != [i for i in ref["ids"][n] if i]:
            want = f"{ref['served'][n]} {ref['ids'][n][:3]}"
            return f"user {user}: {served} {items[:3]}... instead of {want}..."
    return None


def emb_arrays(folder: Path) -> tuple[Any, Any, Any]:
    from llmrec.encoders.job import EmbeddingSet

    emb = EmbeddingSet.load(folder)
    return emb.ids, emb.vectors, emb.fallback


def emb_diff(got: tuple[Any, Any, Any], ref: Path, atol: float = 0.0) -> str | None:
    import numpy as np

    ids, vectors, fallback = got
    r_ids, r_vectors, r_fallback = emb_arrays(ref)
    if list(map(str, ids)) != list(map(str, r_ids)):
        return "ids differ from the original"
    if vectors.shape != r_vectors.shape:
        return f"vectors {vectors.shape} instead of {r_vectors.shape}"
    if not np.allclose(vectors.astype(np.float64), r_vectors, atol=atol, rtol=0):
        bad = int((~np.isclose(vectors, r_vectors, atol=max(atol, 1e-7), rtol=0)).any(1).sum())
        return f"{bad} vectors differ from the original"
    if list(fallback) != list(r_fallback):
        return "fallback flags differ"
    return None
