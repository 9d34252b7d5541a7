"""``llmrec encode`` and ``llmrec index``: embeddings of items and users, and FAISS indexes
over them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from llmrec.cli.common import (
    DatasetOpt,
    EncodingOpt,
    FormatOpt,
    OverwriteOpt,
    SeedOpt,
    UserOpt,
    UsersFileOpt,
    UsersOpt,
    app,
    console,
    fail,
    index_app,
    load_dataset,
    show_ranked,
    user_ids,
)
from llmrec.errors import ConfigError, DataError, LLMRecError
from llmrec.io import check_string_array, load_npy
from llmrec.retrieval.index import ITEM_IDS_FILE

SOURCE_FILE = "source.json"
"""Beside an index: the dataset its item embeddings came from, checked by ``index search``."""


@app.command()
def encode(
    out: Annotated[Path, typer.Option("--out", help="Output folder (vectors, ids, manifest).")],
    dataset: DatasetOpt = "ml-100k",
    what: Annotated[str, typer.Option("--what", help="items or users.")] = "items",
    encoder: Annotated[
        str, typer.Option("--encoder", help="'default' (MiniLM-L6) or a local model folder.")
    ] = "default",
    pooling: Annotated[str, typer.Option(help="mean, cls or last (decoder LLMs).")] = "mean",
    instruction: Annotated[str, typer.Option(help="Prefix for every text.")] = "",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda if any).")
    ] = None,
    user_text: Annotated[
        str, typer.Option(help="Users: 'profile' text or 'pool' of item embeddings.")
    ] = "profile",
    weighting: Annotated[str, typer.Option(help="Pooling: mean, rating or recency.")] = "rating",
    max_items: Annotated[int, typer.Option(help="Profile: most items listed.")] = 30,
    min_rating: Annotated[
        float | None, typer.Option(help="Profile: keep ratings >= this only.")
    ] = None,
    order: Annotated[str, typer.Option(help="Profile: recent, oldest or rating.")] = "recent",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    workers: Annotated[int, typer.Option(help="Local worker processes sharing the cache.")] = 1,
    describe_with: Annotated[
        str | None,
        typer.Option(help="Local decoder LLM folder: append its item descriptions to item texts."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="SQLite cache (default $LLMREC_CACHE_DIR or ~/.cache/llmrec)."),
    ] = None,
    overwrite: OverwriteOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Encode a dataset's items or users to embeddings, through the cache.

    Under torchrun, every rank encodes a shard and rank 0 writes the folder.
    """
    from pydantic import ValidationError

    from llmrec.artifacts import check_target
    from llmrec.devices import resolve_device
    from llmrec.encoders.cache import default_cache_path
    from llmrec.encoders.job import EncodeConfig, distributed_rank, encode_dataset

    writer = distributed_rank()[0] == 0
    try:
        if writer:
            check_target(out, "embeddings", overwrite)
        if device is not None:
            resolve_device(device)
        config = EncodeConfig.model_validate(
            {
                "what": what,
                "encoder": {
                    "model": encoder,
                    "pooling": pooling,
                    "instruction": instruction,
                    "dtype": dtype,
                    "device": device,
                },
                "user_text": user_text,
                "weighting": weighting,
                "profile": {"max_items": max_items, "min_rating": min_rating, "order": order},
                "batch_size": batch_size,
                "describe_with": describe_with,
            }
        )
        result = encode_dataset(
            load_dataset(dataset, encoding), config, cache or default_cache_path(), workers=workers
        )
        if writer:
            result.save(out, overwrite=overwrite)
    except ValidationError as exc:
        fail(ConfigError("; ".join(f"{_option(e['loc'])}: {e['msg']}" for e in exc.errors())))
    except (LLMRecError, ValueError, OSError) as exc:
        fail(exc)
    if writer:
        m = result.manifest
        console.print(
            f"wrote {out}: {m['count']} {what} x {m['dimension']} in {m['seconds']:.1f}s"
            + (
                f"; {m['fallback_users']} users got the popularity fallback"
                if m["fallback_users"]
                else ""
            )
        )


def _option(loc: tuple) -> str:
    """The command-line option a pydantic error location came from (``--max-items``)."""
    return "--" + str(loc[-1]).replace("_", "-")


