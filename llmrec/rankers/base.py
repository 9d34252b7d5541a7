"""``RecommenderBase``: the one interface every model implements (after implicit's)."""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from llmrec.datasets.features import SideFeatures
from llmrec.errors import ConfigError, DataError
from llmrec.io import atomic_write
from llmrec.rankers.state import check_finite, check_shape
from llmrec.ranking import top_k

REGISTRY: dict[str, type[RecommenderBase]] = {}
TagBags = list[list[str]] | None
"""One bag of category tokens per item (``genre=Comedy``), or None."""


class RecommenderConfig(BaseModel):
    """Base of every model config: typed, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 42


def progress_enabled(show_progress_bar: bool | None) -> bool:
    """A library's plain on/off flag from ours: None means on when stderr is a terminal (as
    tqdm's ``disable=None`` does), not off."""
    if show_progress_bar is None:
        return sys.stderr.isatty()
    return bool(show_progress_bar)


ConfigT = TypeVar("ConfigT", bound=RecommenderConfig)


def make_config(cls: type[ConfigT], params: dict[str, Any]) -> ConfigT:
    """Validate ``params`` into ``cls``; unknown or ill-typed fields raise a ConfigError listing
    the valid ones."""
    try:
        return cls.model_validate(params)
    except ValidationError as exc:
        valid = ", ".join(cls.model_fields)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid {cls.__name__}: {problems} (valid fields: {valid})") from None


@dataclass(frozen=True)
class FitInputs:
    """What :meth:`RecommenderBase.fit` hands a model beside the matrix: the inputs it reads
    (None for those it does not) and the progress-bar choice."""

    valid: sp.csr_matrix | None = None
    item_texts: Sequence[str] | None = None
    features: SideFeatures | None = None
    show_progress_bar: bool | None = None


