"""``Generator``: the one prompt -> text interface over local causal language models.

Batching (longest prompts together), validation, seeding, progress and the generation cache live
here; a backend only turns one batch of formatted prompts into texts.
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from llmrec.errors import ConfigError, DataError
from llmrec.llm.cache import GenerationCache, generation_key

GENERATE_KWARGS = (
    "max_new_tokens",
    "batch_size",
    "seed",
    "temperature",
    "top_p",
    "repetition_penalty",
    "chat",
    "system",
    "show_progress_bar",
)


class GenerationSettings(BaseModel):
    """Decoding settings; part of every cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    """0: greedy (deterministic); above 0: sampling seeded by ``seed``."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.1, ge=1.0)
    """Small models loop ("sci-fi, sci-fi, sci-fi"); a mild penalty keeps them moving."""
    seed: int = 0
    chat: bool = True
    """Wrap each prompt in the model's chat template (when it has one)."""
    system: str | None = None
    """A system message for chat models; None: the template's own default."""


@dataclass
class GenerationStats:
    """What the last :meth:`Generator.generate` call did."""

    prompts: int = 0
    cached: int = 0
    generated: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else math.nan


def check_prompts(prompts: Sequence[Any]) -> list[str]:
    """``prompts`` as a list of non-blank strings.

    Raises:
        DataError: a single string instead of a list, or a prompt that is None, NaN, not a
            string or blank (its position is named).
    """
    if isinstance(prompts, str):
        raise DataError("generate() takes a list of prompts, got a single string; wrap it")
    out = []
    for i, prompt in enumerate(prompts):
        if prompt is None or (isinstance(prompt, float) and math.isnan(prompt)):
            raise DataError(f"prompt {i} is missing (None/NaN)")
        if not isinstance(prompt, str):
            raise DataError(f"prompt {i} is a {type(prompt).__name__}, not a string: {prompt!r}")
        if not prompt.strip():
            raise DataError(f"prompt {i} is empty")
        out.append(prompt)
    return out


class Generator(ABC):
    """Writes text for prompts with a local causal LM.

    Subclasses set ``name``, ``fingerprint`` (model content + backend) and ``context_length``,
    and implement :meth:`format_prompt`, :meth:`count_tokens` and :meth:`_generate_batch`.
    """

    name: str
    fingerprint: str
    context_length: int
    cache: GenerationCache | None = None
    stats: GenerationStats

    @abstractmethod
    def format_prompt(self, prompt: str, settings: GenerationSettings) -> str:
        """The text the model continues: the chat template applied, or the prompt as it is."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of an already formatted prompt."""

    @abstractmethod
    def _generate_batch(
        self, prompts: list[str], settings: GenerationSettings
    ) -> tuple[list[str], int]:
        """Texts for one batch of formatted prompts and the number of new tokens made."""

    def settings(self, **kwargs: Any) -> GenerationSettings:
        """Decoding settings from ``generate``'s keywords.

        Raises:
            ConfigError: an unknown keyword (the valid ones are listed) or a bad value.
        """
        unknown = sorted(set(kwargs) - set(GENERATE_KWARGS))
        if unknown:
            raise ConfigError(
                f"unknown generate() argument(s) {unknown}; valid: {', '.join(GENERATE_KWARGS)}"
            )
        fields = {k: v for k, v in kwargs.items() if k not in ("batch_size", "show_progress_bar")}
        try:
            return GenerationSettings(**fields)
        except ValueError as exc:
            raise ConfigError(f"bad generate() settings: {exc}") from exc

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> list[str]:
        """Generate one text per prompt.

        Args:
            prompts: the prompts (user messages for chat models).
            **kwargs: ``max_new_tokens`` (64), ``batch_size`` (16), ``seed`` (0),
                ``temperature`` (0: greedy), ``top_p`` (1.0), ``repetition_penalty`` (1.1),
                ``chat`` (True), ``system`` (None), ``show_progress_bar`` (None: on a terminal).

        Returns:
            The generated texts (whitespace-trimmed, unprocessed otherwise) in prompt order;
            identical prompts are generated once. Texts found in the cache are not regenerated.

        Raises:
            ConfigError: an unknown keyword or bad setting.
            DataError: a bad prompt, or one that with ``max_new_tokens`` exceeds the context.
        """
        batch_size = kwargs.get("batch_size", 16)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        settings = self.settings(**kwargs)
        texts = check_prompts(prompts)
        settings_key = json.dumps(settings.model_dump(), sort_keys=True)
        keys = [generation_key(self.fingerprint, settings_key, t) for t in texts]
        done = self.cache.get_many(keys) if self.cache is not None else {}
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in done}
        formatted = {k: self.format_prompt(t, settings) for k, t in todo.items()}
        lengths = {k: self.count_tokens(f) for k, f in formatted.items()}
        self._check_context(texts, keys, lengths, settings)
        # Longest first, so a batch's prompts need little left padding.
        order = sorted(todo, key=lambda k: -lengths[k])
        self.stats = GenerationStats(prompts=len(texts), cached=len(set(keys)) - len(todo))
        show = kwargs.get("show_progress_bar")
        start = time.perf_counter()
        with tqdm(
            total=len(order),
            desc=f"generate ({self.name})",
            unit="prompt",
            disable=None if show is None else not show,
        ) as bar:
            for lo in range(0, len(order), batch_size):
                chunk = order[lo : lo + batch_size]
                outputs, new_tokens = self._generate_batch([formatted[k] for k in chunk], settings)
                outputs = [" ".join(o.split()) for o in outputs]
                if self.cache is not None:
                    self.cache.put_many(self.fingerprint, zip(chunk, outputs, strict=True))
                done.update(zip(chunk, outputs, strict=True))
                self.stats.generated += len(chunk)
                self.stats.new_tokens += new_tokens
                bar.update(len(chunk))
        self.stats.seconds = time.perf_counter() - start
        return [done[k] for k in keys]

    def _check_context(
        self,
        texts: list[str],
        keys: list[bytes],
        lengths: dict[bytes, int],
        settings: GenerationSettings,
    ) -> None:
        for i, key in enumerate(keys):
            n = lengths.get(key)
            if n is not None and n + settings.max_new_tokens > self.context_length:
                raise DataError(
                    f"prompt {i} has {n} tokens; with max_new_tokens={settings.max_new_tokens} it "
                    f"exceeds {self.name}'s context of {self.context_length} tokens; shorten it "
                    f"(first words: {texts[i][:60]!r})"
                )
