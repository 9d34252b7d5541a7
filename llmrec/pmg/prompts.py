"""PMG's prompts: the LLM prompts that ask for keywords, and the image prompt composed of the
target item's keywords and the user's preference keywords, balanced by ``alpha``.

PMG (Shen et al., WWW 2024) conditions Stable Diffusion on ``movie poster, <title>, named
'<title>'`` plus five target keywords, with the preference keywords repeated ``style_weight`` times
in the same prompt, and the negative prompt ``broken text, unclear, twisted``. Here ``alpha``
makes that balance continuous (:func:`compose_text`); :func:`blend_embeddings` is the soft form,
an interpolation of the two prompts' text-encoder embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from llmrec.errors import ConfigError
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec, check_alpha

NEGATIVE = "broken text, unclear, twisted"
"""PMG's negative prompt."""


def preference_prompt(history_text: str, n: int = 8, noun: str = "movie") -> str:
    """PMG's prompt for a user's ``n`` preference keywords from their history (in the format of
    :func:`llmrec.pmg.history.history_text`)."""
    example = " ".join(f"{i}. Keyword {i}." for i in range(1, n + 1))
    return (
        f"A person watched some {noun}s. Please provide {n} keywords to describe his {noun} "
        f'interests. The example of output is "The keywords are: {example}" '
        f'The {noun}s and their information are "{history_text}".'
    )


def target_prompt(item: ItemInfo, n: int = 10, noun: str = "movie") -> str:
    """PMG's prompt for the keywords of a poster of ``item``: its title, introduction (the
    enriched ``description``, when present) and genres."""
    parts = [f'There is a {noun} titled "{item.title}".']
    if item.extra.get("description"):
        parts.append(f'Its introduction is "{item.extra["description"]}".')
    if item.genres:
        parts.append(f"Its genre is {', '.join(item.genres)}.")
    parts.append(
        f"Please design a poster for it (describe in {n} keywords without explaining). "
        "Character names should be excluded."
    )
    return " ".join(parts)


def instructions(prompt: str, *data: str) -> str:
    """The words of a prompt that are not its data (the history, a title, genres): what an
    echoing answer repeats."""
    for text in sorted(data, key=len, reverse=True):
        if text:
            prompt = prompt.replace(text, " ")
    return prompt


@dataclass(frozen=True)
class Prompt:
    """What a generator is conditioned on.

    Attributes:
        positive: the text prompt (PMG's combination, weighted by ``alpha``).
        negative: the negative prompt.
        target_text: the item's condition alone (title and target keywords).
        preference_text: the user's preference keywords alone (empty without any).
        alpha: the balance the prompt was made with.
    """

    positive: str
    negative: str
    target_text: str
    preference_text: str
    alpha: float


def _texts(keywords: Sequence[Keyword | str]) -> list[str]:
    out = [k.text if isinstance(k, Keyword) else str(k) for k in keywords]
    return list(dict.fromkeys(t.strip() for t in out if t.strip()))


def target_condition(
    title: str, keywords: Sequence[Keyword | str] = (), noun: str = "movie"
) -> str:
    """``movie poster, <title>, named '<title>'`` followed by the item's keywords."""
    return ", ".join([f"{noun} poster", title, f"named '{title}'", *_texts(keywords)])


def compose_text(
    title: str,
    target_keywords: Sequence[Keyword | str],
    preference_keywords: Sequence[Keyword | str],
    alpha: float = 0.5,
    style_weight: int = 2,
    negative: str = NEGATIVE,
    noun: str = "movie",
) -> Prompt:
    """PMG's text prompt with a continuous balance ``alpha``.

    The target condition (``movie poster, <title>, named '<title>'``) is always there. Of the
    target keywords the first ``ceil(len * min(1, 2 * (1 - alpha)))`` are kept, of the preference
    keywords the first ``ceil(len * min(1, 2 * alpha))``, and the kept preference keywords are
    repeated ``round(2 * alpha * style_weight)`` times (at least once when ``alpha`` > 0). So
    ``alpha`` = 0 has no preference keyword at all, ``alpha`` = 0.5 is PMG's own prompt (every
    target keyword, every preference keyword ``style_weight`` times) and ``alpha`` = 1 keeps only
    the title and the preference keywords, ``2 * style_weight`` times. Keywords come best first.

    Raises:
        ConfigError: a bad ``alpha``, ``style_weight`` below 1 or an empty title.
    """
    alpha = check_alpha(alpha)
    if isinstance(style_weight, bool) or not isinstance(style_weight, int) or style_weight < 1:
        raise ConfigError(f"style_weight must be an integer >= 1, got {style_weight!r}")
    if not title.strip():
        raise ConfigError("the target item has an empty title")
    target, preference = _texts(target_keywords), _texts(preference_keywords)
    kept_target = target[: math.ceil(len(target) * min(1.0, 2.0 * (1.0 - alpha)))]
    kept_preference = preference[: math.ceil(len(preference) * min(1.0, 2.0 * alpha))]
    repeats = max(1, round(2.0 * alpha * style_weight)) if alpha > 0 else 0
    condition = target_condition(title, kept_target, noun)
    positive = ", ".join([condition, *(kept_preference * repeats)])
    return Prompt(
        positive=positive,
        negative=negative,
        target_text=target_condition(title, target, noun),
        preference_text=", ".join(preference),
        alpha=alpha,
    )


def compose(
    spec: ThumbnailSpec,
    alpha: float | None = None,
    style_weight: int = 2,
    negative: str = NEGATIVE,
    noun: str = "movie",
) -> Prompt:
    """The prompt of a thumbnail (:func:`compose_text` on its item title and keywords); ``alpha``
    overrides the spec's."""
    return compose_text(
        spec.item.title,
        spec.target_keywords,
        spec.preference_keywords,
        spec.alpha if alpha is None else alpha,
        style_weight,
        negative,
        noun,
    )


Embeds = TypeVar("Embeds")


def blend_embeddings(target_embeds: Embeds, preference_embeds: Embeds, alpha: float) -> Embeds:
    """``(1 - alpha) * target + alpha * preference``: the soft mix of two prompts' text-encoder
    embeddings (torch tensors or numpy arrays of one shape), PMG's unfinished soft conditioning.
    ``alpha`` = 0 returns the target embeddings unchanged.

    Raises:
        ConfigError: a bad ``alpha`` or embeddings of different shapes.
    """
    alpha = check_alpha(alpha)
    a: Any = target_embeds
    b: Any = preference_embeds
    if tuple(a.shape) != tuple(b.shape):
        raise ConfigError(
            f"target and preference embeddings differ in shape: {tuple(a.shape)} vs "
            f"{tuple(b.shape)}"
        )
    if alpha == 0.0:
        return target_embeds
    blended: Embeds = (1.0 - alpha) * a + alpha * b
    return blended
