"""Embedding tables that start from item text instead of noise.

An id table row is learned from interactions alone; a new or rare item's row stays near its
random start. Starting the rows from the item's text embedding, projected to the table's
dimension, puts similar items close together before training. Three projections:

- ``pca``: the top principal components of the centred text embeddings (closed form; each
  component's sign fixed so that its largest loading is positive, so the result is the same on
  every machine and every rank);
- ``random``: a seeded Gaussian projection (any dimension, even above the text's);
- ``ridge``: a map learned on rows whose values are known (a table trained before, say); every
  row gets its mapped text, and the known rows keep their values.

``pca`` and ``random`` rows are rescaled to a per-value standard deviation, by default that of
TorchRec's own uniform init for the table, so the optimiser sees the scale it is tuned for.
:class:`CopyRows` is an ``EmbeddingBagConfig.init_fn`` that writes such rows into a table.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from llmrec.errors import ConfigError, DataError

Method = Literal["pca", "random", "ridge"]
METHODS: tuple[Method, ...] = ("pca", "random", "ridge")


def check_text_rows(
    embeddings: Any, where: str = "item_embeddings", rows: int | None = None
) -> np.ndarray:
    """``embeddings`` as a float64 ``(n, d)`` array, or a DataError naming what is wrong.

    Args:
        embeddings: array-like, one row per table row.
        where: the name used in messages.
        rows: the row count the table has (None: any).

    Raises:
        DataError: not numeric, not 2-d, empty, a row count other than ``rows``, or a NaN/inf
            value (the first bad row is named).
    """
    array = np.asarray(embeddings)
    if array.dtype.kind not in "fiu":
        raise DataError(f"{where} must be numeric, got dtype {array.dtype}")
    if array.ndim != 2 or 0 in array.shape:
        raise DataError(
            f"{where} must be a non-empty 2-d (rows, dimension) array, got {array.shape}"
        )
    if rows is not None and len(array) != rows:
        raise DataError(f"{where} has {len(array)} rows but the table has {rows} embeddings")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(f"{where} has NaN or inf values in {len(bad)} rows, first row {bad[0]}")
    return array.astype(np.float64, copy=False)


def default_init_std(num_embeddings: int) -> float:
    """Per-value std of TorchRec's default init, ``U(-sqrt(1/n), sqrt(1/n))``."""
    return math.sqrt(1.0 / num_embeddings) / math.sqrt(3.0)


def project_text(
    embeddings: Any,
    dim: int,
    *,
    method: Method = "pca",
    std: float | None = None,
    seed: int = 0,
    targets: Any = None,
    target_rows: Any = None,
    ridge_alpha: float = 0.1,
) -> np.ndarray:
    """Project text embeddings to ``dim`` values per row (the first rows of an id table).

    Args:
        embeddings: ``(n, d)`` text embeddings, row ``i`` for table row ``i``.
        dim: the table's embedding dimension.
        method: ``pca``, ``random`` or ``ridge`` (see the module docstring).
        std: the per-value std of the ``pca``/``random`` result; None: TorchRec's default init
            for an ``n``-row table. ``ridge`` rows keep the scale of ``targets``.
        seed: the ``random`` projection's seed.
        targets: ``ridge`` only: ``(m, dim)`` known values of rows ``target_rows``.
        target_rows: ``ridge`` only: the ``m`` row indices of ``targets``.
        ridge_alpha: ``ridge`` only: the penalty, relative to the mean squared singular value
            of the centred known rows' embeddings.

    Returns:
        float32 ``(n, dim)``.

    Raises:
        ConfigError: an unknown method, ``dim`` < 1, ``pca`` asked for more components than
            the text has, targets missing for ``ridge`` or given to another method.
        DataError: bad embeddings or targets (NaN, wrong shape, row index out of range).
    """
    if method not in METHODS:
        raise ConfigError(f"projection method must be one of {METHODS}, got {method!r}")
    if dim < 1:
        raise ConfigError(f"the table dimension must be >= 1, got {dim}")
    x = check_text_rows(embeddings)
    n, d = x.shape
    if (targets is None) != (method != "ridge") or (targets is None) != (target_rows is None):
        raise ConfigError("targets and target_rows go with method='ridge', and only with it")
    x = x - x.mean(axis=0)
    if method == "ridge":
        return _ridge(x, dim, targets, target_rows, ridge_alpha)
    if method == "pca":
        if dim > d:
            raise ConfigError(
                f"pca gives at most {d} components (the text dimension) for a {dim}-wide "
                "table; use method='random'"
            )
        # eigh of the d x d covariance: one pass over the rows, deterministic
        _, vectors = np.linalg.eigh(x.T @ x)
        components = vectors[:, ::-1][:, :dim]
        signs = np.sign(components[np.abs(components).argmax(axis=0), np.arange(dim)])
        out = x @ (components * np.where(signs == 0, 1.0, signs))
    else:
        out = x @ np.random.default_rng(seed).standard_normal((d, dim))
    target = default_init_std(n) if std is None else std
    if not target > 0:
        raise ConfigError(f"std must be > 0, got {std}")
    spread = float(out.std())
    # a constant text column (every row the same text) has nothing to scale: rows stay 0
    return (out * (target / spread if spread > 0 else 0.0)).astype(np.float32)


