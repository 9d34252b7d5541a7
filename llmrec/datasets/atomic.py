"""RecBole atomic files: ``NAME.inter``/``.item``/``.user``, tab-separated, ``field:type``
headers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from llmrec.errors import DataError
from llmrec.io import check_text_encoding

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
SUFFIXES = ("inter", "item", "user")


def parse_header(path: Path, line: str) -> tuple[list[str], list[str]]:
    """Split an atomic header line into field names and types, validating each."""
    names, types = [], []
    for column, cell in enumerate(line.rstrip("\r\n").split("\t"), start=1):
        name, sep, kind = cell.partition(":")
        if not sep or not name:
            raise DataError(
                f"{path}: header column {column} is {cell!r}; expected 'field:type' "
                f"with type one of {', '.join(ATOMIC_TYPES)}"
            )
        if kind not in ATOMIC_TYPES:
            raise DataError(
                f"{path}: header column {column} ({name!r}) has unknown type {kind!r}; "
                f"expected one of {', '.join(ATOMIC_TYPES)}"
            )
        names.append(name)
        types.append(kind)
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate field names in header: {names}")
    return names, types


def read_atomic_file(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read one atomic file into a DataFrame.

    ``token`` and ``token_seq`` fields stay strings; ``float`` fields become float64 (an empty
    cell is NaN); ``float_seq`` fields stay as their space-separated strings.

    Args:
        path: the ``.inter``, ``.item`` or ``.user`` file.
        encoding: the file's text encoding.

    Returns:
        A DataFrame with one column per header field.

    Raises:
        DataError: on a missing file, undecodable bytes, a bad header, a row with the wrong
            number of fields, or a non-numeric value in a ``float`` field; the message names
            the file, line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such atomic file")
    check_text_encoding(path, encoding)
    with open(path, encoding=encoding) as fh:
        header = fh.readline()
    if not header.strip():
        raise DataError(f"{path}: empty file (no header line)")
    names, types = parse_header(path, header)
    _check_field_counts(path, len(names), encoding)
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            skiprows=1,
            header=None,
            names=names,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
            encoding=encoding,
        )
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path}: malformed row ({exc}); the header has {len(names)} fields"
        ) from exc
    for name, kind in zip(names, types, strict=True):
        if kind == "float":
            frame[name] = _to_float(path, name, frame[name])
    return frame


def _check_field_counts(path: Path, expected: int, encoding: str) -> None:
    """pandas pads short rows and turns long rows' extra fields into an index; refuse both."""
    with open(path, encoding=encoding) as fh:
        fh.readline()
        for lineno, line in enumerate(fh, start=2):
            found = line.count("\t") + 1
            if found != expected and line.strip():
                raise DataError(
                    f"{path}: line {lineno} has {found} tab-separated fields; the header has "
                    f"{expected}"
                )


def _to_float(path: Path, name: str, column: pd.Series) -> pd.Series:
    values = pd.to_numeric(column.where(column.ne("")), errors="coerce")
    bad = values.isna() & column.ne("")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: column {name!r} is declared float but line {row + 2} holds "
            f"{column.iloc[row]!r}"
        )
    return values.astype("float64")


def find_atomic_files(folder: Path) -> dict[str, Path]:
    """The atomic files of a folder, keyed by suffix; the folder name is the dataset name."""
    found = {}
    for suffix in SUFFIXES:
        candidates = sorted(folder.glob(f"*.{suffix}"))
        preferred = [p for p in candidates if p.stem == folder.name]
        if preferred or candidates:
            found[suffix] = (preferred or candidates)[0]
    return found


def write_atomic_interactions(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``user_id``/``item_id`` (and ``rating``/``timestamp`` if present) as an atomic file."""
    columns = [c for c in ("user_id", "item_id", "rating", "timestamp") if c in frame.columns]
    kinds = {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"}
    header = "\t".join(f"{c}:{kinds[c]}" for c in columns)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header + "\n")
        frame[columns].to_csv(fh, sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE)
