"""The llmrec command lines that the fixtures and the cases run."""

from __future__ import annotations

from pathlib import Path

from cases import Fixtures
from processes import Proc, cli

Args = list[str | Path]

CLI_WRITERS = ("encode", "index build", "train", "data split")
KIND_OF = {"encode": "embeddings", "index build": "index", "train": "model", "data split": "split"}


def encode_args(data: Path, model: Path, out: Path | str, *extra: str | Path) -> Args:
    """``llmrec encode`` of ``data`` with the encoder ``model``; ``extra`` options before --out."""
    return ["encode", "--dataset", data, "--encoder", model, *extra, "--out", out]


def build_args(embeddings: Path, out: Path | str, *extra: str | Path) -> Args:
    """``llmrec index build`` over ``embeddings``; ``extra`` options before --out."""
    return ["index", "build", "--embeddings", embeddings, *extra, "--out", out]


def search_args(index: Path, queries: Path, users: str, *extra: str | Path) -> Args:
    """``llmrec index search`` of ``index`` for ``users`` (their vectors in ``queries``)."""
    return ["index", "search", "--index", index, "--queries", queries, "--users", users, *extra]


def search_all_args(fx: Fixtures, index: Path) -> Args:
    """Search the whole catalogue for user 10, so that every item and its name is shown."""
    return search_args(index, fx.emb_users, "10", "-k", str(fx.ref["n_items"]))


def writer_args(fx: Fixtures, writer: str, out: Path | str) -> Args:
    """The command of a CLI writer (one of ``CLI_WRITERS``) that writes to ``out``."""
    return {
        "encode": encode_args(fx.data_a, fx.bert, out),
        "index build": build_args(fx.emb_items, out),
        "train": ["train", "--dataset", fx.data_a, "--preset", fx.fast_yaml, "--out", out],
        "data split": ["data", "split", fx.data_a, "--seed", "2", "--out", out],
    }[writer]


def out_args(fx: Fixtures, writer: str, out: Path | str) -> Args:
    """As :func:`writer_args`, and ``evaluate``, whose --out is a report file."""
    if writer == "evaluate":
        return ["evaluate", "--dataset", fx.data_a, "--models", "pop", "--out", out]
    return writer_args(fx, writer, out)


def own_artifact(fx: Fixtures, writer: str) -> Path:
    """The fixture a CLI writer made."""
    return {
        "encode": fx.emb_items,
        "index build": fx.index_flat,
        "train": fx.model_a,
        "data split": fx.split_s1,
    }[writer]


def recommend_cli(model: Path, users: str, *extra: str) -> Proc:
    return cli("recommend", "--model", model, "--users", users, *extra)
