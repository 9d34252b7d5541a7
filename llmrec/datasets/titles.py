"""Title normalisation and title + year matching, to join item tables from other sources.

MovieLens writes ``Shawshank Redemption, The (1994)`` and ``City of Lost Children, The (Cité des
enfants perdus, La) (1995)``; other catalogues write ``The Shawshank Redemption`` and ``Seven``
for ``Seven (Se7en)``. :func:`title_variants` turns a title into the normalised keys it may be
known by; :func:`match_titles` pairs items with table rows: exact keys first, then a fuzzy
ratio, always within a year window.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

ARTICLES = (
    "the", "a", "an", "les", "la", "le", "l'", "il", "lo", "gli", "das", "der", "die", "den",
    "det", "el", "los", "las", "un", "une", "una", "ein", "eine",
)  # fmt: skip
"""Articles MovieLens moves to the end of a title (``Misérables, Les``)."""
_ART = "|".join(re.escape(a) for a in sorted(ARTICLES, key=len, reverse=True))
_TRAILING_ARTICLE = (
    re.compile(rf"^(?P<body>.+?),\s*(?P<art>{_ART})$", re.I),
    re.compile(rf"^(?P<body>[^:]+?),\s*(?P<art>{_ART})(?P<rest>\s*:.*)$", re.I),
)
_DROPPED_ARTICLES = {"the", "a", "an"}
"""Left out of match keys (``The Game`` is ``Game``); others stay (``Les Boys`` is not ``Boys``)."""
_TRAILING_GROUP = re.compile(r"\s*\(([^()]*)\)\s*$")
_YEAR_GROUP = re.compile(r"(\d{4})(?:/[IVX]+)?")
_FILM_NOTE = re.compile(r"(?:\d{4}\s+)?(?:tv\s+)?(?:film|movie)", re.I)
_AKA = re.compile(r"^(?:a\.?k\.?a\.?|aka)\s+", re.I)
_DROPPED = re.compile(r"['’`´]|(?<=\w)[.*](?=\w)")
"""Dropped without a space: ``Schindler's`` -> ``schindlers``, ``L.A.`` -> ``la``, ``M*A*S*H``."""
_NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_ORDINALS = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
]  # fmt: skip
_SUFFIXES = ["st", "nd", "rd"] + ["th"] * 7
_TOKENS = {word: str(n) for n, word in enumerate(_NUMBER_WORDS)}
_TOKENS |= {w: f"{n}{s}" for n, (w, s) in enumerate(zip(_ORDINALS, _SUFFIXES, strict=True), 1)}
_TOKENS |= {r: str(n) for n, r in enumerate(["ii", "iii", "iv"], 2)}
_TOKENS |= {r: str(n) for n, r in enumerate(["vi", "vii", "viii", "ix"], 6)}
"""Number words and Roman numerals II-IX (not I, V, X: also words) as digits, in match keys."""
_PART = re.compile(r"\bpart (?=\d+\b)")
"""Dropped from match keys: ``Karate Kid III`` is ``The Karate Kid Part III``."""
_NOT_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")

MAIN, ALTERNATE, PREFIX = 0, 1, 2
"""Kinds of title variant: the title itself, a parenthesised alternate title, the part before
a colon (``Star Wars`` of ``Star Wars: Episode IV - A New Hope``)."""
_PAIR_RANK = {(MAIN, MAIN): 0, (MAIN, ALTERNATE): 1, (ALTERNATE, MAIN): 1}
_PAIR_RANK |= {(ALTERNATE, ALTERNATE): 2, (MAIN, PREFIX): 3, (PREFIX, MAIN): 3}
"""Which variant pairs may match exactly, best first; two prefixes never match (``Star Trek:
Generations`` is not ``Star Trek: First Contact``)."""


def front_article(title: str) -> str:
    """``Shawshank Redemption, The`` -> ``The Shawshank Redemption`` (also ``, Les``, ``, L'``,
    and before a subtitle: ``Godfather, The: Part II`` -> ``The Godfather: Part II``)."""
    title = title.strip()
    for pattern in _TRAILING_ARTICLE:
        match = pattern.match(title)
        if match:
            art, body = match["art"], match["body"].strip()
            rest = match.groupdict().get("rest") or ""
            return (f"{art}{body}" if art.endswith("'") else f"{art} {body}") + rest
    return title


