"""``llmrec data``, ``llmrec evaluate`` and ``llmrec demo``: datasets, splits and the fair
comparison."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmrec.cli.common import (
    DatasetArg,
    DatasetOpt,
    EncodingOpt,
    OverwriteOpt,
    SeedOpt,
    SplitOpt,
    app,
    console,
    data_app,
    fail,
    load_dataset,
)
from llmrec.datasets import DatasetFilters, apply_filters, split
from llmrec.errors import ConfigError, LLMRecError
from llmrec.evaluation import print_table, resolve_model, run_study, write_report

DEFAULT_MODELS = "pop,als,bpr,recbole:BPR,recbole:LightGCN"


@data_app.command("describe")
def data_describe(dataset: DatasetArg, encoding: EncodingOpt = None) -> None:
    """Print a dataset's size, density, columns and checksum."""
    info = load_dataset(dataset, encoding).describe()
    table = Table(title=f"dataset {info['name']}", show_header=False)
    for key, value in info.items():
        table.add_row(key, f"{value:.5f}" if isinstance(value, float) else str(value))
    console.print(table)


@data_app.command("split")
def data_split(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for train/valid/test.parquet.")],
    split_name: SplitOpt = "random",
    seed: SeedOpt = 42,
    overwrite: OverwriteOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Split a dataset and write train/valid/test as Parquet plus split.json."""
    from llmrec.artifacts import check_target

    try:
        check_target(out, "split", overwrite)
        result = split(load_dataset(dataset, encoding), split_name, seed)
        result.save(out, overwrite=overwrite)
    except (LLMRecError, OSError) as exc:
        fail(exc)
    console.print(result.describe())
    console.print(f"wrote {out}/train.parquet, valid.parquet, test.parquet, split.json")


@data_app.command("enrich")
def data_enrich(
    out: Annotated[Path, typer.Option("--out", help="Parquet file for the enriched items.")],
    dataset: DatasetOpt = "ml-100k",
    source: Annotated[
        str | None, typer.Option("--source", help="A named item table: bokeh-movies.")
    ] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="CSV, TSV, Parquet or SQLite item table.")
    ] = None,
    table_name: Annotated[
        str | None, typer.Option("--table-name", help="The table inside a SQLite --table.")
    ] = None,
    title_column: Annotated[
        str | None, typer.Option("--title-column", help="The table's title column.")
    ] = None,
    year_column: Annotated[
        str | None, typer.Option("--year-column", help="The table's year column.")
    ] = None,
    on: Annotated[
        str | None,
        typer.Option("--on", help="Join by an exact key: ITEM_COLUMN=TABLE_COLUMN (or one name)."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns", help="Table columns to add: TABLE_COLUMN=ITEM_COLUMN,... (or names)."
        ),
    ] = None,
    year_tolerance: Annotated[
        int, typer.Option("--year-tolerance", help="Largest year difference of a match.")
    ] = 1,
    fuzzy: Annotated[
        float, typer.Option("--fuzzy", help="Smallest fuzzy title ratio (0-1]; 1: exact only.")
    ] = 0.9,
    overwrite: OverwriteOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Join an item table (director, cast, ...) into a dataset's items, print the match rate
    and write the enriched items table as Parquet."""
    from llmrec.datasets.knowledge import (
        as_spec,
        check_items_target,
        enrich_dataset,
        write_enriched_items,
    )

    try:
        target = check_items_target(out, overwrite)
        mapping = {}
        for pair in filter(None, (p.strip() for p in (columns or "").split(","))):
            name, _, new = pair.partition("=")
            mapping[name.strip()] = new.strip() or name.strip()
        options = {
            "source": source,
            "table": str(table) if table else None,
            "table_name": table_name,
            "table_title": title_column,
            "table_year": year_column,
            "on": on,
            "columns": mapping,
            "year_tolerance": year_tolerance,
            "fuzzy": fuzzy,
        }
        spec = as_spec({k: v for k, v in options.items() if v is not None})
        data = load_dataset(dataset, encoding)
        enriched, report = enrich_dataset(data, spec)
        write_enriched_items(enriched.items, target, report, enriched.name)
    except (LLMRecError, OSError) as exc:
        fail(exc)
    console.print(report.summary())
    if report.unmatched_examples:
        console.print(f"unmatched, e.g.: {'; '.join(report.unmatched_examples)}")
    console.print(f"wrote {target} ({len(enriched.items):,} items, checksum {enriched.checksum})")


FilterOpts = {
    "min_rating": typer.Option(
        "--min-rating", help="Keep interactions rated at least this (RecBole's val_interval)."
    ),
    "user_core": typer.Option(
        "--user-core", help="Iterative k-core: users keep >= this many interactions."
    ),
    "item_core": typer.Option(
        "--item-core", help="Iterative k-core: items keep >= this many interactions."
    ),
}


def model_specs(models: str) -> list:
    """The models named by ``--models`` (comma-separated), resolved.

    Raises:
        ConfigError: no model named, or an unknown one.
    """
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise ConfigError(f"--models {models!r} names no model; e.g. --models pop,als,ease")
    specs = [resolve_model(name) for name in names]
    for spec in specs:  # every grid point's config is checked before any data is read
        for trial in spec.trials():
            spec.build(trial)
    return specs


def run_evaluation(
    dataset: str,
    split_name: str,
    seeds: list[int],
    models: str,
    ks: list[int],
    out: Path | None,
    tune: bool,
    protocol: str = "holdout",
    filters: dict | None = None,
    stat_test: str = "student",
    encoding: str | None = None,
) -> dict:
    """Everything is checked (the report's folder too) before the first model is fitted."""
    try:
        if out is not None:
            _check_writable(out)
        specs = model_specs(models)
        data = apply_filters(load_dataset(dataset, encoding), DatasetFilters(**(filters or {})))
    except (LLMRecError, ValueError) as exc:
        fail(exc)

    def announce(seed: int, spec) -> None:
        grid = " (grid search on valid)" if tune and spec.grid else ""
        console.print(f"[cyan]seed {seed}[/cyan] fit {spec.name}{grid}")

    try:
        report = run_study(
            data, split_name, seeds, specs, ks, protocol, tune, stat_test, on_model=announce
        )
    except LLMRecError as exc:
        fail(exc)
    print_table(report, console)
    if out is not None:
        write_report(out, report)
        console.print(f"wrote {out}")
    return report


def _check_writable(out: Path) -> None:
    """Fail before a long run, not after it, when the report cannot be written."""
    parent = out.resolve().parent
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file path for the JSON report")
    if not parent.is_dir():
        raise ConfigError(f"--out {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--out {out}: folder {parent} is not writable")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def evaluate(
    ctx: typer.Context,
    dataset: DatasetOpt = "ml-100k",
    split_name: SplitOpt = "random",
    seeds: Annotated[
        list[str] | None,
        typer.Option("--seeds", "--seed", help="Split seeds: --seeds 1 2 3 (or 1,2,3)."),
    ] = None,
    models: Annotated[
        str,
        typer.Option(
            "--models", help="Comma-separated presets, kinds, recbole:MODEL or YAML paths."
        ),
    ] = DEFAULT_MODELS,
    k: Annotated[
        list[int] | None, typer.Option("--k", help="Cut-offs: --k 10 20 (or --k 10 --k 20).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON report here.")] = None,
    tune: Annotated[
        bool, typer.Option("--tune", help="Grid-search each preset's grid on valid.")
    ] = False,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            help="holdout: all fit on train, valid picks and early-stops; refit: then all "
            "refit on train+valid with the picks.",
        ),
    ] = "holdout",
    stat_test: Annotated[
        str, typer.Option("--stat-test", help="Paired test over users: student, fisher, tukey.")
    ] = "student",
    min_rating: Annotated[float | None, FilterOpts["min_rating"]] = None,
    user_core: Annotated[int | None, FilterOpts["user_core"]] = None,
    item_core: Annotated[int | None, FilterOpts["item_core"]] = None,
    encoding: EncodingOpt = None,
) -> None:
    """Fit models on the same splits under one protocol and report full-ranking metrics
    (mean ± std over seeds, paired significance tests against the best model)."""
    run_evaluation(
        dataset,
        split_name,
        _seed_list(seeds),
        models,
        _cutoffs(k, ctx.args),
        out,
        tune,
        protocol,
        {"min_rating": min_rating, "user_core": user_core, "item_core": item_core},
        stat_test,
        encoding,
    )


def _seed_list(values: list[str] | None) -> list[int]:
    """``--seeds 1,2,3`` or repeated ``--seeds``; ``main`` turns ``--seeds 1 2 3`` into the
    repeated form."""
    if not values:
        return [42]
    parts = [p.strip() for v in values for p in v.split(",")]
    bad = [p for p in parts if not p.lstrip("-").isdigit()]
    if bad or not parts:
        fail(ConfigError(f"--seeds takes integers, got {bad or values}"))
    return [int(p) for p in parts]


def _cutoffs(k: list[int] | None, extra: list[str]) -> list[int]:
    """``--k 10 20``: click gives one value per ``--k``; the rest arrive as extra arguments."""
    bad = [a for a in extra if not a.isdigit()]
    if bad:
        fail(ConfigError(f"unexpected argument(s) {bad}; only cut-offs may follow --k"))
    if extra and not k:
        fail(ConfigError(f"unexpected argument(s) {extra}"))
    ks = sorted(set((k or [10, 20]) + [int(a) for a in extra]))
    if min(ks) < 1:
        fail(ConfigError(f"cut-offs must be positive, got {ks}"))
    return ks
