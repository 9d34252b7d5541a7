"""Thumbnails from any Stable Diffusion pipeline saved on disk (diffusers), conditioned on PMG's
prompts: the target and preference prompts' text embeddings blended by ``alpha`` (or PMG's own
text prompt), guidance 9, 30 steps, the same starting noise for a seed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from llmrec.devices import resolve_device
from llmrec.errors import ConfigError, DataError
from llmrec.pmg.prompts import Prompt, blend_embeddings, compose
from llmrec.pmg.spec import ThumbnailSpec, check_alpha

if TYPE_CHECKING:
    from PIL.Image import Image

DTYPES = ("float32", "float16", "bfloat16")
Conditioning = Literal["blend", "text"]


def load_pipeline(path: str | Path, device: str, dtype: str) -> Any:
    """A Stable Diffusion text-to-image pipeline from a local diffusers folder, never a hub.

    Raises:
        ConfigError: the folder is missing, is not a diffusers pipeline (no ``model_index.json``),
            cannot be loaded (broken or missing weights), or holds another kind of pipeline.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: no such folder; name a Stable Diffusion pipeline saved by diffusers "
            "(save_pretrained), such as a local copy of stabilityai/stable-diffusion-2-1"
        )
    if not (folder / "model_index.json").is_file():
        raise ConfigError(f"{folder}: not a diffusers pipeline (no model_index.json)")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    import torch
    from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline

    try:
        pipe: Any = AutoPipelineForText2Image.from_pretrained(
            folder, local_files_only=True, dtype=getattr(torch, dtype)
        )
    except Exception as exc:  # diffusers raises many kinds for a broken folder; name the folder
        raise ConfigError(
            f"{folder}: cannot load the pipeline: {type(exc).__name__}: {exc}"
        ) from exc
    if not issubclass(type(pipe), StableDiffusionPipeline):
        raise ConfigError(
            f"{folder}: a {type(pipe).__name__}; thumbnails need a Stable Diffusion 1.x/2.x "
            "pipeline (StableDiffusionPipeline)"
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


class DiffusionGenerator:
    """Images from a Stable Diffusion folder on disk, one per prompt.

    With ``conditioning="blend"`` (the default) each image is conditioned on
    :func:`~llmrec.pmg.prompts.blend_embeddings` of the pipeline's own ``encode_prompt`` of the
    target text and of the preference text, so ``alpha`` moves the image continuously; with
    ``"text"`` on PMG's combined text prompt (:attr:`Prompt.positive`). Every image starts from the
    noise of ``torch.Generator().manual_seed(seed)`` (a CPU generator: the same noise on any
    device), so images of one seed differ only by their conditioning, as PMG's fixed noise.

    Args:
        path: the pipeline folder (``model_index.json`` and its parts).
        steps: denoising steps (PMG: 30).
        guidance: classifier-free guidance scale (PMG: 9).
        size: image height and width in pixels, a multiple of 8.
        device: ``cpu`` or ``cuda``; None picks cuda when available.
        dtype: ``float32``, ``float16`` or ``bfloat16`` weights.
        seed: the default seed of every image.
        batch_size: images per pipeline call.

    Raises:
        ConfigError: a bad setting or folder (see :func:`load_pipeline`).
    """

    def __init__(
        self,
        path: str | Path,
        steps: int = 30,
        guidance: float = 9.0,
        size: int = 512,
        device: str | None = None,
        dtype: str = "float32",
        seed: int = 0,
        batch_size: int = 4,
    ) -> None:
        for name, value, low in (
            ("steps", steps, 1),
            ("size", size, 8),
            ("batch_size", batch_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if size % 8:
            raise ConfigError(f"size must be a multiple of 8, got {size}")
        if not guidance >= 0:
            raise ConfigError(f"guidance must be >= 0, got {guidance!r}")
        self.device = resolve_device(device)
        self.pipe = load_pipeline(path, self.device, dtype)
        self.path = Path(path)
        self.steps, self.guidance, self.size = steps, float(guidance), size
        self.seed, self.batch_size = seed, batch_size

    def prompts(self, items: Sequence[ThumbnailSpec | Prompt], alpha: float | None) -> list[Prompt]:
        """Each item as a :class:`Prompt` (specs composed), ``alpha`` overriding theirs."""
        out = []
        for item in items:
            if isinstance(item, ThumbnailSpec):
                out.append(compose(item, alpha))
            elif isinstance(item, Prompt):
                a = item.alpha if alpha is None else check_alpha(alpha)
                out.append(
                    Prompt(item.positive, item.negative, item.target_text, item.preference_text, a)
                )
            else:
                raise DataError(
                    f"generate() takes ThumbnailSpec or Prompt items, got {type(item).__name__}"
                )
        return out

    def _encode(self, texts: list[str], negatives: list[str]) -> tuple[Any, Any]:
        positive, negative = self.pipe.encode_prompt(
            texts, self.device, 1, self.guidance > 1.0, negative_prompt=negatives
        )
        return positive, negative

    def embeddings(
        self, prompts: Sequence[Prompt], conditioning: Conditioning = "blend"
    ) -> tuple[Any, Any]:
        """``(prompt_embeds, negative_prompt_embeds)`` for ``prompts`` (see the class)."""
        import torch

        negatives = [p.negative for p in prompts]
        with torch.inference_mode():
            if conditioning == "text":
                return self._encode([p.positive for p in prompts], negatives)
            target, negative = self._encode([p.target_text for p in prompts], negatives)
            preference, _ = self._encode([p.preference_text for p in prompts], negatives)
            rows = [
                blend_embeddings(t, q, p.alpha) if p.preference_text else t
                for t, q, p in zip(target, preference, prompts, strict=True)
            ]
            return torch.stack(rows), negative

    def generate(
        self,
        items: Sequence[ThumbnailSpec | Prompt],
        alpha: float | None = None,
        seeds: Sequence[int] | None = None,
        conditioning: Conditioning = "blend",
    ) -> list[Image]:
        """One image per spec or prompt.

        Args:
            items: thumbnail specs (composed with :func:`~llmrec.pmg.prompts.compose`) or prompts.
            alpha: overrides each item's ``alpha`` (for a :class:`Prompt` under ``text``
                conditioning its text stays as composed: compose it anew for another balance).
            seeds: one seed per item; None: a spec's own seed, else the generator's.
            conditioning: ``blend`` (embeddings) or ``text`` (PMG's combined prompt).

        Returns:
            PIL images of ``size`` x ``size``, in the order of ``items``.

        Raises:
            ConfigError: a bad ``alpha`` or ``conditioning``; DataError: seeds of another length.
        """
        import torch

        if conditioning not in ("blend", "text"):
            raise ConfigError(f"conditioning must be 'blend' or 'text', got {conditioning!r}")
        prompts = self.prompts(items, alpha)
        if seeds is None:
            seeds = [i.seed if isinstance(i, ThumbnailSpec) else self.seed for i in items]
        if len(seeds) != len(prompts):
            raise DataError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        images: list[Image] = []
        for lo in range(0, len(prompts), self.batch_size):
            chunk = prompts[lo : lo + self.batch_size]
            positive, negative = self.embeddings(chunk, conditioning)
            generators = [
                torch.Generator().manual_seed(int(s)) for s in seeds[lo : lo + self.batch_size]
            ]
            with torch.inference_mode():
                out = self.pipe(
                    prompt_embeds=positive,
                    negative_prompt_embeds=negative,
                    num_inference_steps=self.steps,
                    guidance_scale=self.guidance,
                    height=self.size,
                    width=self.size,
                    generator=generators,
                )
            images += out.images
        return images
