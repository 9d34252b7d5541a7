from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from llmrec.encoders.adaptation import adapted_profile_text, adapted_scores, select_relevant
from llmrec.encoders.profiles import ProfileConfig
from llmrec.errors import DataError

# items 0, 1 point along x, items 2, 3 along y, item 4 halfway
VECTORS = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], dtype=np.float32)
TEXTS = np.array(["Heat.", "Ronin.", "Emma.", "Persuasion.", "Sabrina."])


def test_select_relevant_orders_by_similarity():
    picked = select_relevant(np.array([0, 1, 2, 3]), np.array([0.0, 1.0]), VECTORS, k=2)
    assert picked.tolist() == [2, 3]
    assert select_relevant(np.array([2]), np.array([1.0, 0]), VECTORS, k=5).tolist() == [2]


def test_select_relevant_bad_input():
    with pytest.raises(DataError, match="empty history"):
        select_relevant(np.array([], dtype=int), np.array([1.0, 0]), VECTORS, k=2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        select_relevant(np.array([0]), np.array([1.0, 0]), VECTORS, k=0)
    with pytest.raises(ValueError, match="2-d"):
        select_relevant(np.array([0]), np.array([1.0, 0, 0]), VECTORS, k=1)


def test_adapted_profile_keeps_only_relevant_items():
    history = pd.DataFrame(
        {"item_idx": [0, 1, 2, 3], "rating": [5.0, 4.0, 5.0, 3.0], "timestamp": [1, 2, 3, 4]}
    )
    config = ProfileConfig(max_tokens=None)
    text = adapted_profile_text(history, VECTORS[2], VECTORS, TEXTS, k=2, config=config)
    assert "Emma." in text and "Persuasion." in text
    assert "Heat." not in text and "Ronin." not in text
    liked = config.model_copy(update={"min_rating": 5})
    with pytest.raises(DataError, match="empty history"):
        adapted_profile_text(history.head(0), VECTORS[2], VECTORS, TEXTS, config=liked)


def test_adapted_scores_hand_computed():
    unit = VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True)
    similarity = unit @ unit.T
    history = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    scores = adapted_scores(history, np.array([0, 1]), similarity, k=1)
    # k=1: each item's score is its best similarity to item 0 or item 2
    np.testing.assert_allclose(scores[0], np.maximum(similarity[0], similarity[2]), rtol=1e-6)
    assert np.isnan(scores[1]).all()
    both = adapted_scores(history, np.array([0]), similarity, k=2)
    np.testing.assert_allclose(both[0], (similarity[0] + similarity[2]) / 2, rtol=1e-6)
