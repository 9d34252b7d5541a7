"""The ``llmrec`` command line: ``data``, ``evaluate``, ``encode``, ``index``, ``train``,
``recommend``, ``demo``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from llmrec.datasets import SPLITS, DatasetFilters, apply_filters, load, split
from llmrec.errors import LLMRecError
from llmrec.evaluation import print_table, resolve_model, run_study, write_report
from llmrec.rankers.base import make_config

app = typer.Typer(
    help="llmrec: language-model features for existing recommenders, evaluated honestly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and split datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
err_console = Console(stderr=True)

DatasetArg = Annotated[
    str,
    typer.Argument(help="Dataset name (ml-100k, ml-1m), preset YAML, folder or CSV/Parquet file."),
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
DEFAULT_MODELS = "pop,als,bpr,recbole:BPR,recbole:LightGCN"


def _fail(exc: Exception) -> None:
    err_console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2)


@data_app.command("describe")
def data_describe(dataset: DatasetArg) -> None:
    """Print a dataset's size, density, columns and checksum."""
    try:
        info = load(dataset).describe()
    except LLMRecError as exc:
        _fail(exc)
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
) -> None:
    """Split a dataset and write train/valid/test as Parquet plus split.json."""
    from llmrec.artifacts import check_target

    try:
        check_target(out, "split", overwrite)
        result = split(load(dataset), split_name, seed)
        result.save(out, overwrite=overwrite)
    except (LLMRecError, OSError) as exc:
        _fail(exc)
    console.print(result.describe())
    console.print(f"wrote {out}/train.parquet, valid.parquet, test.parquet, split.json")


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


def _evaluate(
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
) -> dict:
    try:
        if out is not None:
            _check_writable(out)
        specs = [resolve_model(m.strip()) for m in models.split(",") if m.strip()]
        data = apply_filters(load(dataset), DatasetFilters(**(filters or {})))
    except (LLMRecError, ValueError) as exc:
        _fail(exc)

    def announce(seed: int, spec) -> None:
        grid = " (grid search on valid)" if tune and spec.grid else ""
        console.print(f"[cyan]seed {seed}[/cyan] fit {spec.name}{grid}")

    try:
        report = run_study(
            data, split_name, seeds, specs, ks, protocol, tune, stat_test, on_model=announce
        )
    except LLMRecError as exc:
        _fail(exc)
    print_table(report, console)
    if out is not None:
        write_report(out, report)
        console.print(f"wrote {out}")
    return report


def _check_writable(out: Path) -> None:
    """Fail before a long run, not after it, when the report cannot be written."""
    parent = out.resolve().parent
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file path for the JSON report")
    if not parent.is_dir():
        raise ValueError(f"--out {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {out}: folder {parent} is not writable")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Option("--dataset", help="Dataset name, preset or path.")
    ] = "ml-100k",
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
) -> None:
    """Fit models on the same splits under one protocol and report full-ranking metrics
    (mean ± std over seeds, paired significance tests against the best model)."""
    _evaluate(
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
    )


def _seed_list(values: list[str] | None) -> list[int]:
    """``--seeds 1,2,3`` or repeated ``--seeds``; ``main`` turns ``--seeds 1 2 3`` into the
    repeated form."""
    if not values:
        return [42]
    parts = [p.strip() for v in values for p in v.split(",")]
    bad = [p for p in parts if not p.lstrip("-").isdigit()]
    if bad or not parts:
        _fail(ValueError(f"--seeds takes integers, got {bad or values}"))
    return [int(p) for p in parts]


def _cutoffs(k: list[int] | None, extra: list[str]) -> list[int]:
    """``--k 10 20``: click gives one value per ``--k``; the rest arrive as extra arguments."""
    bad = [a for a in extra if not a.isdigit()]
    if bad:
        _fail(ValueError(f"unexpected argument(s) {bad}; only cut-offs may follow --k"))
    if extra and not k:
        _fail(ValueError(f"unexpected argument(s) {extra}"))
    ks = sorted(set((k or [10, 20]) + [int(a) for a in extra]))
    if min(ks) < 1:
        _fail(ValueError(f"cut-offs must be positive, got {ks}"))
    return ks


