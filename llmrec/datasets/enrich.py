"""Join an extra item table (director, cast, ...) into a dataset's items table.

:func:`enrich_items` joins by an exact key (``on=``) or by title and year (see
:mod:`llmrec.datasets.titles`) and returns a :class:`MatchReport`; :func:`read_table` reads
CSV, TSV, Parquet and SQLite tables. Named tables (``bokeh-movies``) and the dataset-level
``enrich:`` option are in :mod:`llmrec.datasets.knowledge`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrec.datasets.titles import Match, match_titles
from llmrec.errors import DataError
from llmrec.io import check_text_encoding

log = logging.getLogger(__name__)

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", *SQLITE_SUFFIXES)
N_EXAMPLES = 5


@dataclass
class MatchReport:
    """How many items an enrichment table matched, and how.

    Attributes:
        source: the table's name (``bokeh-movies``, a file path).
        n_items: items in the items table.
        n_matched: items that got a table row.
        n_exact: matched by an exact key (``on=``) or exact normalised title.
        n_fuzzy: matched by a fuzzy title ratio.
        n_ambiguous: matched items whose best score was shared by several table rows (the
            first row was taken).
        n_shared_rows: table rows that more than one item took (MovieLens lists some films
            twice).
        unmatched_examples: a few titles (or keys) that matched nothing.
        fuzzy_examples: a few fuzzy matches, ``item -> row (ratio)``.
        ambiguous_examples: a few ambiguous matches.
    """

    source: str
    n_items: int
    n_matched: int
    n_exact: int
    n_fuzzy: int
    n_ambiguous: int = 0
    n_shared_rows: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    fuzzy_examples: list[str] = field(default_factory=list)
    ambiguous_examples: list[str] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        """Matched items / items (0 for no items)."""
        return self.n_matched / self.n_items if self.n_items else 0.0

    def summary(self) -> str:
        """One line, e.g. ``bokeh-movies: 1,500/1,682 items matched (89.2%; ...)``."""
        return (
            f"{self.source}: {self.n_matched:,}/{self.n_items:,} items matched "
            f"({self.match_rate:.1%}; {self.n_exact:,} exact, {self.n_fuzzy:,} fuzzy; "
            f"{self.n_ambiguous:,} ambiguous, {self.n_shared_rows:,} table rows shared)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``match_rate`` and ``summary``, for JSON records."""
        return {**asdict(self), "match_rate": self.match_rate, "summary": self.summary()}


def enrich_items(
    items: pd.DataFrame,
    table: pd.DataFrame,
    *,
    columns: Mapping[str, str],
    on: str | tuple[str, str] | None = None,
    title_column: str = "title",
    year_column: str | None = "year",
    table_title: str = "title",
    table_year: str | None = "year",
    year_tolerance: int = 1,
    fuzzy: float | None = 0.9,
    source: str = "table",
) -> tuple[pd.DataFrame, MatchReport]:
    """Add columns of ``table`` to ``items``, one table row per item at most.

    With ``on`` the rows join by an exact key; otherwise by title and year: the exact
    normalised title first (articles, accents, punctuation and parenthesised alternate titles
    handled), then a fuzzy ratio of at least ``fuzzy`` within ``year_tolerance`` years (see
    :func:`llmrec.datasets.titles.match_titles`). Text values of unmatched items are empty
    strings, integral numbers become nullable ``Int64`` (missing: ``<NA>``), never ``"nan"``.

    Args:
        items: the items table.
        table: the extra table.
        columns: table column -> new item column, e.g. ``{"Director": "director"}``.
        on: key column(s): one name in both tables, or ``(item column, table column)``.
        title_column: the items' title column.
        year_column: the items' year column; None: a trailing ``(1995)`` in the title.
        table_title: the table's title column.
        table_year: the table's year column; None: read from its titles.
        year_tolerance: largest year difference of a title match.
        fuzzy: smallest fuzzy ratio (0-1); None: exact titles only.
        source: the table's name in messages and the report.

    Returns:
        The items with the new columns (same rows, order and index) and the report.

    Raises:
        DataError: a key column missing from either table (naming it and the columns there
            are), a new column that already exists, no item matched at all.
    """
    if isinstance(on, str):
        on = (on, on)
    item_keys = [on[0]] if on else [title_column] + ([year_column] if year_column else [])
    table_keys = [on[1]] if on else [table_title] + ([table_year] if table_year else [])
    _require(items, item_keys, "items table")
    _require(table, [*table_keys, *columns], source)
    clash = [c for c in columns.values() if c in items.columns]
    if clash:
        raise DataError(
            f"enriching from {source}: item column(s) {clash} already exist; map the table "
            f"columns to other names (columns={dict(columns)})"
        )
    if on:
        matches = _key_matches(items[on[0]], table[on[1]])
        labels = items[on[0]].map(key_text)
    else:
        labels = items[title_column].map(lambda v: key_text(v) or "")
        matches = match_titles(
            labels.tolist(),
            _years(items, year_column),
            table[table_title].map(lambda v: key_text(v) or "").tolist(),
            _years(table, table_year),
            year_tolerance,
            fuzzy,
        )
    rows = np.array([m.row for m in matches], dtype=np.int64)
    report = _report(source, matches, labels.tolist(), table, table_title if not on else on[1])
    if report.n_matched == 0:
        how = (
            f"key {on[0]!r} = {on[1]!r}"
            if on
            else f"title {title_column!r} = {table_title!r}, year {year_column!r} = "
            f"{table_year!r} (within {year_tolerance} year(s), fuzzy ratio {fuzzy})"
        )
        raise DataError(
            f"no item matched a row of {source} ({len(table):,} rows) by {how}; "
            f"e.g. unmatched items {report.unmatched_examples}"
        )
    enriched = items.copy()
    for table_column, item_column in columns.items():
        enriched[item_column] = _take(table[table_column], rows, items.index)
    log.info("%s", report.summary())
    return enriched, report


