"""Best-of-N selection: PMG's z on similarities, with a tiny random CLIP saved to disk and loaded
through the public class, and the text scorer (MiniLM) when no image model is given."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from llmrec.encoders import TransformerEncoder
from llmrec.errors import ConfigError, DataError
from llmrec.pmg.diffusion import DiffusionGenerator
from llmrec.pmg.prompts import compose, compose_text
from llmrec.pmg.selection import (
    FLOOR,
    ClipScorer,
    TextScorer,
    select_best,
    to_unit,
    z_scores,
)
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec
from tests.pmg.tiny_models import save_tiny_clip, save_tiny_stable_diffusion

TARGET = "movie poster, Alien, named 'Alien', Horror, 1970s, Sci-Fi"
PREFERENCE = "Comedy, Romance, Musical"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> ClipScorer:
    return ClipScorer(save_tiny_clip(tmp_path_factory.mktemp("tiny-clip")), device="cpu")


@pytest.fixture(scope="module")
def text_scorer() -> TextScorer:
    return TextScorer(TransformerEncoder())


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(n)]


def test_z_is_pmgs():
    target, preference = np.array([0.9, 0.5, 0.7]), np.array([0.2, 0.9, 0.6])
    assert np.allclose(z_scores(target, preference, 0.0), np.log(target))
    assert np.allclose(z_scores(target, preference, 1.0), np.log(preference))
    assert np.allclose(
        z_scores(target, preference, 0.3), 0.3 * np.log(preference) + 0.7 * np.log(target)
    )
    assert np.allclose(to_unit(np.array([-1.0, 0.0, 1.0])), [FLOOR, 0.5, 1.0])
    with pytest.raises(ConfigError, match="alpha"):
        z_scores(target, preference, 1.2)


def test_text_scorer_follows_alpha(text_scorer):
    conditioning = [
        "movie poster, Alien, named 'Alien', Horror, 1970s, Sci-Fi",  # the item as it is
        "Comedy, Romance, Musical, Comedy, Romance, Musical",  # the user's taste alone
        "movie poster, Alien, named 'Alien', Horror, Comedy, Romance",  # both
    ]
    candidates = images(3)
    picks = [
        select_best(candidates, TARGET, PREFERENCE, a, text_scorer, conditioning)
        for a in (0.0, 0.5, 1.0)
    ]
    assert [p.index for p in picks] == [0, 2, 1]
    assert picks[0].scorer == "text (no image model): similarity of the conditioning prompt"
    scores = picks[0].scores
    assert scores[0].target > scores[2].target > scores[1].target
    assert scores[1].preference > scores[2].preference > scores[0].preference
    assert all(0 < s.target <= 1 and 0 < s.preference <= 1 for s in scores)
    assert [s.z for s in scores] == pytest.approx([np.log(s.target) for s in scores])
    balanced = compose_text("Alien", ["Horror"], ["Comedy"], 0.5).positive
    assert select_best(images(1), TARGET, PREFERENCE, 0.5, text_scorer, [balanced]).index == 0


def test_clip_scorer_scores_pixels(clip):
    candidates = images(4)
    result = select_best(candidates, TARGET, PREFERENCE, 0.5, clip)
    assert result.scorer.startswith("clip") and len(result.scores) == 4
    z = [s.z for s in result.scores]
    assert result.index == int(np.argmax(z))
    cosines = clip.similarities(candidates, [TARGET, PREFERENCE])
    assert cosines.shape == (4, 2) and np.all(np.abs(cosines) <= 1 + 1e-5)
    assert len({round(float(c), 6) for c in cosines[:, 0]}) == 4  # it looks at each image
    again = select_best(candidates, TARGET, PREFERENCE, 0.5, clip)
    assert again == result
    flipped = select_best(candidates[::-1], TARGET, PREFERENCE, 0.5, clip)
    assert flipped.index == 3 - result.index


def test_no_preference_text_means_only_the_target_counts(clip):
    result = select_best(images(3), TARGET, " ", 0.8, clip)
    assert all(s.preference == 1.0 for s in result.scores)
    assert result.index == int(np.argmax([s.target for s in result.scores]))


def test_bad_inputs(clip, text_scorer, tmp_path):
    with pytest.raises(DataError, match="at least one"):
        select_best([], TARGET, PREFERENCE, 0.5, clip)
    with pytest.raises(DataError, match="target text"):
        select_best(images(1), "", PREFERENCE, 0.5, clip)
    with pytest.raises(ConfigError, match="alpha"):
        select_best(images(1), TARGET, PREFERENCE, -1, clip)
    with pytest.raises(ConfigError, match="conditioning"):
        select_best(images(2), TARGET, PREFERENCE, 0.5, text_scorer)
    with pytest.raises(ConfigError, match="conditioning"):
        select_best(images(2), TARGET, PREFERENCE, 0.5, text_scorer, ["only one"])
    with pytest.raises(ConfigError, match=r"no config\.json"):
        ClipScorer(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot load a CLIP model"):
        ClipScorer(tmp_path)


def test_best_of_n_over_alphas_from_the_tiny_pipeline(clip, text_scorer, tmp_path):
    generator = DiffusionGenerator(
        save_tiny_stable_diffusion(tmp_path / "sd"), steps=4, size=64, device="cpu"
    )
    item = ItemInfo(182, "183", "Alien", "1979", ("Horror", "Sci-Fi"))
    spec = ThumbnailSpec(
        item, (Keyword("Horror"), Keyword("Sci-Fi")), (Keyword("Comedy"), Keyword("Musical"))
    )
    prompts = [compose(spec, a) for a in (0.0, 0.5, 1.0)]
    candidates = generator.generate(prompts)
    target, preference = prompts[0].target_text, prompts[0].preference_text
    by_clip = select_best(candidates, target, preference, 0.5, clip)
    assert 0 <= by_clip.index < 3 and by_clip.scorer.startswith("clip")
    conditioning = [p.positive for p in prompts]
    by_text = [
        select_best(candidates, target, preference, a, text_scorer, conditioning).index
        for a in (0.0, 1.0)
    ]
    assert by_text == [0, 2]  # the item alone for alpha 0, the most personal for alpha 1