@app.command()
def encode(
    out: Annotated[Path, typer.Option("--out", help="Output folder (vectors, ids, manifest).")],
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name, preset or path.")] = (
        "ml-100k"
    ),
    what: Annotated[str, typer.Option("--what", help="items or users.")] = "items",
    model: Annotated[
        str, typer.Option("--model", help="'default' (MiniLM-L6) or a local model folder.")
    ] = "default",
    pooling: Annotated[str, typer.Option(help="mean, cls or last (decoder LLMs).")] = "mean",
    instruction: Annotated[str, typer.Option(help="Prefix for every text.")] = "",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if any).")] = None,
    user_text: Annotated[
        str, typer.Option(help="Users: 'profile' text or 'pool' of item embeddings.")
    ] = "profile",
    weighting: Annotated[str, typer.Option(help="Pooling: mean, rating or recency.")] = "rating",
    max_items: Annotated[int, typer.Option(help="Profile: most items listed.")] = 30,
    min_rating: Annotated[
        float | None, typer.Option(help="Profile: keep ratings >= this only.")
    ] = None,
    order: Annotated[str, typer.Option(help="Profile: recent, oldest or rating.")] = "recent",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    workers: Annotated[int, typer.Option(help="Local worker processes sharing the cache.")] = 1,
    describe_with: Annotated[
        str | None,
        typer.Option(help="Local decoder LLM folder: append its item descriptions to item texts."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="SQLite cache (default $LLMREC_CACHE_DIR or ~/.cache/llmrec)."),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Encode a dataset's items or users to embeddings, through the cache.

    Under torchrun, every rank encodes a shard and rank 0 writes the folder.
    """
    from pydantic import ValidationError

    from llmrec.artifacts import check_target
    from llmrec.encoders.cache import default_cache_path
    from llmrec.encoders.job import EncodeConfig, distributed_rank, encode_dataset

    writer = distributed_rank()[0] == 0
    try:
        if writer:
            check_target(out, "embeddings", overwrite)
        config = EncodeConfig.model_validate(
            {
                "what": what,
                "encoder": {
                    "model": model,
                    "pooling": pooling,
                    "instruction": instruction,
                    "dtype": dtype,
                    "device": device,
                },
                "user_text": user_text,
                "weighting": weighting,
                "profile": {"max_items": max_items, "min_rating": min_rating, "order": order},
                "batch_size": batch_size,
                "describe_with": describe_with,
            }
        )
        result = encode_dataset(
            load(dataset), config, cache or default_cache_path(), workers=workers
        )
        if writer:
            result.save(out, overwrite=overwrite)
    except ValidationError as exc:
        _fail(ValueError("; ".join(f"{_option(e['loc'])}: {e['msg']}" for e in exc.errors())))
    except (LLMRecError, ValueError, OSError) as exc:
        _fail(exc)
    if writer:
        m = result.manifest
        console.print(
            f"wrote {out}: {m['count']} {what} x {m['dimension']} in {m['seconds']:.1f}s"
            + (
                f"; {m['fallback_users']} users got the popularity fallback"
                if m["fallback_users"]
                else ""
            )
        )


def _option(loc: tuple) -> str:
    """The command-line option a pydantic error location came from (``--max-items``)."""
    return "--" + str(loc[-1]).replace("_", "-")


index_app = typer.Typer(help="Build and query FAISS candidate indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")
ITEM_NAMES = "item_ids.npy"


@index_app.command("build")
def index_build(
    embeddings: Annotated[Path, typer.Option(help="Item embedding folder (llmrec encode).")],
    out: Annotated[Path, typer.Option("--out", help="Index folder to write.")],
    spec: Annotated[str, typer.Option(help="faiss factory string: Flat, IVF256,Flat, HNSW32.")] = (
        "Flat"
    ),
    nprobe: Annotated[
        int | None, typer.Option(min=1, help="IVF lists probed per query (>= 1).")
    ] = None,
    ef_search: Annotated[
        int | None, typer.Option(min=1, help="HNSW search breadth (>= 1).")
    ] = None,
    seed: SeedOpt = 42,
    overwrite: OverwriteOpt = False,
) -> None:
    """Build an index over item embeddings (cosine), with the items' ids beside it."""
    from llmrec.artifacts import check_target
    from llmrec.encoders.job import EmbeddingSet
    from llmrec.retrieval import ItemIndex

    start = time.perf_counter()
    try:
        check_target(out, "index", overwrite)
        items = EmbeddingSet.load(embeddings)
        if items.manifest["what"] != "items":
            raise ValueError(f"{embeddings} holds {items.manifest['what']}, not items")
        index = ItemIndex.build(
            items.vectors, spec=spec, fingerprint=items.manifest["fingerprint"], seed=seed
        )
        params = {"nprobe": nprobe, "efSearch": ef_search}
        index.set_search_params(**{k: v for k, v in params.items() if v is not None})
        index.save(out, overwrite=overwrite, extra=lambda tmp: np.save(tmp / ITEM_NAMES, items.ids))
    except (LLMRecError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(
        f"wrote {out}: {spec} over {len(index)} items x {index.dimension} "
        f"in {time.perf_counter() - start:.1f}s"
    )


@index_app.command("search")
def index_search(
    index_dir: Annotated[Path, typer.Option("--index", help="Index folder (llmrec index build).")],
    queries: Annotated[Path, typer.Option(help="User embedding folder (llmrec encode).")],
    users: Annotated[str, typer.Option(help="Comma-separated user ids.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Candidates per user.")] = 10,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset whose interactions are filtered out as seen.")
    ] = None,
) -> None:
    """Top-k candidate items for some users, seen items filtered when --dataset is given."""
    from llmrec.encoders.job import EmbeddingSet
    from llmrec.retrieval import ItemIndex

    try:
        user_set = EmbeddingSet.load(queries)
        index = ItemIndex.load(index_dir, fingerprint=user_set.manifest["fingerprint"])
        wanted = [u.strip() for u in users.split(",") if u.strip()]
        position = {u: i for i, u in enumerate(user_set.ids.tolist())}
        unknown = [u for u in wanted if u not in position]
        if unknown:
            raise ValueError(f"unknown user id(s) {unknown[:5]} in {queries}")
        rows = [position[u] for u in wanted]
        exclude = None
        if dataset is not None:
            data = load(dataset)
            seen = data.interactions.groupby("user_id")["item_idx"].apply(list)
            exclude = [seen.get(u, []) for u in wanted]
        ids, scores = index.search(user_set.vectors[rows], k, exclude=exclude)
    except (LLMRecError, ValueError) as exc:
        _fail(exc)
    names_file = index_dir / ITEM_NAMES
    names = np.load(names_file) if names_file.is_file() else None
    table = Table(title=f"top {k} candidates")
    table.add_column("user")
    table.add_column("items (score)")
    for user, row_ids, row_scores in zip(wanted, ids, scores, strict=True):
        shown = [
            f"{names[i] if names is not None else i} ({s:.3f})"
            for i, s in zip(row_ids, row_scores, strict=True)
            if i >= 0
        ]
        table.add_row(user, ", ".join(shown))
    console.print(table)


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="Dataset name, preset or path.")
    ] = "ml-100k",
    split_name: SplitOpt = "random",
    seed: SeedOpt = 42,
    model: Annotated[
        str, typer.Option("--model", help="A two_stage preset name or YAML path.")
    ] = "two-stage",
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit the two-stage pipeline on a split's train (the ranker learns from a holdout of
    train; valid is not used), report test metrics, and save the model folder."""
    from llmrec.artifacts import check_target
    from llmrec.evaluation import evaluate_scores
    from llmrec.pipeline import Recommender
    from llmrec.rankers.two_stage import TwoStage, TwoStageConfig

    try:
        check_target(out, "model", overwrite)
        spec = resolve_model(model)
        if spec.kind != TwoStage.kind:
            raise ValueError(
                f"llmrec train builds the {TwoStage.kind} pipeline; {model!r} is kind "
                f"{spec.kind!r} (use llmrec evaluate for other models)"
            )
        data = split(load(dataset), split_name, seed)
        start = time.perf_counter()
        recommender = Recommender(make_config(TwoStageConfig, spec.params)).fit(
            data.train,
            items=data.dataset.items,
            users=data.dataset.users,
            text_columns=data.dataset.text_columns,
        )
        fit_seconds = time.perf_counter() - start
        result = evaluate_scores(
            recommender.model.score,
            data.matrix("test"),
            exclude=data.matrix("train+valid"),
            ks=(10, 20),
            candidates=data.test_candidates,
        )
        recommender.save(out, overwrite=overwrite)
    except (LLMRecError, ValueError, OSError) as exc:
        _fail(exc)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    console.print(f"fit {fit_seconds:.1f} s; test ({split_name} split): {metrics}")
    console.print(f"wrote {out}")


@app.command()
def recommend(
    model: Annotated[Path, typer.Option("--model", help="Folder written by llmrec train.")],
    users: Annotated[str, typer.Option("--users", help="Comma-separated user ids.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Items per user.")] = 10,
    history: Annotated[
        str | None,
        typer.Option(
            "--history",
            help="Comma-separated item ids: the history of users the model does not know.",
        ),
    ] = None,
    keep_seen: Annotated[
        bool, typer.Option("--keep-seen", help="Keep items the user already interacted with.")
    ] = False,
) -> None:
    """Top-k items for users of a saved model (unknown users go through the LLM path)."""
    from llmrec.pipeline import Recommender

    wanted = [u.strip() for u in users.split(",") if u.strip()]
    given = [i.strip() for i in (history or "").split(",") if i.strip()]
    try:
        recommender = Recommender.load(model)
        ids, scores = recommender.recommend(
            wanted,
            k=k,
            filter_seen=not keep_seen,
            histories={u: given for u in wanted} if given else None,
        )
    except (LLMRecError, ValueError) as exc:
        _fail(exc)
    table = Table(title=f"top {k} items")
    for column in ("user", "served by", "items (score)"):
        table.add_column(column)
    for user, how, row_ids, row_scores in zip(
        wanted, recommender.served_by_, ids, scores, strict=True
    ):
        shown = [f"{i} ({s:.3f})" for i, s in zip(row_ids, row_scores, strict=True) if i]
        table.add_row(user, how, ", ".join(shown))
    console.print(table)


DEMO_MODELS = "pop,als,item-knn,ease,recbole:SLIMElastic,text,two-stage,two-stage-no-llm"


@app.command()
def demo(
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Models to run (recbole:MultiVAE adds ~2 min, recbole:LightGCN ~10 min).",
        ),
    ] = DEMO_MODELS,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON report here.")] = None,
) -> None:
    """The main job on the embedded default data: ml-100k, random split, the strong baselines,
    text similarity and the two-stage LLM pipeline (with and without LLM features), all fit on
    the same train interactions (holdout protocol), side by side."""
    console.print(
        "[bold]llmrec demo[/bold]: ml-100k (shipped with recbole), random 8:1:1 split, seed 42, "
        "holdout protocol (every model fits on train; valid only picks and early-stops). "
        "Presets in rankers/ hold the hyper-parameters tuned on valid. Left out for time: "
        "recbole:MultiVAE (~1 min), recbole:LightGCN (~10 min); 3 seeds: make experiments-fair."
    )
    _evaluate("ml-100k", "random", [42], models, [10, 20], out, tune=False)


def expand_seeds(argv: list[str]) -> list[str]:
    """``--seeds 1 2 3`` -> ``--seeds 1 --seeds 2 --seeds 3`` (click options take one value)."""
    out, i = [], 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] == "--seeds":
            j = i + 1
            while j < len(argv) and argv[j].lstrip("-").replace(",", "").isdigit():
                if j > i + 1:
                    out.append("--seeds")
                out.append(argv[j])
                j += 1
            i = j
            continue
        i += 1
    return out


def main() -> None:
    app(args=expand_seeds(sys.argv[1:]), prog_name="llmrec")


if __name__ == "__main__":
    main()
