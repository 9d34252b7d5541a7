from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from llmrec.encoders.profiles import (
    ProfileConfig,
    history_weights,
    pool_item_embeddings,
    profile_text,
)
from llmrec.errors import DataError

TEXTS = np.array(["Alpha (1990).", "Beta (1991).", "Gamma (1992)."])
HISTORY = pd.DataFrame(
    {
        "user_idx": [0, 0, 0],
        "item_idx": [0, 1, 2],
        "rating": [5.0, 2.0, 4.0],
        "timestamp": [10, 30, 20],
    }
)


def test_recent_first_with_ratings():
    text = profile_text(HISTORY, TEXTS, ProfileConfig(max_tokens=None))
    assert text.splitlines()[1:] == [
        "1. Beta (1991). Rated 2/5.",
        "2. Gamma (1992). Rated 4/5.",
        "3. Alpha (1990). Rated 5/5.",
    ]


def test_min_rating_max_items_and_order():
    config = ProfileConfig(min_rating=4, order="rating", max_items=1, max_tokens=None)
    assert profile_text(HISTORY, TEXTS, config).splitlines()[1:] == ["1. Alpha (1990). Rated 5/5."]


def test_token_budget_counts_with_the_tokenizer():
    words = lambda text: len(text.split())  # noqa: E731 - a stand-in token counter
    config = ProfileConfig(max_tokens=12, include_rating=False)
    text = profile_text(HISTORY, TEXTS, config, count_tokens=words)
    assert words(text) <= 12 and len(text.splitlines()) == 3
    with pytest.raises(ValueError, match="needs count_tokens"):
        profile_text(HISTORY, TEXTS, ProfileConfig(max_tokens=10))


def test_empty_history_is_an_error_not_a_blank_profile():
    with pytest.raises(DataError, match="empty history"):
        profile_text(HISTORY.iloc[:0], TEXTS, ProfileConfig(max_tokens=None))
    with pytest.raises(DataError, match="rated >= 6"):
        profile_text(HISTORY, TEXTS, ProfileConfig(min_rating=6, max_tokens=None))


def test_pooling_weights_and_missing_users():
    vectors = np.eye(3, dtype=np.float32)
    ratings = sp.csr_matrix(np.array([[5.0, 2.0, 4.0], [0, 0, 0]]))
    times = sp.csr_matrix(np.array([[10.0, 30.0, 20.0], [0, 0, 0]]))
    mean, has = pool_item_embeddings(history_weights(ratings, "mean"), vectors)
    assert np.allclose(mean[0], [1 / 3] * 3) and has.tolist() == [True, False]
    assert np.isnan(mean[1]).all()
    rated, _ = pool_item_embeddings(history_weights(ratings, "rating"), vectors)
    assert rated[0, 0] > rated[0, 2] > rated[0, 1]
    recency = history_weights(ratings, "recency", timestamps=times, half_life_days=1e-4)
    assert pool_item_embeddings(recency, vectors)[0][0].argmax() == 1
    with pytest.raises(ValueError, match="weighting must be"):
        history_weights(ratings, "max")
    with pytest.raises(ValueError, match="cover 3 items but item_vectors has 2"):
        pool_item_embeddings(history_weights(ratings, "mean"), vectors[:2])
