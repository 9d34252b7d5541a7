"""``load(name_or_path)``: built-in names, YAML presets, atomic folders, MovieLens folders and
tables."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from llmrec.datasets.atomic import find_atomic_files, read_atomic_file
from llmrec.datasets.dataset import Dataset
from llmrec.datasets.knowledge import EnrichSpec, enrich_dataset
from llmrec.datasets.movielens import is_movielens_folder, read_movielens
from llmrec.errors import DataError
from llmrec.io import check_text_encoding, sha256_files

DATA_DIR_ENV = "LLMREC_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PRESET_DIR = Path(str(resources.files("llmrec") / "presets" / "datasets"))
"""Presets ship inside the package, so a wheel install finds them."""
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


class DatasetPreset(BaseModel):
    """A dataset preset (``datasets/NAME.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str | None = None
    """Folder or file; relative paths resolve against the data dirs. None: search by name."""
    base: str | None = None
    """Another dataset (name, preset or path) this one is made from, e.g. ``ml-100k``; its data
    with this preset's name, text columns and enrichment. Excludes ``path``."""
    description: str = ""
    text_columns: dict[str, str] = {}
    """Roles (title, year, genres) to item columns, for ``item_text``."""
    encoding: str | None = None
    """Text encoding of the files; None: UTF-8 (Latin-1 for raw MovieLens folders)."""
    enrich: str | EnrichSpec | None = None
    """An item table joined into the items: a source name (``bokeh-movies``) or an
    :class:`~llmrec.datasets.knowledge.EnrichSpec` mapping (table, keys, columns)."""

    @model_validator(mode="after")
    def _path_or_base(self) -> DatasetPreset:
        if self.path is not None and self.base is not None:
            raise ValueError("give path or base, not both")
        if self.base == self.name:
            raise ValueError(f"base {self.base!r} is the preset itself")
        return self


EnrichOption = str | EnrichSpec | Mapping[str, Any] | None


def load(
    name_or_path: str | os.PathLike[str],
    encoding: str | None = None,
    enrich: EnrichOption = None,
) -> Dataset:
    """Load a dataset by name, preset or path.

    Resolution order: an existing path (atomic folder, MovieLens folder, CSV/Parquet file, or a
    preset YAML file); a preset in the project's ``datasets/`` folder; ``ml-100k`` (the copy
    inside the installed recbole wheel); a folder of that name under ``$LLMREC_DATA_DIR`` or
    ``../shared/data``.

    Args:
        name_or_path: e.g. ``"ml-100k"``, ``"ml-1m"``, ``"path/to/folder"``, ``"ratings.csv"``.
        encoding: the files' text encoding, overriding a preset's; None: the preset's, else
            UTF-8 (Latin-1 for raw MovieLens folders).
        enrich: join an item table into the items, overriding a preset's ``enrich``: a source
            name (``"bokeh-movies"``) or an :class:`~llmrec.datasets.knowledge.EnrichSpec`
            (or its mapping). The dataset's ``metadata["enrichment"]`` records the match report
            and its checksum covers the table.

    Returns:
        The loaded :class:`Dataset`.

    Raises:
        DataError: unknown name, unreadable or malformed files, an enrichment that matches no
            item.
        ConfigError: an invalid ``enrich``.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _from_preset(_read_preset(path), encoding, enrich)
    if path.exists():
        return _enriched(read_path(path, encoding=encoding), enrich)
    preset = PRESET_DIR / f"{text}.yaml"
    if preset.is_file():
        return _from_preset(_read_preset(preset), encoding, enrich)
    if text == "ml-100k":
        dataset = read_path(recbole_example("ml-100k"), name="ml-100k", encoding=encoding)
        return _enriched(dataset, enrich)
    for folder in data_dirs():
        if (folder / text).exists():
            return _enriched(read_path(folder / text, encoding=encoding), enrich)
    known = sorted(["ml-100k", *(p.stem for p in PRESET_DIR.glob("*.yaml"))])
    raise DataError(
        f"unknown dataset {text!r}: not an existing path, not a preset (known: "
        f"{', '.join(sorted(set(known)))}), and no folder of that name in "
        f"{', '.join(str(d) for d in data_dirs())} (set ${DATA_DIR_ENV} to add a data folder)"
    )


def data_dirs() -> list[Path]:
    """Folders searched for datasets by name: ``$LLMREC_DATA_DIR`` then ``../shared/data``."""
    dirs = []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    dirs += [Path.cwd().parent / "shared" / "data", PROJECT_ROOT.parent / "shared" / "data"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def recbole_example(name: str) -> Path:
    """Path of a dataset shipped inside the installed recbole wheel, found without importing it."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"dataset {name!r} ships inside the recbole package, which is not installed "
            "(pip install recbole==1.2.1, or run `make setup`)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / name
    if not folder.is_dir():
        raise DataError(f"the installed recbole has no dataset_example/{name} at {folder}")
    return folder


def _read_preset(path: Path) -> DatasetPreset:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return DatasetPreset.model_validate(raw)
    except (yaml.YAMLError, ValueError) as exc:
        raise DataError(f"{path}: invalid dataset preset: {exc}") from exc


def _enriched(dataset: Dataset, enrich: EnrichOption) -> Dataset:
    return dataset if enrich is None else enrich_dataset(dataset, enrich)[0]


def _from_preset(
    preset: DatasetPreset, encoding: str | None = None, enrich: EnrichOption = None
) -> Dataset:
    encoding = encoding or preset.encoding
    enrich = enrich if enrich is not None else preset.enrich
    if preset.base is not None:
        dataset = load(preset.base, encoding)
        dataset.name = preset.name
        dataset.text_columns = {**dataset.text_columns, **preset.text_columns}
        return _enriched(dataset, enrich)
    if preset.path is None:
        if preset.name == "ml-100k":
            dataset = read_path(recbole_example("ml-100k"), name=preset.name, encoding=encoding)
            dataset.text_columns.update(preset.text_columns)
            return _enriched(dataset, enrich)
        candidates = [d / preset.name for d in data_dirs()]
    else:
        p = Path(os.path.expandvars(preset.path)).expanduser()
        candidates = [p] if p.is_absolute() else [Path.cwd() / p] + [d / p for d in data_dirs()]
    for candidate in candidates:
        if candidate.exists():
            dataset = read_path(candidate, name=preset.name, encoding=encoding)
            dataset.text_columns.update(preset.text_columns)
            return _enriched(dataset, enrich)
    raise DataError(
        f"dataset preset {preset.name!r}: data not found; looked in "
        f"{', '.join(str(c) for c in candidates)} (set ${DATA_DIR_ENV})"
    )


def read_path(path: Path, name: str | None = None, encoding: str | None = None) -> Dataset:
    """Read a dataset from a folder (atomic or raw MovieLens) or a CSV/Parquet table.

    ``encoding`` None means UTF-8, or Latin-1 for a raw MovieLens folder.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
        raise DataError(f"{path}: permission denied (not readable by this user)")
    if path.is_file():
        return _read_table(path, name or path.stem, encoding or "utf-8")
    name = name or path.name
    if is_movielens_folder(path):
        inter, items, users = read_movielens(path, encoding or "latin-1")
        raw_files = [
            p for p in path.iterdir() if p.name in ("u.data", "u.item", "ratings.dat", "movies.dat")
        ]
        return Dataset(name, inter, items, users, sha256_files(raw_files), str(path))
    files = find_atomic_files(path)
    if "inter" not in files:
        raise DataError(
            f"{path}: no dataset found (expected NAME.inter atomic files, u.data or ratings.dat)"
        )
    encoding = encoding or "utf-8"
    inter = read_atomic_file(files["inter"], encoding)
    items = (
        read_atomic_file(files["item"], encoding)
        if "item" in files
        else pd.DataFrame(columns=["item_id"])
    )
    users = (
        read_atomic_file(files["user"], encoding)
        if "user" in files
        else pd.DataFrame(columns=["user_id"])
    )
    for frame, key, file in (
        (inter, "user_id", "inter"),
        (inter, "item_id", "inter"),
        (items, "item_id", "item"),
        (users, "user_id", "user"),
    ):
        if file in files and key not in frame.columns:
            raise DataError(f"{files[file]}: missing column {key!r}; found {list(frame.columns)}")
    return Dataset(name, inter, items, users, sha256_files(files.values()), str(path))


def _read_table(path: Path, name: str, encoding: str) -> Dataset:
    if path.suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unsupported file type; expected {', '.join(TABLE_SUFFIXES)}")
    try:
        if path.suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            check_text_encoding(path, encoding)
            sep = "\t" if path.suffix == ".tsv" else ","
            # round_trip: the default float parser is inexact, so a float-typed id column
            # (196 and 196.0 mixed) would turn 9007199254740991.0 into ...990.
            frame = pd.read_csv(path, sep=sep, encoding=encoding, float_precision="round_trip")
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise DataError(f"{path}: cannot read table: {exc}") from exc
    for col in ("rating", "timestamp"):
        if col in frame.columns:
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() & frame[col].notna()
            if bad.any():
                row = int(bad.to_numpy().argmax())
                raise DataError(f"{path}: column {col!r} row {row} is {frame[col].iloc[row]!r}")
            frame[col] = values
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Dataset(
        name,
        frame,
        pd.DataFrame(columns=["item_id"]),
        pd.DataFrame(columns=["user_id"]),
        digest,
        str(path),
    )
