"""The text tasks an LLM does for a recommender: describe items, summarise a user's taste.

Each builds its prompts, generates through a :class:`~llmrec.llm.base.Generator` (cached), and
cleans the outputs; a dropped output is None, counted in the returned report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmrec.errors import ConfigError
from llmrec.llm.base import Generator
from llmrec.llm.postprocess import clean_generations, drop_unknown_years

DESCRIBE_PROMPT = (
    "In one or two sentences, describe this movie's story, mood and style for a viewer "
    "deciding what to watch.\nMovie: {item}"
)
SUMMARY_PROMPT = (
    "Here are movies a person liked:\n{history}\n"
    "In two sentences, describe this person's taste in movies: the genres, moods, eras and "
    "themes they enjoy. Do not list the titles."
)


@dataclass
class TextTaskReport:
    """What a text task produced: the texts (None where dropped) and why some were dropped."""

    texts: list[str | None]
    dropped: Counter[str] = field(default_factory=Counter)
    tokens_per_second: float = float("nan")
    generated: int = 0
    cached: int = 0

    @property
    def n_kept(self) -> int:
        return sum(t is not None for t in self.texts)


def _run(
    generator: Generator,
    prompts: list[str],
    max_words: int,
    what: str,
    **kwargs: Any,
) -> TextTaskReport:
    raw = generator.generate(prompts, **kwargs)
    texts, dropped = clean_generations(raw, prompts, max_words=max_words, what=what)
    stats = generator.stats
    return TextTaskReport(texts, dropped, stats.tokens_per_second, stats.generated, stats.cached)


def _check_template(template: str, slot: str) -> None:
    if "{" + slot + "}" not in template:
        raise ConfigError(f"the prompt template needs a {{{slot}}} slot")


def describe_items(
    generator: Generator,
    item_texts: Sequence[str],
    prompt: str = DESCRIBE_PROMPT,
    max_words: int = 45,
    **kwargs: Any,
) -> TextTaskReport:
    """A short description of each item, written from its metadata line.

    Args:
        generator: the LLM.
        item_texts: one metadata line per item (``llmrec.datasets.item_text``).
        prompt: a template with an ``{item}`` slot.
        max_words: the length bound of a description.
        **kwargs: :meth:`Generator.generate` settings (``max_new_tokens`` defaults to 64).

    Returns:
        The report; ``texts[i]`` is None where the model wrote nothing usable.
    """
    _check_template(prompt, "item")
    prompts = [prompt.format(item=t) for t in item_texts]
    report = _run(generator, prompts, max_words, "item descriptions", **kwargs)
    report.texts = [
        None if d is None else drop_unknown_years(d, item)
        for d, item in zip(report.texts, item_texts, strict=True)
    ]
    return report


def summarize_users(
    generator: Generator,
    histories: Sequence[Sequence[str]],
    prompt: str = SUMMARY_PROMPT,
    max_words: int = 50,
    **kwargs: Any,
) -> TextTaskReport:
    """A short preference profile of each user, written from the items of their history.

    Args:
        generator: the LLM.
        histories: per user, the texts of the items they liked (best or newest first; the
            caller bounds how many).
        prompt: a template with a ``{history}`` slot (the items, one per line).
        max_words: the length bound of a summary.
        **kwargs: :meth:`Generator.generate` settings.

    Returns:
        The report; ``texts[i]`` is None where the history was empty or the output unusable.
    """
    _check_template(prompt, "history")
    nonempty = [i for i, h in enumerate(histories) if len(h)]
    prompts = [prompt.format(history="\n".join(f"- {t}" for t in histories[i])) for i in nonempty]
    report = _run(generator, prompts, max_words, "user summaries", **kwargs)
    texts: list[str | None] = [None] * len(histories)
    for i, text in zip(nonempty, report.texts, strict=True):
        texts[i] = text
    if len(nonempty) < len(histories):
        report.dropped["empty history"] += len(histories) - len(nonempty)
    report.texts = texts
    return report
