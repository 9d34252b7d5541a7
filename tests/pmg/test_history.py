"""Behaviour to text on real ml-100k users: PMG's item lines, newest first, token budgets, and the
enriched columns when a dataset has them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from llmrec.datasets import Dataset, to_csr
from llmrec.errors import ConfigError, DataError
from llmrec.pmg.history import (
    approx_tokens,
    catalogue,
    decade,
    display_title,
    history_from_row,
    history_text,
    item_description,
    item_info,
    item_line,
    split_names,
    user_history,
)

LINE = re.compile(r"^(\d+)\. (.+?)(\(([^()]+)\))?(: (.+))?\.$")


@pytest.fixture(scope="module")
def infos(ml100k):
    return catalogue(ml100k)


def test_catalogue_items_are_readable(ml100k, infos):
    assert len(infos) == ml100k.n_items
    toy = infos[0]
    assert (toy.item_id, toy.title, toy.year) == ("1", "Toy Story", "1995")
    assert toy.genres == ("Animation", "Children's", "Comedy") and toy.extra == {}
    titles = {i.title for i in infos}
    assert "The Usual Suspects" in titles and "Usual Suspects, The" not in titles
    assert all(i.item_index == n for n, i in enumerate(infos))
    assert not any("unknown" in i.genres for i in infos)  # ml-100k's "unknown" genre is no genre
    assert all(re.fullmatch(r"\d{4}", i.year) or i.year == "" for i in infos)  # not "unkonwn"
    assert item_info(ml100k, 11) == infos[11]


def test_display_title():
    assert display_title("Usual Suspects, The") == "The Usual Suspects"
    assert display_title("Postino, Il") == "Il Postino"
    assert display_title("Convent, The (Convento, O)") == "The Convent (Convento, O)"
    assert (
        display_title("Eye of Vichy, The (Oeil de Vichy, L')")
        == "The Eye of Vichy (Oeil de Vichy, L')"
    )
    assert display_title("Heat") == "Heat"


def test_item_info_rejects_bad_indices(ml100k):
    for bad in (-1, ml100k.n_items, "3", True):
        with pytest.raises(DataError, match="item_index"):
            item_info(ml100k, bad)


def test_user_history_is_newest_first(ml100k, infos):
    history = user_history(ml100k, "196", infos)
    rows = ml100k.interactions[ml100k.interactions["user_id"] == "196"]
    assert len(history) == len(rows) == 39
    stamp = dict(zip(rows["item_idx"], rows["timestamp"], strict=True))
    times = [stamp[i.item_index] for i in history]
    assert times == sorted(times, reverse=True)
    assert user_history(ml100k, "196", infos, limit=5) == history[:5]
    liked = user_history(ml100k, "196", infos, min_rating=5)
    assert 0 < len(liked) < len(history)
    assert all(rows.set_index("item_idx").loc[i.item_index, "rating"] == 5 for i in liked)
    with pytest.raises(DataError, match="unknown user"):
        user_history(ml100k, "no-such-user", infos)


def test_history_from_a_matrix_row_matches(ml100k, infos):
    user = int(ml100k.user_index(["196"])[0])
    ones = ml100k.user_items()
    inter = ml100k.interactions
    times = to_csr(inter, ml100k.n_users, ml100k.n_items, "timestamp", np.float64)  # exact times
    row, trow = ones[user], times[user]
    assert np.array_equal(row.indices, trow.indices)
    history = history_from_row(infos, row.indices, trow.data)
    assert history == user_history(ml100k, "196", infos)
    with pytest.raises(DataError, match="timestamps"):
        history_from_row(infos, row.indices, trow.data[:-1])
    with pytest.raises(DataError, match="item indices"):
        history_from_row(infos, [len(infos)])


def test_history_text_is_pmg_format(ml100k, infos):
    history = user_history(ml100k, "1", infos)
    text = history_text(history, max_tokens=None)
    lines = text.split("\n")
    assert len(lines) == len(history)
    for n, (line, info) in enumerate(zip(lines, history, strict=True)):
        assert LINE.match(line), line
        genres = f"({', '.join(info.genres)})" if info.genres else ""
        year = f": {info.year}" if info.year else ""
        assert line == f"{n}. {info.title}{genres}{year}."
    assert item_line(infos[0], 0) == "0. Toy Story(Animation, Children's, Comedy): 1995."


def test_history_text_budget_drops_whole_lines(ml100k, infos):
    from llmrec.encoders import TransformerEncoder

    count = TransformerEncoder().count_tokens  # a real tokenizer's counts
    history = user_history(ml100k, "1", infos)
    full = history_text(history, None)
    previous = 0
    for budget in (20, 60, 200, 400):
        text = history_text(history, budget, count)
        assert full.startswith(text)  # newest lines kept, in order, whole
        assert count(text) <= budget or text.count("\n") == 0
        assert text.count("\n") + 1 >= previous
        previous = text.count("\n") + 1
    assert previous < len(history)
    one = history_text(history, 1)
    assert one == item_line(history[0], 0)  # the newest item is kept whatever the budget
    assert approx_tokens("0. Heat(Action): 1995.") == 9
    with pytest.raises(ConfigError, match="max_tokens"):
        history_text(history, 0)
    assert history_text([], 50) == ""


def test_enriched_columns_become_keywords(ml100k):
    items = ml100k.items.head(3).copy()
    items["director"] = ["John Lasseter", "Martin Campbell", None]
    items["cast"] = ["Tom Hanks|Tim Allen|Don Rickles", "Pierce Brosnan, Sean Bean", ""]
    items["country"] = ["USA", "UK|USA", "USA"]
    items["description"] = ["Toys come to life.", "", "A hotel on New Year's Eve."]
    inter = ml100k.interactions[ml100k.interactions["item_id"].isin(items["item_id"])]
    data = Dataset(
        "enriched", inter[["user_id", "item_id", "rating", "timestamp"]], items, None, "x",
        text_columns=ml100k.text_columns,
    )  # fmt: skip
    toy, golden, rooms = catalogue(data)[:3]
    assert toy.extra == {
        "director": "John Lasseter",
        "cast": "Tom Hanks, Tim Allen, Don Rickles",
        "country": "USA",
        "description": "Toys come to life.",
    }
    assert golden.extra["country"] == "UK, USA" and "description" not in golden.extra
    assert "director" not in rooms.extra and "cast" not in rooms.extra
    assert item_line(toy, 0) == (
        "0. Toy Story(Animation, Children's, Comedy): 1995, John Lasseter, Tom Hanks, Tim Allen, "
        "Don Rickles."
    )
    assert item_description(golden) == (
        "GoldenEye (1995). Genres: Action, Adventure, Thriller. Director: Martin Campbell. "
        "Cast: Pierce Brosnan, Sean Bean. Country: UK, USA."
    )


def test_small_helpers():
    assert split_names("A|B ; C") == ["A", "B ; C"]
    assert split_names("A; B") == ["A", "B"]
    assert split_names(["A", " ", "B"]) == ["A", "B"]
    assert split_names(float("nan")) == []
    assert decade("1995") == "1990s" and decade("") == "" and decade("19x5") == ""
    frame = pd.DataFrame({"item_id": ["9"], "title": ["Nameless"]})
    data = Dataset("t", pd.DataFrame({"user_id": ["1"], "item_id": ["9"]}), frame, None, "x")
    (info,) = catalogue(data)
    assert (info.title, info.year, info.genres) == ("Nameless", "", ())
    assert item_line(info, 3) == "3. Nameless."
