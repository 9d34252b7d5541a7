"""Behaviour to text: catalogue items as :class:`ItemInfo` and a user's history in PMG's format.

PMG (Shen et al., WWW 2024) writes each history item as ``name(genre): kw1, kw2, kw3, kw4, kw5.``
and numbers them ``0. ... 1. ...``. Here the keywords of an item are its year and, when the dataset
is enriched, its director, cast, writer, country and language; the newest item comes first and
whole lines past a token budget are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from llmrec.datasets import Dataset
from llmrec.datasets.text import clean_value, resolve_text_columns, split_tags
from llmrec.errors import ConfigError, DataError
from llmrec.pmg.spec import ItemInfo

ENRICHED: dict[str, tuple[str, ...]] = {
    "director": ("director", "directors"),
    "writer": ("writer", "writers"),
    "cast": ("cast", "actors", "stars", "starring"),
    "country": ("country", "countries"),
    "language": ("language", "languages"),
    "runtime": ("runtime",),
    "description": ("description", "plot", "overview", "summary"),
}
"""Enriched knowledge roles and the item columns that may hold them (first found wins)."""

LIST_ROLES = ("director", "cast", "writer", "country", "language")
"""Roles whose values are lists of names, in the order they become an item's keywords."""

MISSING_GENRES = {"unknown", "(no genres listed)", "none", ""}
ARTICLES = ("The", "A", "An", "La", "Le", "Les", "L'", "Il", "El", "Das", "Der", "Die")
_ARTICLE = re.compile(r"^(?P<head>.+?), (?P<art>" + "|".join(ARTICLES) + r")(?P<tail>( \(.*\))?)$")


def display_title(title: str) -> str:
    """A catalogue title as people write it: ``Usual Suspects, The`` -> ``The Usual Suspects``.

    MovieLens moves leading articles to the end; a trailing parenthesis (an alternative title)
    stays where it is.
    """
    match = _ARTICLE.match(title.strip())
    if not match:
        return title.strip()
    art = match["art"]
    joiner = "" if art.endswith("'") else " "
    return f"{art}{joiner}{match['head']}{match['tail']}"


def split_names(value: object) -> list[str]:
    """Names from an enriched cell: a list, or text separated by ``|``, ``;`` or ``,``."""
    if isinstance(value, list | tuple | np.ndarray):
        parts = [clean_value(v) for v in value]
    else:
        raw = clean_value(value)
        sep = next((s for s in ("|", ";", ",") if s in raw), None)
        parts = raw.split(sep) if sep else [raw]
    return [p.strip() for p in parts if p.strip()]


def _enriched_columns(items: pd.DataFrame) -> dict[str, str]:
    found = {}
    for role, candidates in ENRICHED.items():
        column = next((c for c in candidates if c in items.columns), None)
        if column is not None:
            found[role] = column
    return found


def catalogue(dataset: Dataset) -> list[ItemInfo]:
    """Every catalogue item of ``dataset`` as :class:`ItemInfo`, in item-index order.

    Titles are shown as people write them (:func:`display_title`); a year is its four digits or
    empty (ml-100k has ``unkonwn``); a genre ``unknown`` is dropped;
    enriched columns (director, writer, cast, country, language, runtime, description, or the
    aliases in :data:`ENRICHED`) go to ``extra`` when the dataset has them and the cell is filled.

    Raises:
        DataError: the items table has no title column.
    """
    return _infos(dataset.items, dataset.text_columns, range(dataset.n_items))


def _infos(
    items: pd.DataFrame, text_columns: dict[str, str], indices: Sequence[int]
) -> list[ItemInfo]:
    columns = resolve_text_columns(items, text_columns or None)
    enriched = _enriched_columns(items)
    n = len(items)
    titles = items[columns["title"]].map(clean_value).tolist()
    years = items[columns["year"]].map(clean_value).tolist() if "year" in columns else [""] * n
    genres = items[columns["genres"]].tolist() if "genres" in columns else [None] * n
    extras = {role: items[column].tolist() for role, column in enriched.items()}
    ids = items["item_id"].astype(str).tolist()
    infos = []
    for i in range(n):
        extra = {}
        for role, values in extras.items():
            value = values[i]
            text = ", ".join(split_names(value)) if role in LIST_ROLES else clean_value(value)
            if text:
                extra[role] = text
        tags = tuple(g for g in split_tags(genres[i]) if g.casefold() not in MISSING_GENRES)
        infos.append(
            ItemInfo(
                item_index=int(indices[i]),
                item_id=ids[i],
                title=display_title(titles[i]) or ids[i],
                year=years[i][:4] if re.fullmatch(r"\d{4}\b.*", years[i]) else "",
                genres=tags,
                extra=extra,
            )
        )
    return infos


def item_info(dataset: Dataset, item_index: int) -> ItemInfo:
    """One catalogue item as :class:`ItemInfo` (see :func:`catalogue`).

    Raises:
        DataError: ``item_index`` is not an index of the catalogue.
    """
    if isinstance(item_index, bool) or not isinstance(item_index, int | np.integer):
        raise DataError(f"item_index must be an integer, got {item_index!r}")
    if not 0 <= item_index < dataset.n_items:
        raise DataError(
            f"item_index {item_index} is outside dataset {dataset.name!r} "
            f"(items 0..{dataset.n_items - 1})"
        )
    index = int(item_index)
    return _infos(dataset.items.iloc[[index]], dataset.text_columns, [index])[0]


