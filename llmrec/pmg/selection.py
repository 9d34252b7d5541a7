"""Best-of-N: PMG picks, among candidate images, the one that best balances the target item and
the user's preferences, ``argmax alpha * log s_p + (1 - alpha) * log s_t`` (the paper's ``z``),
with ``s_t`` and ``s_p`` the similarities of an image to the target and preference texts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.devices import resolve_device
from llmrec.encoders.base import TextEncoder
from llmrec.errors import ConfigError, DataError
from llmrec.pmg.spec import check_alpha

FLOOR = 1e-6
"""The least similarity, so that ``log`` stays finite."""


def to_unit(cosine: np.ndarray) -> np.ndarray:
    """Cosine similarities mapped to (0, 1]: ``(cos + 1) / 2``, floored at :data:`FLOOR`."""
    return np.clip((np.asarray(cosine, dtype=np.float64) + 1.0) / 2.0, FLOOR, 1.0)


def z_scores(target: np.ndarray, preference: np.ndarray, alpha: float) -> np.ndarray:
    """PMG's ``z = alpha * log s_p + (1 - alpha) * log s_t`` of similarities in (0, 1]."""
    alpha = check_alpha(alpha)
    return alpha * np.log(preference) + (1.0 - alpha) * np.log(target)


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's similarities (in (0, 1]) and its ``z``."""

    target: float
    preference: float
    z: float


@dataclass(frozen=True)
class Selection:
    """The best candidate and every candidate's scores.

    Attributes:
        index: the position of the best candidate (the first of equals).
        scores: per candidate, in input order.
        scorer: what measured the similarities.
    """

    index: int
    scores: tuple[CandidateScore, ...]
    scorer: str


class Scorer(ABC):
    """Cosine similarities of candidate images to texts."""

    description: str

    @abstractmethod
    def similarities(
        self, images: Sequence[Any], texts: list[str], conditioning: Sequence[str] | None
    ) -> np.ndarray:
        """``(len(images), len(texts))`` cosines in [-1, 1]; ``conditioning`` is the text each
        image was generated from (needed by scorers that do not look at pixels)."""


class ClipScorer(Scorer):
    """CLIP image-text similarity (transformers ``CLIPModel`` and ``CLIPProcessor``) from a local
    folder, never a hub.

    Raises:
        ConfigError: the folder is missing or is not a CLIP model with its processor.
    """

    def __init__(self, path: str | Path, device: str | None = None) -> None:
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder}: not a CLIP model folder (no config.json)")
        from transformers import CLIPModel, CLIPProcessor

        self.device = resolve_device(device)
        try:
            model: Any = CLIPModel.from_pretrained(folder, local_files_only=True)
            self.processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # transformers raises many kinds for a broken folder
            raise ConfigError(
                f"{folder}: cannot load a CLIP model: {type(exc).__name__}: {exc}"
            ) from exc
        self.model = model.to(self.device).eval()
        self.description = f"clip ({folder.name})"

    def similarities(
        self, images: Sequence[Any], texts: list[str], conditioning: Sequence[str] | None = None
    ) -> np.ndarray:
        import torch

        inputs = self.processor(
            text=texts,
            images=[i.convert("RGB") for i in images],
            return_tensors="pt",
            padding=True,
            truncation=True,
        ).to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs)  # image_embeds and text_embeds come L2-normalised
        return (out.image_embeds @ out.text_embeds.T).float().cpu().numpy()


class TextScorer(Scorer):
    """No image model: the text each image was conditioned on stands in for the image, scored
    against the target and preference texts with a text encoder (default MiniLM)."""

    description = "text (no image model): similarity of the conditioning prompt"

    def __init__(self, encoder: TextEncoder | None = None) -> None:
        if encoder is None:
            from llmrec.encoders import TransformerEncoder

            encoder = TransformerEncoder()
        self.encoder = encoder

    def similarities(
        self, images: Sequence[Any], texts: list[str], conditioning: Sequence[str] | None
    ) -> np.ndarray:
        if conditioning is None or len(conditioning) != len(images):
            raise ConfigError(
                "the text scorer has no image model: pass conditioning=, the prompt text of "
                f"each of the {len(images)} image(s), or a ClipScorer"
            )
        vectors = self.encoder.encode([*conditioning, *texts], normalize_embeddings=True)
        return vectors[: len(images)] @ vectors[len(images) :].T


def select_best(
    images: Sequence[Any],
    target_text: str,
    preference_text: str,
    alpha: float,
    scorer: Scorer | None = None,
    conditioning: Sequence[str] | None = None,
) -> Selection:
    """PMG's best-of-N: the candidate maximising ``alpha * log s_p + (1 - alpha) * log s_t``.

    Args:
        images: the candidates (PIL images).
        target_text: the target item's condition (:attr:`Prompt.target_text`).
        preference_text: the user's preference keywords (:attr:`Prompt.preference_text`); when
            empty every ``s_p`` is 1, so only the target counts.
        alpha: the balance, in [0, 1].
        scorer: :class:`ClipScorer`, or None for a :class:`TextScorer`.
        conditioning: the text each image was generated from (:attr:`Prompt.positive`), for
            the text scorer.

    Raises:
        ConfigError: a bad ``alpha`` or missing ``conditioning``; DataError: no candidates or an
            empty target text.
    """
    alpha = check_alpha(alpha)
    if not len(images):
        raise DataError("select_best() needs at least one candidate image")
    if not target_text.strip():
        raise DataError("select_best() needs a target text")
    scorer = scorer or TextScorer()
    texts = [target_text] + ([preference_text] if preference_text.strip() else [])
    cosines = np.asarray(scorer.similarities(images, texts, conditioning), dtype=np.float64)
    if cosines.shape != (len(images), len(texts)) or not np.isfinite(cosines).all():
        raise DataError(f"{scorer.description}: bad similarities of shape {cosines.shape}")
    target = to_unit(cosines[:, 0])
    preference = to_unit(cosines[:, 1]) if len(texts) == 2 else np.ones(len(images))
    z = z_scores(target, preference, alpha)
    scores = tuple(
        CandidateScore(float(t), float(p), float(v))
        for t, p, v in zip(target, preference, z, strict=True)
    )
    return Selection(int(np.argmax(z)), scores, scorer.description)