def normalize_title(title: str) -> str:
    """Lowercase, accents and punctuation stripped, trailing article moved to the front.

    ``Misérables, Les`` -> ``les miserables``; ``Monty Python's Life of Brian`` ->
    ``monty pythons life of brian``.
    """
    # fractions and superscripts apart from their neighbours: 8½ -> 8 1/2, Alien³ -> Alien 3
    text = "".join(f" {c} " if unicodedata.category(c) == "No" else c for c in front_article(title))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _DROPPED.sub("", text.replace("&", " and "))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def match_key(title: str) -> str:
    """:func:`normalize_title` without a leading English article (``The Game`` is ``Game``), with
    number words and Roman numerals as digits and without the word ``part``
    (``Twelve Monkeys`` -> ``12 monkeys``, ``The Godfather: Part II`` -> ``godfather 2``)."""
    words = normalize_title(title).split()
    if len(words) > 1 and words[0] in _DROPPED_ARTICLES:
        words = words[1:]
    return _PART.sub("", " ".join(_TOKENS.get(w, w) for w in words))


def title_variants(title: str) -> tuple[list[tuple[str, int]], int | None]:
    """The match keys a title may be known by, and the year written in it.

    ``City of Lost Children, The (Cité des enfants perdus, La) (1995)`` gives the keys
    ``city of lost children`` (main) and ``la cite des enfants perdus`` (alternate) and 1995;
    ``Faust (2011 film)`` gives ``faust``; ``Star Wars: Episode IV - A New Hope`` adds the
    prefix ``star wars``.

    Returns:
        ``[(key, kind), ...]`` without duplicates (kind: MAIN, ALTERNATE or PREFIX), and the year
        of a trailing ``(1995)`` or None.
    """
    text, year, alternates = " ".join(str(title).split()), None, []
    while (group := _TRAILING_GROUP.search(text)) and text[: group.start()].strip():
        inner = group[1].strip()
        text = text[: group.start()].strip()
        year_match = _YEAR_GROUP.fullmatch(inner)
        if year_match:
            year = year if year is not None else int(year_match[1])
        elif not _FILM_NOTE.fullmatch(inner):
            alternates.append(_AKA.sub("", inner))
    found: dict[str, int] = {}
    candidates = [(text, MAIN)] + [(a, ALTERNATE) for a in reversed(alternates)]
    if len(alternates) == 1 and " " not in alternates[0]:  # I Am Curious (Yellow), Frontier(s)
        candidates.append((f"{text} {alternates[0]}", ALTERNATE))
    for variant, kind in candidates:
        key = match_key(variant)
        if len(key) >= (1 if kind == MAIN else 2) and key not in found:
            found[key] = kind
        if kind == MAIN and ":" in variant:
            prefix = match_key(front_article(variant).split(":", 1)[0])
            if len(prefix) >= 2 and prefix not in found:
                found[prefix] = PREFIX
    return list(found.items()), year


@dataclass(frozen=True)
class Match:
    """Where an item matched: the table row (-1: none), how, and how many rows tied."""

    row: int = -1
    how: str = ""
    """``exact``, ``fuzzy`` or empty."""
    score: float = 0.0
    """1.0 for an exact key, else the fuzzy ratio."""
    tied: int = 0
    """Other table rows that matched as well as the chosen one (the first of them is taken)."""


