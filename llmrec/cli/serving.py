"""``llmrec train`` and ``llmrec recommend``: the pipeline as a saved model folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from llmrec.cli.common import (
    DatasetOpt,
    EncodingOpt,
    FormatOpt,
    OverwriteOpt,
    SeedOpt,
    SplitOpt,
    UserOpt,
    UsersFileOpt,
    UsersOpt,
    app,
    console,
    fail,
    id_list,
    load_dataset,
    show_ranked,
    user_ids,
)
from llmrec.datasets import split
from llmrec.errors import ConfigError, LLMRecError
from llmrec.evaluation import resolve_model
from llmrec.rankers.base import make_config


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    dataset: DatasetOpt = "ml-100k",
    split_name: SplitOpt = "random",
    seed: SeedOpt = 42,
    preset: Annotated[
        str,
        typer.Option("--preset", help="A two_stage or two_tower preset name, or a YAML path."),
    ] = "two-stage",
    overwrite: OverwriteOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Fit the two-stage pipeline (or the two-tower alone) on a split's train (valid is not
    used; the two-stage ranker learns from a holdout of train), report test metrics, and save
    the model folder."""
    from llmrec.artifacts import check_target
    from llmrec.evaluation import evaluate_scores
    from llmrec.pipeline import Recommender
    from llmrec.pipeline.recommender import SERVABLE

    try:
        check_target(out, "model", overwrite)
        spec = resolve_model(preset)
        servable = {model.kind: config for config, model in SERVABLE.items()}
        if spec.kind not in servable:
            raise ConfigError(
                f"llmrec train builds a {' or '.join(sorted(servable))} model; {preset!r} is "
                f"kind {spec.kind!r} (use llmrec evaluate for other models)"
            )
        data = split(load_dataset(dataset, encoding), split_name, seed)
        start = time.perf_counter()
        recommender = Recommender(make_config(servable[spec.kind], spec.params)).fit(
            data.train,
            items=data.dataset.items,
            users=data.dataset.users,
            text_columns=data.dataset.text_columns,
        )
        fit_seconds = time.perf_counter() - start
        fitted = recommender.model
        assert fitted is not None  # fit sets it
        result = evaluate_scores(
            fitted.score,
            data.matrix("test"),
            exclude=data.matrix("train+valid"),
            ks=(10, 20),
            candidates=data.test_candidates,
        )
        recommender.save(out, overwrite=overwrite)
    except (LLMRecError, ValueError, OSError) as exc:
        fail(exc)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    console.print(f"fit {fit_seconds:.1f} s; test ({split_name} split): {metrics}")
    console.print(f"wrote {out}")


@app.command()
def recommend(
    model: Annotated[Path, typer.Option("--model", help="Folder written by llmrec train.")],
    users: UsersOpt = None,
    user: UserOpt = None,
    users_file: UsersFileOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Items per user.")] = 10,
    history: Annotated[
        str | None,
        typer.Option(
            "--history",
            help="Comma-separated item ids: the history of users the model does not know "
            "(of every user with --recalculate).",
        ),
    ] = None,
    history_item: Annotated[
        list[str] | None,
        typer.Option("--history-item", help="One history item id (repeatable; may hold commas)."),
    ] = None,
    history_file: Annotated[
        Path | None,
        typer.Option("--history-file", help="A file of history item ids, one per line."),
    ] = None,
    recalculate: Annotated[
        bool,
        typer.Option(
            "--recalculate", help="Embed known users from the given history too (fresh history)."
        ),
    ] = False,
    keep_seen: Annotated[
        bool, typer.Option("--keep-seen", help="Keep items the user already interacted with.")
    ] = False,
    output: FormatOpt = "table",
) -> None:
    """Top-k items for users of a saved model (unknown users go through the LLM path)."""
    if recalculate and not (history or history_item or history_file):
        fail(
            ConfigError(
                "--recalculate needs a history (--history, --history-item or --history-file)"
            )
        )
    from llmrec.pipeline import Recommender

    try:
        wanted = user_ids(users, user, users_file)
        given = id_list("history-item", history, history_item, history_file)
        recommender = Recommender.load(model)
        known = recommender.knows(wanted) & (not recalculate)
        ids, scores = recommender.recommend(
            wanted,
            k=k,
            filter_seen=not keep_seen,
            histories=(
                {u: given for u, kn in zip(wanted, known, strict=True) if not kn} if given else None
            ),
        )
        show_ranked(output, f"top {k} items", wanted, ids, scores, list(recommender.served_by_))
    except (LLMRecError, ValueError, OSError) as exc:
        fail(exc)
