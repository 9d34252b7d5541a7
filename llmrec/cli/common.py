"""What every ``llmrec`` subcommand shares: the apps, consoles, options and error exit."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmrec.datasets import SPLITS, Dataset, load
from llmrec.errors import ConfigError, LLMRecError

app = typer.Typer(
    help="llmrec: language-model features for existing recommenders, evaluated honestly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and split datasets.", no_args_is_help=True)
index_app = typer.Typer(help="Build and query FAISS candidate indexes.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(index_app, name="index")
console = Console()
err_console = Console(stderr=True)

DatasetArg = Annotated[
    str,
    typer.Argument(help="Dataset name (ml-100k, ml-1m), preset YAML, folder or CSV/Parquet file."),
]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="Dataset name, preset or path.")]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of the dataset's files (default UTF-8; Latin-1 for raw MovieLens).",
    ),
]
SplitOpt = Annotated[str, typer.Option("--split", help=f"One of: {', '.join(SPLITS)}.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed of the split.")]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace --out even when it is not an llmrec folder of this kind (its files are "
        "deleted).",
    ),
]


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as one line and exit with status 2 (bad input), without a traceback."""
    # The message as plain text: ids such as "[1]" must not be read as rich markup.
    err_console.print("[red]error:[/red]", Text(str(exc)))
    raise typer.Exit(code=2)


def load_dataset(name: str, encoding: str | None = None) -> Dataset:
    """:func:`llmrec.datasets.load`, exiting with a clear error on bad input."""
    try:
        return load(name, encoding=encoding)
    except (LLMRecError, OSError) as exc:
        fail(exc)


UsersOpt = Annotated[str | None, typer.Option("--users", help="Comma-separated user ids.")]
UserOpt = Annotated[
    list[str] | None, typer.Option("--user", help="One user id (repeatable; may hold commas).")
]
UsersFileOpt = Annotated[
    Path | None, typer.Option("--users-file", help="A file of user ids, one per line.")
]


def user_ids(users: str | None, user: list[str] | None, users_file: Path | None) -> list[str]:
    """The user ids of ``--users``, ``--user`` and ``--users-file`` (see :func:`id_list`).

    Raises:
        ConfigError: none given, or the file cannot be read.
    """
    wanted = id_list("user", users, user, users_file)
    if not wanted:
        raise ConfigError("no user ids: give --users a,b, --user ID or --users-file F")
    return wanted


def id_list(
    option: str, joined: str | None, single: list[str] | None, file: Path | None
) -> list[str]:
    """Ids from ``--OPTIONs a,b``, repeated ``--OPTION "x, The (1999)"`` (ids with commas) and
    ``--OPTIONs-file F`` (one id per line), in that order, stripped, blanks dropped.

    Raises:
        ConfigError: the file cannot be read.
    """
    ids = [i.strip() for i in (joined or "").split(",")]
    ids += [i.strip() for i in single or []]
    if file is not None:
        try:
            ids += [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--{option}s-file {file}: cannot read it ({exc})") from exc
    return [i for i in ids if i]


FORMATS = ("table", "json", "csv")
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format", help="table (for people), json (one object per user) or csv (one row per item)."
    ),
]


def show_ranked(
    output: str,
    title: str,
    users: list[str],
    ids: np.ndarray,
    scores: np.ndarray,
    served_by: list[str] | None = None,
) -> None:
    """Print per-user ranked items; slots without an item (``None`` or ``-1``) are left out.

    Raises:
        ConfigError: an unknown format.
    """
    if output not in FORMATS:
        raise ConfigError(f"--format {output!r}: use one of {', '.join(FORMATS)}")
    ranked = [
        [(str(i), float(s)) for i, s in zip(row, row_scores, strict=True) if _filled(i)]
        for row, row_scores in zip(ids, scores, strict=True)
    ]
    served: Sequence[str | None] = served_by or [None] * len(users)
    if output == "json":
        for user, how, items in zip(users, served, ranked, strict=True):
            record = {"user": user, "items": [i for i, _ in items], "scores": [s for _, s in items]}
            if how is not None:
                record["served_by"] = how
            print(json.dumps(record))
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["user", "rank", "item", "score", *(["served_by"] if served_by else [])])
        for user, how, items in zip(users, served, ranked, strict=True):
            for rank, (item, score) in enumerate(items, start=1):
                writer.writerow([user, rank, item, f"{score:.6g}", *([how] if served_by else [])])
    else:
        table = Table(title=title)
        table.add_column("user")
        if served_by:
            table.add_column("served by")
        table.add_column("items (score)")
        for user, how, items in zip(users, served, ranked, strict=True):
            shown = ", ".join(f"{i} ({s:.3f})" for i, s in items)
            table.add_row(user, *([how] if served_by else []), shown)
        console.print(table)


def _filled(item: object) -> bool:
    return item is not None and not (isinstance(item, int | np.integer) and item < 0)