def match_titles(
    item_titles: Sequence[str],
    item_years: Sequence[float | None],
    table_titles: Sequence[str],
    table_years: Sequence[float | None],
    year_tolerance: int = 1,
    fuzzy: float | None = 0.9,
) -> list[Match]:
    """Pair each item with at most one table row by title and year.

    An exact normalised key within ``year_tolerance`` years wins (main titles before alternate
    titles, then the nearest year); items left over are compared by
    :class:`difflib.SequenceMatcher` ratio against the rows of their year window that no exact
    match took, and matched when the best ratio is at least ``fuzzy`` and both titles have the
    same numbers (``Police Academy 4`` is not ``Police Academy 5``). A missing year (NaN, None)
    is compatible with any year but ranks after every year within the window, and never matches
    fuzzily. Several items may take one row (MovieLens lists some films twice).

    Args:
        item_titles: titles of the items (a trailing ``(1995)`` is read as the year when the
            item's year is missing).
        item_years: years of the items.
        table_titles: titles of the table rows.
        table_years: years of the table rows.
        year_tolerance: largest year difference of a match.
        fuzzy: smallest ratio (0-1) of a fuzzy match; None: exact keys only.

    Returns:
        One :class:`Match` per item, in order.
    """
    items = [_prepare(t, y) for t, y in zip(item_titles, item_years, strict=True)]
    rows = [_prepare(t, y) for t, y in zip(table_titles, table_years, strict=True)]
    by_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row, (keys, _) in enumerate(rows):
        for key, kind in keys:
            by_key[key].append((row, kind))
    matches = [_exact(keys, year, by_key, rows, year_tolerance) for keys, year in items]
    if fuzzy is None:
        return matches
    taken = {m.row for m in matches if m.row >= 0}
    by_year: dict[int, list[tuple[int, str, frozenset[str]]]] = defaultdict(list)
    for row, (keys, year) in enumerate(rows):
        if year is not None and row not in taken:
            by_year[year] += [(row, k, _numbers(k)) for k, kind in keys if kind != PREFIX]
    for i, (keys, year) in enumerate(items):
        if matches[i].row < 0 and year is not None:
            matches[i] = _fuzzy(keys, year, by_year, year_tolerance, fuzzy)
    return matches


def _prepare(title: object, year: float | None) -> tuple[list[tuple[str, int]], int | None]:
    keys, title_year = title_variants(str(title))
    if year is None or math.isnan(year):
        return keys, title_year
    return keys, int(year)


def _year_gap(a: int | None, b: int | None, tolerance: int) -> float | None:
    """The year difference, ``tolerance + 0.5`` when one is unknown, None when too far."""
    if a is None or b is None:
        return tolerance + 0.5
    gap = abs(a - b)
    return gap if gap <= tolerance else None


def _exact(
    keys: list[tuple[str, int]],
    year: int | None,
    by_key: dict[str, list[tuple[int, int]]],
    rows: list[tuple[list[tuple[str, int]], int | None]],
    tolerance: int,
) -> Match:
    best: dict[int, tuple[int, float]] = {}
    for key, kind in keys:
        for row, row_kind in by_key.get(key, ()):
            rank = _PAIR_RANK.get((kind, row_kind))
            gap = _year_gap(year, rows[row][1], tolerance)
            if rank is None or gap is None:
                continue
            if row not in best or (rank, gap) < best[row]:
                best[row] = (rank, gap)
    if not best:
        return Match()
    top = min(best.values())
    tied = sorted(row for row, value in best.items() if value == top)
    return Match(tied[0], "exact", 1.0, len(tied) - 1)


def _fuzzy(
    keys: list[tuple[str, int]],
    year: int,
    by_year: dict[int, list[tuple[int, str, frozenset[str]]]],
    tolerance: int,
    threshold: float,
) -> Match:
    best: dict[int, tuple[float, float]] = {}
    matcher = SequenceMatcher(autojunk=False)
    for key, kind in keys:
        if kind == PREFIX:
            continue
        matcher.set_seq2(key)
        numbers = _numbers(key)
        for y in range(year - tolerance, year + tolerance + 1):
            for row, row_key, row_numbers in by_year.get(y, ()):
                if row_numbers != numbers:
                    continue
                matcher.set_seq1(row_key)
                if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
                    continue
                ratio = matcher.ratio()
                value = (-ratio, float(abs(y - year)))
                if ratio >= threshold and (row not in best or value < best[row]):
                    best[row] = value
    if not best:
        return Match()
    top = min(best.values())
    tied = sorted(row for row, value in best.items() if value == top)
    return Match(tied[0], "fuzzy", -top[0], len(tied) - 1)


def _numbers(key: str) -> frozenset[str]:
    return frozenset(_DIGITS.findall(key))
