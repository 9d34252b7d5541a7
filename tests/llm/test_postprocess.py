from __future__ import annotations

from llmrec.llm.postprocess import clean_generation, clean_generations, drop_unknown_years

PROMPT = "Describe this movie.\nMovie: Toy Story (1995). Genres: Animation."


def test_labels_and_echoes_are_removed():
    out = clean_generation("Description: Toy Story (1995). A toy cowboy feels replaced.", PROMPT)
    assert out.text == "A toy cowboy feels replaced."


def test_list_repeats_collapse():
    out = clean_generation("sci-fi, sci-fi, sci-fi, drama, sci-fi. A fine film overall.", PROMPT)
    assert out.text == "sci-fi, drama. A fine film overall."


def test_repeated_sentences_kept_once():
    out = clean_generation("A fun film for kids. A fun film for kids. Great songs too.")
    assert out.text == "A fun film for kids. Great songs too."


def test_degenerate_loops_are_dropped():
    text = "the theme of crime and the theme of crime and the theme of crime and the theme"
    assert clean_generation(text).reason == "repetitive"
    assert clean_generation("crime crime crime crime crime crime").reason == "repetitive"


def test_empty_and_short():
    assert clean_generation("   ").reason == "empty"
    assert clean_generation("Description:").reason == "empty"
    assert clean_generation("Great.").reason == "too short"


def test_length_bound_keeps_whole_sentences():
    text = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen."
    assert clean_generation(text, max_words=10).text == (
        "One two three four five. Six seven eight nine ten."
    )
    run_on = " ".join(f"w{i}" for i in range(30))
    assert clean_generation(run_on, max_words=8).text == " ".join(f"w{i}" for i in range(8)) + "…"


def test_unfinished_last_sentence_is_cut():
    out = clean_generation("A toy cowboy feels replaced by a spaceman. Then the two of")
    assert out.text == "A toy cowboy feels replaced by a spaceman."


def test_invented_years_are_removed():
    text = 'The 2018 film "Babe" (1995) is a comedy (2017) from 1995.'
    assert (
        drop_unknown_years(text, "Babe (1995).") == 'The film "Babe" (1995) is a comedy from 1995.'
    )


def test_batch_counts_reasons(caplog):
    texts, reasons = clean_generations(["A fine film for all ages.", "", "ok"], what="things")
    assert texts == ["A fine film for all ages.", None, None]
    assert reasons == {"empty": 1, "too short": 1}
    assert "dropped 2 of 3 things" in caplog.text
