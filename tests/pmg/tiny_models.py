"""Tiny randomly initialised image models (a Stable Diffusion pipeline, a CLIP model) saved to a
folder, then loaded through the public classes a user takes. No hub: the CLIP tokenizer is a
byte-level BPE vocabulary built here (every byte, alone and word-final, and no merges)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _byte_chars() -> list[str]:
    """GPT-2's byte to printable-character table, the alphabet of byte-level BPE."""
    ranks = list(range(ord("!"), ord("~") + 1))
    ranks += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = ranks[:]
    extra = 0
    for byte in range(256):
        if byte not in ranks:
            ranks.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def tiny_clip_tokenizer() -> Any:
    """A CLIP tokenizer over single bytes: 515 tokens, no merges."""
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = _byte_chars()
    tokens = [*specials, *chars, *(c + "</w>" for c in chars)]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


TEXT_CONFIG = {
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vocab_size": 515,
    "max_position_embeddings": 77,
    "projection_dim": 32,
}


def save_tiny_stable_diffusion(folder: Path) -> Path:
    """A Stable Diffusion pipeline of tiny random modules (64x64 images from 32x32 latents)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def save_tiny_clip(folder: Path) -> Path:
    """A CLIP model (text and 32x32 vision towers) with its processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "image_size": 32,
        "patch_size": 8,
        "projection_dim": 32,
    }
    config = CLIPConfig(text_config=TEXT_CONFIG, vision_config=vision, projection_dim=32)
    CLIPModel(config).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tiny_clip_tokenizer()).save_pretrained(folder)
    return folder
