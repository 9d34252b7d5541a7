"""The generator interface on a tiny random Llama saved to disk (no chat template) and on the
same model given a chat template: batching, determinism, the cache, resume, errors."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from llmrec.errors import ConfigError, DataError
from llmrec.llm import load_generator
from llmrec.llm.cache import GenerationCache
from tests.encoders.tiny_models import save_tiny_llama

PROMPTS = ["heat film of crime", "toy story", "the comedy of the year", "drama and action"]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("llama"))


def test_greedy_generation_is_deterministic_and_batch_independent(llama, tmp_path):
    gen = load_generator(llama, cache=False)
    one = gen.generate(PROMPTS, max_new_tokens=6, batch_size=1)
    batched = gen.generate(PROMPTS, max_new_tokens=6, batch_size=4)
    assert one == batched  # left padding: a prompt's continuation ignores its batch
    assert all(isinstance(t, str) and t for t in one)
    assert gen.stats.generated == 4 and gen.stats.new_tokens > 0


def test_sampling_follows_the_seed(llama):
    gen = load_generator(llama, cache=False)
    a = gen.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=1)
    b = gen.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=1)
    c = gen.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=2)
    assert a == b and a != c


def test_cache_serves_repeats_and_keys_on_settings(llama, tmp_path):
    cache = tmp_path / "gen.sqlite"
    gen = load_generator(llama, cache=cache)
    first = gen.generate(PROMPTS + PROMPTS[:1], max_new_tokens=5, batch_size=2)
    assert first[0] == first[-1] and gen.stats.generated == 4

    again = load_generator(llama, cache=cache)
    assert again.generate(PROMPTS, max_new_tokens=5) == first[:4]
    assert again.stats.generated == 0 and again.stats.cached == 4
    again.generate(PROMPTS, max_new_tokens=6)  # other settings: generated anew
    assert again.stats.generated == 4


def test_an_interrupted_run_keeps_finished_batches_only(llama, tmp_path):
    cache = tmp_path / "gen.sqlite"
    gen = load_generator(llama, cache=cache)
    real = gen._generate_batch
    calls = []

    def fail_second(prompts, settings):
        calls.append(len(prompts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(prompts, settings)

    gen._generate_batch = fail_second  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        gen.generate(PROMPTS, max_new_tokens=5, batch_size=2)
    rows = sqlite3.connect(cache).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    assert rows == 2  # the first batch, whole; nothing of the second

    resumed = load_generator(llama, cache=cache)
    out = resumed.generate(PROMPTS, max_new_tokens=5, batch_size=2)
    assert resumed.stats.cached == 2 and resumed.stats.generated == 2
    assert out == load_generator(llama, cache=False).generate(PROMPTS, max_new_tokens=5)


def test_a_damaged_cache_row_is_generated_again(llama, tmp_path):
    cache = tmp_path / "gen.sqlite"
    gen = load_generator(llama, cache=cache)
    first = gen.generate(PROMPTS[:1], max_new_tokens=5)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE generations SET text = 'tampered'")
    assert gen.generate(PROMPTS[:1], max_new_tokens=5) == first
    assert gen.stats.generated == 1


def test_chat_template_wraps_prompts(llama, tmp_path):
    folder = shutil.copytree(llama, tmp_path / "chat")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}the {% endif %}"
    )
    tok.save_pretrained(folder)
    gen = load_generator(folder, cache=False)
    settings = gen.settings(system="a")
    assert gen.format_prompt("toy story", settings) == "system a user toy story the "
    assert gen.format_prompt("toy", gen.settings(chat=False)) == "toy"
    assert gen.generate(["toy story"], max_new_tokens=3)[0]


def test_bad_calls(llama):
    gen = load_generator(llama, cache=False)
    with pytest.raises(ConfigError, match=r"unknown generate.*valid: max_new_tokens"):
        gen.generate(PROMPTS, max_tokens=5)
    with pytest.raises(ConfigError, match="batch_size"):
        gen.generate(PROMPTS, batch_size=0)
    with pytest.raises(ConfigError, match="temperature"):
        gen.generate(PROMPTS, temperature=-1)
    with pytest.raises(DataError, match="single string"):
        gen.generate("toy story")
    with pytest.raises(DataError, match="prompt 1 is missing"):
        gen.generate(["toy", float("nan")])
    with pytest.raises(DataError, match="prompt 0 is empty"):
        gen.generate(["  "])
    # the tiny model has 64 positions
    with pytest.raises(DataError, match=r"prompt 1 has \d+ tokens.*context of 64"):
        gen.generate(["toy", "film " * 70], max_new_tokens=4)


def test_bad_models(llama, tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_generator(tmp_path / "missing")
    text = tmp_path / "model.txt"
    text.write_text("x")
    with pytest.raises(ConfigError, match=r"must be \.gguf"):
        load_generator(text)
    with pytest.raises(ConfigError, match="not a model folder"):
        load_generator(tmp_path)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    with pytest.raises(ConfigError, match=r"broken\.gguf"):
        load_generator(broken)
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        if (llama / name).exists():
            shutil.copy(llama / name, no_tokenizer / name)
    with pytest.raises(ConfigError, match="tokenizer"):
        load_generator(no_tokenizer)
    bad_weights = shutil.copytree(llama, tmp_path / "bad-weights")
    (bad_weights / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ConfigError, match="cannot load the model"):
        load_generator(bad_weights)
    with pytest.raises(ConfigError, match="unknown LLM backend"):
        load_generator(llama, backend="vllm")  # type: ignore[arg-type]


def test_cache_file_errors(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        GenerationCache(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="not an SQLite cache"):
        GenerationCache(junk)


def test_llama_cpp_backend_says_what_to_install(tmp_path):
    from llmrec.llm.llama_cpp_backend import llama_cpp_available

    if llama_cpp_available():
        pytest.skip("llama-cpp-python is installed here")
    with pytest.raises(ConfigError, match="pip install llama-cpp-python"):
        load_generator(tmp_path / "x.gguf", backend="llama-cpp")
