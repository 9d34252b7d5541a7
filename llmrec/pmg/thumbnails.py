"""From a user to personalized thumbnails: history -> preference keywords -> per recommended item,
target keywords, a spec balanced by ``alpha``, best-of-N images -> a thumbnail folder.

:class:`ThumbnailMaker` holds what is shared across users (the catalogue, the keyword backend,
the image generator, the scorer); :func:`top_items` says which items a user gets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from llmrec.datasets import Dataset, to_csr
from llmrec.errors import ConfigError, DataError
from llmrec.llm import load_generator
from llmrec.pmg.card import CardGenerator
from llmrec.pmg.gallery import ItemThumbnail, UserThumbnails
from llmrec.pmg.history import catalogue, history_text, user_history
from llmrec.pmg.keywords import EmbeddingKeywords, KeywordExtractor
from llmrec.pmg.keywords_llm import LLMKeywords
from llmrec.pmg.prompts import compose
from llmrec.pmg.selection import ClipScorer, Scorer, TextScorer, select_best
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec

log = logging.getLogger(__name__)


class ThumbnailConfig(BaseModel):
    """How thumbnails are made."""

    model_config = ConfigDict(extra="forbid")

    keywords: Literal["embedding", "llm"] = "embedding"
    llm: str | None = None
    """For ``keywords="llm"``: a model folder or .gguf file; None: the shipped SmolLM2."""
    generator: Literal["card", "diffusers"] = "card"
    diffusers: str | None = None
    """For ``generator="diffusers"``: a Stable Diffusion folder on disk."""
    clip: str | None = None
    """A local CLIP folder that scores candidates; None: a text scorer (stated in the output)."""
    candidates: int = Field(default=1, ge=1)
    """Images generated per item (seeds ``seed .. seed + N - 1``); the best by PMG's z is kept."""
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    n_preference: int = Field(default=8, ge=1)
    n_target: int = Field(default=5, ge=1)
    size: int = Field(default=384, ge=64)
    steps: int = Field(default=30, ge=1)
    guidance: float = Field(default=9.0, ge=0.0)
    device: str | None = None
    seed: int = 0
    history_items: int = Field(default=30, ge=1)
    """The newest items of the history that keywords are drawn from."""
    min_rating: float | None = 4.0
    """Only items rated at least this count as liked; a user with none falls back to all."""
    history_tokens: int = Field(default=400, ge=16)


def _image_generator(config: ThumbnailConfig) -> Any:
    if config.generator == "card":
        return CardGenerator(size=config.size)
    if not config.diffusers:
        raise ConfigError("generator='diffusers' needs a Stable Diffusion folder: --diffusers DIR")
    from llmrec.pmg.diffusion import DiffusionGenerator

    return DiffusionGenerator(
        config.diffusers,
        steps=config.steps,
        guidance=config.guidance,
        size=config.size - config.size % 8,
        device=config.device,
        seed=config.seed,
    )


def because(
    preference: Sequence[Keyword], target: Sequence[Keyword], history: Sequence[ItemInfo]
) -> tuple[str, ...]:
    """Up to two history titles behind the explanation: the items that carry the preference
    keywords the target shares, else those behind the top preference keywords."""
    shared = {k.text.casefold() for k in target}
    chosen = [k for k in preference if k.text.casefold() in shared] or list(preference[:2])
    counts = Counter(p for k in chosen for p in k.sources if 0 <= p < len(history))
    ranked = sorted(counts, key=lambda p: (-counts[p], p))
    return tuple(history[p].title for p in ranked[:2])


