"""Preference keywords of a user and the target item's own keywords, behind one interface.

Two backends: ``embedding`` (this module, the default) ranks the metadata of the user's own
history against the user's profile embedding, so every keyword traces to history items that carry
it; ``llm`` (:mod:`llmrec.pmg.keywords_llm`) asks a generator with PMG's prompts and falls back to
``embedding`` when its answer does not parse into enough keywords.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from llmrec.datasets import Dataset
from llmrec.encoders.base import TextEncoder
from llmrec.errors import ConfigError
from llmrec.pmg.candidates import STOPWORDS, Candidate, item_candidates, title_phrases, title_words
from llmrec.pmg.history import catalogue, item_description
from llmrec.pmg.spec import ItemInfo, Keyword

if TYPE_CHECKING:
    from llmrec.llm import Generator


@dataclass(frozen=True)
class KeywordResult:
    """Keywords with the backend that made them and, when it matters, why.

    Attributes:
        keywords: best first.
        backend_used: ``embedding`` or ``llm`` (``embedding`` also when ``llm`` fell back).
        note: what a reader should know: a fallback and its reason, an empty history, an item
            without metadata, keywords without sources.
    """

    keywords: tuple[Keyword, ...]
    backend_used: str
    note: str = ""

    @property
    def texts(self) -> list[str]:
        return [k.text for k in self.keywords]


class KeywordExtractor(ABC):
    """Preference keywords of a history and the keywords of a target item."""

    name: str

    def preference(self, history: Sequence[ItemInfo], n: int = 8) -> KeywordResult:
        """The user's ``n`` preference keywords; ``history`` is newest first and each keyword's
        ``sources`` are positions in it."""
        return self.preferences([history], n)[0]

    @abstractmethod
    def preferences(
        self, histories: Sequence[Sequence[ItemInfo]], n: int = 8
    ) -> list[KeywordResult]:
        """:meth:`preference` for many users at once (one encoder or generator pass)."""

    @abstractmethod
    def target(self, item: ItemInfo, n: int = 5) -> KeywordResult:
        """The target item's ``n`` keywords (empty ``sources``)."""


