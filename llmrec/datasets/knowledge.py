"""Item knowledge for a whole dataset: named item tables (:data:`SOURCES`, e.g.
``bokeh-movies``: 17,472 films of 1940-2014 from Wikidata in the ``bokeh-sampledata`` package),
the ``enrich:`` option of presets and ``load``, and the items file of ``llmrec data enrich``."""

from __future__ import annotations

import copy
import hashlib
import importlib
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmrec.datasets.dataset import Dataset
from llmrec.datasets.enrich import MatchReport, enrich_items, key_text, read_table
from llmrec.datasets.text import resolve_text_columns
from llmrec.errors import ArtifactError, ConfigError, DataError
from llmrec.io import atomic_write, sha256_file


def bokeh_movies_path() -> Path:
    """Path of ``movies.db`` in the ``bokeh-sampledata`` package.

    Raises:
        ConfigError: the package is not installed (saying how to install it).
    """
    try:
        module = importlib.import_module("bokeh_sampledata.movies_data")
    except ImportError as exc:
        raise ConfigError(
            "the bokeh-movies item table ships in the bokeh-sampledata package, which is not "
            "installed: pip install bokeh-sampledata (or pip install -e '.[knowledge]')"
        ) from exc
    return Path(module.movie_path)


def bokeh_movies() -> pd.DataFrame:
    """The ``omdb`` table of bokeh-sampledata's ``movies.db``: Title, Year, Runtime, Genre,
    Director, Writer, Cast, Language, Country, Awards, ... of 17,472 films (1940-2014)."""
    return read_table(bokeh_movies_path(), "omdb")


_NAME_SUFFIXES = {"Jr.", "Jr", "Sr.", "Sr", "II", "III", "IV"}


def split_names(value: object) -> list[str]:
    """Names of a comma-separated list; ``Sammy Davis, Jr.`` stays one name."""
    names: list[str] = []
    for part in (s.strip() for s in (key_text(value) or "").split(",")):
        if part in _NAME_SUFFIXES and names:
            names[-1] += f", {part}"
        elif part:
            names.append(part)
    return names


def leading_names(column: pd.Series, n: int = 5) -> pd.Series:
    """Keep ``n`` names per cell, those named most often in the whole column first.

    Wikidata lists a film's cast alphabetically, so the first names listed are arbitrary ones;
    the names a catalogue lists most often are its stars (``Morgan Freeman, Tim Robbins``
    rather than ``Alfonso Freeman, Bill Bolender`` for The Shawshank Redemption). Ties keep
    the listed order. Missing cells become ``""``.
    """
    lists = column.map(split_names)
    counts = Counter(name for names in lists for name in names)
    return lists.map(lambda names: ", ".join(sorted(names, key=lambda m: -counts[m])[:n]))


