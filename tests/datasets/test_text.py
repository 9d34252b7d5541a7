from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrec.datasets import item_text, render_item
from llmrec.errors import DataError


def test_render_item():
    assert render_item("Toy Story", "1995", "Animation Children's Comedy") == (
        "Toy Story (1995). Genres: Animation, Children's, Comedy."
    )
    assert render_item("Heat", 1995.0, "Action|Crime") == "Heat (1995). Genres: Action, Crime."
    assert render_item("Alien (1979)", 1979, None) == "Alien (1979)."
    assert render_item("Solo", np.nan, ["Drama"]) == "Solo. Genres: Drama."


def test_item_text_on_both_movielens(ml100k):
    text = item_text(ml100k.items, ml100k.text_columns)
    assert text.iloc[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert len(text) == ml100k.n_items


def test_configurable_columns():
    items = pd.DataFrame({"item_id": ["a"], "name": ["Book"], "tags": ["x y"]})
    assert item_text(items, {"title": "name", "genres": "tags"}).iloc[0] == "Book. Genres: x, y."


def test_missing_title_is_named():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Ok", np.nan]})
    with pytest.raises(DataError, match=r"1 item\(s\) have no title.*\['b'\]"):
        item_text(items)


def test_unknown_column_or_role():
    items = pd.DataFrame({"item_id": ["a"], "title": ["Ok"]})
    with pytest.raises(DataError, match="not in the items table"):
        item_text(items, {"genres": "nope"})
    with pytest.raises(DataError, match="unknown text role"):
        item_text(items, {"plot": "title"})
    with pytest.raises(DataError, match="no title column"):
        item_text(pd.DataFrame({"item_id": ["a"]}))
