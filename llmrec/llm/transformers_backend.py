"""The transformers backend: any local causal LM folder, or a GGUF file (de-quantised on load)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from llmrec.devices import resolve_device
from llmrec.errors import ConfigError
from llmrec.fingerprints import folder_fingerprint
from llmrec.llm.base import GenerationSettings, Generator

DTYPES = ("float32", "bfloat16", "float16")


def locate_model(path: str | Path) -> tuple[Path, str | None]:
    """``(folder, gguf file name or None)`` of a model folder or a GGUF file.

    Raises:
        ConfigError: the path does not exist, is a file that is not ``.gguf``, or a folder with
            neither ``config.json`` nor exactly one ``.gguf`` file.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"LLM {path}: no such file or folder")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"LLM {path}: a model file must be .gguf; or give a model folder")
        return path.parent, path.name
    if (path / "config.json").is_file():
        return path, None
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if len(ggufs) == 1:
        return path, ggufs[0]
    raise ConfigError(
        f"LLM {path}: not a model folder (no config.json"
        + (f"; several .gguf files {ggufs}: name one" if ggufs else " and no .gguf file")
        + ")"
    )


def _load_errors() -> tuple[type[Exception], ...]:
    from safetensors import SafetensorError

    return (
        AttributeError,
        OSError,
        ValueError,
        KeyError,
        RuntimeError,
        TypeError,
        IndexError,
        struct.error,
        SafetensorError,
    )


def check_gguf(path: Path) -> None:
    """Check a GGUF file's header before any parser reads it.

    Raises:
        ConfigError: the file is too short, lacks the GGUF magic bytes or has an unknown version.
    """
    with path.open("rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:4] != b"GGUF":
        raise ConfigError(f"LLM {path}: not a GGUF file (no GGUF header)")
    version = struct.unpack_from("<I", head, 4)[0]
    if version not in (1, 2, 3):
        raise ConfigError(f"LLM {path}: unknown GGUF version {version}")


class TransformersGenerator(Generator):
    """A local causal LM through ``transformers`` (``AutoModelForCausalLM``).

    Args:
        path: a model folder (``config.json``, weights, tokenizer) or a ``.gguf`` file.
        device: ``cpu``, ``cuda`` or ``cuda:N``; None: a GPU when torch sees one.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        num_threads: torch intra-op threads on CPU; None leaves torch's setting.

    Raises:
        ConfigError: a missing or broken model, or a model without a tokenizer.
    """

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        dtype: str = "float32",
        num_threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        folder, gguf = locate_model(path)
        source = folder / gguf if gguf else folder
        if gguf:
            check_gguf(source)
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        extra: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **extra)
        except _load_errors() as exc:
            raise ConfigError(f"LLM {source}: cannot load its tokenizer: {exc}") from exc
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, dtype=getattr(torch, dtype), **extra
            )
        except _load_errors() as exc:
            raise ConfigError(f"LLM {source}: cannot load the model: {exc}") from exc
        self.model = model.to(self.device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        config = self.model.config
        self.context_length = int(getattr(config, "max_position_embeddings", 2048))
        self.name = gguf or folder.name
        self.fingerprint = "transformers-" + folder_fingerprint(
            source, {"backend": "transformers", "gguf": gguf, "dtype": dtype}
        )
        self.path = source

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def format_prompt(self, prompt: str, settings: GenerationSettings) -> str:
        if not (settings.chat and self.has_chat_template):
            return prompt
        messages = [{"role": "user", "content": prompt}]
        if settings.system is not None:
            messages.insert(0, {"role": "system", "content": settings.system})
        return str(
            self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=not self.has_chat_template)["input_ids"])

    def _generate_batch(
        self, prompts: list[str], settings: GenerationSettings
    ) -> tuple[list[str], int]:
        import torch

        batch = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=not (settings.chat and self.has_chat_template),
        ).to(self.device)
        sampling = settings.temperature > 0
        options: dict[str, Any] = {"do_sample": sampling}
        if sampling:
            torch.manual_seed(settings.seed)
            options.update(temperature=settings.temperature, top_p=settings.top_p)
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                max_new_tokens=settings.max_new_tokens,
                repetition_penalty=settings.repetition_penalty,
                pad_token_id=self.tokenizer.pad_token_id,
                **options,
            )
        new = out[:, batch["input_ids"].shape[1] :]
        n_new = int((new != self.tokenizer.pad_token_id).sum())
        return self.tokenizer.batch_decode(new, skip_special_tokens=True), n_new
