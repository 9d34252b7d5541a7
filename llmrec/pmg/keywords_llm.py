"""The ``llm`` keyword backend: PMG's prompts on a generator, a parser that survives small models,
and the ``embedding`` backend as the fallback when an answer gives too few keywords."""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Callable, Sequence

from llmrec.errors import ConfigError
from llmrec.llm import Generator, load_generator
from llmrec.pmg.candidates import STOPWORDS
from llmrec.pmg.history import history_text, item_line
from llmrec.pmg.keywords import (
    EmbeddingKeywords,
    KeywordExtractor,
    KeywordResult,
    _check_n,
)
from llmrec.pmg.prompts import instructions, preference_prompt, target_prompt
from llmrec.pmg.spec import ItemInfo, Keyword

log = logging.getLogger(__name__)


_PREAMBLE = re.compile(
    r"^.*?\b(?:the\s+)?(?:\d+\s+)?key\s*words?\b[^:\n]{0,40}:", re.IGNORECASE | re.DOTALL
)
_NUMBERED = re.compile(r"(?:^|(?<=\s))\d{1,2}\s*[.)]\s+")
_PLACEHOLDER = re.compile(r"\bkey\s*words?\b", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»*_#"
GENERIC = frozenset({"movie", "movies", "film", "films", "genre", "genres", "style", "poster"})
"""Words that do not tell two keywords apart (``sci-fi`` and ``sci-fi movies`` are one)."""


_PAIR = re.compile(r"\s*(\S+(?: \S+)?)\s+(?:and|&)\s+(\S+(?: \S+)?)\s*[.!]?\s*")
_DECADE = re.compile(r"(?:\d0|\d{3}0)'?s")


def _pair(piece: str) -> list[str]:
    """``comedy and drama`` is two keywords; ``Romeo and Juliet`` too, a small price."""
    match = _PAIR.fullmatch(piece)
    return [match[1], match[2]] if match else [piece]


def _normal(keyword: str) -> str:
    words = re.sub(r"[^\w\s]", " ", keyword.casefold().replace("-", " ")).split()
    words = [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words
    ]
    return " ".join(w for w in words if w not in GENERIC)


def _clean(piece: str) -> str:
    piece = re.split(r"\s+[-–—]\s+|:\s|\s\(", piece, maxsplit=1)[0]  # drop an explanation
    piece = re.sub(r"^\s*(?:[-*•·]+|\d{1,2}\s*[.)])\s*", "", piece)
    piece = piece.strip().strip(_QUOTES).strip(" .,;:!?").strip(_QUOTES).strip()
    return re.sub(r"\s+", " ", piece)


def _junk(keyword: str, echo: str) -> bool:
    letters = sum(c.isalpha() for c in keyword)
    if not keyword or len(keyword) > 40 or len(keyword.split()) > 4:
        return True
    if not _DECADE.fullmatch(keyword) and (
        letters < 2 or letters < 0.6 * len(keyword.replace(" ", ""))
    ):
        return True
    if _PLACEHOLDER.search(keyword) or not _normal(keyword):
        return True
    if all(w in STOPWORDS for w in _normal(keyword).split()):
        return True
    return bool(echo) and re.search(rf"\b{re.escape(keyword.casefold())}\b", echo) is not None


def parse_keywords(text: str, n: int, echo: str = "", exclude: Sequence[str] = ()) -> list[str]:
    """Keywords from an LLM's answer: at most ``n``, in the answer's order.

    Reads numbered lists (``1. a 2. b`` on one line or many), bullet lists and comma or semicolon
    lists, after a preamble such as ``The keywords are:``. Strips quotes, markdown and trailing
    punctuation and cuts explanations (``Action - he likes ...``). Drops the example's
    placeholders (anything saying ``keyword``), words of the prompt's own instructions (``echo``,
    see :func:`llmrec.pmg.prompts.instructions`), junk (over 4 words or 40 characters, mostly not
    letters, only stopwords), the ``exclude`` texts (the history's titles: an answer that copies
    the history back, ``Heat(Action, Crime)``, gives its genres, not its titles) and repeats,
    near-repeats included (``sci-fi``, ``Sci Fi``, ``sci-fi movies``).
    """
    body = _PREAMBLE.sub("", text.replace("\r", ""), count=1)
    body = re.sub(r"(?<=[^\s(])\(", ", ", body).replace(")", " ")  # PMG's "title(genres)" lines
    if len(_NUMBERED.findall(body)) >= 2:
        pieces = [p for p in _NUMBERED.split(body) if p.strip()]
        if pieces and not _NUMBERED.match(body.lstrip()):
            pieces = pieces[1:]  # words before the first number are a preamble
        pieces = [q for p in pieces for q in re.split(r"[,;\n]", p)]
    else:
        pieces = re.split(r"[,;\n]", body)
    pieces = [q for p in pieces for q in _pair(p)]
    echo = echo.casefold()
    kept: list[str] = []
    seen: list[str] = [_normal(t) for t in exclude]
    for piece in pieces:
        keyword = _clean(piece)
        if _junk(keyword, echo):
            continue
        normal = _normal(keyword)
        if any(
            normal == s or difflib.SequenceMatcher(None, normal, s).ratio() >= 0.85 for s in seen
        ):
            continue
        seen.append(normal)
        kept.append(keyword)
        if len(kept) == n:
            break
    return kept


def _sources(keyword: str, lines: list[str]) -> tuple[int, ...]:
    """Positions of the (casefolded) lines that hold ``keyword`` as whole words."""
    pattern = re.compile(rf"(?<!\w){re.escape(keyword.casefold())}(?!\w)")
    return tuple(p for p, line in enumerate(lines) if pattern.search(line))


def _snippet(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LLMKeywords(KeywordExtractor):
    """PMG's keyword extraction on a generator (greedy).

    A preference answer that parses into fewer than ``ceil(n / 2)`` keywords, or of whose keywords
    fewer than ``min_grounded`` appear in the history, is replaced by the ``fallback`` backend's
    keywords, and the result's note says why (with the start of the answer); target answers
    with too few keywords likewise. A keyword's ``sources`` are the history positions, among those
    the prompt showed, whose line holds it as whole words (case-insensitive): empty when the LLM
    inferred it, as the note counts.

    Args:
        generator: a :mod:`llmrec.llm` generator; None: ``load_generator(None)``, the shipped one.
        fallback: the ``embedding`` backend, also used for users without history.
        max_history_tokens: the history's budget in the prompt.
        max_new_tokens: PMG's 100.
        batch_size: prompts per generator batch.
        seed: the generator's seed.
        count_tokens: a token counter for the budget; None: the generator's own.
        min_grounded: keywords that must appear in the history for an answer to count as on
            topic (a small model may answer with a list of languages); 0 accepts any.
    """

    name = "llm"

    def __init__(
        self,
        generator: Generator | None,
        fallback: EmbeddingKeywords,
        max_history_tokens: int = 400,
        max_new_tokens: int = 100,
        batch_size: int = 16,
        seed: int = 0,
        count_tokens: Callable[[str], int] | None = None,
        min_grounded: int = 1,
    ) -> None:
        if min(max_history_tokens, max_new_tokens, batch_size) < 1 or min_grounded < 0:
            raise ConfigError(
                "max_history_tokens, max_new_tokens and batch_size must be >= 1 and min_grounded "
                f">= 0, got {max_history_tokens}, {max_new_tokens}, {batch_size}, {min_grounded}"
            )
        self.generator = load_generator(None) if generator is None else generator
        count_tokens = count_tokens or getattr(self.generator, "count_tokens", None)
        self.fallback = fallback
        self.max_history_tokens, self.max_new_tokens = max_history_tokens, max_new_tokens
        self.batch_size, self.seed, self.count_tokens = batch_size, seed, count_tokens
        self.min_grounded = min_grounded

    def _generate(self, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        return self.generator.generate(
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            seed=self.seed,
            show_progress_bar=None,
        )

    def preferences(
        self, histories: Sequence[Sequence[ItemInfo]], n: int = 8
    ) -> list[KeywordResult]:
        _check_n(n)
        texts = [
            history_text(list(h), self.max_history_tokens, self.count_tokens) if h else ""
            for h in histories
        ]
        prompts = [preference_prompt(t, n) for t in texts if t]
        answers = iter(self._generate(prompts))
        results = []
        for history, text in zip(histories, texts, strict=True):
            if not text:
                results.append(self.fallback.preference([], n))
                continue
            answer = next(answers)
            shown = list(history)[: text.count("\n") + 1]  # the items the prompt showed
            echo = instructions(preference_prompt(text, n), text)
            found = parse_keywords(answer, n, echo, [i.title for i in shown])
            lines = [item_line(info, p).casefold() for p, info in enumerate(shown)]
            keywords = tuple(
                Keyword(k, round(1.0 - i / len(found), 4), _sources(k, lines))
                for i, k in enumerate(found)
            )
            grounded = sum(bool(k.sources) for k in keywords)
            reason = self._weak(found, n, answer)
            if not reason and grounded < self.min_grounded:
                reason = (
                    f"llm answer's {len(found)} keywords appear in no history line, fewer than "
                    f"min_grounded={self.min_grounded} do ({_snippet(answer)!r}): off-topic"
                )
            if reason:
                results.append(self._fall_back(self.fallback.preference(history, n), reason))
                continue
            bare = len(keywords) - grounded
            note = (
                f"sources: history lines containing the keyword; {bare} of {len(keywords)} "
                "keyword(s) appear in none (the LLM inferred them)"
                if bare
                else ""
            )
            results.append(KeywordResult(keywords, self.name, note))
        return results

    @staticmethod
    def _weak(found: list[str], n: int, answer: str) -> str:
        """Why an answer is too poor to use, or empty."""
        if len(found) >= math.ceil(n / 2):
            return ""
        return (
            f"llm answer parsed into {len(found)} usable keyword(s), fewer than "
            f"{math.ceil(n / 2)} of {n} asked ({_snippet(answer)!r})"
        )

    def _fall_back(self, result: KeywordResult, reason: str) -> KeywordResult:
        reason += "; fell back to embedding"
        log.info(reason)
        note = "; ".join(x for x in (reason, result.note) if x)
        return KeywordResult(result.keywords, result.backend_used, note)

    def target(self, item: ItemInfo, n: int = 5) -> KeywordResult:
        """PMG's poster keywords: ``2 * n`` asked (PMG asks 10 and keeps 5), the first ``n``
        kept."""
        _check_n(n)
        prompt = target_prompt(item, 2 * n)
        answer = self._generate([prompt])[0]
        data = [item.title, item.extra.get("description", ""), *item.genres]
        found = parse_keywords(answer, n, instructions(prompt, *data), [item.title])
        reason = self._weak(found, n, answer)
        if reason:
            return self._fall_back(self.fallback.target(item, n), reason)
        keywords = tuple(Keyword(k, round(1.0 - i / len(found), 4)) for i, k in enumerate(found))
        return KeywordResult(keywords, self.name)