@index_app.command("build")
def index_build(
    embeddings: Annotated[Path, typer.Option(help="Item embedding folder (llmrec encode).")],
    out: Annotated[Path, typer.Option("--out", help="Index folder to write.")],
    spec: Annotated[str, typer.Option(help="faiss factory string: Flat, IVF256,Flat, HNSW32.")] = (
        "Flat"
    ),
    nprobe: Annotated[
        int | None, typer.Option(min=1, help="IVF lists probed per query (>= 1).")
    ] = None,
    ef_search: Annotated[
        int | None, typer.Option(min=1, help="HNSW search breadth (>= 1).")
    ] = None,
    seed: SeedOpt = 42,
    overwrite: OverwriteOpt = False,
) -> None:
    """Build an index over item embeddings (cosine), with the items' ids beside it."""
    from llmrec.artifacts import check_target
    from llmrec.encoders.job import EmbeddingSet
    from llmrec.io import write_json
    from llmrec.retrieval import ItemIndex

    start = time.perf_counter()
    try:
        check_target(out, "index", overwrite)
        items = EmbeddingSet.load(embeddings)
        if items.manifest["what"] != "items":
            raise DataError(f"{embeddings} holds {items.manifest['what']}, not items")
        index = ItemIndex.build(
            items.vectors, spec=spec, fingerprint=items.manifest["fingerprint"], seed=seed
        )
        params = {"nprobe": nprobe, "efSearch": ef_search}
        index.set_search_params(**{k: v for k, v in params.items() if v is not None})

        def extra(tmp: Path) -> None:
            write_json(tmp / SOURCE_FILE, {"dataset": items.manifest.get("dataset")})

        index.save(out, overwrite=overwrite, extra=extra, item_ids=items.ids)
    except (LLMRecError, ValueError, OSError) as exc:
        fail(exc)
    console.print(
        f"wrote {out}: {spec} over {len(index)} items x {index.dimension} "
        f"in {time.perf_counter() - start:.1f}s"
    )


@index_app.command("search")
def index_search(
    index_dir: Annotated[Path, typer.Option("--index", help="Index folder (llmrec index build).")],
    queries: Annotated[Path, typer.Option(help="User embedding folder (llmrec encode).")],
    users: UsersOpt = None,
    user: UserOpt = None,
    users_file: UsersFileOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Candidates per user.")] = 10,
    dataset: Annotated[
        str | None,
        typer.Option(help="The queries' dataset: its interactions are filtered out as seen."),
    ] = None,
    encoding: EncodingOpt = None,
    output: FormatOpt = "table",
) -> None:
    """Top-k candidate items for some users, seen items filtered when --dataset is given."""
    from llmrec.encoders.job import EmbeddingSet
    from llmrec.retrieval import ItemIndex

    try:
        wanted = user_ids(users, user, users_file)
        user_set = EmbeddingSet.load(queries)
        index = ItemIndex.load(index_dir, fingerprint=user_set.manifest["fingerprint"])
        _check_same_dataset(index_dir, queries, user_set.manifest.get("dataset"))
        position = {u: i for i, u in enumerate(user_set.ids.tolist())}
        unknown = [u for u in wanted if u not in position]
        if unknown:
            raise DataError(f"unknown user id(s) {unknown[:5]} in {queries}")
        rows = [position[u] for u in wanted]
        exclude = None
        if dataset is not None:
            data = load_dataset(dataset, encoding)
            made_from = user_set.manifest.get("dataset") or {}
            if made_from.get("checksum") not in (None, data.checksum):
                raise DataError(
                    f"--dataset {dataset} (checksum {data.checksum[:12]}) is not the dataset "
                    f"{queries} was encoded from ({made_from.get('name')}, checksum "
                    f"{made_from['checksum'][:12]}); its seen items would be the wrong ones"
                )
            seen = data.interactions.groupby("user_id")["item_idx"].apply(list)
            exclude = [seen.get(u, []) for u in wanted]
        ids, scores = index.search(user_set.vectors[rows], k, exclude=exclude)
        names = _item_names(index_dir, ids)
        if names is not None:
            # numpy's stubs reject a None operand, which np.where takes as an object scalar
            ids = np.where(ids >= 0, names[np.maximum(ids, 0)], None)  # type: ignore[call-overload]
        show_ranked(output, f"top {k} candidates", wanted, ids, scores)
    except (LLMRecError, ValueError, OSError) as exc:
        fail(exc)


def _item_names(index_dir: Path, ids: np.ndarray) -> np.ndarray | None:
    """The item ids saved beside the index (None for an index saved without them).

    Raises:
        DataError: the file is unreadable or does not cover every row the index returned.
    """
    file = index_dir / ITEM_IDS_FILE
    if not file.is_file():
        return None
    names = load_npy(file, "an index folder")
    check_string_array(names, str(file))
    if names.ndim != 1 or (ids.size and int(ids.max()) >= len(names)):
        raise DataError(
            f"{file}: {names.shape} names do not cover the index's items (largest row "
            f"{int(ids.max()) if ids.size else -1})"
        )
    return names


def _check_same_dataset(index_dir: Path, queries: Path, users_from: dict | None) -> None:
    """Item rows of the index and the users' seen items must index the same catalogue.

    Raises:
        DataError: the index's items and the user embeddings come from different datasets.
    """
    source = index_dir / SOURCE_FILE
    if not source.is_file() or not users_from:  # indexes from before the check
        return
    try:
        items_from = json.loads(source.read_text(encoding="utf-8")).get("dataset") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(f"{source}: unreadable ({exc})") from exc
    if items_from.get("checksum") not in (None, users_from.get("checksum")):
        raise DataError(
            f"{index_dir} indexes items of dataset {items_from.get('name')!r} but {queries} "
            f"holds users of dataset {users_from.get('name')!r} (checksums differ)"
        )
