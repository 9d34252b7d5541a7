"""``llmrec llm``: text a local LLM writes for a dataset (item descriptions, user summaries)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from llmrec.cli.common import (
    DatasetOpt,
    UserOpt,
    UsersOpt,
    app,
    console,
    fail,
    id_list,
    load_dataset,
    user_ids,
)
from llmrec.datasets import Dataset, item_text, to_csr
from llmrec.errors import ConfigError, DataError, LLMRecError
from llmrec.io import atomic_write_text
from llmrec.llm import Generator, load_generator
from llmrec.llm.tasks import describe_items, summarize_users
from llmrec.rankers.text_similarity import summary_histories

llm_app = typer.Typer(
    help="Text a local LLM writes: item descriptions, user preference summaries.",
    no_args_is_help=True,
)
app.add_typer(llm_app, name="llm")

ModelOpt = Annotated[
    str | None,
    typer.Option("--llm", help="LLM folder or .gguf file (default: the shipped SmolLM2-135M)."),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per forward pass.")]
TokensOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, help="Tokens per answer.")]


def item_positions(dataset: Dataset, ids: list[str]) -> list[int]:
    """Catalogue positions of item ids.

    Raises:
        DataError: an id is not in the dataset (the first few unknown ones are named).
    """
    where = {item: i for i, item in enumerate(dataset.item_ids)}
    unknown = [i for i in ids if i not in where]
    if unknown:
        raise DataError(f"unknown item id(s) {unknown[:5]} in dataset {dataset.name!r}")
    return [where[i] for i in ids]


def describe_table(
    dataset: Dataset,
    positions: list[int],
    generator: Generator,
    batch_size: int = 16,
    max_new_tokens: int = 64,
) -> pd.DataFrame:
    """``item_id``, ``text`` and the LLM ``description`` ("" where dropped) of some items."""
    texts = item_text(dataset.items, dataset.text_columns).to_numpy(dtype=object)[positions]
    report = describe_items(
        generator, list(texts), batch_size=batch_size, max_new_tokens=max_new_tokens
    )
    return pd.DataFrame(
        {
            "item_id": dataset.item_ids[positions],
            "text": texts,
            "description": [t or "" for t in report.texts],
        }
    )


def print_descriptions(table: pd.DataFrame, generator: Generator) -> None:
    shown = Table(title=f"Item descriptions written by {generator.name}", show_lines=True)
    for column in ("item", "metadata", "LLM description"):
        shown.add_column(column, overflow="fold")
    for row in table.itertuples():
        shown.add_row(str(row.item_id), str(row.text), row.description or "(dropped)")
    console.print(shown)
    stats = generator.stats
    console.print(
        f"{stats.cached} from the cache, {stats.generated} generated"
        + (f" at {stats.tokens_per_second:.0f} tokens/s" if stats.generated else "")
    )


@llm_app.command("describe")
def describe(
    dataset: DatasetOpt = "ml-100k",
    items: Annotated[str | None, typer.Option("--items", help="Comma-separated item ids.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Without --items: the first N items.")
    ] = None,
    llm: ModelOpt = None,
    batch_size: BatchOpt = 32,
    max_new_tokens: TokensOpt = 64,
    out: Annotated[Path | None, typer.Option("--out", help="Write a CSV here.")] = None,
) -> None:
    """Describe items with the LLM (cached: a second run prints at once)."""
    try:
        data = load_dataset(dataset)
        wanted = id_list("item", items, None, None)
        positions = item_positions(data, wanted) if wanted else list(range(len(data.item_ids)))
        positions = positions[:limit] if limit else positions
        generator = load_generator(llm)
        table = describe_table(data, positions, generator, batch_size, max_new_tokens)
    except LLMRecError as exc:
        fail(exc)
    if out is not None:
        atomic_write_text(out, table.to_csv(index=False))
        console.print(f"wrote {len(table)} descriptions to {out}")
    else:
        print_descriptions(table, generator)


@llm_app.command("summarize")
def summarize(
    dataset: DatasetOpt = "ml-100k",
    users: UsersOpt = None,
    user: UserOpt = None,
    n_items: Annotated[
        int, typer.Option("--n-items", min=1, help="Best-rated items to write from.")
    ] = 10,
    llm: ModelOpt = None,
    max_new_tokens: TokensOpt = 64,
) -> None:
    """A preference summary of each user, from their best-rated items."""
    try:
        data = load_dataset(dataset)
        ids = user_ids(users, user, None)
        where = {u: i for i, u in enumerate(data.user_ids)}
        unknown = [u for u in ids if u not in where]
        if unknown:
            raise ConfigError(f"unknown user id(s) {unknown[:5]} in dataset {data.name!r}")
        matrix = to_csr(data.interactions, len(data.user_ids), len(data.item_ids), values="rating")
        texts = item_text(data.items, data.text_columns).to_numpy(dtype=object)
        histories = summary_histories(matrix, texts, [where[u] for u in ids], n_items)
        generator = load_generator(llm)
        report = summarize_users(generator, histories, max_new_tokens=max_new_tokens)
    except LLMRecError as exc:
        fail(exc)
    for u, history, text in zip(ids, histories, report.texts, strict=True):
        console.print(f"[bold]user {u}[/bold] liked: " + "; ".join(np.asarray(history)[:5]))
        console.print(f"  {text or '(the model wrote nothing usable)'}")