def _prepare_bokeh(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["Cast"] = leading_names(table["Cast"])
    table["Runtime"] = pd.to_numeric(table["Runtime"], errors="coerce").round().astype("Int64")
    return table


@dataclass(frozen=True)
class KnowledgeSource:
    """A named item table: how to get it and how it joins.

    Attributes:
        path: the table file (a function: the package providing it may be absent).
        table_name: the SQLite table.
        title: its title column; year: its year column.
        columns: its columns -> item columns.
        prepare: applied to the table before the join.
        description: one line for help texts.
        version: of ``prepare``, part of the enriched dataset's checksum (bump it when
            ``prepare`` changes what it makes of the same table).
    """

    path: Callable[[], Path]
    table_name: str | None
    title: str
    year: str | None
    columns: dict[str, str]
    prepare: Callable[[pd.DataFrame], pd.DataFrame] = lambda t: t
    description: str = ""
    version: str = "1"


SOURCES: dict[str, KnowledgeSource] = {
    "bokeh-movies": KnowledgeSource(
        path=bokeh_movies_path,
        table_name="omdb",
        title="Title",
        year="Year",
        columns={
            "Director": "director",
            "Writer": "writer",
            "Cast": "cast",
            "Country": "country",
            "Language": "language",
            "Runtime": "runtime",
        },
        prepare=_prepare_bokeh,
        description="17,472 films of 1940-2014 (Wikidata, CC0) from the bokeh-sampledata "
        "package: director, writer, cast (5 names, the most frequent in the table first), "
        "country, language, runtime in minutes",
    )
}
"""Named item tables for ``enrich: NAME`` and ``--source NAME``."""


def knowledge_source(name: str) -> KnowledgeSource:
    """The named source; ConfigError listing the known ones for an unknown name."""
    if name not in SOURCES:
        raise ConfigError(f"unknown enrichment source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


ITEMS_KIND = "enriched-items"
"""What ``llmrec data enrich`` records in its Parquet file's metadata (``attrs["llmrec"]``)."""


class EnrichSpec(BaseModel):
    """Which table to join into the items, and how (``enrich:`` of a dataset preset).

    Give a named ``source`` (``bokeh-movies``), a ``table`` file, or both (the file replaces
    the source's copy; its column names and preparation stay).
    """

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    """A name of :data:`SOURCES`."""
    table: str | None = None
    """CSV, TSV, Parquet or SQLite file; a relative path is relative to the working folder."""
    table_name: str | None = None
    """The SQLite table (default: the source's, or the only table)."""
    on: str | None = None
    """Exact key join: ``item_column=table_column``, or one name for both; None: by title."""
    title_column: str | None = None
    """The items' title column (default: the dataset's title text column)."""
    year_column: str | None = None
    """The items' year column (default: the dataset's year text column, if any)."""
    table_title: str | None = None
    """The table's title column (default: the source's, else ``title``)."""
    table_year: str | None = None
    """The table's year column (default: the source's, else ``year`` when present)."""
    columns: dict[str, str] = {}
    """Table column -> new item column (default: the source's)."""
    year_tolerance: int = Field(default=1, ge=0)
    fuzzy: float | None = Field(default=0.9, gt=0, le=1)
    """Smallest fuzzy title ratio; None: exact titles only."""

    @model_validator(mode="after")
    def _source_or_table(self) -> EnrichSpec:
        if self.source is None and self.table is None:
            raise ValueError("give a named source (e.g. bokeh-movies) or a table file")
        if self.source is not None and self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; known: {', '.join(SOURCES)}")
        return self


def as_spec(value: EnrichSpec | str | Mapping[str, Any]) -> EnrichSpec:
    """An :class:`EnrichSpec` from a spec, a source name or a mapping.

    Raises:
        ConfigError: an invalid mapping or an unknown source name.
    """
    if isinstance(value, EnrichSpec):
        return value
    try:
        if isinstance(value, str):
            return EnrichSpec(source=value)
        return EnrichSpec.model_validate(dict(value))
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'enrich'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ConfigError(f"invalid enrich option {value!r}: {'; '.join(problems)}") from exc


def enrich_dataset(
    dataset: Dataset, spec: EnrichSpec | str | Mapping[str, Any]
) -> tuple[Dataset, MatchReport]:
    """A copy of ``dataset`` whose items carry the table's columns.

    Its checksum covers the dataset's, the table file's and the spec, and its
    ``metadata["enrichment"]`` (also in ``describe()``) records the match report, the table
    and its checksum.

    Args:
        dataset: the dataset to enrich (not changed).
        spec: see :class:`EnrichSpec`; a string is a source name.

    Returns:
        The enriched dataset and the match report.

    Raises:
        ConfigError: an invalid spec, a source whose package is missing.
        DataError: an unreadable table, missing key columns, no item matched.
    """
    spec = as_spec(spec)
    source = knowledge_source(spec.source) if spec.source else None
    if spec.table:
        path = Path(os.path.expandvars(spec.table)).expanduser()
    elif source is not None:
        path = source.path()
    else:  # EnrichSpec's validator prevents this
        raise ConfigError("enrich: give a named source (e.g. bokeh-movies) or a table file")
    table_name = spec.table_name or (source.table_name if source else None)
    table = read_table(path, table_name)
    label = spec.source or str(path)
    if source is not None:
        table = source.prepare(table)
    columns = spec.columns or (source.columns if source else {})
    if not columns:
        raise ConfigError(f"enriching from {label}: name the table columns to add (columns)")
    table_title = spec.table_title or (source.title if source else "title")
    table_year = spec.table_year or (source.year if source else None)
    if table_year is None and "year" in table.columns:
        table_year = "year"
    items = dataset.items
    on = _parse_on(spec.on)
    title_column, year_column = spec.title_column, spec.year_column
    if on is None:
        roles = resolve_text_columns(items, dataset.text_columns)
        title_column = title_column or roles["title"]
        year_column = year_column or roles.get("year")
    enriched, report = enrich_items(
        items,
        table,
        columns=columns,
        on=on,
        title_column=title_column or "title",
        year_column=year_column,
        table_title=table_title,
        table_year=table_year,
        year_tolerance=spec.year_tolerance,
        fuzzy=spec.fuzzy,
        source=label,
    )
    table_checksum = sha256_file(path)
    result = copy.copy(dataset)
    result.items = enriched
    result.text_columns = dict(dataset.text_columns)
    result.checksum = hashlib.sha256(
        f"{dataset.checksum}\nenrich {table_checksum} {spec.model_dump_json()} "
        f"{source.version if source else ''}".encode()
    ).hexdigest()
    result.metadata = {
        **dataset.metadata,
        "enrichment": {
            **report.to_dict(),
            "table": str(path),
            "table_name": table_name,
            "table_checksum": table_checksum,
            "columns": dict(columns),
            "spec": spec.model_dump(exclude_defaults=True),
        },
    }
    return result, report


def _parse_on(on: str | None) -> tuple[str, str] | None:
    if not on:
        return None
    item, equals, table = (part.strip() for part in on.partition("="))
    if not item or (equals and not table):
        raise ConfigError(f"on={on!r}: use ITEM_COLUMN=TABLE_COLUMN or one column name")
    return item, table or item


def check_items_target(out: Path, overwrite: bool = False) -> Path:
    """Check, before the join, that the enriched items may be written to ``out``.

    Raises:
        ConfigError: ``out`` is a folder, not a Parquet path, or in a missing folder.
        ArtifactError: ``out`` exists and llmrec did not write it (without ``overwrite``).
    """
    out = Path(os.path.abspath(out))
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a .parquet file path")
    if out.suffix not in (".parquet", ".pq"):
        raise ConfigError(f"--out {out}: the enriched items are written as Parquet (.parquet)")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist or is not writable")
    if out.exists() and not overwrite and _kind(out) != ITEMS_KIND:
        raise ArtifactError(
            f"{out} exists and is not an enriched items file written by llmrec; refusing to "
            "replace it: choose another path, or pass --overwrite to replace it"
        )
    return out


def _kind(path: Path) -> str | None:
    try:
        record = pd.read_parquet(path, columns=[]).attrs.get("llmrec")
    except Exception:  # not a Parquet file at all: not ours
        return None
    return record.get("kind") if isinstance(record, dict) else None


def write_enriched_items(
    items: pd.DataFrame, out: Path, report: MatchReport, dataset: str = ""
) -> Path:
    """Write ``items`` as Parquet through a temp file and a rename; the file's
    ``attrs["llmrec"]`` records the kind, the dataset and the match report."""
    frame = items.reset_index(drop=True)
    frame.attrs["llmrec"] = {"kind": ITEMS_KIND, "dataset": dataset, "report": report.to_dict()}
    try:
        return atomic_write(out, lambda tmp: frame.to_parquet(tmp, index=False))
    except (OSError, ValueError) as exc:
        raise DataError(f"{out}: cannot write the enriched items: {exc}") from exc
