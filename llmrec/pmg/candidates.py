"""Keyword candidates from catalogue metadata: the genres, decade, enriched names (director,
cast, writer, country, language) and franchise phrases (``Star Trek``) an item carries, each with
the words it is embedded in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmrec.pmg.history import LIST_ROLES, decade, split_names
from llmrec.pmg.spec import ItemInfo

TEMPLATES = {
    "genre": "Genres: {}.",
    "decade": "Released in the {}.",
    "director": "Director: {}.",
    "cast": "Cast: {}.",
    "writer": "Writer: {}.",
    "country": "Country: {}.",
    "language": "Language: {}.",
    "title": "{}",
}
"""How a candidate of each kind is embedded: in the words of
:func:`llmrec.pmg.history.item_description`, so that it lies near the items that carry it."""

_STOPWORDS = (
    "a an the of and or in on at to for from with by is it its as be are was my your his her our "
    "their this that these those me you he she we they them us who what when where why how not no "
    "all some one two three ii iii iv v part vol movie film story tale la le les el il de du des "
    "der die das und et un une los las di da do dos del"
)
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True)
class Candidate:
    """A keyword candidate: its text and the metadata field it came from."""

    text: str
    kind: str

    @property
    def key(self) -> str:
        return self.text.casefold()

    @property
    def prompt(self) -> str:
        return TEMPLATES[self.kind].format(self.text)


def title_words(title: str) -> list[str]:
    """The words of a title, without a parenthesis (an alternative title) or numbers."""
    return re.findall(r"[^\W\d_][\w'\-]*", re.sub(r"\(.*?\)", " ", title))


_LEAD = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_SEQUEL = r"(?::|\s+(?:\d|I{2,3}\b|IV\b|VI{0,3}\b|IX\b|X\b|Part\b|Returns\b|Forever\b|&))"


def _continues(rest: str) -> bool:
    """Whether what follows a phrase in a title makes it a franchise title: nothing or a mark."""
    return not rest or re.match(_SEQUEL, rest, re.IGNORECASE) is not None


def _main_title(title: str) -> str:
    """The title without a leading English article or a trailing parenthesis."""
    return _LEAD.sub("", re.sub(r"\s*\(.*\)\s*$", "", title)).strip()


def title_phrases(titles: Sequence[str], min_titles: int = 2) -> dict[str, str]:
    """Franchise phrases of a catalogue: the opening one to three words that at least
    ``min_titles`` distinct titles are made of alone or followed by a sequel mark (a number, a
    roman numeral, a colon, ``Part``, ``Returns``, ``Forever``, ``&``): ``Star Trek``,
    ``Batman``, ``Free Willy``, ``Die Hard``. The longest such phrase of a franchise is kept.

    Returns:
        casefolded phrase -> the phrase as first written.
    """
    members: dict[str, set[str]] = {}
    shown: dict[str, str] = {}
    for title in {_main_title(t) for t in titles}:
        words = title.split()
        for k in range(1, min(3, len(words)) + 1):
            phrase = " ".join(words[:k]).rstrip(":,.;!?")
            key = phrase.casefold()
            if len(key) < 3 or key in STOPWORDS or not re.search(r"[^\W\d_]", key):
                continue
            if _continues(title[len(phrase) :]):
                members.setdefault(key, set()).add(title)
                shown.setdefault(key, phrase)
    kept = {k: v for k, v in members.items() if len(v) >= min_titles}
    longer = [k for k in kept if any(o != k and o.startswith(k + " ") for o in kept)]
    return {k: shown[k] for k in sorted(kept) if k not in longer}


def item_candidates(info: ItemInfo, phrases: dict[str, str] | None = None) -> list[Candidate]:
    """The keyword candidates an item carries: genres, decade, enriched names and the catalogue's
    franchise phrases (``phrases`` from :func:`title_phrases`) its title is made of alone or
    before a sequel mark. One per text (case-insensitive), first kept."""
    found = [Candidate(g, "genre") for g in info.genres]
    if decade(info.year):
        found.append(Candidate(decade(info.year), "decade"))
    for role in LIST_ROLES:
        found += [Candidate(name, role) for name in split_names(info.extra.get(role, ""))]
    if phrases:
        main = _main_title(info.title).casefold()
        found += [
            Candidate(shown, "title")
            for key, shown in phrases.items()
            if main.startswith(key) and _continues(main[len(key) :])
        ]
    return list({c.key: c for c in reversed(found)}.values())[::-1]
