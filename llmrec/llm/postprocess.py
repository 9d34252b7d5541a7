"""Cleaning what a small model writes: echoes of the prompt, labels, repeats, run-on length.

A text that is left with too few words, or mostly repeats, is dropped (None) with a reason, so
callers fall back to what they had and report how many were dropped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

LABEL = re.compile(
    r"^\s*(?:sure[,!.]?\s*)?(?:here is[^:]*:|here's[^:]*:)?\s*"
    r"(?:\*\*)?(?:movie|description|summary|answer|response|profile|output)\s*(?:\*\*)?\s*:\s*",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[\w'-]+", re.UNICODE)


@dataclass(frozen=True)
class CleanText:
    """A cleaned generation: ``text`` is None when it was dropped, ``reason`` says why."""

    text: str | None
    reason: str | None = None


def _norm(text: str) -> str:
    return " ".join(w.lower() for w in WORD.findall(text))


CONJUNCTION = re.compile(r"^(?:and|or|but|as well as)\s+", re.IGNORECASE)
FIELD_LABEL = re.compile(r"^\s*[\w ]{1,20}:\s*")


def _collapse_list_repeats(sentence: str) -> str:
    """``sci-fi, sci-fi, drama, sci-fi.`` -> ``sci-fi, drama.``; clauses that differ only by a
    leading conjunction count as repeats."""
    end = sentence[-1] if sentence[-1:] in ".!?" else ""
    parts = [p.strip() for p in sentence.rstrip(".!?").split(",")]
    if len(parts) < 2:
        return sentence
    seen: dict[str, str] = {}
    for part in parts:
        seen.setdefault(_norm(CONJUNCTION.sub("", part)), part)
    return ", ".join(seen.values()) + end if len(seen) < len(parts) else sentence


def clean_generation(
    text: str, prompt: str = "", max_words: int = 60, min_words: int = 4
) -> CleanText:
    """Clean one generation.

    Steps: drop a leading label (``Description:``, ``Here is ...:``) and sentences that repeat
    the prompt or an earlier sentence; collapse repeated list items; keep whole sentences up to
    ``max_words`` (a trailing unfinished sentence is cut when a finished one precedes it).

    Args:
        text: the raw generation.
        prompt: the prompt it answered (its sentences are not echoed back).
        max_words: the length bound.
        min_words: fewer words left than this: dropped as ``too short``.

    Returns:
        The cleaned text, or None with the reason (``empty``, ``too short``, ``repetitive``).
    """
    text = LABEL.sub("", " ".join(text.split()).replace("**", ""))
    if not text:
        return CleanText(None, "empty")
    prompt_sentences = {
        _norm(FIELD_LABEL.sub("", s)) for s in SENTENCE_END.split(prompt) + prompt.splitlines()
    }
    prompt_sentences.discard("")
    kept: list[str] = []
    seen: set[str] = set()
    for sentence in SENTENCE_END.split(text):
        sentence = _collapse_list_repeats(sentence.strip())
        key = _norm(FIELD_LABEL.sub("", sentence))
        if not key or key in seen or key in prompt_sentences:
            continue
        seen.add(key)
        kept.append(sentence)
    words = [w.lower() for w in WORD.findall(" ".join(kept))]
    grams = Counter(zip(words, words[1:], words[2:], strict=False))
    if len(words) >= min_words and (
        len(set(words)) < 0.4 * len(words) or max(grams.values(), default=0) >= 3
    ):
        return CleanText(None, "repetitive")
    out: list[str] = []
    n = 0
    for sentence in kept:
        count = len(WORD.findall(sentence))
        if out and n + count > max_words:
            break
        if not out and count > max_words:  # one run-on sentence: cut it at the bound
            sentence = " ".join(sentence.split()[:max_words]).rstrip(",;:") + "…"
            count = max_words
        out.append(sentence)
        n += count
    if len(out) > 1 and not re.search(r"[.!?…]$", out[-1]):
        out.pop()  # the model stopped mid-sentence
    result = " ".join(out).strip()
    if len(WORD.findall(result)) < min_words:
        return CleanText(None, "too short" if result else "empty")
    return CleanText(result)


YEAR = re.compile(r"\s?\(?\b(?:18|19|20)\d\d\b\)?")


def drop_unknown_years(text: str, source: str) -> str:
    """Remove years from ``text`` that its ``source`` does not contain: a small model invents
    them ("The 2018 film Babe")."""
    known = set(re.findall(r"\b(?:18|19|20)\d\d\b", source))
    return YEAR.sub(lambda m: m.group(0) if m.group(0).strip(" ()") in known else "", text)


def clean_generations(
    texts: Sequence[str],
    prompts: Sequence[str] | None = None,
    max_words: int = 60,
    min_words: int = 4,
    what: str = "generations",
) -> tuple[list[str | None], Counter[str]]:
    """Clean many generations; logs how many were dropped and why.

    Returns:
        The cleaned texts (None where dropped) and the count of each drop reason.
    """
    prompts = prompts if prompts is not None else [""] * len(texts)
    cleaned = [
        clean_generation(t, p, max_words, min_words) for t, p in zip(texts, prompts, strict=True)
    ]
    reasons = Counter(c.reason for c in cleaned if c.reason is not None)
    if reasons:
        log.warning(
            "dropped %d of %d %s: %s",
            sum(reasons.values()),
            len(texts),
            what,
            ", ".join(f"{n} {r}" for r, n in reasons.most_common()),
        )
    return [c.text for c in cleaned], reasons
