"""Item text inside a TorchRec model: tables that start from text, and text as a dense feature.

TorchRec users ask how to load pretrained embeddings into a sharded ``EmbeddingBagCollection``
(torchrec #355). Turn the configs you have into text-initialised ones, build the collection as
usual, and copy the rows in once more after sharding::

    from llmrec.dropin.torchrec import init_from_text, text_embedding_configs
    tables = text_embedding_configs(tables, {"item_table": item_embeddings})
    ebc = EmbeddingBagCollection(tables=tables)   # unsharded: the rows are already in place
    dmp = DistributedModelParallel(ebc, plan=plan)
    init_from_text(dmp, tables)                   # every rank: its shards get their slices

Each table's rows are its item text embeddings projected to the table's dimension (PCA by
default, see :mod:`llmrec.rankers.text_init`). The configs' ``init_fn`` writes them whenever
TorchRec hands it the whole table (an unsharded collection, a table-wise or data-parallel
shard); a row- or column-wise shard does not say where it sits, so :func:`init_from_text` copies
each rank's slice into its ``local_shards()``, as TorchRec's transfer-learning example does.
:class:`TextFeatures` turns the item ids of a ``KeyedJaggedTensor`` into a dense tensor of their
text embeddings, one pooled row per bag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmrec.errors import ConfigError, DataError
from llmrec.rankers.text_init import (
    METHODS,
    CopyRows,
    Method,
    check_text_rows,
    default_init_std,
    project_text,
)

if TYPE_CHECKING:
    import torch
    from torchrec import EmbeddingBagConfig, KeyedJaggedTensor

__all__ = [
    "METHODS",
    "CopyRows",
    "TextFeatures",
    "default_init_std",
    "init_from_text",
    "project_text",
    "text_embedding_configs",
    "text_features",
    "text_rows",
]


def text_embedding_configs(
    tables: Iterable[EmbeddingBagConfig],
    item_embeddings: Mapping[str, Any],
    *,
    method: Method = "pca",
    std: float | None = None,
    seed: int = 0,
) -> list[EmbeddingBagConfig]:
    """Copies of ``tables`` whose named tables start from projected text embeddings.

    Args:
        tables: the ``EmbeddingBagConfig`` s of a model (not modified).
        item_embeddings: table name -> ``(num_embeddings, d)`` text embeddings, row ``i`` for
            id ``i``; tables not named keep their config.
        method: ``pca`` (closed form) or ``random`` (seeded Gaussian), see
            :func:`~llmrec.rankers.text_init.project_text`; for a map learned from a trained
            table (``ridge``), project with it and pass the rows to :func:`init_from_text`.
        std: per-value std of the rows; None: TorchRec's default init std for each table.
        seed: the ``random`` projection's seed.

    Returns:
        The configs, in order; a text table's ``init_fn`` is a :class:`CopyRows` holding its
        rows (read them back with :func:`text_rows`).

    Raises:
        ConfigError: a name that is no table, or ``ridge`` (it needs targets).
        DataError: embeddings with a row count other than the table's ``num_embeddings``,
            not 2-d, or with NaN/inf (the table and first bad row named).
    """
    configs = list(tables)
    names = [c.name for c in configs]
    unknown = sorted(set(item_embeddings) - set(names))
    if unknown:
        raise ConfigError(f"no table named {unknown} among the configs' tables {names}")
    if method == "ridge":
        raise ConfigError("method='ridge' needs targets: call project_text, then init_from_text")
    out = []
    for config in configs:
        if config.name in item_embeddings:
            where = f"item_embeddings[{config.name!r}]"
            text = check_text_rows(item_embeddings[config.name], where, config.num_embeddings)
            rows = project_text(text, config.embedding_dim, method=method, std=std, seed=seed)
            config = dataclasses.replace(config, init_fn=CopyRows(rows))
        out.append(config)
    return out


def text_rows(tables: Iterable[EmbeddingBagConfig]) -> dict[str, np.ndarray]:
    """Table name -> rows, for the configs :func:`text_embedding_configs` gave text."""
    return {c.name: c.init_fn.rows for c in tables if isinstance(c.init_fn, CopyRows)}


def init_from_text(
    module: torch.nn.Module,
    tables: Iterable[EmbeddingBagConfig] | Mapping[str, Any],
) -> dict[str, list[tuple[int, int, int, int]]]:
    """Copy text rows into the tables of ``module``, sharded or not.

    ``module`` is an ``EmbeddingBagCollection``, a model holding one, or its
    ``DistributedModelParallel`` wrapper; under DMP call it on every rank after sharding (and
    before training): each rank writes the slice of its local shards, a data-parallel table
    its whole replica.

    Args:
        module: holds exactly one ``embedding_bags.{name}.weight`` per table named.
        tables: configs from :func:`text_embedding_configs`, or table name -> ``(rows, dim)``
            rows (e.g. from ``project_text(..., method="ridge")``).

    Returns:
        Table name -> the ``(row, column, rows, columns)`` slices written on this rank.

    Raises:
        ConfigError: a table that is not in ``module`` (or in it twice), no text table given,
            or a weight kind it cannot write (a DTensor).
        DataError: rows whose shape is not the table's, or NaN/inf rows, before any copy.
    """
    import torch
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    given = tables if isinstance(tables, Mapping) else text_rows(tables)
    if not given:
        raise ConfigError("no table with text rows given (configs from text_embedding_configs?)")
    state = module.state_dict()
    weights = {name: _weight(state, name) for name in given}
    sources = {}
    for name, weight in weights.items():  # every check before the first copy
        rows = check_text_rows(given[name], f"rows of {name!r}", rows=weight.size(0))
        if rows.shape[1] != weight.size(1):
            raise DataError(
                f"rows of {name!r} have {rows.shape[1]} values; the table's dimension is "
                f"{weight.size(1)}"
            )
        if not isinstance(weight, ShardedTensor) and hasattr(weight, "to_local"):
            raise ConfigError(f"table {name!r} is a DTensor; init_from_text writes ShardedTensors")
        sources[name] = torch.from_numpy(rows.astype(np.float32))
    written: dict[str, list[tuple[int, int, int, int]]] = {}
    with torch.no_grad():
        for name, weight in weights.items():
            source, done = sources[name], []
            for tensor, (row, col, n_rows, n_cols) in _pieces(weight):
                tensor.copy_(source[row : row + n_rows, col : col + n_cols].to(tensor.dtype))
                done.append((row, col, n_rows, n_cols))
            written[name] = done
    return written


def _pieces(weight: Any) -> list[tuple[torch.Tensor, tuple[int, int, int, int]]]:
    """The tensors this rank holds of a table, each with its ``(row, column, rows, columns)``
    place in the table: the local shards of a ShardedTensor, else the whole tensor."""
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    if not isinstance(weight, ShardedTensor):
        return [(weight, (0, 0, int(weight.shape[0]), int(weight.shape[1])))]
    pieces = []
    for shard in weight.local_shards():
        row, col = (int(v) for v in shard.metadata.shard_offsets)
        n_rows, n_cols = (int(v) for v in shard.metadata.shard_sizes)
        pieces.append((shard.tensor, (row, col, n_rows, n_cols)))
    return pieces


def _weight(state: Mapping[str, Any], name: str) -> Any:
    """The one state-dict entry of table ``name``."""
    suffix = f"embedding_bags.{name}.weight"
    keys = [k for k in state if k == suffix or k.endswith("." + suffix)]
    if len(keys) != 1:
        tables = sorted(
            k.split(".")[-2] for k in state if k.endswith(".weight") and "embedding_bags." in k
        )
        found = f"{len(keys)} tables" if keys else "no table"
        raise ConfigError(f"{found} named {name!r} in the module; its tables: {tables}")
    return state[keys[0]]


class TextFeatures:
    """Text embeddings of the ids in a ``KeyedJaggedTensor``, as a dense feature.

    Args:
        item_embeddings: ``(n_items, d)``, row ``i`` for id ``i`` (checked once, here).
        pooling: ``mean`` or ``sum`` of each bag's rows; an empty bag gives zeros. ``sum``
            uses the KJT's weights when it has them.
    """

    def __init__(self, item_embeddings: Any, pooling: Literal["mean", "sum"] = "mean") -> None:
        import torch

        if pooling not in ("mean", "sum"):
            raise ConfigError(f"pooling must be 'mean' or 'sum', got {pooling!r}")
        rows = check_text_rows(item_embeddings)
        self.table = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        self.pooling = pooling

    def __call__(self, kjt: KeyedJaggedTensor, key: str) -> torch.Tensor:
        """``(batch, d)`` float32 on the batch's device: one pooled text row per bag of ``key``.

        Raises:
            ConfigError: ``key`` is not a key of ``kjt``.
            DataError: an id outside ``0..n_items-1`` (the first one named).
        """
        import torch

        keys: Sequence[str] = kjt.keys()
        if key not in keys:
            raise ConfigError(f"feature {key!r} is not in the batch; its keys: {list(keys)}")
        bags = kjt[key]
        ids = bags.values().to(torch.long).cpu()
        bad = (ids < 0) | (ids >= len(self.table))
        if bool(bad.any()):
            first = int(ids[bad][0])
            raise DataError(
                f"feature {key!r} has {int(bad.sum())} ids outside 0..{len(self.table) - 1}, "
                f"first {first}"
            )
        weights = bags.weights_or_none() if self.pooling == "sum" else None
        pooled = torch.nn.functional.embedding_bag(
            ids,
            self.table,
            bags.offsets().to(torch.long).cpu(),
            mode=self.pooling,
            per_sample_weights=None if weights is None else weights.float().cpu(),
            include_last_offset=True,
        )
        # the table stays in host memory; the result goes where the batch is
        return pooled.to(bags.values().device)


def text_features(
    item_embeddings: Any, kjt: KeyedJaggedTensor, key: str, pooling: Literal["mean", "sum"] = "mean"
) -> torch.Tensor:
    """One call of :class:`TextFeatures` (build the class once to check the table once)."""
    return TextFeatures(item_embeddings, pooling)(kjt, key)
