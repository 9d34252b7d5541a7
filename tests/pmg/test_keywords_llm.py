"""The llm keyword backend: the parser on well-formed answers and on answers the shipped
SmolLM2-135M-Instruct really wrote to PMG's prompts, and the backend on that model, falling back
to the embedding backend with a stated reason when the answer is unusable."""

from __future__ import annotations

import pytest

from llmrec.encoders import TransformerEncoder
from llmrec.encoders.cache import CachedEncoder
from llmrec.errors import ConfigError
from llmrec.llm import load_generator
from llmrec.pmg.history import history_text, item_line, user_history
from llmrec.pmg.keywords import EmbeddingKeywords, keyword_extractor
from llmrec.pmg.keywords_llm import LLMKeywords, parse_keywords
from llmrec.pmg.prompts import instructions, preference_prompt

HISTORY = "0. Toy Story(Animation, Children's, Comedy): 1995."
ECHO = instructions(preference_prompt(HISTORY, 8), HISTORY)

# Answers SmolLM2-135M-Instruct (Q4_1 GGUF, greedy) gave to PMG's prompts on ml-100k users.
SMOLLM_ANSWERS = {
    "languages": (
        "This is an example of how you can use a chatbot to assist users with editing tasks. "
        "I've provided examples of your capabilities in various languages such as English, "
        "Spanish, French, German, Italian, Portuguese, Chinese, Korean, Arabic, Japanese, Russian,"
        " Polish, Bahasa Indonesia, Bahasa Indonesia, Bahasa Indonesia,"
    ),
    "placeholders": (
        '"The keywords are: 1. The Keywords are: 1. The Keyword 1. 2. The Keyword 2. 3. The '
        "Keyword 3. 4. The Keyword 4. 5. The Keyword 5. 6"
    ),
    "code": (
        "Here's an example of how you could modify the code to generate a list of 8 keywords "
        "that match the provided movie titles: ```python import smoll def get_keywords(): return "
        '[ { "key": "Keyword 1", "category": "Movie Interests" } for i in range(len('
    ),
    "sentences": (
        "Here is an example of how you can use this tool in your marketing strategy: 1. Create a "
        "product that promotes your brand or products related to your business. 2. Use this tool "
        "to create a product that promotes your brand. 3. Share your product on social media."
    ),
    "prose": (
        "The Star Wars franchise has been reimagined with the help of creative minds to create "
        "something entirely new and exciting. The Star Wars universe combines elements of action,"
        " adventure, romance, sci-fi, war, and more into one epic tale."
    ),
    "copied history": ("The Aristocats(Animation, Children's), The Climb-Up(Comedy, Romance)"),
}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "The keywords are: 1. Sci-Fi. 2. Action. 3. Adventure. 4. Space. 5. Comedy. 6. 1990s. "
            "7. Heroes. 8. Aliens.",
            ["Sci-Fi", "Action", "Adventure", "Space", "Comedy", "1990s", "Heroes", "Aliens"],
        ),
        (
            "Sure! Here are 8 keywords to describe his movie interests:\n\n1. **Science Fiction** -"
            ' he likes space\n2. Action\n3. "Comedy"\n4. Drama (mostly)\n5. thriller.',
            ["Science Fiction", "Action", "Comedy", "Drama", "thriller"],
        ),
        ("Keywords: action; crime; 80s", ["action", "crime", "80s"]),
        ("- Action\n- Comedy\n* Romance\n• War", ["Action", "Comedy", "Romance", "War"]),
        ("Action, comedy and drama", ["Action", "comedy", "drama"]),
        ("sci-fi, sci-fi, Sci Fi, sci-fi movies, SCI-FI, Sci-fi films", ["sci-fi"]),
        ("1. Action 2. Comedy 3. Action 4. action movies 5. Drama", ["Action", "Comedy", "Drama"]),
        (
            "movie interests, person, the, and, 12345, ???, Keyword 3, a very long phrase that "
            "just keeps going, Film-Noir",
            ["Film-Noir"],
        ),
        ("", []),
    ],
)
def test_parser_reads_many_list_forms(answer, expected):
    assert parse_keywords(answer, 8, ECHO) == expected


def test_parser_on_real_smollm_answers():
    parsed = {name: parse_keywords(text, 8, ECHO) for name, text in SMOLLM_ANSWERS.items()}
    assert parsed["placeholders"] == [] and parsed["sentences"] == []
    assert len(parsed["code"]) < 4  # "category", "len": fewer than half of 8, unusable
    assert parsed["prose"] == ["adventure", "romance", "sci-fi", "war"]
    assert parsed["languages"][:3] == ["Spanish", "French", "German"]  # parses, but off-topic
    copied = parse_keywords(SMOLLM_ANSWERS["copied history"], 8, ECHO, ["The Aristocats"])
    assert copied == ["Animation", "Children's", "The Climb-Up", "Comedy", "Romance"]
    assert parse_keywords("x, 42, ab, b c", 8) == ["ab", "b c"]  # one letter is no keyword
    assert parse_keywords("war, crime, drama, noir", 2) == ["war", "crime"]


@pytest.fixture(scope="module")
def backend(ml100k, shared_cache, one_thread, tmp_path_factory) -> LLMKeywords:
    encoder = CachedEncoder(TransformerEncoder(), shared_cache / "embeddings.sqlite")
    fallback = EmbeddingKeywords.from_dataset(ml100k, encoder)
    generator = load_generator(None, cache=tmp_path_factory.mktemp("gen") / "gen.sqlite")
    return LLMKeywords(generator, fallback, max_history_tokens=100, max_new_tokens=48)


def test_llm_backend_on_smollm(ml100k, backend):
    infos = backend.fallback.infos
    histories = [user_history(ml100k, u, infos) for u in ("1", "2")] + [[]]
    results = backend.preferences(histories, 8)
    assert len(results) == 3
    for history, result in zip(histories[:2], results[:2], strict=True):
        if result.backend_used == "llm":
            assert 4 <= len(result.keywords) <= 8
            text = history_text(history, 100, backend.count_tokens)
            lines = [item_line(i, p).casefold() for p, i in enumerate(history)][
                : text.count("\n") + 1
            ]
            assert any(k.sources for k in result.keywords)  # min_grounded
            for keyword in result.keywords:
                assert all(keyword.text.casefold() in lines[p] for p in keyword.sources)
            if not all(k.sources for k in result.keywords):
                assert "appear in none" in result.note
        else:
            assert "fell back to embedding" in result.note
            assert result.keywords == backend.fallback.preference(history, 8).keywords
    assert results[2].backend_used == "embedding" and "no history" in results[2].note
    star_wars = next(i for i in infos if i.title == "Star Wars")
    target = backend.target(star_wars, 5)
    if target.backend_used == "llm":
        assert 3 <= len(target.keywords) <= 5 and "Star Wars" not in target.texts
    else:
        assert "fell back" in target.note
    again = backend.preferences(histories[:1], 8)[0]
    assert again == results[0]  # greedy and cached: the same answer
    assert backend.generator.stats.cached >= 1


def test_llm_backend_settings(backend):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        LLMKeywords(backend.generator, backend.fallback, max_new_tokens=0)
    with pytest.raises(ConfigError, match="number of keywords"):
        backend.preferences([[]], 0)


def test_factory_builds_the_llm_backend(ml100k, backend):
    made = keyword_extractor("llm", ml100k, backend.fallback.encoder, backend.generator)
    assert isinstance(made, LLMKeywords) and made.fallback.infos == backend.fallback.infos
