"""Readers for the raw MovieLens distributions (100k: ``u.data``; 1m/10m: ``ratings.dat``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llmrec.errors import DataError
from llmrec.io import check_text_encoding

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


def is_movielens_folder(folder: Path) -> bool:
    """True when the folder holds a raw MovieLens ratings file."""
    return (folder / "u.data").is_file() or (folder / "ratings.dat").is_file()


def _read(path: Path, sep: str, names: list[str], encoding: str) -> pd.DataFrame:
    check_text_encoding(path, encoding)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            names=names,
            dtype=str,
            encoding=encoding,
            engine="python" if len(sep) > 1 else "c",
            keep_default_na=False,
        )
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed MovieLens file ({exc})") from exc
    if frame.isna().any().any():
        raise DataError(f"{path}: some rows have fewer than {len(names)} fields")
    return frame


def _numeric(path: Path, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for name in columns:
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise DataError(f"{path}: column {name!r} line {row + 1} is {frame[name].iloc[row]!r}")
        frame[name] = values.astype("float64")
    return frame


def read_movielens(
    folder: Path, encoding: str = "latin-1"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read interactions, items and users from a raw MovieLens folder.

    Args:
        folder: holds ``u.data``/``u.item``/``u.user`` or ``ratings.dat``/``movies.dat``/
            ``users.dat``.
        encoding: GroupLens ships these files in Latin-1.

    Returns:
        ``(interactions, items, users)``; items carry ``title``, ``release_year`` and ``genres``
        (space-separated), users carry the demographic columns.
    """
    if (folder / "u.data").is_file():
        inter = _read(folder / "u.data", "\t", INTERACTION_COLUMNS, encoding)
        items = _read_ml100k_items(folder / "u.item", encoding)
        users = _optional(
            folder / "u.user", "|", ["user_id", "age", "gender", "occupation", "zip"], encoding
        )
    else:
        inter = _read(folder / "ratings.dat", "::", INTERACTION_COLUMNS, encoding)
        items = _optional(folder / "movies.dat", "::", ["item_id", "title", "genres"], encoding)
        if not items.empty:
            year = items["title"].str.extract(r"\((\d{4})\)\s*$")[0]
            items["release_year"] = year.fillna("")
            items["title"] = items["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True)
            items["genres"] = items["genres"].str.replace("|", " ", regex=False)
        cols = ["user_id", "gender", "age", "occupation", "zip"]
        users = _optional(folder / "users.dat", "::", cols, encoding)
    inter = _numeric(folder, inter, ["rating", "timestamp"])
    return inter, items, users


def _optional(path: Path, sep: str, names: list[str], encoding: str) -> pd.DataFrame:
    return _read(path, sep, names, encoding) if path.is_file() else pd.DataFrame(columns=names[:1])


def _read_ml100k_items(path: Path, encoding: str) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=["item_id"])
    names = ["item_id", "title", "release_date", "video_release_date", "url", *ML100K_GENRES]
    raw = _read(path, "|", names, encoding)
    flags = raw[ML100K_GENRES].eq("1")
    genres = flags.apply(
        lambda row: " ".join(g for g, on in zip(ML100K_GENRES, row, strict=True) if on), axis=1
    )
    year = raw["title"].str.extract(r"\((\d{4})\)\s*$")[0].fillna("")
    title = raw["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True)
    return pd.DataFrame(
        {"item_id": raw["item_id"], "title": title, "release_year": year, "genres": genres}
    )
