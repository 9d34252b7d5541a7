"""LLM-written text joined into a dataset: a ``description`` column on the items table, which
``item_text`` renders after the metadata, so every model that reads item text gets it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from llmrec.datasets import Dataset, item_text
from llmrec.datasets.text import resolve_text_columns
from llmrec.llm.base import Generator
from llmrec.llm.loading import load_generator
from llmrec.llm.tasks import DESCRIBE_PROMPT, TextTaskReport, describe_items

DESCRIPTION_COLUMN = "description"
BASE_ROLES = ("title", "year", "genres")


def describe_dataset(
    dataset: Dataset,
    generator: Generator | None = None,
    *,
    prompt: str = DESCRIBE_PROMPT,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    **kwargs: Any,
) -> tuple[Dataset, TextTaskReport]:
    """A copy of ``dataset`` whose items carry an LLM-written ``description``.

    Descriptions are written from the title, year and genres only (not from joined knowledge),
    so one pass serves every text variant; an item whose description was dropped gets an empty
    one and keeps its plain text. The data checksum changes with the model and its settings.

    Args:
        dataset: the dataset.
        generator: the LLM; None: the shipped SmolLM2 with the default cache.
        prompt: the description prompt (an ``{item}`` slot).
        max_new_tokens: the generation budget per item.
        batch_size: prompts per forward pass.
        show_progress_bar: None: on a terminal.
        **kwargs: further :meth:`Generator.generate` settings.

    Returns:
        The described dataset and the generation report (kept, dropped, tokens/s).
    """
    generator = generator or load_generator()
    items = dataset.items.drop(columns=[DESCRIPTION_COLUMN], errors="ignore")
    roles = resolve_text_columns(items, dataset.text_columns or None)
    base = {k: v for k, v in roles.items() if k in BASE_ROLES}
    # Only the base columns: other columns (director, cast...) would render into the text too.
    texts = item_text(items[list(dict.fromkeys(["item_id", *base.values()]))], base).tolist()
    report = describe_items(
        generator,
        texts,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        **kwargs,
    )
    items = items.assign(**{DESCRIPTION_COLUMN: [t or "" for t in report.texts]})
    info = {
        "model": generator.name,
        "fingerprint": generator.fingerprint,
        "prompt": prompt,
        "max_new_tokens": max_new_tokens,
        "kept": report.n_kept,
        "dropped": dict(report.dropped),
    }
    digest = hashlib.sha256(
        (dataset.checksum + json.dumps(info, sort_keys=True)).encode()
    ).hexdigest()
    described = dataclasses.replace(
        dataset,
        items=items,
        checksum=digest,
        name=f"{dataset.name}+descriptions",
        metadata={**dataset.metadata, "descriptions": info},
    )
    return described, report
