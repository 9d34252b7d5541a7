"""What one personalized thumbnail is made of: the target item, the user's preference keywords
(each traced to the history items it came from), the target's own keywords and the balance
``alpha`` between them. Every generator (the Pillow card, diffusers) renders from this."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmrec.errors import ConfigError


@dataclass(frozen=True)
class Keyword:
    """A keyword with its score and the history items (positions in the user's history, newest
    first) it was drawn from; empty ``sources`` for a target keyword taken from the item."""

    text: str
    score: float = 1.0
    sources: tuple[int, ...] = ()


@dataclass(frozen=True)
class ItemInfo:
    """The metadata of one catalogue item that prompts and cards show."""

    item_index: int
    item_id: str
    title: str
    year: str = ""
    genres: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    """Enriched knowledge (director, cast, country, ...) and an LLM description, when present."""


@dataclass(frozen=True)
class ThumbnailSpec:
    """One thumbnail to render.

    ``alpha`` = 0 shows the item as it is for everyone (PMG's non-personalized baseline);
    ``alpha`` = 1 leans fully on the user's preference keywords.
    """

    item: ItemInfo
    target_keywords: tuple[Keyword, ...]
    preference_keywords: tuple[Keyword, ...]
    alpha: float = 0.5
    because: tuple[str, ...] = ()
    """Titles of real history items named in the explanation ("because you liked X and Y")."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_alpha(self.alpha)


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in [0, 1].

    Raises:
        ConfigError: alpha is not a number in [0, 1].
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)
