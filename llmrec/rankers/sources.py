"""Candidate sources of the two-stage model: any registered recommender, as a list.

LensKit composes a pipeline from components; here the first stage is the two-tower (it also
embeds users for the LLM path) plus a list of sources, each any :class:`RecommenderBase` kind
(ALS, EASE, item-kNN, BPR, a RecBole model, ...). A factor model's item vectors go into a FAISS
index; any other model is asked for its full score rows. Each source adds its candidates to the
union the ranker orders, and two ranker features: ``<name>_score`` and ``<name>_rank``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from llmrec.errors import ConfigError, DataError
from llmrec.rankers.base import REGISTRY, FactorModel, RecommenderBase, make_config
from llmrec.ranking import top_k
from llmrec.retrieval.index import ItemIndex

RESERVED = ("two_tower", "two_stage")
"""Kinds that cannot be a source: the two-tower is always the first one, and a two-stage model
inside another would recurse."""

PairScores = Callable[[np.ndarray], np.ndarray]
"""Maps candidate ids ``(n, C)`` (no -1) of the users retrieved for to their scores ``(n, C)``."""


class SourceConfig(BaseModel):
    """One candidate source: a name for its ranker features, a model kind and its parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in RESERVED:
            raise ValueError(
                f"source name {name!r} must be lower-case letters, digits and _ (not "
                f"{' or '.join(RESERVED)})"
            )
        return name

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        if kind not in REGISTRY or kind in RESERVED:
            known = sorted(set(REGISTRY) - set(RESERVED))
            raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(known)}")
        return kind

    @model_validator(mode="after")
    def _params(self) -> SourceConfig:
        self.build()  # wrong parameters fail with the config, not halfway through a fit
        return self

    def build(self) -> RecommenderBase:
        """An unfitted model of this kind with these parameters (checked)."""
        cls = REGISTRY[self.kind]
        return cls(make_config(cls.config_class, self.params))


def legacy_sources(data: dict[str, Any]) -> dict[str, Any]:
    """Configs written before ``sources`` existed named ALS ``cf`` and EASE ``ease``; turn
    those keys into the source list they meant (ALS, then EASE unless ``ease`` is None)."""
    if "sources" in data or not ({"cf", "ease"} & set(data)):
        return data
    data = dict(data)
    cf, ease = data.pop("cf", None), data.pop("ease", {})
    sources = [{"name": "als", "kind": "als", "params": cf if cf is not None else DEFAULT_ALS}]
    if ease is not None:
        sources.append({"name": "ease", "kind": "ease", "params": ease})
    return {**data, "sources": sources}


DEFAULT_ALS = {"factors": 32, "regularization": 0.01, "alpha": 2.0}
"""ALS at its tuned ml-100k preset."""


def default_sources() -> list[SourceConfig]:
    return [
        SourceConfig(name="als", kind="als", params=DEFAULT_ALS),
        SourceConfig(name="ease", kind="ease"),
    ]


def check_unique(sources: Sequence[SourceConfig]) -> None:
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"source names must be unique; repeated: {repeated}")


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


class CandidateSource:
    """A fitted source: its model and, for factor models, a FAISS index of its item vectors."""

    def __init__(self, config: SourceConfig, model: RecommenderBase | None = None) -> None:
        self.config = config
        self.model = model if model is not None else config.build()
        self.index: ItemIndex | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def fit(
        self, ratings: sp.csr_matrix, item_texts: Sequence[str] | None, index_spec: str
    ) -> CandidateSource:
        """Fit on ``ratings`` (ones for models that read no ratings) and index the vectors."""
        model = self.model
        matrix = ratings if model.uses_ratings else binary(ratings)
        model.fit(matrix, item_texts=item_texts if model.needs_item_texts else None)
        self.build_index(index_spec)
        return self

    def build_index(self, index_spec: str) -> None:
        if isinstance(self.model, FactorModel):
            self.index = ItemIndex.build(self.model.item_factors, spec=index_spec, normalize=False)

    def retrieve(
        self, users: np.ndarray, k: int, seen: sp.csr_matrix
    ) -> tuple[np.ndarray, PairScores]:
        """Each user's top ``k`` items outside ``seen`` (-1 pads), and their pair scorer."""
        model = self.model
        if isinstance(model, FactorModel) and self.index is not None:
            vectors = model.user_factors[users]
            ids, _ = self.index.search(vectors, k, exclude=seen)
            factors = model.item_factors
            return ids, lambda items: np.einsum("nd,ncd->nc", vectors, factors[items])
        scores = model.score(users).astype(np.float32, copy=True)
        scores[np.repeat(np.arange(len(users)), np.diff(seen.indptr)), seen.indices] = -np.inf
        ids = top_k(scores, k, users)
        finite = np.nan_to_num(scores, neginf=0.0)
        return ids, lambda items: np.take_along_axis(finite, items, axis=1)


def legacy_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weights saved before the source list (``cf.*`` for ALS, ``ease.weights`` with the
    train matrix kept once) under the keys the ``als`` and ``ease`` sources read now."""
    if not any(k.startswith(("cf.", "ease.")) for k in state):
        return state
    out = {k: v for k, v in state.items() if not k.startswith(("cf.", "ease."))}
    out.update({f"source.als.{k[3:]}": v for k, v in state.items() if k.startswith("cf.")})
    if "ease.weights" in state:
        out["source.ease.weights"] = state["ease.weights"]
        indptr, indices = state.get("train_indptr"), state.get("train_indices")
        if indptr is not None and indices is not None:
            shape = (len(indptr) - 1, len(state["ease.weights"]))
            out.update(
                {
                    "source.ease.train_data": np.ones(len(indices), np.float32),
                    "source.ease.train_indices": indices,
                    "source.ease.train_indptr": indptr,
                    "source.ease.train_shape": np.asarray(shape, dtype=np.int64),
                }
            )
    return out


def check_source(source: CandidateSource, n_users: int, n_items: int) -> None:
    """A loaded source must cover the model's users and items (named, not a crash later)."""
    from llmrec.rankers.state import check_shape

    model, name = source.model, source.name
    if isinstance(model, FactorModel):
        check_shape(f"source.{name}.user_factors", model.user_factors, (n_users, None))
        check_shape(f"source.{name}.item_factors", model.item_factors, (n_items, None))
    train = getattr(model, "train_", None)
    if train is not None and train.shape != (n_users, n_items):
        raise DataError(
            f"saved source.{name} was fitted on {train.shape[0]} users x {train.shape[1]} "
            f"items; the model has {n_users} x {n_items}"
        )
