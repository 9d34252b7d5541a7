"""``llmrec demo``: the main job on the embedded default data, then what the LLM writes and the
personalized thumbnails, each of the three uses llmrec exists for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrec.cli.common import app, console, fail, load_dataset
from llmrec.cli.evaluate import run_evaluation
from llmrec.cli.llm import describe_table, item_positions, print_descriptions
from llmrec.cli.thumbnails import write_thumbnails
from llmrec.errors import LLMRecError
from llmrec.llm import load_generator
from llmrec.pmg.thumbnails import ThumbnailConfig

DEMO_MODELS = "pop,als,item-knn,ease,recbole:SLIMElastic,text,two-stage,two-stage-no-llm"
DEMO_ITEMS = ["1", "50", "100"]
"""Toy Story, Star Wars, Fargo."""
DEMO_USERS = ["1", "42", "196"]


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
    gallery: Annotated[
        Path, typer.Option("--gallery", help="Where the thumbnail gallery is written.")
    ] = Path("demo-gallery"),
) -> None:
    """The main job on the embedded default data: ml-100k, random split, the strong baselines,
    text similarity and the two-stage LLM pipeline (with and without LLM features), all fit on
    the same train interactions (holdout protocol), side by side; then item descriptions the
    shipped SmolLM2 writes (cached after the first run) and personalized thumbnails of three
    users' recommendations with their HTML gallery."""
    console.print(
        "[bold]llmrec demo[/bold]: ml-100k (shipped with recbole), random 8:1:1 split, seed 42, "
        "holdout protocol (every model fits on train; valid only picks and early-stops). "
        "Presets in rankers/ hold the hyper-parameters tuned on valid. Left out for time: "
        "recbole:MultiVAE (~1 min), recbole:LightGCN (~10 min); 3 seeds: make experiments-fair."
    )
    run_evaluation("ml-100k", "random", [42], models, [10, 20], out, tune=False)
    data = load_dataset("ml-100k")
    try:
        generator = load_generator()
        table = describe_table(data, item_positions(data, DEMO_ITEMS), generator)
        print_descriptions(table, generator)
        console.print(
            f"[bold]Personalized thumbnails[/bold] (PMG, alpha 0.5) of users "
            f"{', '.join(DEMO_USERS)}'s top 5 items:"
        )
        index = write_thumbnails(data, DEMO_USERS, gallery, ThumbnailConfig(), top=5)
    except LLMRecError as exc:
        fail(exc)
    console.print(f"gallery: {index} (open it in a browser)")
