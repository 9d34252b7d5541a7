"""The diffusers generator on a tiny random Stable Diffusion pipeline saved to disk and loaded
through the same public class a user takes: 64x64 images, seeded noise, alpha that moves the
image, and clear errors for folders that are not pipelines."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from llmrec.errors import ConfigError, DataError
from llmrec.pmg.diffusion import DiffusionGenerator
from llmrec.pmg.prompts import NEGATIVE, compose
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec
from tests.pmg.tiny_models import save_tiny_stable_diffusion

ALIEN = ItemInfo(182, "183", "Alien", "1979", ("Action", "Horror", "Sci-Fi", "Thriller"))
TARGET = tuple(Keyword(t) for t in ("Horror", "1970s", "Sci-Fi"))
PREFS = tuple(Keyword(t, 0.5, (0,)) for t in ("Comedy", "Romance", "Musical"))
STEPS = 8


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def generator(pipeline_dir):
    return DiffusionGenerator(pipeline_dir, steps=STEPS, size=64, device="cpu", seed=3)


def spec(alpha=0.5, seed=0):
    return ThumbnailSpec(ALIEN, TARGET, PREFS, alpha, ("Grease",), seed)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def test_images_are_deterministic_under_a_seed(generator):
    first = generator.generate([spec(seed=7)])
    again = generator.generate([spec(seed=7)])
    other = generator.generate([spec(seed=8)])
    assert len(first) == 1 and first[0].size == (64, 64) and first[0].mode == "RGB"
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert np.abs(pixels(first[0]) - pixels(other[0])).mean() > 1.0
    # a spec's seed is its noise; a prompt without one takes the generator's seed
    from_prompt = generator.generate([compose(spec(seed=3))])
    from_spec = generator.generate([spec(seed=3)])
    assert np.array_equal(pixels(from_prompt[0]), pixels(from_spec[0]))


def test_alpha_changes_the_image_continuously(generator):
    images = generator.generate([spec(), spec(), spec(), spec()], seeds=[1, 1, 1, 1])
    assert np.array_equal(pixels(images[0]), pixels(images[3]))  # a batch is not a lottery
    by_alpha = {a: generator.generate([spec(a)], seeds=[1])[0] for a in (0.0, 0.3, 1.0)}
    base = pixels(by_alpha[0.0])
    near, far = (np.abs(pixels(by_alpha[a]) - base).mean() for a in (0.3, 1.0))
    assert 0 < near < far
    # alpha 0 is the target prompt alone: the preference keywords do not matter
    other_prefs = ThumbnailSpec(ALIEN, TARGET, (Keyword("Western"),), 0.0, (), 0)
    alone = generator.generate([other_prefs], seeds=[1])[0]
    assert np.array_equal(pixels(alone), base)
    assert (
        generator.generate([spec(0.7)], alpha=0.0, seeds=[1])[0].tobytes()
        == base.astype(np.uint8).tobytes()
    )


def test_blend_conditioning_is_the_blend_of_the_pipelines_own_embeddings(generator):
    prompt = compose(spec(0.4))
    positive, negative = generator.embeddings([prompt])
    target, _ = generator.pipe.encode_prompt([prompt.target_text], "cpu", 1, True, [NEGATIVE])
    preference, _ = generator.pipe.encode_prompt(
        [prompt.preference_text], "cpu", 1, True, [NEGATIVE]
    )
    assert torch.allclose(positive, 0.6 * target + 0.4 * preference, atol=1e-6)
    assert positive.shape == negative.shape == (1, 77, 32)
    text, _ = generator.embeddings([prompt], "text")
    direct, _ = generator.pipe.encode_prompt([prompt.positive], "cpu", 1, True, [NEGATIVE])
    assert torch.equal(text, direct)
    blended = generator.generate([prompt], conditioning="blend")[0]
    as_text = generator.generate([prompt], conditioning="text")[0]
    assert np.abs(pixels(blended) - pixels(as_text)).mean() > 0


def test_seconds_per_image_of_the_tiny_pipeline(pipeline_dir, capsys):
    full = DiffusionGenerator(pipeline_dir, size=64, device="cpu")  # PMG's 30 steps, guidance 9
    full.generate([spec()])  # warm-up
    start = time.perf_counter()
    images = full.generate([spec(seed=s) for s in range(4)])
    seconds = (time.perf_counter() - start) / len(images)
    with capsys.disabled():
        print(f"\ntiny Stable Diffusion, 30 steps, 64x64, cpu, 1 thread: {seconds:.3f} s/image")
    assert len(images) == 4 and seconds < 30


def test_bad_folders_and_settings(pipeline_dir, tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        DiffusionGenerator(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no model_index\.json"):
        DiffusionGenerator(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(pipeline_dir, broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="cannot load the pipeline"):
        DiffusionGenerator(broken, device="cpu")
    other = tmp_path / "lcm"  # a text-to-image pipeline diffusers loads, but not Stable Diffusion
    shutil.copytree(pipeline_dir, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(
        json.dumps({**index, "_class_name": "LatentConsistencyModelPipeline"})
    )
    with pytest.raises(ConfigError, match="a LatentConsistencyModelPipeline; thumbnails need"):
        DiffusionGenerator(other, device="cpu")
    for kwargs, match in (
        ({"steps": 0}, "steps"),
        ({"size": 60}, "multiple of 8"),
        ({"guidance": -1.0}, "guidance"),
        ({"dtype": "int8"}, "dtype"),
    ):
        with pytest.raises(ConfigError, match=match):
            DiffusionGenerator(pipeline_dir, device="cpu", **kwargs)


def test_bad_calls(generator):
    with pytest.raises(ConfigError, match="alpha"):
        generator.generate([spec()], alpha=1.5)
    with pytest.raises(ConfigError, match="conditioning"):
        generator.generate([spec()], conditioning="soft")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="seeds"):
        generator.generate([spec()], seeds=[1, 2])
    with pytest.raises(DataError, match="ThumbnailSpec or Prompt"):
        generator.generate(["a poster"])  # type: ignore[list-item]
    assert generator.generate([]) == []