class ThumbnailMaker:
    """Thumbnails for users of one dataset.

    Args:
        dataset: the dataset (its catalogue and, by default, its interactions as histories).
        config: the settings.
        interactions: the rows histories are read from (e.g. a split's train); None: all.

    Raises:
        ConfigError: a bad setting or a missing/broken model folder.
    """

    def __init__(
        self,
        dataset: Dataset,
        config: ThumbnailConfig | None = None,
        interactions: pd.DataFrame | None = None,
    ) -> None:
        self.config = config = config or ThumbnailConfig()
        self.dataset, self.interactions = dataset, interactions
        self.infos = catalogue(dataset)
        fallback = EmbeddingKeywords.from_dataset(dataset)
        self.keywords: KeywordExtractor = fallback
        if config.keywords == "llm":
            self.keywords = LLMKeywords(
                load_generator(config.llm),
                fallback,
                max_history_tokens=config.history_tokens,
                seed=config.seed,
            )
        self.images = _image_generator(config)
        # One scorer for every item: the text scorer shares the keyword backend's encoder.
        self.scorer: Scorer = (
            ClipScorer(config.clip, config.device) if config.clip else TextScorer(fallback.encoder)
        )

    def history(self, user_id: object) -> tuple[list[ItemInfo], str]:
        """The user's liked items, newest first, and a note when it fell back."""
        c = self.config
        args = (self.dataset, user_id, self.infos, self.interactions)
        items = user_history(*args, min_rating=c.min_rating, limit=c.history_items)
        if items or c.min_rating is None:
            return items, "" if items else "no history: popular keywords"
        items = user_history(*args, limit=c.history_items)
        note = f"no item rated >= {c.min_rating:g}: every rated item counts"
        return items, note if items else "no history: popular keywords"

    def for_user(
        self,
        user_id: object,
        item_indices: Sequence[int],
        ranker_scores: Sequence[float] | None = None,
        alpha: float | None = None,
    ) -> tuple[UserThumbnails, list[Image.Image]]:
        """One user's thumbnails of ``item_indices`` (with their ranker scores, if known).

        Raises:
            DataError: an unknown user or an item index outside the catalogue.
        """
        c = self.config
        alpha = c.alpha if alpha is None else alpha
        history, note = self.history(user_id)
        preference = self.keywords.preference(history, c.n_preference)
        notes = [n for n in (note, preference.note) if n]
        items, images = [], []
        for position, index in enumerate(item_indices):
            if not 0 <= int(index) < len(self.infos):
                raise DataError(f"item index {index} is outside the catalogue")
            info = self.infos[int(index)]
            target = self.keywords.target(info, c.n_target)
            if target.note:
                notes.append(f"{info.title}: {target.note}")
            spec = ThumbnailSpec(
                item=info,
                target_keywords=target.keywords,
                preference_keywords=preference.keywords,
                alpha=alpha,
                because=because(preference.keywords, target.keywords, history),
                seed=c.seed,
            )
            image, prompts, scores = self._best_image(spec)
            if ranker_scores is not None:
                scores["ranker"] = float(ranker_scores[position])
            items.append(ItemThumbnail(spec, prompts, scores))
            images.append(image)
        user = UserThumbnails(
            user_id=str(user_id),
            history=tuple(history),
            history_text=history_text(history, c.history_tokens),
            preference_keywords=preference.keywords,
            keyword_backend=preference.backend_used,
            generator=getattr(self.images, "fingerprint", type(self.images).__name__),
            items=tuple(items),
            note="; ".join(dict.fromkeys(notes)),
        )
        return user, images

    def _best_image(
        self, spec: ThumbnailSpec
    ) -> tuple[Image.Image, dict[str, str], dict[str, float]]:
        c = self.config
        prompt = compose(spec)
        seeds = [c.seed + j for j in range(c.candidates)]
        candidates = self.images.generate([spec] * len(seeds), seeds=seeds)
        selection = select_best(
            candidates,
            prompt.target_text,
            prompt.preference_text,
            spec.alpha,
            self.scorer,
            conditioning=[prompt.positive] * len(candidates),
        )
        best = selection.scores[selection.index]
        prompts = {
            "prompt": prompt.positive,
            "negative_prompt": prompt.negative,
            "target_text": prompt.target_text,
            "preference_text": prompt.preference_text,
            "scorer": selection.scorer,
        }
        scores = {"s_target": best.target, "s_preference": best.preference, "z": best.z}
        if len(candidates) > 1:
            scores["candidate"] = float(selection.index)
        return candidates[selection.index], prompts, scores


def top_items(
    dataset: Dataset,
    user_ids: Sequence[object],
    k: int,
    model: str | Path | None = None,
    items: Mapping[object, Sequence[object]] | None = None,
) -> tuple[list[list[int]], list[list[float]], str]:
    """The items each user gets thumbnails for, their scores, and what chose them.

    Args:
        dataset: the dataset.
        user_ids: the users.
        k: items per user.
        model: a model folder (``llmrec train``) to recommend with; None: EASE (reg 250) fit
            on all of the dataset's interactions, a strong baseline that trains in seconds.
        items: fixed item ids per user instead of recommendations (``--items``).

    Raises:
        DataError: unknown user or item ids.
    """
    users = dataset.user_index(list(user_ids))  # raises on unknown ids
    if items is not None:
        chosen = [list(dataset.item_index(list(items[u]))) for u in user_ids]
        return chosen, [[float("nan")] * len(c) for c in chosen], "given items (--items)"
    if model is not None:
        from llmrec.pipeline import Recommender

        recommender = Recommender.load(model)
        ids, scores = recommender.recommend(list(user_ids), k=k)
        chosen = [
            [int(i) for i in dataset.item_index([x for x in row if x is not None])] for row in ids
        ]
        return (
            chosen,
            [list(map(float, s[: len(c)])) for s, c in zip(scores, chosen, strict=True)],
            (f"model {model}"),
        )
    from llmrec.rankers.linear import EASE, EASEConfig

    matrix = to_csr(dataset.interactions, dataset.n_users, dataset.n_items)
    ease = EASE(EASEConfig()).fit(matrix)
    ids, scores = ease.recommend(np.asarray(users), matrix[users], N=k)
    return (
        [list(map(int, row)) for row in np.atleast_2d(ids)],
        [list(map(float, row)) for row in np.atleast_2d(scores)],
        "EASE (reg_weight 250) fit on all interactions",
    )
