"""Tiny randomly initialised models saved to a folder, then loaded through the public path a
user takes."""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "toy",
    "story",
    "heat",
    "film",
    "action",
    "comedy",
    "drama",
    "genres",
    "the",
    "a",
    "of",
    "and",
    "year",
    "crime",
    "thriller",
]


def _word_level_tokenizer(special: dict[str, str]):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*special.values(), *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, **special), len(vocab)


def save_tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    tokenizer, vocab_size = _word_level_tokenizer(
        {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    )
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_llama(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer, vocab_size = _word_level_tokenizer({"unk_token": "<unk>", "eos_token": "</s>"})
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)  # a fixed random model: its greedy output is the same every run
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
