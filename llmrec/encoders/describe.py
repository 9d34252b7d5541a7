"""LLM-written item descriptions: a local decoder LLM expands an item's metadata line into a
short description, which is appended to the item text before encoding.

Generation is greedy (deterministic) and cached in SQLite by (model fingerprint, prompt hash), so
a catalogue is described once per model and an interrupted run resumes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from llmrec.encoders.base import check_texts
from llmrec.encoders.cache import text_hash
from llmrec.encoders.transformer import folder_fingerprint, load_local
from llmrec.errors import ConfigError

DEFAULT_PROMPT = (
    "Describe this movie in two sentences for a viewer deciding what to watch.\n"
    "Movie: {item}\nDescription:"
)


class ItemDescriber:
    """Greedy generation of item descriptions with a local causal LLM.

    Args:
        path: local model folder (AutoModelForCausalLM + tokenizer).
        cache: SQLite file for generated descriptions.
        prompt: template with an ``{item}`` slot for the item's metadata line.
        max_new_tokens: length budget of a description.
        device: ``cpu`` or ``cuda``; None picks cuda when available.
        dtype: ``float32``, ``bfloat16`` or ``float16`` weights.
    """

    def __init__(
        self,
        path: str | Path,
        cache: str | Path,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 64,
        device: str | None = None,
        dtype: str = "float32",
    ) -> None:
        from transformers import AutoModelForCausalLM

        if "{item}" not in prompt:
            raise ConfigError("the prompt needs an {item} slot for the item's text")
        folder = Path(path)
        self.tokenizer, self.model, self.device = load_local(
            folder, AutoModelForCausalLM, device, dtype
        )
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        settings = {"prompt": prompt, "max_new_tokens": max_new_tokens, "dtype": dtype}
        self.fingerprint = "describe-" + folder_fingerprint(folder, settings)
        self._db = sqlite3.connect(Path(cache), timeout=60)
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS descriptions (fingerprint TEXT NOT NULL, "
                "text_hash BLOB NOT NULL, description TEXT NOT NULL, "
                "PRIMARY KEY (fingerprint, text_hash)) WITHOUT ROWID"
            )

    def _cached(self, key: bytes) -> str | None:
        row = self._db.execute(
            "SELECT description FROM descriptions WHERE fingerprint = ? AND text_hash = ?",
            (self.fingerprint, key),
        ).fetchone()
        return None if row is None else row[0]

    def _generate(self, items: list[str]) -> list[str]:
        import torch

        prompts = [self.prompt.format(item=item) for item in items]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return [
            " ".join(t.split())
            for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]

    def describe(
        self, items: Sequence[str], batch_size: int = 8, show_progress_bar: bool | None = None
    ) -> list[str]:
        """A description per item text (possibly empty when the model stops at once)."""
        texts = check_texts(items)
        keys = [text_hash(t) for t in texts]
        found = {k: d for k in dict.fromkeys(keys) if (d := self._cached(k)) is not None}
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        for lo in tqdm(
            range(0, len(todo), batch_size),
            desc="describe",
            unit="batch",
            disable=None if show_progress_bar is None else not show_progress_bar,
        ):
            chunk = todo[lo : lo + batch_size]
            descriptions = self._generate(chunk)
            rows = [
                (self.fingerprint, text_hash(t), d)
                for t, d in zip(chunk, descriptions, strict=True)
            ]
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO descriptions VALUES (?, ?, ?)", rows)
            found.update((r[1], r[2]) for r in rows)
        return [found[k] for k in keys]

    def enrich(self, items: Sequence[str], **kwargs) -> list[str]:
        """Item texts with their descriptions appended (unchanged where a description is empty)."""
        return [
            f"{item} {d}" if d else item
            for item, d in zip(items, self.describe(items, **kwargs), strict=True)
        ]

    def close(self) -> None:
        self._db.close()