def user_history(
    dataset: Dataset,
    user_id: object,
    infos: Sequence[ItemInfo] | None = None,
    interactions: pd.DataFrame | None = None,
    min_rating: float | None = None,
    limit: int | None = None,
) -> list[ItemInfo]:
    """A user's items, newest first (ties by item index).

    Args:
        dataset: the dataset (for the id maps).
        user_id: the user's id.
        infos: the catalogue from :func:`catalogue`, to reuse across users.
        interactions: the rows to read (a split's train); the whole dataset when None.
        min_rating: keep only items rated at least this.
        limit: keep only the newest ``limit`` items.

    Raises:
        DataError: an unknown user id.
    """
    user = int(dataset.user_index([user_id])[0])
    frame = dataset.interactions if interactions is None else interactions
    rows = frame[frame["user_idx"] == user]
    if min_rating is not None:
        rows = rows[rows["rating"] >= min_rating]
    infos = catalogue(dataset) if infos is None else infos
    return history_from_row(
        infos, rows["item_idx"].to_numpy(), rows["timestamp"].to_numpy(dtype=float), limit
    )


def history_from_row(
    infos: Sequence[ItemInfo],
    item_indices: Sequence[int] | np.ndarray,
    timestamps: Sequence[float] | np.ndarray | None = None,
    limit: int | None = None,
) -> list[ItemInfo]:
    """A history from one user-item matrix row: its item indices, newest first by ``timestamps``
    (a matrix of timestamps with the same pattern), or in the given order when None.

    Raises:
        DataError: an index outside the catalogue, or timestamps of another length.
    """
    items = np.asarray(item_indices, dtype=np.int64)
    if items.size and (items.min() < 0 or items.max() >= len(infos)):
        raise DataError(f"item indices must lie in 0..{len(infos) - 1}, got {items.tolist()[:5]}")
    if timestamps is not None:
        times = np.asarray(timestamps, dtype=float)
        if times.shape != items.shape:
            raise DataError(f"{times.size} timestamps for {items.size} items")
        times = np.where(np.isnan(times), -np.inf, times)
        items = items[np.lexsort((items, -times))]
    if limit is not None:
        items = items[:limit]
    return [infos[int(i)] for i in items]


def decade(year: str) -> str:
    """``1995`` -> ``1990s``; empty when the year is not a four-digit number."""
    return f"{year[:3]}0s" if re.fullmatch(r"\d{4}", year[:4]) and len(year) >= 4 else ""


def item_keywords(info: ItemInfo, limit: int = 5) -> list[str]:
    """An item's keywords in the history line: its year, then enriched names (director, cast,
    writer, country, language), at most ``limit``."""
    words = [info.year] if info.year else []
    for role in LIST_ROLES:
        words += split_names(info.extra.get(role, ""))
    return list(dict.fromkeys(words))[:limit]


def item_line(info: ItemInfo, position: int, n_keywords: int = 5) -> str:
    """PMG's line ``0. Toy Story(Animation, Children's, Comedy): 1995, John Lasseter.``"""
    line = f"{position}. {info.title}"
    if info.genres:
        line += f"({', '.join(info.genres)})"
    words = item_keywords(info, n_keywords)
    return line + (f": {', '.join(words)}." if words else ".")


def item_description(info: ItemInfo) -> str:
    """The text an item is embedded from: ``Toy Story (1995). Genres: Animation, Comedy.`` plus
    its enriched knowledge (``Director: ... Cast: ...``) when present."""
    head = f"{info.title} ({info.year})" if info.year else info.title
    parts = [head + "."]
    if info.genres:
        parts.append(f"Genres: {', '.join(info.genres)}.")
    for role in LIST_ROLES:
        if info.extra.get(role):
            parts.append(f"{role.capitalize()}: {info.extra[role]}.")
    return " ".join(parts)


_TOKEN = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A tokenizer-free token count: words and punctuation marks (BPE tokenizers make a few more;
    pass the generator's own counter where the budget must be exact)."""
    return len(_TOKEN.findall(text))


def history_text(
    items: Sequence[ItemInfo],
    max_tokens: int | None = 400,
    count_tokens: Callable[[str], int] | None = None,
    n_keywords: int = 5,
) -> str:
    """A history (newest first) in PMG's format, one numbered line per item from ``0.``.

    Lines are added while the text stays within ``max_tokens``; the newest item is always kept,
    so the text is never empty for a non-empty history.

    Args:
        items: the history, newest first.
        max_tokens: the budget; None keeps every line.
        count_tokens: a token counter (a tokenizer's); None uses :func:`approx_tokens`.
        n_keywords: keywords per line.

    Raises:
        ConfigError: ``max_tokens`` below 1.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"max_tokens must be >= 1 or None, got {max_tokens}")
    count = count_tokens or approx_tokens
    lines: list[str] = []
    for position, info in enumerate(items):
        line = item_line(info, position, n_keywords)
        if max_tokens is not None and lines and count("\n".join([*lines, line])) > max_tokens:
            break
        lines.append(line)
    return "\n".join(lines)
