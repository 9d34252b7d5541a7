"""Render an item's metadata into one line of text, the input of every language model."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from llmrec.errors import DataError

ROLE_CANDIDATES: dict[str, tuple[str, ...]] = {
    "title": ("title", "movie_title", "name", "item_name"),
    "year": ("year", "release_year"),
    "genres": ("genres", "genre", "class", "categories", "category"),
    **{role: (role,) for role in ("director", "writer", "cast", "country", "language")},
    "runtime": ("runtime",),
    "description": ("description",),
}
KNOWLEDGE_ROLES: dict[str, str] = {
    "director": "Director",
    "writer": "Writer",
    "cast": "Cast",
    "country": "Country",
    "language": "Language",
    "runtime": "Runtime",
}
"""Item knowledge (see :mod:`llmrec.datasets.enrich`) rendered after the genres, in this order,
as ``Label: value.``; a ``description`` comes last as its own sentences."""


def resolve_text_columns(
    items: pd.DataFrame, columns: dict[str, str] | None = None
) -> dict[str, str]:
    """Map each text role (title, year, genres, and the knowledge roles director, writer, cast,
    country, language, runtime, description) to an item column.

    Explicit ``columns`` win; other roles are found among common column names (a knowledge
    role only by its own name, e.g. a ``director`` column).

    Raises:
        DataError: an explicit column is not in the items table, or no title-like column exists.
    """
    explicit = dict(columns or {})
    unknown_roles = set(explicit) - set(ROLE_CANDIDATES)
    if unknown_roles:
        raise DataError(
            f"unknown text role(s) {sorted(unknown_roles)}; valid roles: {list(ROLE_CANDIDATES)}"
        )
    missing = [c for c in explicit.values() if c not in items.columns]
    if missing:
        raise DataError(f"text column(s) {missing} not in the items table {list(items.columns)}")
    resolved = {}
    for role, candidates in ROLE_CANDIDATES.items():
        if role in explicit:
            resolved[role] = explicit[role]
            continue
        found = next((c for c in candidates if c in items.columns), None)
        if found:
            resolved[role] = found
    if "title" not in resolved:
        raise DataError(
            f"items table has no title column (looked for {ROLE_CANDIDATES['title']}); "
            f"name one with text_columns={{'title': ...}}; columns: {list(items.columns)}"
        )
    return resolved


def clean_value(value: object) -> str:
    """A cell as text: ``""`` for None, NaN and ``pd.NA``, integral floats without ``.0``."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def split_tags(value: object) -> list[str]:
    """Tags from a space-separated token sequence (RecBole), a ``|``-separated string or a list."""
    if isinstance(value, list | tuple):
        tags = [clean_value(v) for v in value]
    else:
        raw = clean_value(value)
        tags = raw.split("|") if "|" in raw else raw.split()
    return [t for t in tags if t]


def render_item(
    title: object,
    year: object = None,
    genres: object = None,
    knowledge: Mapping[str, object] | None = None,
) -> str:
    """One line such as ``Toy Story (1995). Genres: Animation, Children's, Comedy.``.

    Genres may be a space-separated token sequence (RecBole), ``|``-separated or a list.
    ``knowledge`` (role -> value) adds sentences after the genres, e.g. ``Director: John
    Lasseter. Runtime: 80 min.``, in :data:`KNOWLEDGE_ROLES` order, then the ``description``;
    empty values are left out.
    """
    title_s, year_s = clean_value(title), clean_value(year)
    genre_list = split_tags(genres)
    head = f"{title_s} ({year_s})" if year_s and year_s not in title_s else title_s
    parts = [head + "."] if head else []
    if genre_list:
        parts.append(f"Genres: {', '.join(genre_list)}.")
    if knowledge:
        parts += _knowledge_sentences(knowledge)
    return " ".join(parts)


def _knowledge_sentences(knowledge: Mapping[str, object]) -> list[str]:
    sentences = []
    for role, label in KNOWLEDGE_ROLES.items():
        value = knowledge.get(role)
        if isinstance(value, list | tuple):
            text = ", ".join(t for t in (clean_value(v) for v in value) if t)
        else:
            text = ", ".join(t.strip() for t in clean_value(value).split("|") if t.strip())
        if role == "runtime" and text.isdigit():
            text += " min"
        if text:
            sentences.append(f"{label}: {text}" + ("" if text.endswith(".") else "."))
    description = clean_value(knowledge.get("description"))
    if description:
        sentences.append(description + ("" if description[-1] in ".!?" else "."))
    return sentences


def item_text(
    items: pd.DataFrame, columns: dict[str, str] | None = None, id_column: str = "item_id"
) -> pd.Series:
    """Render every item of ``items`` to text, indexed like ``items``.

    Args:
        items: the items table.
        columns: role -> column overrides, e.g. ``{"title": "name", "genres": "tags"}``.
        id_column: used in error messages.

    Returns:
        A string Series, one line per item.

    Raises:
        DataError: an item whose title is missing (NaN or empty), naming the item.
    """
    cols = resolve_text_columns(items, columns)
    titles = items[cols["title"]]
    empty = titles.isna() | titles.astype(str).str.strip().eq("")
    if empty.any():
        bad = items.loc[empty, id_column].astype(str).head(5).tolist() if id_column in items else []
        raise DataError(
            f"{int(empty.sum())} item(s) have no title in column {cols['title']!r} "
            f"(NaN or empty), e.g. item ids {bad}"
        )
    years = items[cols["year"]] if "year" in cols else [None] * len(items)
    genres = items[cols["genres"]] if "genres" in cols else [None] * len(items)
    roles = [r for r in (*KNOWLEDGE_ROLES, "description") if r in cols]
    knowledge: list[dict[str, object] | None] = (
        items[[cols[r] for r in roles]].set_axis(roles, axis=1).to_dict("records")
        if roles
        else [None] * len(items)
    )
    lines = [
        render_item(t, y, g, k) for t, y, g, k in zip(titles, years, genres, knowledge, strict=True)
    ]
    return pd.Series(lines, index=items.index, name="text")
