"""The embedding keyword backend on real ml-100k users with the shipped MiniLM: every preference
keyword traces to history items that carry it; the parser of LLM answers; the llm backend on the
shipped SmolLM2, falling back to embedding when its answer is unusable."""

from __future__ import annotations

import re

import numpy as np
import pytest

from llmrec.encoders import TransformerEncoder
from llmrec.encoders.cache import CachedEncoder
from llmrec.errors import ConfigError
from llmrec.pmg.candidates import item_candidates, title_phrases
from llmrec.pmg.history import catalogue, decade, split_names, user_history
from llmrec.pmg.keywords import EmbeddingKeywords, KeywordResult, keyword_extractor, mmr
from llmrec.pmg.spec import ItemInfo


@pytest.fixture(scope="module")
def encoder(shared_cache):
    return CachedEncoder(TransformerEncoder(), shared_cache / "embeddings.sqlite")


@pytest.fixture(scope="module")
def extractor(ml100k, encoder) -> EmbeddingKeywords:
    return EmbeddingKeywords.from_dataset(ml100k, encoder)


def carries(info: ItemInfo, keyword: str, franchises: set[str]) -> bool:
    """Whether an item's own metadata holds ``keyword``, checked apart from the extractor: a
    genre, its decade, an enriched name, or a franchise phrase its title holds."""
    key = keyword.casefold()
    if keyword in franchises:  # "Scream 2" is in the Scream franchise, "Scream of Stone" is not
        mark = r"($|:|\s+(\d|II|III|IV|V|VI|Part|Returns|Forever|&))"
        title = info.title.removeprefix("The ")
        return re.match(re.escape(key) + mark, title, re.IGNORECASE) is not None
    names = [n for v in info.extra.values() for n in split_names(v)]
    return (
        key in {g.casefold() for g in info.genres}
        or key == decade(info.year).casefold()
        or key in {n.casefold() for n in names}
    )


def test_every_preference_keyword_traces_to_history_items(ml100k, extractor):
    users = list(ml100k.user_ids[::9])  # 105 real users, 20 to 737 ratings each
    histories = [user_history(ml100k, u, extractor.infos) for u in users]
    results = extractor.preferences(histories, 8)
    checked = 0
    franchises = set(extractor.phrases.values())
    for history, result in zip(histories, results, strict=True):
        assert result.backend_used == "embedding" and len(result.keywords) == 8
        assert len({k.text.casefold() for k in result.keywords}) == 8
        shown = history[: extractor.max_items]
        for keyword in result.keywords:
            assert keyword.sources, keyword
            assert all(carries(shown[p], keyword.text, franchises) for p in keyword.sources), (
                keyword,
                [shown[p] for p in keyword.sources],
            )
            # the sources are every shown item carrying it, not a sample
            carriers = {p for p, i in enumerate(shown) if carries(i, keyword.text, franchises)}
            assert set(keyword.sources) == carriers, keyword
            assert keyword.score > 0
            checked += 1
        if len(history) > extractor.max_items:
            assert result.note == f"from the newest 50 of {len(history)} history items"
    assert checked == 8 * len(users)


def real(ml100k_infos, genre: str, count: int) -> list[ItemInfo]:
    return [i for i in ml100k_infos if genre in i.genres and len(i.genres) == 1][:count]


def test_the_dominant_and_the_recent_taste_rank_first(extractor):
    horror, documentary = (
        real(extractor.infos, "Horror", 12),
        real(extractor.infos, "Documentary", 12),
    )
    assert len(horror) == len(documentary) == 12
    top = extractor.preference(horror + documentary[:3], 3).texts
    assert top[0] == "Horror"
    newest_horror = extractor.preference(horror + documentary, 8).texts
    newest_docs = extractor.preference(documentary + horror, 8).texts
    assert newest_horror.index("Horror") < newest_horror.index("Documentary")
    assert newest_docs.index("Documentary") < newest_docs.index("Horror")


