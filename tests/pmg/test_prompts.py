"""PMG's prompts: the LLM prompts, the image prompt with a continuous alpha, and the soft blend of
two prompts' embeddings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from llmrec.errors import ConfigError
from llmrec.pmg.prompts import (
    NEGATIVE,
    Prompt,
    blend_embeddings,
    compose,
    compose_text,
    instructions,
    preference_prompt,
    target_condition,
    target_prompt,
)
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec

ALIEN = ItemInfo(182, "183", "Alien", "1979", ("Action", "Horror", "Sci-Fi", "Thriller"))
TARGET = [Keyword(t) for t in ("Horror", "1970s", "Sci-Fi", "Action", "Thriller")]
PREFS = [Keyword(t, s, (0,)) for t, s in (("Comedy", 0.9), ("Romance", 0.7), ("1990s", 0.5))]


def test_llm_prompts_are_pmgs():
    prompt = preference_prompt("0. Heat(Action, Crime): 1995.", 3)
    assert prompt == (
        "A person watched some movies. Please provide 3 keywords to describe his movie "
        'interests. The example of output is "The keywords are: 1. Keyword 1. 2. Keyword 2. '
        '3. Keyword 3." The movies and their information are "0. Heat(Action, Crime): 1995.".'
    )
    described = ItemInfo(0, "1", "Heat", "1995", ("Action",), {"description": "A heist."})
    assert target_prompt(described, 10) == (
        'There is a movie titled "Heat". Its introduction is "A heist.". Its genre is Action. '
        "Please design a poster for it (describe in 10 keywords without explaining). "
        "Character names should be excluded."
    )
    assert "introduction" not in target_prompt(ALIEN)
    left = instructions(prompt, "0. Heat(Action, Crime): 1995.")
    assert "Heat" not in left and "keywords to describe his movie interests" in left


def test_alpha_half_is_pmgs_own_prompt():
    prompt = compose_text("Alien", TARGET, PREFS, alpha=0.5, style_weight=2)
    prefs = "Comedy, Romance, 1990s"
    assert prompt.positive == (
        "movie poster, Alien, named 'Alien', Horror, 1970s, Sci-Fi, Action, Thriller, "
        f"{prefs}, {prefs}"
    )
    assert prompt.negative == NEGATIVE == "broken text, unclear, twisted"
    assert prompt.target_text == target_condition("Alien", TARGET)
    assert (
        prompt.target_text
        == "movie poster, Alien, named 'Alien', Horror, 1970s, Sci-Fi, Action, Thriller"
    )
    assert prompt.preference_text == prefs and prompt.alpha == 0.5


def test_alpha_zero_has_no_preference_and_one_no_target_keyword():
    zero = compose_text("Alien", TARGET, PREFS, alpha=0.0)
    assert zero.positive == zero.target_text
    assert not any(k.text in zero.positive for k in PREFS)
    assert zero.preference_text == "Comedy, Romance, 1990s"  # still there for best-of-N scoring
    one = compose_text("Alien", TARGET, PREFS, alpha=1.0, style_weight=2)
    assert one.positive == "movie poster, Alien, named 'Alien', " + ", ".join(
        ["Comedy, Romance, 1990s"] * 4
    )


def test_preference_grows_and_target_shrinks_with_alpha():
    def counts(alpha):
        positive = compose_text("Alien", TARGET, PREFS, alpha=alpha, style_weight=3).positive
        words = positive.split(", ")[3:]
        return sum(w in {k.text for k in PREFS} for w in words), sum(
            w in {k.text for k in TARGET} for w in words
        )

    alphas = np.linspace(0, 1, 11)
    prefs, targets = zip(*(counts(a) for a in alphas), strict=True)
    assert prefs[0] == 0 and targets[-1] == 0 and targets[0] == 5 and prefs[-1] == 18
    assert all(a <= b for a, b in itertools.pairwise(prefs))
    assert all(a >= b for a, b in itertools.pairwise(targets))
    assert len(set(prefs)) >= 6  # continuous, not a switch
    low = compose_text("Alien", TARGET, PREFS, alpha=0.1).positive
    assert "Comedy" in low and "1990s" not in low  # the best keywords come in first


def test_compose_uses_the_specs_alpha_unless_overridden():
    spec = ThumbnailSpec(ALIEN, tuple(TARGET), tuple(PREFS), alpha=0.25)
    assert compose(spec) == compose_text("Alien", TARGET, PREFS, 0.25)
    assert compose(spec, alpha=1.0).alpha == 1.0
    assert isinstance(compose(spec), Prompt)
    dupes = compose_text("Alien", ["Horror", "Horror ", ""], ["x", "x"], 0.5, 1)
    assert dupes.positive == "movie poster, Alien, named 'Alien', Horror, x"


def test_bad_arguments():
    for alpha in (-0.1, 1.5, "0.5", None, True):
        with pytest.raises(ConfigError, match="alpha"):
            compose_text("Alien", TARGET, PREFS, alpha=alpha)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="style_weight"):
        compose_text("Alien", TARGET, PREFS, style_weight=0)
    with pytest.raises(ConfigError, match="title"):
        compose_text(" ", TARGET, PREFS)


def test_blend_embeddings_interpolates():
    target = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(0))
    preference = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    assert blend_embeddings(target, preference, 0.0) is target
    assert torch.allclose(blend_embeddings(target, preference, 1.0), preference)
    half = blend_embeddings(target, preference, 0.5)
    assert torch.allclose(half, (target + preference) / 2)
    distances = [
        float((blend_embeddings(target, preference, a) - target).norm()) for a in (0.2, 0.4, 0.8)
    ]
    assert distances == sorted(distances) and distances[0] > 0
    arrays = blend_embeddings(np.zeros((2, 3)), np.ones((2, 3)), 0.25)
    assert np.allclose(arrays, 0.25)
    with pytest.raises(ConfigError, match="shape"):
        blend_embeddings(target, preference[:, :10], 0.5)
    with pytest.raises(ConfigError, match="alpha"):
        blend_embeddings(target, preference, 2.0)
