from __future__ import annotations

import numpy as np
import pytest

from llmrec.encoders.personas import Personas


def two_tastes(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.array([1.0, 0, 0, 0]) + 0.05 * rng.standard_normal((30, 4))
    b = np.array([0, 0, 1.0, 0]) + 0.05 * rng.standard_normal((20, 4))
    return np.vstack([a, b]).astype(np.float32)


def test_personas_recover_two_tastes(tmp_path):
    users = two_tastes()
    personas = Personas(2, seed=1).fit(users)
    ids = personas.assign(users)
    assert len(set(ids[:30])) == 1 and len(set(ids[30:])) == 1 and ids[0] != ids[30]
    assert sorted(personas.sizes.tolist()) == [20, 30]
    assert personas.largest == ids[0]
    items = np.eye(4, dtype=np.float32)
    texts = personas.describe(items, ["Heat.", "Ronin.", "Emma.", "Persuasion."], top=1)
    assert texts[ids[0]] == "A viewer who likes: Heat."
    loaded = Personas.load(personas.save(tmp_path / "personas.npz"))
    np.testing.assert_array_equal(loaded.assign(users), ids)
    assert loaded.texts == texts


def test_personas_are_seeded():
    users = np.random.default_rng(3).standard_normal((200, 8)).astype(np.float32)
    first = Personas(5, seed=7).fit(users).centroids
    np.testing.assert_array_equal(first, Personas(5, seed=7).fit(users).centroids)


def test_users_without_history_are_unassigned_not_clustered():
    users = two_tastes()
    users[0] = np.nan
    personas = Personas(2).fit(users)
    assert personas.sizes.sum() == 49
    assert personas.assign(users)[0] == -1


def test_bad_input():
    with pytest.raises(ValueError, match="3 users with history for 5 personas"):
        Personas(5).fit(np.eye(3, dtype=np.float32))
    with pytest.raises(RuntimeError, match="not fitted"):
        Personas(2).assign(np.eye(2))
    personas = Personas(2).fit(two_tastes())
    with pytest.raises(ValueError, match="vectors are 3-d but the personas are 4-d"):
        personas.assign(np.ones((2, 3), dtype=np.float32))
