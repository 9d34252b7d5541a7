"""``llmrec thumbnails``: personalized item thumbnails (PMG) and their HTML gallery."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from llmrec.cli.common import (
    DatasetOpt,
    OverwriteOpt,
    UserOpt,
    UsersOpt,
    app,
    console,
    fail,
    id_list,
    load_dataset,
    user_ids,
)
from llmrec.datasets import Dataset
from llmrec.errors import LLMRecError
from llmrec.pmg.gallery import write_gallery, write_user_thumbnails
from llmrec.pmg.thumbnails import ThumbnailConfig, ThumbnailMaker, top_items


def write_thumbnails(
    dataset: Dataset,
    users: list[str],
    out: Path,
    config: ThumbnailConfig,
    top: int = 5,
    model: Path | None = None,
    items: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Thumbnails for ``users`` into ``out/user-<id>/`` and the gallery; returns its index page.

    Raises:
        LLMRecError: unknown users or items, bad settings, a missing or broken model folder.
    """
    chosen, scores, source = top_items(
        dataset, users, top, model, {u: items for u in users} if items else None
    )
    maker = ThumbnailMaker(dataset, config)
    out.mkdir(parents=True, exist_ok=True)
    for user, indices, ranker in zip(users, chosen, scores, strict=True):
        thumbnails, images = maker.for_user(user, indices, ranker)
        note = "; ".join(filter(None, [source, thumbnails.note]))
        thumbnails = dataclasses.replace(thumbnails, note=note)
        write_user_thumbnails(out, thumbnails, images, overwrite)
        keywords = ", ".join(k.text for k in thumbnails.preference_keywords)
        console.print(f"user {user}: {len(images)} thumbnails; likes {keywords or '(none)'}")
    return write_gallery(out)


@app.command("thumbnails")
def thumbnails(
    out: Annotated[Path, typer.Option("--out", help="Folder of user folders and the gallery.")],
    dataset: DatasetOpt = "ml-100k",
    users: UsersOpt = None,
    user: UserOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Recommended items per user.")] = 5,
    items: Annotated[
        str | None, typer.Option("--items", help="Comma-separated item ids instead of --top.")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="A model folder to recommend with (default: EASE)."),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="0: the item as it is; 1: the user's taste.")
    ] = 0.5,
    keywords: Annotated[str, typer.Option("--keywords", help="embedding or llm.")] = "embedding",
    llm: Annotated[
        str | None, typer.Option("--llm", help="LLM folder/.gguf for --keywords llm.")
    ] = None,
    generator: Annotated[str, typer.Option("--generator", help="card or diffusers.")] = "card",
    diffusers: Annotated[
        str | None, typer.Option("--diffusers", help="Stable Diffusion folder on disk.")
    ] = None,
    clip: Annotated[
        str | None, typer.Option("--clip", help="CLIP folder that scores candidates.")
    ] = None,
    candidates: Annotated[int, typer.Option("--candidates", min=1, help="Best of N.")] = 1,
    size: Annotated[int, typer.Option("--size", min=64, help="Image size in pixels.")] = 384,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Personalized thumbnails of each user's recommended items, with a JSON per image and an
    HTML gallery (PMG: history -> preference keywords -> item + taste)."""
    try:
        config = ThumbnailConfig.model_validate(
            {
                "alpha": alpha,
                "keywords": keywords,
                "llm": llm,
                "generator": generator,
                "diffusers": diffusers,
                "clip": clip,
                "candidates": candidates,
                "size": size,
                "seed": seed,
            }
        )
        data = load_dataset(dataset)
        wanted = user_ids(users, user, None)
        index = write_thumbnails(
            data, wanted, out, config, top, model, id_list("item", items, None, None), overwrite
        )
    except ValueError as exc:  # pydantic's: a bad option value
        fail(exc)
    except LLMRecError as exc:
        fail(exc)
    console.print(f"gallery: {index}")