def _require(frame: pd.DataFrame, wanted: list[str], where: str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: no column(s) {missing}; its columns are {list(map(str, frame.columns))}"
        )


def key_text(value: object) -> str | None:
    """A key as text: None for missing, integral floats without ``.0``, stripped."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip() or None


def _years(frame: pd.DataFrame, column: str | None) -> list[float | None]:
    if column is None:
        return [None] * len(frame)
    years = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return [None if np.isnan(y) else float(y) for y in years]


def _key_matches(item_keys: pd.Series, table_keys: pd.Series) -> list[Match]:
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for row, value in enumerate(table_keys.map(key_text)):
        if value is not None:
            first.setdefault(value, row)
            count[value] = count.get(value, 0) + 1
    matches = []
    for value in item_keys.map(key_text):
        row = first.get(value, -1) if value is not None else -1
        matches.append(Match(row, "exact", 1.0, count[value] - 1) if row >= 0 else Match())
    return matches


def _report(
    source: str, matches: list[Match], labels: list[str], table: pd.DataFrame, shown: str
) -> MatchReport:
    rows = [m.row for m in matches if m.row >= 0]
    names = table[shown].map(lambda v: key_text(v) or "").tolist()
    uses = pd.Series(rows, dtype="int64").value_counts()
    return MatchReport(
        source=source,
        n_items=len(matches),
        n_matched=len(rows),
        n_exact=sum(m.how == "exact" for m in matches),
        n_fuzzy=sum(m.how == "fuzzy" for m in matches),
        n_ambiguous=sum(m.tied > 0 for m in matches),
        n_shared_rows=int((uses > 1).sum()),
        unmatched_examples=[
            label for label, m in zip(labels, matches, strict=True) if m.row < 0 and label
        ][:N_EXAMPLES],
        fuzzy_examples=[
            f"{label} -> {names[m.row]} ({m.score:.2f})"
            for label, m in zip(labels, matches, strict=True)
            if m.how == "fuzzy"
        ][:N_EXAMPLES],
        ambiguous_examples=[
            f"{label} -> {names[m.row]} (+{m.tied} tied)"
            for label, m in zip(labels, matches, strict=True)
            if m.tied
        ][:N_EXAMPLES],
    )


def _take(values: pd.Series, rows: np.ndarray, index: pd.Index) -> pd.Series:
    """``values`` at ``rows`` (-1: missing): integral numbers as ``Int64``, other numbers as
    float, everything else as stripped text with ``""`` for missing."""
    picked = values.to_numpy(dtype=object)[np.maximum(rows, 0)]
    picked[rows < 0] = None
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(pd.Series(picked, index=index), errors="coerce")
        known = numbers.dropna()
        if (known == known.round()).all():
            return numbers.round().astype("Int64")
        return numbers.astype("float64")
    text = [key_text(v) for v in picked]
    return pd.Series([t or "" for t in text], index=index, dtype=object)


# ---- tables -------------------------------------------------------------------------------


def read_table(path: str | Path, table: str | None = None) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet file or a table of a SQLite database.

    Args:
        path: ``.csv``, ``.tsv``, ``.parquet``/``.pq``, or ``.db``/``.sqlite``/``.sqlite3``.
        table: the SQLite table (may be left out when the database has only one).

    Raises:
        DataError: a missing or unreadable file, an unknown file type, a SQLite table that is
            not in the database (naming those that are), ``table`` for a non-SQLite file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such table file")
    if not path.is_file():
        raise DataError(f"{path}: is a folder, not a table file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unsupported table file; expected {', '.join(TABLE_SUFFIXES)}")
    if suffix in SQLITE_SUFFIXES:
        return _read_sqlite(path, table)
    if table is not None:
        raise DataError(f"{path}: a table name ({table!r}) applies only to SQLite files")
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        check_text_encoding(path, "utf-8")
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise DataError(f"{path}: cannot read table: {exc}") from exc


def _read_sqlite(path: Path, table: str | None) -> pd.DataFrame:
    try:
        with sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True) as db:
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            if table is None and len(names) != 1:
                raise DataError(
                    f"{path}: name the SQLite table to read (tables: {names or 'none'})"
                )
            table = table if table is not None else names[0]
            if table not in names:
                raise DataError(f"{path}: no SQLite table {table!r}; tables: {names or 'none'}")
            quoted = '"' + table.replace('"', '""') + '"'
            return pd.read_sql_query(f"SELECT * FROM {quoted}", db)  # the name is one of `names`
    except sqlite3.Error as exc:
        raise DataError(f"{path}: cannot read SQLite database: {exc}") from exc
