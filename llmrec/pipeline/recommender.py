"""``Recommender``: a fitted model served over your own ids.

``fit`` turns item metadata into text and LLM embeddings (through the embedding cache), trains
the configured model (by default the two-stage one: TorchRec two-tower + ALS and EASE candidates
in FAISS, a TorchRec DLRM on top; or the two-tower alone) and keeps the candidate index;
``recommend`` and ``similar_items`` answer in item ids, implicit-style, as ``(n, k)`` numpy
arrays. Users the model never saw, saw without history, or who bring a fresh history, are
served by the LLM path: the user tower embeds the history given at call time (its items' text
embeddings and id bag) or, without one, its "no history" vector.
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

from llmrec.datasets.dataset import Dataset, normalize_ids
from llmrec.datasets.features import side_features
from llmrec.datasets.text import item_text, resolve_text_columns
from llmrec.errors import ConfigError, DataError
from llmrec.pipeline.requests import OnUnknown, check_histories, new_items, pick, rows_matrix
from llmrec.rankers.base import make_config
from llmrec.rankers.state import grown
from llmrec.rankers.two_stage import TwoStage, TwoStageConfig
from llmrec.rankers.two_tower import TwoTower, TwoTowerConfig
from llmrec.retrieval.index import ItemIndex

log = logging.getLogger(__name__)

Servable = TwoStage | TwoTower
"""The models a Recommender serves: both have a user tower for users they never saw."""
SERVABLE: dict[type, type[Servable]] = {TwoStageConfig: TwoStage, TwoTowerConfig: TwoTower}


def user_tower(model: Servable) -> TwoTower:
    """The two-tower that embeds users from a history: the model itself or its retriever."""
    return model.retriever if isinstance(model, TwoStage) else model


class Recommender:
    """Fit, serve, save and load an LLM-feature recommender over your own ids.

    Args:
        config: a :class:`~llmrec.rankers.two_stage.TwoStageConfig` (the default model) or a
            :class:`~llmrec.rankers.two_tower.TwoTowerConfig`; or keyword parameters of a
            two-stage config.
    """

    config: TwoStageConfig | TwoTowerConfig
    model: Servable | None
    served_by_: np.ndarray
    # Set by ``fit``, ``from_fitted`` and ``load``:
    user_ids: np.ndarray
    """The id of each user row, in the model's order (an object array of ``str``)."""
    item_ids: np.ndarray
    """The id of each item column, in the model's order (an object array of ``str``)."""
    index: ItemIndex
    """The two-tower item vectors' index that serves users by the LLM path."""
    seen_: sp.csr_matrix
    """The interactions fit saw (binary, users x items), never recommended back."""
    data_checksum: str
    _user_lookup: pd.Index
    _item_lookup: pd.Index

    def __init__(self, config: TwoStageConfig | TwoTowerConfig | None = None, **params: Any):
        if config is not None and params:
            raise ConfigError("pass either a config object or keyword parameters, not both")
        if config is not None and type(config) not in SERVABLE:
            raise ConfigError(
                f"Recommender serves {[c.__name__ for c in SERVABLE]}, got {type(config).__name__}"
            )
        self.config = config if config is not None else make_config(TwoStageConfig, params)
        self.model = None
        self.served_by_ = np.array([], dtype=object)

    @classmethod
    def from_fitted(
        cls,
        model: Servable,
        user_ids: Sequence[object] | np.ndarray,
        item_ids: Sequence[object] | np.ndarray,
        seen: sp.csr_matrix,
        data_checksum: str,
    ) -> Recommender:
        """Serve a model fitted elsewhere (``fit_distributed``, your own loop) by id.

        Args:
            model: a fitted two-stage or two-tower model.
            user_ids: the id of each user row, in the model's order.
            item_ids: the id of each item column, in the model's order.
            seen: the interactions it was fitted on (users x items), never recommended back.
            data_checksum: the training data's checksum, recorded with the model.
        """
        if model.n_items == 0:
            raise DataError(f"{type(model).__name__} is not fitted")
        seen = sp.csr_matrix(seen, dtype=np.float32)
        n_users = len(user_tower(model).user_factors)
        if seen.shape != (n_users, model.n_items) or len(user_ids) != n_users:
            raise DataError(
                f"{len(user_ids)} user ids, {len(item_ids)} item ids and seen of shape "
                f"{seen.shape} for a model of {n_users} users and {model.n_items} items"
            )
        if len(item_ids) != model.n_items:
            raise DataError(f"{len(item_ids)} item ids for a model of {model.n_items} items")
        out = cls(model.config)
        out.model = model
        out.user_ids = np.asarray(normalize_ids(list(user_ids), "user_ids"), dtype=object)
        out.item_ids = np.asarray(normalize_ids(list(item_ids), "item_ids"), dtype=object)
        out._user_lookup, out._item_lookup = pd.Index(out.user_ids), pd.Index(out.item_ids)
        seen.data[:] = 1.0
        out.seen_ = seen
        out.data_checksum = data_checksum
        if isinstance(model, TwoStage):
            out.index = model.indexes["two_tower"]
        else:
            out.index = ItemIndex.build(model.item_factors, spec="Flat", normalize=False)
        return out

    # ---- fitting --------------------------------------------------------------------------

    def fit(
        self,
        train: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        text_columns: dict[str, str] | None = None,
        show_progress_bar: bool | None = None,
    ) -> Self:
        """Encode the items, train the model and build the candidate index.

        The two-stage ranker learns from a holdout of ``train`` itself (each user's latest
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
        model = SERVABLE[type(self.config)](self.config).fit(
            ratings,
            item_texts=item_text(data.items, columns).tolist(),
            features=side_features(data, data.interactions),
            show_progress_bar=show_progress_bar,
        )
        fitted = self.from_fitted(model, data.user_ids, data.item_ids, ratings, checksum)
        self.__dict__.update(fitted.__dict__)
        return self

    def add_items(
        self,
        items: pd.DataFrame,
        text_columns: dict[str, str] | None = None,
    ) -> Self:
        """Add items that were not in fit (new releases): the item tower embeds their text
        (and genres), they join the candidate index, and ``recommend`` can return them at
        once, with no refit. Their scores are those of items nobody interacted with yet.

        Args:
            items: item metadata with ``item_id`` and a title column (genres, year optional),
                one row per new item.
            text_columns: text role -> column overrides, as for :meth:`fit`.

        Raises:
            DataError: not a table, no rows, ids already known or repeated, no title.
            ConfigError: a candidate source that cannot take unseen items (nothing changes).
        """
        model = self._check_fitted()
        ids, texts, tags = new_items(items, text_columns, self._item_lookup)
        model.extend_catalogue(len(items), texts, tags)
        self.item_ids = np.concatenate([self.item_ids, np.asarray(ids, dtype=object)])
        self._item_lookup = pd.Index(self.item_ids)
        self.seen_ = grown(self.seen_, (self.seen_.shape[0], model.n_items))
        if isinstance(model, TwoStage):
            self.index = model.indexes["two_tower"]
        else:
            new = np.arange(model.n_items - len(items), model.n_items)
            self.index.add(model.item_factors[new], new)
        return self

    # ---- serving --------------------------------------------------------------------------

    def _check_fitted(self) -> Servable:
        if self.model is None:
            raise RuntimeError("Recommender is not fitted: call fit() or Recommender.load()")
        return self.model

    def knows(self, user_ids: Sequence[object]) -> np.ndarray:
        """Whether each user had interactions in fit (the model ranks them without a history).

        Returns:
            A boolean array, one entry per id.
        """
        self._check_fitted()
        index = self._user_lookup.get_indexer(list(normalize_ids(user_ids, "user_ids")))
        counts = np.diff(self.seen_.indptr)
        return (index >= 0) & (counts[np.maximum(index, 0)] > 0)

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

    def recommend(
        self,
        user_ids: Sequence[object] | object,
        k: int | None = None,
        filter_seen: bool | None = None,
        histories: Mapping[object, Sequence[object]] | None = None,
        *,
        filter_items: Sequence[object] | None = None,
        on_unknown: OnUnknown = "cold",
        N: int | None = None,
        filter_already_liked_items: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids per user.

        Args:
            user_ids: one user id or a sequence of them; unknown ids are allowed (see
                ``on_unknown``).
            k: items per user (default 10), at most the catalogue size; ``N`` is its alias.
            filter_seen: leave out the items the user interacted with, in fit or in the history
                given here (default True); ``filter_already_liked_items`` is its alias.
            histories: item ids per user id. A user given here is embedded by the user tower
                from this history (implicit's ``recalculate_user``), whether the model knows
                the user or not; the items fit saw for a known user stay filtered.
            filter_items: item ids never to return.
            on_unknown: ``cold`` serves users the model does not know (from ``histories`` or
                the "no history" vector); ``raise`` refuses them with a DataError.
            N: alias of ``k`` (implicit's name).
            filter_already_liked_items: alias of ``filter_seen`` (implicit's name).

        Returns:
            ``(item_ids, scores)``: object and float32 arrays of shape ``(n_users, k)``
            (``(k,)`` for a single user id). Slots that cannot be filled hold ``None`` and
            ``-inf``. ``served_by_`` then holds, per user, ``model`` (a trained user, ranked
            by the model), ``history`` (embedded by the user tower from ``histories``) or
            ``cold`` (no history at all: the user tower's "no history" vector).
            :meth:`recommend_df` returns the same with ``served_by`` as a column and sets no
            attribute.

        Raises:
            ConfigError: ``k`` not an integer in ``1..n_items``, or a value and its alias both.
            DataError: empty or missing user ids, unknown users with ``on_unknown="raise"``,
                unknown item ids in ``histories`` or ``filter_items``, or a history that is
                not a list of ids.
        """
        # np.ndim reads any object (a scalar is 0-d); numpy's stubs only ask for array-likes
        scalar = isinstance(user_ids, str) or np.ndim(user_ids) == 0  # type: ignore[arg-type]
        _, names, scores, served = self._recommend(
            user_ids, k, filter_seen, histories, filter_items, on_unknown, N,
            filter_already_liked_items,
        )  # fmt: skip
        self.served_by_ = served
        return (names[0], scores[0]) if scalar else (names, scores)

    def recommend_df(
        self,
        user_ids: Sequence[object] | object,
        k: int | None = None,
        filter_seen: bool | None = None,
        histories: Mapping[object, Sequence[object]] | None = None,
        *,
        filter_items: Sequence[object] | None = None,
        on_unknown: OnUnknown = "cold",
        N: int | None = None,
        filter_already_liked_items: bool | None = None,
    ) -> pd.DataFrame:
        """:meth:`recommend` as one table, LensKit's ``to_df`` style; it sets no attribute,
        so concurrent calls from several threads are safe. Arguments as for :meth:`recommend`.

        Returns:
            Columns ``user_id``, ``rank`` (1 = best), ``item_id``, ``score`` and ``served_by``
            (``model``, ``history`` or ``cold``); unfilled slots are left out.
        """
        wanted, names, scores, served = self._recommend(
            user_ids, k, filter_seen, histories, filter_items, on_unknown, N,
            filter_already_liked_items,
        )  # fmt: skip
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
        k: int | None,
        filter_seen: bool | None,
        histories: Mapping[object, Sequence[object]] | None,
        filter_items: Sequence[object] | None,
        on_unknown: OnUnknown,
        n: int | None,
        filter_already_liked_items: bool | None,
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """``(user ids, item ids, scores, served by)`` for every user, 2-d."""
        model = self._check_fitted()
        chosen = pick("k", k, "N", n)
        k = self._check_k(10 if chosen is None else chosen)
        filter_seen = bool(pick("filter_seen", filter_seen, "filter_already_liked_items",
                                filter_already_liked_items) in (None, True))  # fmt: skip
        if on_unknown not in ("cold", "raise"):
            raise ConfigError(f"on_unknown must be 'cold' or 'raise', got {on_unknown!r}")
        wanted = list(normalize_ids(user_ids, "user_ids"))
        given = check_histories(histories)
        blocked: np.ndarray | list[int] = (
            self._items(list(filter_items), "filter_items") if filter_items else []
        )
        index = self._user_lookup.get_indexer(wanted)
        if on_unknown == "raise" and (index < 0).any():
            unknown = [u for u, i in zip(wanted, index, strict=True) if i < 0][:5]
            raise DataError(f"unknown user id(s) {unknown} (on_unknown='raise')")
        history_rows = [self._items(given.get(u, []), "histories") for u in wanted]
        fit_rows = [
            self.seen_.indices[self.seen_.indptr[i] : self.seen_.indptr[i + 1]]
            if i >= 0
            else np.zeros(0, np.int64)
            for i in index
        ]
        exclude = rows_matrix(
            [
                np.concatenate([f, h, blocked]) if filter_seen else np.asarray(blocked, np.int64)
                for f, h in zip(fit_rows, history_rows, strict=True)
            ],
            model.n_items,
        )
        # A known user with interactions is ranked by the model, unless a fresh history came.
        has_rows = np.array([len(f) > 0 for f in fit_rows], dtype=bool)
        by_model = has_rows & ~np.isin(np.asarray(wanted, dtype=object), list(given))
        ids = np.full((len(wanted), k), -1, dtype=np.int64)
        scores = np.full((len(wanted), k), -np.inf, dtype=np.float32)
        if by_model.any():
            rows = np.flatnonzero(by_model)
            ids[rows], scores[rows] = model.recommend(
                index[rows], exclude[rows], N=k, filter_already_liked_items=True
            )
        served = np.where(by_model, "model", "cold").astype(object)
        rest = np.flatnonzero(~by_model)
        if len(rest):
            from_history = np.array([len(history_rows[r]) > 0 for r in rest])
            served[rest] = np.where(from_history, "history", "cold")
            vectors = user_tower(model).user_vectors_for(
                rows_matrix([history_rows[r] for r in rest], model.n_items)
            )
            ids[rest], scores[rest] = self.index.search(vectors, k, exclude=exclude[rest])
            log.info(
                "%d of %d users served by the LLM path (%d from a given history, %d cold)",
                len(rest),
                len(wanted),
                int(from_history.sum()),
                int((~from_history).sum()),
            )
        # None fills the empty slots; numpy's stubs reject a None operand of np.where
        names = np.where(ids >= 0, self.item_ids[np.maximum(ids, 0)], None)  # type: ignore[call-overload]
        return wanted, names, scores, served

    def similar_items(self, item_ids: Sequence[object] | object, k: int = 10):
        """The ``k`` items closest to each item in the two-tower space (the item itself first).

        Returns:
            ``(item_ids, scores)`` shaped ``(n, k)`` (``(k,)`` for one id).
        """
        model = self._check_fitted()
        k = self._check_k(k)
        # np.ndim reads any object (a scalar is 0-d); numpy's stubs only ask for array-likes
        scalar = isinstance(item_ids, str) or np.ndim(item_ids) == 0  # type: ignore[arg-type]
        wanted = list(np.atleast_1d(np.asarray(item_ids, dtype=object)))
        ids, scores = model.similar_items(self._items(wanted, "item_ids"), N=k)
        ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
        # None fills the empty slots; numpy's stubs reject a None operand of np.where
        names = np.where(ids >= 0, self.item_ids[np.maximum(ids, 0)], None)  # type: ignore[call-overload]
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
        from llmrec.pipeline.persistence import save_folder

        self._check_fitted()
        return save_folder(self, Path(path), overwrite)

    @classmethod
    def load(cls, path: str | Path, check_encoder: bool = True) -> Recommender:
        """Load a folder written by :meth:`save` (a two-stage or a two-tower model).

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
        from llmrec.pipeline.persistence import load_folder

        return load_folder(cls, Path(path), check_encoder)
