"""``Recommender``: the end-to-end pipeline over your own ids.

``fit`` turns item metadata into text and LLM embeddings (through the embedding cache), trains
the two-stage model (TorchRec two-tower + ALS candidates in FAISS, a TorchRec DLRM on top) and
keeps the candidate index; ``recommend`` and ``similar_items`` answer in item ids, implicit-style,
as ``(n, k)`` numpy arrays. Users the model never saw, or saw without history, are served by the
LLM path: the user tower embeds the history given at call time (its items' text embeddings and
id bag) or, without one, its "no history" vector; ``served_by_`` says which path each user took.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

import llmrec
from llmrec.artifacts import open_artifact, write_artifact
from llmrec.datasets.dataset import Dataset, normalize_ids
from llmrec.datasets.features import side_features
from llmrec.datasets.text import item_text, resolve_text_columns
from llmrec.errors import ArtifactError, ConfigError, DataError
from llmrec.io import library_versions, read_json_object, write_json
from llmrec.rankers.base import make_config
from llmrec.rankers.two_stage import TwoStage, TwoStageConfig
from llmrec.retrieval.index import ItemIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, INDEX_DIR = "config.json", "weights.safetensors", "index"


class Recommender:
    """Fit, serve, save and load the two-stage LLM-feature recommender.

    Args:
        config: a :class:`~llmrec.rankers.two_stage.TwoStageConfig`; or keyword parameters of one.
    """

    def __init__(self, config: TwoStageConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError("pass either a config object or keyword parameters, not both")
        self.config = config if config is not None else make_config(TwoStageConfig, params)
        self.model: TwoStage | None = None
        self.served_by_: np.ndarray = np.array([], dtype=object)

    # ---- fitting --------------------------------------------------------------------------

    def fit(
        self,
        train: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        text_columns: dict[str, str] | None = None,
        show_progress_bar: bool | None = None,
    ) -> Self:
        """Encode the items, train both stages and build the candidate index.

        The ranker learns from a holdout of ``train`` itself (each user's latest
        ``config.holdout`` share when there are timestamps), then stage one refits on all of
        ``train``, so ``recommend`` never returns an item given here (with ``filter_seen``).

        Args:
            train: interactions with ``user_id``, ``item_id`` and optional ``rating``,
                ``timestamp``.
            items: item metadata with ``item_id`` and a title column (genres, year optional);
                every item to recommend must be here or in ``train``.
            users: user attributes with ``user_id`` (optional).
            text_columns: text role -> column overrides (``{"title": "name"}``).
            show_progress_bar: progress bars; None shows them on a terminal.

        Raises:
            DataError: empty or malformed tables, items without a title.
        """
        for name, table in (("train", train), ("items", items), ("users", users)):
            if table is not None and not isinstance(table, pd.DataFrame):
                raise DataError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
        if train is None or len(train) == 0:
            raise DataError("empty train set: no interactions to learn from")
        if items is None:
            raise DataError("items table is required: the LLM features are made from its text")
        checksum = hashlib.sha256(pd.util.hash_pandas_object(train, index=False).values).hexdigest()
        columns = resolve_text_columns(items, text_columns)
        data = Dataset("train", train, items, users, checksum, text_columns=columns)
        ratings = data.user_items(values="rating")
        self.user_ids, self.item_ids = data.user_ids, data.item_ids
        self._user_lookup = pd.Index(self.user_ids)
        self._item_lookup = pd.Index(self.item_ids)
        self.data_checksum = checksum
        self.model = TwoStage(self.config).fit(
            ratings,
            item_texts=item_text(data.items, columns).tolist(),
            features=side_features(data, data.interactions),
            show_progress_bar=show_progress_bar,
        )
        return self

    # ---- serving --------------------------------------------------------------------------

    def _check_fitted(self) -> TwoStage:
        if self.model is None:
            raise RuntimeError("Recommender is not fitted: call fit() or Recommender.load()")
        return self.model

    def _items(self, ids: Sequence[object], what: str) -> np.ndarray:
        names = normalize_ids(ids, what) if len(ids) else np.array([], dtype=object)
        index = self._item_lookup.get_indexer(names)
        if (index < 0).any():
            unknown = [str(i) for i, j in zip(names, index, strict=True) if j < 0][:5]
            raise DataError(f"unknown item id(s) in {what}: {unknown}")
        return index

    def _check_k(self, k: object) -> int:
        n_items = self._check_fitted().n_items
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise ConfigError(f"k must be an integer, got {k!r} ({type(k).__name__})")
        if not 1 <= k <= n_items:
            raise ConfigError(f"k must be between 1 and the catalogue size {n_items}, got {k}")
        return int(k)

    @staticmethod
    def _histories(
        histories: Mapping[object, Sequence[object]] | None,
    ) -> dict[str, list[object]]:
        if histories is None:
            return {}
        if not isinstance(histories, Mapping):
            raise DataError(
                f"histories must map user ids to lists of item ids, got {type(histories).__name__}"
            )
        out: dict[str, list[object]] = {}
        for user, items in histories.items():
            # A string is a sequence too: "181" would be read as the items 1, 8, 1.
            if isinstance(items, str | bytes) or not isinstance(
                items, Sequence | np.ndarray | pd.Series | set | frozenset
            ):
                raise DataError(
                    f"histories[{user!r}] must be a list of item ids, got {items!r}; "
                    f"for one item write [{items!r}]"
                )
            out[str(normalize_ids(user, "histories user id")[0])] = list(items)
        return out

    def recommend(
        self,
        user_ids: Sequence[object] | object,
        k: int = 10,
        filter_seen: bool = True,
        histories: Mapping[object, Sequence[object]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids per user.

        Args:
            user_ids: one user id or a sequence of them; unknown ids are allowed (see below).
            k: items per user, at most the catalogue size.
            filter_seen: leave out the items the user interacted with (in train, or in the
                history given here).
            histories: item ids per user id, for users the model does not know (or knows
                without history): the user tower embeds them from these items. Ignored for
                trained users.

        Returns:
            ``(item_ids, scores)``: object and float32 arrays of shape ``(n_users, k)``
            (``(k,)`` for a single user id). Slots that cannot be filled hold ``None`` and
            ``-inf``. ``served_by_`` then holds, per user, ``model`` (a trained user, ranked
            by both stages), ``history`` (embedded by the user tower from ``histories``) or
            ``cold`` (no history at all: the user tower's "no history" vector).

        Raises:
            ConfigError: ``k`` not an integer in ``1..n_items``.
            DataError: empty or missing user ids, unknown item ids in ``histories``, or a
                history that is not a list of ids.
        """
        scalar = isinstance(user_ids, str) or np.ndim(user_ids) == 0
        _, names, scores, served = self._recommend(user_ids, k, filter_seen, histories)
        self.served_by_ = served
        return (names[0], scores[0]) if scalar else (names, scores)

    def recommend_df(
        self,
        user_ids: Sequence[object] | object,
        k: int = 10,
        filter_seen: bool = True,
        histories: Mapping[object, Sequence[object]] | None = None,
    ) -> pd.DataFrame:
        """:meth:`recommend` as one table, LensKit's ``to_df`` style; it sets no attribute,
        so concurrent calls from several threads are safe.

        Returns:
            Columns ``user_id``, ``rank`` (1 = best), ``item_id``, ``score`` and ``served_by``
            (``model``, ``history`` or ``cold``); unfilled slots are left out.
        """
        wanted, names, scores, served = self._recommend(user_ids, k, filter_seen, histories)
        filled = names != None  # noqa: E711  (elementwise on an object array)
        rows, ranks = np.nonzero(filled)
        return pd.DataFrame(
            {
                "user_id": np.asarray(wanted, dtype=object)[rows],
                "rank": ranks + 1,
                "item_id": names[filled],
                "score": scores[filled],
                "served_by": served[rows],
            }
        )

    def _recommend(
        self,
        user_ids: Sequence[object] | object,
        k: int,
        filter_seen: bool,
        histories: Mapping[object, Sequence[object]] | None,
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """``(user ids, item ids, scores, served by)`` for every user, 2-d."""
        model = self._check_fitted()
        wanted = list(normalize_ids(user_ids, "user_ids"))
        k = self._check_k(k)
        histories = self._histories(histories)
        index = self._user_lookup.get_indexer(wanted)
        trained = index >= 0
        trained[trained] = np.diff(model.train_.indptr)[index[trained]] > 0
        ids = np.full((len(wanted), k), -1, dtype=np.int64)
        scores = np.full((len(wanted), k), -np.inf, dtype=np.float32)
        if trained.any():
            rows = np.flatnonzero(trained)
            users = index[rows]
            ids[rows], scores[rows] = model.recommend(
                users,
                model.train_[users] if filter_seen else None,
                N=k,
                filter_already_liked_items=filter_seen,
            )
        served = np.where(trained, "model", "cold").astype(object)
        cold = np.flatnonzero(~trained)
        if len(cold):
            given = [histories.get(wanted[r], []) for r in cold]
            served[cold] = ["history" if h else "cold" for h in given]
            ids[cold], scores[cold] = self._llm_path(given, k, filter_seen)
            log.info(
                "%d of %d users served by the LLM path (%d from a given history, %d cold)",
                len(cold),
                len(wanted),
                int(sum(bool(h) for h in given)),
                int(sum(not h for h in given)),
            )
        names = np.where(ids >= 0, self.item_ids[np.maximum(ids, 0)], None)
        return wanted, names, scores, served

    def _llm_path(
        self, histories: list[list[object]], k: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed users by the user tower from their given histories and search the index."""
        model = self._check_fitted()
        rows = [self._items(h, "histories") for h in histories]
        matrix = sp.csr_matrix(
            (
                np.ones(sum(map(len, rows)), dtype=np.float32),
                np.concatenate(rows) if rows else np.zeros(0, np.int64),
                np.concatenate([[0], np.cumsum([len(r) for r in rows])]),
            ),
            shape=(len(rows), model.n_items),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        vectors = model.retriever.user_vectors_for(matrix)
        ids, scores = model.indexes["two_tower"].search(
            vectors, k, exclude=matrix if filter_seen else None
        )
        return ids, scores

    def similar_items(self, item_ids: Sequence[object] | object, k: int = 10):
        """The ``k`` items closest to each item in the two-tower space (the item itself first).

        Returns:
            ``(item_ids, scores)`` shaped ``(n, k)`` (``(k,)`` for one id).
        """
        model = self._check_fitted()
        k = self._check_k(k)
        scalar = isinstance(item_ids, str) or np.ndim(item_ids) == 0
        wanted = list(np.atleast_1d(np.asarray(item_ids, dtype=object)))
        ids, scores = model.similar_items(self._items(wanted, "item_ids"), N=k)
        ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
        names = np.where(ids >= 0, self.item_ids[np.maximum(ids, 0)], None)
        return (names[0], scores[0]) if scalar else (names, scores)

    # ---- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write ``config.json``, ``weights.safetensors`` and the FAISS ``index/`` as one
        artifact folder (see :func:`llmrec.artifacts.write_artifact`).

        An interrupted save leaves the previous model (or none), never a partial one.

        Args:
            path: the model folder.
            overwrite: replace a folder that is not an llmrec model folder.

        Raises:
            ArtifactError: ``path`` holds files llmrec did not write (without ``overwrite``).
        """
        from safetensors.numpy import save_file

        model = self._check_fitted()
        state = model._state()
        numeric = {k: np.ascontiguousarray(v) for k, v in state.items() if v.dtype.kind != "U"}
        strings = {k: v.tolist() for k, v in state.items() if v.dtype.kind == "U"}
        meta = {
            "format_version": FORMAT_VERSION,
            "llmrec_version": llmrec.__version__,
            "kind": model.kind,
            "config": self.config.model_dump(),
            "encoder_fingerprint": model.retriever.encoder_fingerprint,
            "n_items": model.n_items,
            "user_ids": [str(u) for u in self.user_ids],
            "item_ids": [str(i) for i in self.item_ids],
            "strings": strings,
            "data_checksum": self.data_checksum,
            "versions": library_versions(),
        }

        def write(tmp: Path) -> None:
            save_file(numeric, str(tmp / WEIGHTS_FILE))
            model.indexes["two_tower"].save(tmp / INDEX_DIR)
            write_json(tmp / CONFIG_FILE, meta)

        tie = {"n_users": len(self.user_ids), "n_items": model.n_items}
        return write_artifact(path, "model", write, overwrite=overwrite, meta=tie)

    @classmethod
    def load(cls, path: str | Path, check_encoder: bool = True) -> Recommender:
        """Load a folder written by :meth:`save`.

        Args:
            path: the model folder.
            check_encoder: load the configured text encoder and check that it is the one the
                model was trained with (the LLM path and new items depend on it).

        Raises:
            DataError: not a model folder, missing or corrupt files, or a different embedding
                model.
            ArtifactError: another format version, or a part that does not match its
                checksum (named).
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(path)
        open_artifact(folder, "model")
        meta = read_json_object(folder / CONFIG_FILE, folder_kind="an llmrec model folder")
        if meta.get("format_version") != FORMAT_VERSION or meta.get("kind") != TwoStage.kind:
            raise ArtifactError(
                f"{folder}: model format {meta.get('format_version')!r} of kind "
                f"{meta.get('kind')!r}; this llmrec {llmrec.__version__} reads format "
                f"{FORMAT_VERSION} of kind {TwoStage.kind!r}: retrain with `llmrec train`"
            )
        keys = ("config", "strings", "encoder_fingerprint", "user_ids", "item_ids", "data_checksum")
        missing = [key for key in keys if key not in meta]
        if missing:
            raise DataError(f"{folder}/{CONFIG_FILE} lacks {missing}: damaged or hand-edited")
        try:
            state: dict[str, np.ndarray] = load_file(str(folder / WEIGHTS_FILE))
        except (OSError, SafetensorError) as exc:
            raise DataError(f"{folder}/{WEIGHTS_FILE}: missing or corrupt ({exc})") from exc
        state.update({k: np.array(v, dtype=str) for k, v in meta["strings"].items()})
        out = cls(make_config(TwoStageConfig, meta["config"]))
        model = TwoStage(out.config)
        try:
            model._set_state(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise DataError(f"{folder}: weights do not match the config ({exc})") from exc
        fingerprint = meta["encoder_fingerprint"]
        if check_encoder:
            from llmrec.encoders.transformer import TransformerEncoder

            local = TransformerEncoder(out.config.retriever.text_model).fingerprint
            if local != fingerprint:
                raise DataError(
                    f"{folder}: trained with embedding model {fingerprint!r}, but the configured "
                    f"encoder is {local!r}; load it with that encoder or retrain"
                )
        n_users = len(model.retriever.user_factors)
        if len(meta["user_ids"]) != n_users or len(meta["item_ids"]) != model.n_items:
            raise DataError(
                f"{folder}: {CONFIG_FILE} lists {len(meta['user_ids'])} users and "
                f"{len(meta['item_ids'])} items, {WEIGHTS_FILE} holds {n_users} and "
                f"{model.n_items}: the parts come from different models"
            )
        index = ItemIndex.load(folder / INDEX_DIR, dimension=model.retriever.item_factors.shape[1])
        if not np.array_equal(index.ids, np.arange(model.n_items)):
            raise DataError(
                f"{folder}/{INDEX_DIR} holds {len(index)} items, not the model's {model.n_items}"
            )
        model.indexes["two_tower"] = index
        out.model = model
        out.user_ids = np.array(meta["user_ids"], dtype=object)
        out.item_ids = np.array(meta["item_ids"], dtype=object)
        out._user_lookup, out._item_lookup = pd.Index(out.user_ids), pd.Index(out.item_ids)
        out.data_checksum = meta["data_checksum"]
        return out