def mmr(scores: np.ndarray, vectors: np.ndarray, n: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: ``n`` indices, each maximising ``(1 - diversity) * score /
    max(score) - diversity * max similarity to those already picked``; ``vectors`` unit rows."""
    if not len(scores):
        return []
    relevance = scores / max(float(scores.max()), 1e-12)
    similarity = vectors @ vectors.T
    picked: list[int] = []
    left = list(range(len(scores)))
    while left and len(picked) < n:
        penalty = similarity[np.ix_(left, picked)].max(axis=1) if picked else 0.0
        value = (1.0 - diversity) * relevance[left] - diversity * penalty
        picked.append(left.pop(int(np.argmax(value))))
    return picked


class EmbeddingKeywords(KeywordExtractor):
    """Preference keywords from the metadata of the user's own history.

    Each candidate (a genre, decade, enriched name or franchise phrase carried by a history item)
    scores ``(cos(candidate, profile) + 1) / 2 * share * salience ** rarity``: ``profile`` is the
    recency-weighted mean of the history items' embeddings, ``share`` the recency-weighted share of
    the history that carries the candidate (position ``p``, newest 0, weighs
    ``0.5 ** (p / half_life)``) and ``salience`` its rarity in the catalogue (:meth:`salience`;
    without it the decade most of the catalogue shares tops every user). Candidates carried by at
    least ``min_support`` history items are picked by maximal marginal relevance (the rest only
    fill up when too few are left); a keyword's ``sources`` are the history positions carrying it.

    Args:
        infos: the catalogue (:func:`llmrec.pmg.history.catalogue`), for title phrases, rarity and
            popularity.
        encoder: the text encoder; None: the default MiniLM with the on-disk embedding cache.
        popularity: interactions per catalogue item, for users without history; None: 1 each.
        max_items: only the newest ``max_items`` history items count.
        half_life: history positions over which an item's weight halves.
        diversity: MMR's trade-off, 0 (score only) to 1.
        rarity: the exponent of the catalogue salience in the score; 0 ignores it.
        min_support: history items a candidate needs to be picked before the rest.
        batch_size: encoder batch size.
    """

    name = "embedding"

    def __init__(
        self,
        infos: Sequence[ItemInfo],
        encoder: TextEncoder | None = None,
        popularity: Sequence[float] | np.ndarray | None = None,
        max_items: int = 50,
        half_life: float = 10.0,
        diversity: float = 0.3,
        rarity: float = 1.0,
        min_support: int = 2,
        batch_size: int = 64,
    ) -> None:
        if (
            max_items < 1
            or half_life <= 0
            or not 0.0 <= diversity <= 1.0
            or rarity < 0
            or min_support < 1
        ):
            raise ConfigError(
                "need max_items >= 1, half_life > 0, 0 <= diversity <= 1, rarity >= 0, "
                f"min_support >= 1; got {max_items}, {half_life}, {diversity}, {rarity}, "
                f"{min_support}"
            )
        self.infos = list(infos)
        pop = np.ones(len(self.infos)) if popularity is None else np.asarray(popularity, float)
        if pop.shape != (len(self.infos),):
            raise ConfigError(f"popularity has {pop.size} values for {len(self.infos)} items")
        self.phrases = title_phrases([i.title for i in self.infos])
        self.df: Counter[str] = Counter()
        self.popular: dict[str, float] = {}
        self.shown: dict[str, Candidate] = {}
        for info, weight in zip(self.infos, pop, strict=True):
            for cand in item_candidates(info, self.phrases):
                self.df[cand.key] += 1
                self.shown.setdefault(cand.key, cand)
                if cand.kind != "title":
                    self.popular[cand.key] = self.popular.get(cand.key, 0.0) + float(weight)
        self._encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}
        self.max_items, self.half_life = max_items, half_life
        self.diversity, self.batch_size = diversity, batch_size
        self.rarity, self.min_support = rarity, min_support

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        encoder: TextEncoder | None = None,
        max_items: int = 50,
        half_life: float = 10.0,
        diversity: float = 0.3,
        rarity: float = 1.0,
        min_support: int = 2,
    ) -> EmbeddingKeywords:
        """The extractor over ``dataset``'s catalogue, popularity from its interactions."""
        counts = np.bincount(dataset.interactions["item_idx"], minlength=dataset.n_items)
        return cls(
            catalogue(dataset),
            encoder,
            counts,
            max_items,
            half_life,
            diversity,
            rarity,
            min_support,
        )

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            from llmrec.encoders import TransformerEncoder
            from llmrec.encoders.cache import CachedEncoder, default_cache_path

            self._encoder = CachedEncoder(TransformerEncoder(), default_cache_path())
        return self._encoder

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            vectors = self.encoder.encode(
                missing, normalize_embeddings=True, batch_size=self.batch_size
            )
            self._vectors.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.empty((0, self.encoder.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])

    def preferences(
        self, histories: Sequence[Sequence[ItemInfo]], n: int = 8
    ) -> list[KeywordResult]:
        _check_n(n)
        recent = [list(h)[: self.max_items] for h in histories]
        found = [[item_candidates(info, self.phrases) for info in h] for h in recent]
        self._embed(
            [item_description(i) for h in recent for i in h]
            + [c.prompt for items in found for cands in items for c in cands]
        )  # one encoder pass for every user
        return [
            self._rank(h, cands, n, len(full)) if h else self._popular(n)
            for h, cands, full in zip(recent, found, histories, strict=True)
        ]

    def _rank(
        self, history: list[ItemInfo], found: list[list[Candidate]], n: int, total: int
    ) -> KeywordResult:
        weights = 0.5 ** (np.arange(len(history)) / self.half_life)
        profile = weights @ self._embed([item_description(i) for i in history])
        profile /= max(float(np.linalg.norm(profile)), 1e-12)
        positions: dict[str, list[int]] = {}
        shown: dict[str, Candidate] = {}
        for position, cands in enumerate(found):
            for cand in cands:
                positions.setdefault(cand.key, []).append(position)
                shown.setdefault(cand.key, cand)
        keys = list(positions)
        if not keys:
            popular = self._popular(n)
            note = "the history's items carry no metadata: the catalogue's most popular keywords"
            return KeywordResult(popular.keywords, self.name, note)
        vectors = self._embed([shown[k].prompt for k in keys])
        share = np.array([weights[positions[k]].sum() for k in keys]) / weights.sum()
        rarity = np.array([self.salience(k) for k in keys]) ** self.rarity
        scores = (vectors @ profile + 1.0) / 2.0 * share * rarity
        # what one history item carries is chance, not a preference, unless the history is short
        enough = min(self.min_support, len(history))
        order = np.argsort(-scores, kind="stable")
        supported = [i for i in order if len(positions[keys[i]]) >= enough]
        pool = np.array(supported[: 10 * n + 40], dtype=np.int64)
        picked = [int(pool[i]) for i in mmr(scores[pool], vectors[pool], n, self.diversity)]
        picked += [int(i) for i in order if i not in picked][: n - len(picked)]
        keywords = tuple(
            Keyword(shown[keys[i]].text, float(scores[i]), tuple(positions[keys[i]]))
            for i in picked
        )
        note = (
            f"from the newest {len(history)} of {total} history items"
            if total > len(history)
            else ""
        )
        return KeywordResult(keywords, self.name, note)

    def _popular(self, n: int) -> KeywordResult:
        keys = sorted(self.popular, key=lambda k: -self.popular[k])[: max(10 * n, 50)]
        if not keys:
            return KeywordResult((), self.name, "no history and no catalogue metadata: no keywords")
        scores = np.array([self.popular[k] for k in keys])
        vectors = self._embed([self.shown[k].prompt for k in keys])
        picked = mmr(scores, vectors, n, self.diversity)
        keywords = tuple(
            Keyword(self.shown[keys[i]].text, float(scores[i] / scores.max())) for i in picked
        )
        note = "no history: the catalogue's most popular keywords (weighted by interactions)"
        return KeywordResult(keywords, self.name, note)

    def salience(self, key: str) -> float:
        """``1 + log((N + 1) / (df + 1))`` over the catalogue's N items: rarer is more
        distinctive."""
        return 1.0 + math.log((len(self.infos) + 1) / (self.df.get(key, 0) + 1))

    def target(self, item: ItemInfo, n: int = 5) -> KeywordResult:
        """The item's own metadata (not its title phrases: the title is in the prompt already),
        most distinctive first, one of each field per round (genre, decade, director, cast, ...),
        so that five keywords are not five actors."""
        _check_n(n)
        cands = [c for c in item_candidates(item) if c.kind != "title"]
        if not cands:
            words = [w for w in title_words(item.title) if w.casefold() not in STOPWORDS]
            texts = list(dict.fromkeys(words or [item.title]))[:n]
            keywords = tuple(Keyword(t, 1.0) for t in texts)
            return KeywordResult(keywords, self.name, "no metadata: keywords are the title's words")
        best = math.log(len(self.infos) + 1) + 1.0
        by_kind: dict[str, list[Candidate]] = {}
        for cand in sorted(cands, key=lambda c: -self.salience(c.key)):
            by_kind.setdefault(cand.kind, []).append(cand)
        order: list[Candidate] = []
        for rank in range(max(len(v) for v in by_kind.values())):
            round_ = [v[rank] for v in by_kind.values() if rank < len(v)]
            order += sorted(round_, key=lambda c: -self.salience(c.key))
        keywords = tuple(Keyword(c.text, self.salience(c.key) / best) for c in order[:n])
        return KeywordResult(keywords, self.name)


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of keywords must be an integer >= 1, got {n!r}")


def keyword_extractor(
    backend: Literal["embedding", "llm"],
    dataset: Dataset,
    encoder: TextEncoder | None = None,
    generator: Generator | None = None,
) -> KeywordExtractor:
    """The extractor of ``backend`` over ``dataset``: ``embedding``, or ``llm`` on ``generator``
    (None: the shipped generator) with ``embedding`` as its fallback.

    Raises:
        ConfigError: an unknown backend.
    """
    if backend not in ("embedding", "llm"):
        raise ConfigError(f"keyword backend must be 'embedding' or 'llm', got {backend!r}")
    fallback = EmbeddingKeywords.from_dataset(dataset, encoder)
    if backend == "embedding":
        return fallback
    from llmrec.pmg.keywords_llm import LLMKeywords

    return LLMKeywords(generator, fallback)
