"""``ItemIndex``: FAISS candidate retrieval over item embeddings.

Cosine similarity as inner product on L2-normalised vectors (``normalize=False`` keeps raw inner
products, for factor models). Rows carry our int64 item ids through ``IndexIDMap2``; search
filters already-seen items and still returns ``k`` results, over-fetching and re-querying the
rows that came up short. Faiss only asserts on bad input; every check here raises a ConfigError
or DataError that names the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeAlias

import numpy as np
import scipy.sparse as sp

from llmrec.artifacts import open_artifact, write_artifact
from llmrec.encoders.base import normalize_rows
from llmrec.errors import ArtifactError, ConfigError, DataError
from llmrec.io import load_npy, read_json_object, write_json

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
INDEX_FILE, IDS_FILE, MANIFEST_FILE = "index.faiss", "removed.npy", "manifest.json"
ITEM_IDS_FILE = "item_ids.npy"
"""Beside an index saved with ``item_ids``: row ``i`` names the item of faiss id ``i`` (a plain
string array: ``numpy.load`` reads it without pickle)."""

Exclude: TypeAlias = sp.csr_matrix | Sequence[Sequence[int]] | None


def _faiss():
    import faiss

    return faiss


class ItemIndex:
    """A faiss index over item vectors, with our item ids and seen-item filtering.

    Args:
        spec: ``faiss.index_factory`` string: ``Flat``, ``IVF{n},Flat``, ``IVF{n},PQ{m}``,
            ``HNSW{M}``, ...
        dimension: vector dimension.
        fingerprint: the embedding model's fingerprint; loading checks it.
        normalize: L2-normalise vectors and queries (cosine); False keeps raw inner products.
        seed: seed of the training sample and of k-means.
    """

    def __init__(
        self,
        spec: str,
        dimension: int,
        fingerprint: str = "",
        normalize: bool = True,
        seed: int = 42,
    ) -> None:
        faiss = _faiss()
        if dimension < 1:
            raise ConfigError(f"dimension must be >= 1, got {dimension}")
        try:
            inner = faiss.index_factory(int(dimension), spec, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ConfigError(
                f"faiss cannot build index spec {spec!r}: {_first_line(exc)}"
            ) from exc
        self._set_seed(inner, seed)
        self.index = faiss.IndexIDMap2(inner)
        self.spec, self.dimension, self.fingerprint = spec, int(dimension), fingerprint
        self.normalize, self.seed = normalize, seed
        self.removed: set[int] = set()
        """Ids removed from indexes that cannot delete (HNSW): filtered at search time."""
        self.search_params: dict[str, int] = {}
        self._ids: np.ndarray | None = None

    @staticmethod
    def _set_seed(inner: Any, seed: int) -> None:
        ivf = _faiss().try_extract_index_ivf(inner)
        if ivf is not None:
            ivf.cp.seed = seed

    # ---- building -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray | None = None,
        spec: str = "Flat",
        fingerprint: str = "",
        normalize: bool = True,
        seed: int = 42,
        max_train: int = 200_000,
    ) -> Self:
        """Build, train (when the spec needs it) and fill an index.

        Args:
            vectors: ``(n_items, d)`` item embeddings.
            ids: int64 item ids, one per row (default ``0..n-1``).
            spec: faiss factory string.
            fingerprint: embedding model fingerprint, stored in the manifest.
            normalize: cosine (True) or raw inner product.
            seed: seed of the training sample and k-means.
            max_train: most vectors used for training (a seeded sample).
        """
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise DataError(f"item vectors must be 2-d (n_items, d), got shape {vectors.shape}")
        index = cls(spec, vectors.shape[1], fingerprint, normalize, seed)
        index.train(vectors, max_train)
        index.add(vectors, np.arange(len(vectors)) if ids is None else ids)
        return index

    def _prepare(self, vectors: np.ndarray, what: str) -> np.ndarray:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise DataError(
                f"{what} have shape {vectors.shape}; this index holds {self.dimension}-d vectors"
            )
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise DataError(f"{int(bad.sum())} {what} contain NaN or inf, e.g. rows {rows}")
        out = normalize_rows(vectors) if self.normalize else vectors
        return np.ascontiguousarray(out, dtype=np.float32)

    def train(self, vectors: np.ndarray, max_train: int = 200_000) -> None:
        """Train on a seeded sample of ``vectors`` when the spec needs training."""
        if self.index.is_trained:
            return
        data = self._prepare(vectors, "training vectors")
        if len(data) > max_train:
            rng = np.random.default_rng(self.seed)
            data = data[np.sort(rng.choice(len(data), max_train, replace=False))]
        try:
            self.index.train(data)
        except RuntimeError as exc:
            raise ConfigError(
                f"training {self.spec!r} on {len(data)} vectors failed: {_first_line(exc)}"
            ) from exc

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add items (catalogue growth) without rebuilding.

        Raises:
            DataError: wrong dimension, NaN vectors, an id count that does not match, or ids
                already in the index.
            ConfigError: an untrained index.
        """
        data = self._prepare(vectors, "item vectors")
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape != (len(data),):
            raise DataError(f"{len(ids)} ids for {len(data)} vectors")
        if ids.min(initial=0) < 0:
            raise DataError("item ids must be >= 0 (-1 means 'no result')")
        if len(np.unique(ids)) != len(ids):
            raise DataError("duplicate item ids in one add()")
        stored = _faiss().vector_to_array(self.index.id_map)
        present = np.intersect1d(ids, stored)
        if len(present):
            raise DataError(
                f"item ids already in the index (or hidden after remove() on an index that "
                f"cannot delete, such as HNSW): {present[:5].tolist()}"
            )
        if not self.index.is_trained:
            raise ConfigError(f"index {self.spec!r} is not trained: call train() first")
        self.index.add_with_ids(data, ids)
        self._ids = None

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items; returns how many were removed.

        Raises:
            DataError: an id that is not in the index.
        """
        ids = np.asarray(ids, dtype=np.int64)
        self._check_known(ids, "remove()")
        try:
            removed = int(self.index.remove_ids(ids))
        except RuntimeError:
            # HNSW cannot delete: hide the ids instead (they still cost a little search time)
            self.removed |= set(ids.tolist())
            removed = len(ids)
        self._ids = None
        return removed

    # ---- queries --------------------------------------------------------------------------

    @property
    def ids(self) -> np.ndarray:
        """Item ids currently searchable, sorted."""
        if self._ids is None:
            all_ids = _faiss().vector_to_array(self.index.id_map).astype(np.int64)
            if self.removed:
                all_ids = all_ids[~np.isin(all_ids, np.fromiter(self.removed, np.int64))]
            self._ids = np.sort(all_ids)
        return self._ids

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.removed)

    def _check_known(self, ids: np.ndarray, where: str) -> None:
        known = self.ids
        pos = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
        unknown = ids[known[pos] != ids] if len(known) else ids
        if len(unknown):
            raise DataError(f"unknown item id(s) in {where}: {np.unique(unknown)[:5].tolist()}")

    def set_search_params(self, **params: int) -> None:
        """Set ``nprobe`` (IVF), ``efSearch`` (HNSW) or any faiss ParameterSpace name."""
        space = _faiss().ParameterSpace()
        for name, value in params.items():
            # faiss takes 0 or a negative count silently and then returns too few results
            if name in ("nprobe", "efSearch") and (
                isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1
            ):
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
            try:
                space.set_index_parameter(self.index, name, value)
            except RuntimeError as exc:
                raise ConfigError(
                    f"index {self.spec!r} has no search parameter {name!r}: {_first_line(exc)}"
                ) from exc
            self.search_params[name] = int(value)

    def _exclusions(self, exclude: Exclude, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, ids)`` of every excluded pair, and checks the ids are known."""
        if exclude is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if sp.issparse(exclude):
            matrix = sp.csr_matrix(exclude)
            if matrix.shape[0] != n:
                raise DataError(f"exclude has {matrix.shape[0]} rows for {n} queries")
            rows = np.repeat(np.arange(n), np.diff(matrix.indptr))
            ids = matrix.indices.astype(np.int64)
        else:
            if len(exclude) != n:
                raise DataError(f"exclude has {len(exclude)} rows for {n} queries")
            lists = [np.asarray(r, dtype=np.int64).ravel() for r in exclude]
            rows = np.repeat(np.arange(n), [len(r) for r in lists])
            ids = np.concatenate(lists) if lists else np.empty(0, np.int64)
        if len(ids):
            self._check_known(ids, "exclude")
        return rows, ids

    def search(
        self,
        user_vectors: np.ndarray,
        k: int,
        exclude: Exclude = None,
        batch_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids and scores per query, without the excluded items.

        Args:
            user_vectors: ``(n_queries, d)`` query vectors.
            k: results per query.
            exclude: item ids to leave out per query: a CSR matrix (row per query, column =
                item id) or a list of id arrays.
            batch_size: queries per faiss call.

        Returns:
            ``(ids, scores)``, int64 and float32 ``(n_queries, k)``, best first. ``-1`` ids and
            ``-inf`` scores fill the slots that cannot be filled (everything else excluded, or
            an approximate index found too few).

        Raises:
            ConfigError: ``k`` outside ``1..len(index)``.
            DataError: wrong dimension, NaN queries, unknown ids in ``exclude``.
        """
        if not 1 <= k <= len(self):
            raise ConfigError(f"k must be between 1 and the catalog size {len(self)}, got {k}")
        queries = self._prepare(user_vectors, "query vectors")
        n = len(queries)
        rows, ids = self._exclusions(exclude, n)
        if self.removed:
            hidden = np.fromiter(self.removed, np.int64)
            rows = np.concatenate([rows, np.repeat(np.arange(n), len(hidden))])
            ids = np.concatenate([ids, np.tile(hidden, n)])
        filter_ = _PairFilter(rows, ids, n) if len(ids) else None
        need = np.bincount(rows, minlength=n)
        out_ids = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        for lo in range(0, n, batch_size):
            batch = np.arange(lo, min(lo + batch_size, n))
            self._search_rows(queries, batch, k, need, filter_, out_ids, out_scores)
        return out_ids, out_scores

    def _search_rows(
        self,
        queries: np.ndarray,
        pending: np.ndarray,
        k: int,
        need: np.ndarray,
        filter_: _PairFilter | None,
        out_ids: np.ndarray,
        out_scores: np.ndarray,
    ) -> None:
        ntotal = int(self.index.ntotal)
        # First pass fetches enough for most rows; rows that come up short are fetched again.
        fetch = min(k + int(np.percentile(need[pending], 90)), ntotal)
        while len(pending):
            scores, ids = self.index.search(queries[pending], fetch)
            drop = ids < 0
            if filter_ is not None:
                drop |= filter_.contains(pending, ids)
            done = ((~drop).sum(axis=1) >= k) | (ids < 0).any(axis=1) | (fetch >= ntotal)
            order = np.argsort(drop[done], axis=1, kind="stable")[:, :k]
            kept = ~np.take_along_axis(drop[done], order, axis=1)
            got_ids = np.take_along_axis(ids[done], order, axis=1)
            got_scores = np.take_along_axis(scores[done], order, axis=1)
            out_ids[pending[done]] = np.where(kept, got_ids, -1)
            out_scores[pending[done]] = np.where(kept, got_scores, -np.inf)
            pending = pending[~done]
            if len(pending):
                fetch = min(max(2 * fetch, k + int(need[pending].max())), ntotal)

    # ---- GPU ------------------------------------------------------------------------------

    def to_gpu(self, device: int = 0) -> None:
        """Move the index to a CUDA device (needs faiss-gpu and a GPU)."""
        faiss = _faiss()
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            raise RuntimeError("no GPU faiss here: install faiss-gpu on a machine with CUDA")
        self._gpu_resources = faiss.StandardGpuResources()
        self.index = faiss.index_cpu_to_gpu(self._gpu_resources, device, self.index)

    def _cpu_index(self) -> Any:
        faiss = _faiss()
        if hasattr(faiss, "index_gpu_to_cpu") and hasattr(self, "_gpu_resources"):
            return faiss.index_gpu_to_cpu(self.index)
        return self.index

    # ---- persistence ----------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "spec": self.spec,
            "dimension": self.dimension,
            "fingerprint": self.fingerprint,
            "normalize": self.normalize,
            "seed": self.seed,
            "item_count": len(self),
            "search_params": self.search_params,
            "faiss": _faiss().__version__,
        }

    def save(
        self,
        folder: str | Path,
        overwrite: bool = False,
        extra: Callable[[Path], None] | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
    ) -> Path:
        """Write ``index.faiss``, ``removed.npy`` and ``manifest.json`` as one artifact folder
        (see :func:`llmrec.artifacts.write_artifact`).

        ``index.faiss`` is a plain FAISS file (an ``IndexIDMap`` whose ids are item rows):
        ``faiss.read_index`` opens it without llmrec, and with ``item_ids`` the folder also
        holds ``item_ids.npy`` mapping each faiss id to its item (named in the manifest).

        Args:
            folder: the folder.
            overwrite: replace a folder that is not an llmrec index folder.
            extra: writes more parts into the folder (the CLI's data source).
            item_ids: the item id of each faiss id ``0..n-1``.

        Raises:
            ArtifactError: ``folder`` holds files llmrec did not write (without ``overwrite``).
        """
        faiss = _faiss()
        names = None
        if item_ids is not None:
            names = np.asarray([str(i) for i in item_ids], dtype=str)
            largest = int(self.ids.max(initial=-1))
            if names.ndim != 1 or len(names) <= largest:
                raise DataError(
                    f"{len(names)} item_ids for an index whose largest faiss id is {largest}"
                )
        manifest = {**self.manifest(), "item_ids": ITEM_IDS_FILE if names is not None else None}

        def write(tmp: Path) -> None:
            faiss.write_index(self._cpu_index(), str(tmp / INDEX_FILE))
            np.save(tmp / IDS_FILE, np.fromiter(self.removed, np.int64))
            if names is not None:
                np.save(tmp / ITEM_IDS_FILE, names)
            write_json(tmp / MANIFEST_FILE, manifest)
            if extra is not None:
                extra(tmp)

        tie = {"item_count": len(self), "dimension": self.dimension}
        return write_artifact(folder, "index", write, overwrite=overwrite, meta=tie)

    @classmethod
    def load(
        cls, folder: str | Path, fingerprint: str | None = None, dimension: int | None = None
    ) -> ItemIndex:
        """Load a folder written by :meth:`save`.

        Args:
            folder: the index folder.
            fingerprint: when given, the embedding model the caller's vectors come from.
            dimension: when given, the caller's vector dimension.

        Raises:
            DataError: missing or corrupt files, or an index made by another embedding model
                or with another dimension.
            ArtifactError: another index format, or an index that does not match its manifest.
        """
        faiss = _faiss()
        folder = Path(folder)
        open_artifact(folder, "index")
        keys = ("format_version", "spec", "dimension", "fingerprint", "normalize", "seed")
        manifest = read_json_object(
            folder / MANIFEST_FILE, (*keys, "item_count", "search_params"), "an index folder"
        )
        removed = load_npy(folder / IDS_FILE, "an index folder")
        if removed.dtype.kind not in "iu" or removed.ndim != 1:
            raise DataError(f"{folder}/{IDS_FILE}: expected item ids, found {removed.dtype}")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{folder}: index format {manifest.get('format_version')}, "
                f"this llmrec reads {FORMAT_VERSION}"
            )
        if fingerprint is not None and manifest["fingerprint"] != fingerprint:
            raise DataError(
                f"{folder}: index built from embedding model {manifest['fingerprint']!r}, "
                f"not {fingerprint!r}; rebuild it with this model's embeddings"
            )
        if dimension is not None and manifest["dimension"] != dimension:
            raise DataError(
                f"{folder}: index holds {manifest['dimension']}-d vectors, not {dimension}-d"
            )
        try:
            raw = faiss.read_index(str(folder / INDEX_FILE))
        except (RuntimeError, MemoryError) as exc:  # a damaged header can ask for any size
            raise DataError(
                f"{folder}/{INDEX_FILE}: corrupt or unreadable ({_first_line(exc)})"
            ) from exc
        if raw.d != manifest["dimension"] or not isinstance(raw, faiss.IndexIDMap2):
            raise ArtifactError(f"{folder}/{INDEX_FILE} does not match its manifest")
        index = cls.__new__(cls)
        index.index = raw
        index.spec, index.dimension = manifest["spec"], manifest["dimension"]
        index.fingerprint, index.normalize = manifest["fingerprint"], manifest["normalize"]
        index.seed, index.removed = manifest["seed"], set(removed.tolist())
        index.search_params, index._ids = {}, None
        if manifest["search_params"]:
            index.set_search_params(**manifest["search_params"])
        if len(index) != manifest["item_count"]:
            raise ArtifactError(
                f"{folder}: {len(index)} items, manifest says {manifest['item_count']}"
            )
        return index


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class _PairFilter:
    """Membership of (query row, item id) pairs, vectorised by sorted int64 keys."""

    def __init__(self, rows: np.ndarray, ids: np.ndarray, n_rows: int) -> None:
        self.stride = int(ids.max()) + 1
        if self.stride * max(n_rows, 1) >= 2**62:
            raise DataError("item ids too large to filter; use ids below 2**62 / n_queries")
        self.keys = np.unique(rows * self.stride + ids)

    def contains(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        inside = (ids >= 0) & (ids < self.stride)
        keys = rows[:, None] * self.stride + np.where(inside, ids, 0)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return inside & (self.keys[pos] == keys)