def _ridge(x: np.ndarray, dim: int, targets: Any, target_rows: Any, alpha: float) -> np.ndarray:
    rows = np.asarray(target_rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or len(rows) < 2:
        raise DataError(f"target_rows must be 2 or more row indices, got {rows!r}")
    if rows.min() < 0 or rows.max() >= len(x) or len(np.unique(rows)) != len(rows):
        raise DataError(f"target_rows must be distinct indices in 0..{len(x) - 1}")
    y = check_text_rows(targets, "targets", rows=len(rows))
    if y.shape[1] != dim:
        raise DataError(f"targets have {y.shape[1]} values per row; the table has {dim}")
    if not alpha > 0:
        raise ConfigError(f"ridge_alpha must be > 0, got {alpha}")
    known = x[rows] - x[rows].mean(axis=0)
    y_mean = y.mean(axis=0)
    u, s, vt = np.linalg.svd(known, full_matrices=False)
    penalty = alpha * float((s**2).mean() or 1.0)
    weights = vt.T @ ((s / (s**2 + penalty))[:, None] * (u.T @ (y - y_mean)))
    out = (x - x[rows].mean(axis=0)) @ weights + y_mean
    out[rows] = y  # known rows keep their trained values
    return out.astype(np.float32)


class CopyRows:
    """An ``EmbeddingBagConfig.init_fn`` that copies fixed rows into the table.

    TorchRec calls ``init_fn`` with the whole weight in an unsharded ``EmbeddingBagCollection``,
    and under ``DistributedModelParallel`` with each rank's local piece. A table-wise or
    data-parallel piece is the whole table, so it gets the rows too; a row- or column-wise
    shard does not say where it sits in the table, so it gets TorchRec's default uniform init
    and the rows must be copied in after sharding (``llmrec.dropin.torchrec.init_from_text``).
    A module-level class, not a closure, so a model holding it pickles.

    Args:
        rows: float32 ``(num_embeddings, embedding_dim)``.
    """

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = np.ascontiguousarray(rows, dtype=np.float32)

    def __call__(self, weight: Any) -> Any:
        import torch

        bound = math.sqrt(1.0 / len(self.rows))
        with torch.no_grad():
            # Draw the default init first, used or not: every later parameter then gets the
            # same random values as with a random table, so the two differ in this table only.
            torch.nn.init.uniform_(weight, -bound, bound)
            if tuple(weight.shape) == self.rows.shape:
                weight.copy_(torch.from_numpy(self.rows))
        return weight

    def __repr__(self) -> str:
        return f"CopyRows(shape={self.rows.shape})"