def test_enriched_names_and_franchises_become_keywords(extractor):
    by_title = {i.title: i for i in extractor.infos}
    spielberg = {"director": "Steven Spielberg"}
    history = [
        ItemInfo(**{**vars(by_title[t]), "extra": spielberg})
        for t in ("Jaws", "E.T. the Extra-Terrestrial", "Raiders of the Lost Ark")
    ]
    history += [by_title["Star Trek: First Contact"], by_title["Star Trek: Generations"]]
    result = extractor.preference(history, 8)
    found = {k.text: k.sources for k in result.keywords}
    assert found["Steven Spielberg"] == (0, 1, 2)
    assert found["Star Trek"] == (3, 4)


def test_title_phrases_are_franchises(extractor):
    phrases = set(extractor.phrases.values())
    assert {"Star Trek", "Batman", "Die Hard", "Free Willy", "Godfather", "Alien"} <= phrases
    assert not phrases & {"Love", "The", "Star", "Last Time", "Night"}
    assert title_phrases(["Jaws", "Jaws 2", "Jaws 3-D", "Heat"]) == {"jaws": "Jaws"}
    trek = ItemInfo(0, "0", "Star Trek: Generations", "1994", ("Sci-Fi",))
    kinds = {c.text: c.kind for c in item_candidates(trek, extractor.phrases)}
    assert kinds == {"Sci-Fi": "genre", "1990s": "decade", "Star Trek": "title"}


def test_histories_with_little_in_common(extractor):
    by_title = {i.title: i for i in extractor.infos}
    apart = [by_title["Toy Story"], by_title["Nosferatu (Nosferatu, eine Symphonie des Grauens)"]]
    result = extractor.preference(apart, 8)  # nothing shared: single items fill the list
    assert {k.text for k in result.keywords} == {
        "Animation", "Children's", "Comedy", "1990s", "Horror", "1920s"
    }  # fmt: skip
    assert all(len(k.sources) == 1 for k in result.keywords)
    bare = [ItemInfo(9000, "a", "Untitled"), ItemInfo(9001, "b", "Nameless")]
    plain = extractor.preference(bare, 4)
    assert len(plain.keywords) == 4 and "carry no metadata" in plain.note
    assert all(not k.sources for k in plain.keywords)


def test_no_history_gives_popular_keywords(extractor):
    result = extractor.preference([], 5)
    assert result.keywords and "no history" in result.note
    assert all(not k.sources for k in result.keywords)
    assert {"Drama", "Comedy"} & set(result.texts)  # ml-100k's most watched genres


def test_target_keywords_are_the_items_own_most_distinctive_first(extractor):
    toy = extractor.infos[0]
    result = extractor.target(toy, 5)
    assert result.note == "" and set(result.texts) == {"Animation", "Children's", "Comedy", "1990s"}
    genres = [t for t in result.texts if t != "1990s"]
    assert genres == ["Animation", "Children's", "Comedy"]  # 42, 122 and 505 films in ml-100k
    assert all(not k.sources for k in result.keywords)
    assert len(extractor.target(toy, 2).keywords) == 2
    bare = ItemInfo(5000, "x", "The Secret of the Old Mill")
    plain = extractor.target(bare, 5)
    assert plain.texts == ["Secret", "Old", "Mill"] and "title's words" in plain.note


def test_mmr_skips_near_duplicates():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scores = np.array([1.0, 0.9, 0.5])
    assert mmr(scores, vectors, 2, 0.0) == [0, 1]
    assert mmr(scores, vectors, 2, 0.5) == [0, 2]
    assert mmr(np.array([]), np.zeros((0, 2)), 3, 0.3) == []


def test_bad_settings(ml100k, extractor, encoder):
    with pytest.raises(ConfigError, match="number of keywords"):
        extractor.preference([], 0)
    with pytest.raises(ConfigError, match="number of keywords"):
        extractor.target(extractor.infos[0], True)
    with pytest.raises(ConfigError, match="diversity"):
        EmbeddingKeywords(extractor.infos, encoder, diversity=2.0)
    with pytest.raises(ConfigError, match="popularity"):
        EmbeddingKeywords(extractor.infos, encoder, popularity=[1.0])
    with pytest.raises(ConfigError, match="backend"):
        keyword_extractor("tfidf", ml100k, encoder)  # type: ignore[arg-type]
    assert isinstance(keyword_extractor("embedding", ml100k, encoder), EmbeddingKeywords)
    assert isinstance(extractor.preference([], 3), KeywordResult)
    assert len(catalogue(ml100k)) == len(extractor.infos)
