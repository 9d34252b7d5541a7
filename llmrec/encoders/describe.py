"""LLM-written item descriptions appended to the item text before encoding.

A thin layer over :func:`llmrec.llm.tasks.describe_items`: generation is greedy (deterministic),
cached in SQLite by (model fingerprint, decoding settings, prompt), so a catalogue is described
once per model and an interrupted run resumes; what a small model writes is cleaned, and an item
whose description was dropped keeps its plain text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from llmrec.encoders.base import check_texts
from llmrec.errors import ConfigError
from llmrec.llm import Generator, load_generator
from llmrec.llm.tasks import DESCRIBE_PROMPT, describe_items


class ItemDescriber:
    """Item descriptions written by a local causal LLM.

    Args:
        path: a model folder or ``.gguf`` file, ``default`` (the shipped SmolLM2), or a loaded
            :class:`~llmrec.llm.Generator`.
        cache: SQLite file for generated texts.
        prompt: template with an ``{item}`` slot for the item's metadata line.
        max_new_tokens: length budget of a description.
        device: ``cpu`` or ``cuda``; None picks cuda when available.
        dtype: ``float32``, ``bfloat16`` or ``float16`` weights.
    """

    def __init__(
        self,
        path: str | Path | Generator,
        cache: str | Path,
        prompt: str = DESCRIBE_PROMPT,
        max_new_tokens: int = 64,
        device: str | None = None,
        dtype: str = "float32",
    ) -> None:
        if "{item}" not in prompt:
            raise ConfigError("the prompt needs an {item} slot for the item's text")
        if isinstance(path, Generator):
            self.generator = path
        else:
            self.generator = load_generator(path, device=device, dtype=dtype, cache=cache)
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.dropped: Counter[str] = Counter()

    def describe(
        self, items: Sequence[str], batch_size: int = 16, show_progress_bar: bool | None = None
    ) -> list[str]:
        """A description per item text; empty where the model wrote nothing usable (the
        reasons are counted in ``self.dropped``)."""
        report = describe_items(
            self.generator,
            check_texts(items),
            prompt=self.prompt,
            max_new_tokens=self.max_new_tokens,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
        )
        self.dropped = report.dropped
        return [t or "" for t in report.texts]

    def enrich(self, items: Sequence[str], **kwargs) -> list[str]:
        """Item texts with their descriptions appended (unchanged where a description is empty)."""
        return [
            f"{item} {d}" if d else item
            for item, d in zip(items, self.describe(items, **kwargs), strict=True)
        ]

    def close(self) -> None:
        if self.generator.cache is not None:
            self.generator.cache.close()