class RecommenderBase(ABC):
    """A recommender over a user x item interaction matrix.

    Subclasses set ``kind`` and ``config_class`` and implement ``fit``, ``score`` and the
    ``_state``/``_set_state`` pair that ``save``/``load`` use. Models with item vectors get
    ``similar_items`` by overriding ``item_vectors``.
    """

    kind: ClassVar[str]
    config_class: ClassVar[type[RecommenderConfig]] = RecommenderConfig
    uses_ratings: ClassVar[bool] = False
    """When True, ``fit`` gets ratings as matrix values instead of ones."""
    needs_item_texts: ClassVar[bool] = False
    """When True, ``fit`` must get ``item_texts``."""
    reads: ClassVar[frozenset[str]] = frozenset()
    """The inputs of :meth:`fit` beside the matrix this model uses: ``valid``, ``item_texts``,
    ``features``. A model declares them; ``fit`` passes it nothing else."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            REGISTRY[cls.kind] = cls

    def __init__(self, config: RecommenderConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError("pass either a config object or keyword parameters, not both")
        if config is not None and not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a config of type {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config if config is not None else make_config(self.config_class, params)
        self.n_items = 0

    def fit(
        self,
        user_items: sp.csr_matrix,
        *,
        valid: sp.csr_matrix | None = None,
        item_texts: Sequence[str] | None = None,
        features: SideFeatures | None = None,
        show_progress_bar: bool | None = None,
    ) -> Self:
        """Train on a CSR user x item matrix (values are interaction strengths).

        Each model reads only the inputs it declares in ``reads``; the others are not passed
        on (so ``valid`` cannot reach a model that does not say it stops on it).

        Args:
            user_items: training interactions, shape ``(n_users, n_items)``.
            valid: held-out interactions of the same shape, only for choosing and stopping
                (early stopping); no model learns parameters from them, so under the
                ``holdout`` protocol every model learns from exactly ``user_items``.
            item_texts: one text per item (in index order), for models that read items.
            features: item genre and user attribute bags, for models that embed them.
            show_progress_bar: show training progress; None shows it on a terminal.

        Returns:
            self
        """
        reads = self.reads
        inputs = FitInputs(
            valid=valid if "valid" in reads else None,
            item_texts=item_texts if "item_texts" in reads else None,
            features=features if "features" in reads else None,
            show_progress_bar=show_progress_bar,
        )
        return self._fit(user_items, inputs)

    @abstractmethod
    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        """Train on ``user_items`` with the inputs this model ``reads`` (see :meth:`fit`)."""

    @abstractmethod
    def score(self, userids: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: float32 ``(len(userids), n_items)``."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Arrays that, with the config, restore the fitted model."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from ``_state``'s arrays."""

    def refit_overrides(self) -> dict[str, Any]:
        """Config overrides that refit this model without ``valid``, as ``fit`` chose with it.

        The ``refit`` protocol fits again on train+valid with no held-out data left to stop
        on, so a model that early-stopped on valid reports the epochs it kept here.
        """
        return {}

    def extend_catalogue(
        self,
        n_new: int,
        item_texts: Sequence[str] | None = None,
        item_tags: TagBags = None,
    ) -> None:
        """Add ``n_new`` items that had no interactions in fit (their indices follow the
        current ones), scored as this model scores such an item: zero factors for ALS/BPR,
        zero weights for EASE and item-kNN, zero counts for popularity, their text for the
        models that read text.

        Args:
            n_new: how many items (at least one).
            item_texts: their texts, for models with ``needs_item_texts``.
            item_tags: their category bags, for models that embed them.

        Raises:
            ConfigError: this model cannot take items it never saw.
            DataError: a count that does not match the texts or bags.
        """
        if not self.can_extend_catalogue():
            raise ConfigError(f"{type(self).__name__} cannot add items it never saw; refit it")
        self._check_fitted()
        if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 1:
            raise DataError(f"n_new must be a positive count, got {n_new!r}")
        for name, given in (("item_texts", item_texts), ("item_tags", item_tags)):
            if given is not None and len(given) != n_new:
                raise DataError(f"{len(given)} {name} for {n_new} new items")
        self._extend_items(n_new, item_texts, item_tags)

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        """Grow the catalogue (see :meth:`extend_catalogue`); models that can override it."""
        raise ConfigError(f"{type(self).__name__} cannot add items it never saw; refit it")

    @classmethod
    def can_extend_catalogue(cls) -> bool:
        return cls._extend_items is not RecommenderBase._extend_items

    def item_vectors(self) -> np.ndarray:
        """Item embedding matrix ``(n_items, d)``; models without one raise ConfigError."""
        raise ConfigError(f"{type(self).__name__} has no item vectors, so no similar_items")

    def _check_item_texts(
        self, user_items: sp.spmatrix, item_texts: Sequence[str] | None
    ) -> Sequence[str]:
        """For models with ``needs_item_texts``: one text per item column (returned, so callers
        hold a non-None sequence), or a DataError."""
        name = type(self).__name__
        if item_texts is None:
            raise DataError(f"{name} needs item_texts: fit(user_items, item_texts=...)")
        if len(item_texts) != user_items.shape[1]:
            raise DataError(
                f"{len(item_texts)} item texts for a matrix of {user_items.shape[1]} items"
            )
        return item_texts

    def _check_fitted(self) -> None:
        if not self.n_items:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    def recommend(
        self,
        userid: int | np.ndarray,
        user_items: sp.csr_matrix | None = None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-N items for one user or a batch.

        Args:
            userid: a user index or an array of them.
            user_items: one row per user in ``userid`` of items they interacted with; needed
                when ``filter_already_liked_items``.
            N: how many items.
            filter_already_liked_items: drop the items in ``user_items``.
            items: restrict the ranking to these item indices.

        Returns:
            ``(ids, scores)``: shape ``(N,)`` for a scalar userid, ``(n_users, N)`` for an array;
            ``-1`` ids (and -inf scores) fill slots when fewer than N items are rankable.
        """
        self._check_fitted()
        scalar = np.ndim(userid) == 0
        users = np.atleast_1d(np.asarray(userid, dtype=np.int64))
        scores = self.score(users).astype(np.float32, copy=True)
        if filter_already_liked_items:
            if user_items is None:
                raise ConfigError(
                    "filter_already_liked_items=True needs user_items (one row per user)"
                )
            if user_items.shape != (len(users), self.n_items):
                raise DataError(
                    f"user_items has shape {user_items.shape}, expected one row per user "
                    f"({len(users)}, {self.n_items})"
                )
            liked = sp.csr_matrix(user_items)
            scores[np.repeat(np.arange(len(users)), np.diff(liked.indptr)), liked.indices] = -np.inf
        if items is not None:
            mask = np.ones(self.n_items, dtype=bool)
            mask[np.asarray(items)] = False
            scores[:, mask] = -np.inf
        ids = top_k(scores, N, users)
        out = np.where(ids >= 0, np.take_along_axis(scores, np.maximum(ids, 0), axis=1), -np.inf)
        return (ids[0], out[0]) if scalar else (ids, out)

    def similar_items(self, itemid: int | np.ndarray, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The N items most cosine-similar to each given item (the item itself included first)."""
        self._check_fitted()
        vectors = self.item_vectors()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(norms, 1e-12)
        scalar = np.ndim(itemid) == 0
        query_ids = np.atleast_1d(np.asarray(itemid, dtype=np.int64))
        scores = unit[query_ids] @ unit.T
        ids = top_k(scores, N, query_ids)
        out = np.take_along_axis(scores, np.maximum(ids, 0), axis=1)
        return (ids[0], out[0]) if scalar else (ids, out)

    def save(self, path: str | Path) -> Path:
        """Save to an ``.npz`` file (no pickle), atomically."""
        self._check_fitted()
        arrays = {f"state_{k}": v for k, v in self._state().items()}
        meta = {"kind": self.kind, "config": self.config.model_dump(), "n_items": self.n_items}
        arrays["meta"] = np.array(json.dumps(meta))
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        return atomic_write(path, write)

    @staticmethod
    def load(path: str | Path) -> RecommenderBase:
        """Load any model saved by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            state = {
                k.removeprefix("state_"): data[k] for k in data.files if k.startswith("state_")
            }
        if meta["kind"] not in REGISTRY:
            raise ConfigError(
                f"{path}: unknown model kind {meta['kind']!r}; known: {list(REGISTRY)}"
            )
        cls = REGISTRY[meta["kind"]]
        model = cls(make_config(cls.config_class, meta["config"]))
        model._set_state(state)
        model.n_items = int(meta["n_items"])
        return model


class FactorModel(RecommenderBase):
    """A model that scores by the dot product of user and item factors."""

    user_factors: np.ndarray
    item_factors: np.ndarray

    def score(self, userids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_factors[np.asarray(userids)] @ self.item_factors.T

    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        # An item with no interactions gets zero factors from a regularised fit.
        zeros = np.zeros((n_new, self.item_factors.shape[1]), dtype=self.item_factors.dtype)
        self.item_factors = np.concatenate([self.item_factors, zeros])
        self.n_items += n_new

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        users, items = state["user_factors"], state["item_factors"]
        check_shape("user_factors", users, (None, None))
        check_shape("item_factors", items, (None, users.shape[1]))
        check_finite("user_factors", users)
        check_finite("item_factors", items)
        self.user_factors, self.item_factors = users, items
