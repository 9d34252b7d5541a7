"""Two stages: FAISS candidates from the two-tower model and a list of sources, ordered by a
TorchRec DLRM.

Stage one retrieves the top ``candidates`` items of the two-tower (its item vectors in a FAISS
index) and of each configured source (:mod:`llmrec.rankers.sources`: any model kind; ALS and
EASE by default; the retrieval study's candidate-recall table is why several, and why a few
hundred). Stage two is torchrec's ``DLRM``: sparse features (item genres, user attributes) in
an ``EmbeddingBagCollection`` and dense features of the pair (every source's score and rank,
the text similarity of the user's history and the item, popularity, activity, and, with
timestamps, the similarity to the user's last items and how long before the user's last visit
the item was last seen), trained listwise on a holdout of fit's own interactions that the first
stage never saw (each user's latest ``holdout`` share when timestamps exist, else a seeded
random share); then stage one refits on all of them (``refit_stage_one``). ``valid`` is never
learned from, so the model sees exactly the interactions every other model sees. Items outside
the candidates rank below every candidate, in two-tower order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from llmrec.datasets.features import SideFeatures
from llmrec.devices import resolve_device, torch_threads
from llmrec.encoders.profiles import history_weights, pool_item_embeddings
from llmrec.errors import ConfigError, DataError
from llmrec.rankers.bags import padded_bags, padded_kjt
from llmrec.rankers.base import FitInputs, RecommenderBase, RecommenderConfig, TagBags
from llmrec.rankers.dlrm import build_ranker
from llmrec.rankers.listwise import holdout_split, labels, ranks, union
from llmrec.rankers.sources import (
    CandidateSource,
    SourceConfig,
    binary,
    check_source,
    default_sources,
    legacy_sources,
    legacy_state,
)
from llmrec.rankers.state import grown
from llmrec.rankers.training import as_tensor, train_epochs
from llmrec.rankers.two_tower import TwoTower, TwoTowerConfig
from llmrec.ranking import ndcg
from llmrec.retrieval.index import ItemIndex

log = logging.getLogger(__name__)

PAIR_FEATURES = (
    "text_similarity",
    "log_popularity",
    "log_activity",
    "recent_similarity",
    "staleness_days",
)
RECENT_ITEMS = 5


class TwoStageConfig(RecommenderConfig):
    """Both stages: the retrievers, the candidate count and the DLRM ranker."""

    retriever: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    """The first source, always there: its user tower also serves users by their history."""
    sources: list[SourceConfig] = Field(default_factory=default_sources)
    """The other candidate sources, in order: any model kind (ALS at its tuned ml-100k preset
    and EASE by default). The legacy keys ``cf`` (ALS parameters) and ``ease`` (EASE
    parameters, or None for no EASE) are read into this list."""
    llm_features: bool = True
    """LLM text features in both stages (the two-tower's text inputs, the text-similarity
    feature); False is the ablation without them."""
    refit_stage_one: bool = True
    """After the ranker is trained, refit the retrievers on all of fit's interactions (the
    two-tower for the epoch count its early stop chose)."""
    candidates: PositiveInt = 200
    """Candidates per source; the union goes to the ranker."""
    holdout: float = Field(default=0.1, gt=0, lt=1)
    """Share of each user's interactions held out to train the ranker."""
    holdout_order: Literal["latest", "random"] = "latest"
    """Which interactions the ranker's holdout takes: each user's latest (the next-item task a
    temporal split tests; needs timestamps, else random) or a seeded random share (the task a
    random split tests)."""
    index_spec: str = "Flat"
    dim: PositiveInt = 16
    item_ids: bool = False
    """An item id table in the ranker. Off by default: with one held-out item per user it
    memorises instead of generalising; genre and attribute bags are always used."""
    epochs: PositiveInt = 30
    learning_rate: PositiveFloat = 0.003
    weight_decay: NonNegativeFloat = 1e-4
    stop_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Share of the ranker's users kept aside for its early stopping."""
    batch_users: PositiveInt = 32
    patience: PositiveInt = 3
    num_threads: PositiveInt | None = None
    """Torch threads while fitting both stages (None: torch's default, one per core)."""
    device: str | None = None
    """Where both stages train (``cpu``, ``cuda``, ``cuda:N``; None: a GPU when torch sees one);
    it overrides ``retriever.device``. The fitted model serves on the CPU."""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return legacy_sources(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _unique_sources(self) -> Self:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        return self


def dense_features(config: TwoStageConfig) -> tuple[str, ...]:
    """The ranker's dense inputs under this config: each source's score and rank (the
    two-tower first), then the pair features."""
    sources = ["two_tower", *(source.name for source in config.sources)]
    ranked = tuple(f"{name}_{what}" for name in sources for what in ("score", "rank"))
    pair = tuple(f for f in PAIR_FEATURES if config.llm_features or f != "text_similarity")
    return ranked + pair


class TwoStage(RecommenderBase):
    """FAISS two-tower + source candidates, ordered by a TorchRec DLRM (see module docstring)."""

    kind = "two_stage"
    reads = frozenset({"item_texts", "features"})
    config_class = TwoStageConfig
    config: TwoStageConfig
    uses_ratings = True
    needs_item_texts = True
    _device: Any = None  # the ranker's torch device while fitting; None means the CPU

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        item_texts = inputs.item_texts
        features = inputs.features
        show_progress_bar = inputs.show_progress_bar
        with torch_threads(self.config.num_threads):
            return self._train(user_items, item_texts, features, show_progress_bar)

    def _train(
        self,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str] | None,
        features: SideFeatures | None,
        show_progress_bar: bool | None,
    ) -> Self:
        import torch

        c = self.config
        device = torch.device(resolve_device(c.device))  # a bad name fails before any work
        self._check_item_texts(user_items, item_texts)
        user_items = sp.csr_matrix(user_items, dtype=np.float32)
        if user_items.nnz == 0:
            raise DataError("empty train set: no interactions to learn from")
        timestamps = features.timestamps if features is not None else None
        order_by = timestamps if c.holdout_order == "latest" else None
        train, holdout = holdout_split(user_items, c.holdout, c.seed, order_by)
        self._fit_stage_one(train, holdout, item_texts, features, show_progress_bar)
        self.n_items = user_items.shape[1]
        self.user_tags = self._user_tag_rows(features, user_items.shape[0])

        users = np.flatnonzero(np.diff(holdout.indptr) > 0)
        candidates, dense = self._pairs(users)
        targets = labels(candidates, holdout[users])
        useful = targets.any(axis=1)
        users, candidates, dense, targets = (
            users[useful],
            candidates[useful],
            dense[useful],
            targets[useful],
        )
        if len(users) < 2:
            raise DataError(
                "too few held-out interactions among the candidates to train the ranker "
                f"({len(users)} users); give fit more interactions per user or raise holdout"
            )
        flat = dense.reshape(-1, dense.shape[-1])
        self.dense_mean = flat.mean(axis=0).astype(np.float32)
        self.dense_std = np.maximum(flat.std(axis=0), 1e-6).astype(np.float32)
        rng = np.random.default_rng(c.seed)
        order = rng.permutation(len(users))
        n_stop = max(1, int(len(users) * c.stop_fraction))
        stop, fit_rows = order[:n_stop], order[n_stop:]

        torch.manual_seed(c.seed)
        self._device = device
        self._ranker = self._new_ranker().to(self._device)
        optimizer = torch.optim.Adam(
            self._ranker.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
        )

        def run_epoch(epoch: int) -> float:
            self._ranker.train()
            losses = []
            for lo in range(0, len(fit_rows), c.batch_users):
                rows = fit_rows[lo : lo + c.batch_users]
                logits = self._logits(users[rows], candidates[rows], dense[rows])
                target = as_tensor(targets[rows], self._device)
                log_p = torch.log_softmax(logits, dim=1)
                loss = -(log_p * target).sum() / target.sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            rng.shuffle(fit_rows)
            return float(np.mean(losses))

        def validate() -> float:
            return self._stop_ndcg(users[stop], candidates[stop], dense[stop], holdout[users[stop]])

        run = train_epochs(
            self._ranker,
            run_epoch,
            validate,
            epochs=c.epochs,
            patience=c.patience,
            desc="ranker",
            show_progress_bar=show_progress_bar,
        )
        self.history_ = run.history
        self._ranker = self._ranker.to("cpu").eval()
        self._device = None
        if c.refit_stage_one:
            epochs = self.retriever.refit_overrides()
            self._fit_stage_one(user_items, None, item_texts, features, show_progress_bar, epochs)
        else:
            # Serve with the holdout-blind retrievers, but never recommend what fit was given.
            self._set_train(user_items)
            self._set_times(user_items, timestamps)
        return self

    # ---- stage one ------------------------------------------------------------------------

    def _fit_stage_one(
        self,
        train: sp.csr_matrix,
        stop: sp.csr_matrix | None,
        item_texts: Sequence[str] | None,
        features: SideFeatures | None,
        show_progress_bar: bool | None,
        retriever_overrides: dict | None = None,
    ) -> None:
        """Fit the retrievers on ``train`` (the two-tower early-stopping on ``stop``) and index
        their item vectors."""
        c = self.config
        retriever_config = c.retriever.model_copy(
            update={
                **(retriever_overrides or {}),
                **({} if c.llm_features else {"use_text": False}),
                **({} if c.device is None else {"device": c.device}),
            }
        )
        self.retriever = TwoTower(retriever_config).fit(
            train,
            valid=stop,
            item_texts=item_texts,
            features=features,
            show_progress_bar=show_progress_bar,
        )
        self.sources = [
            CandidateSource(source).fit(train, item_texts, c.index_spec) for source in c.sources
        ]
        self._set_train(train)
        self._set_times(train, features.timestamps if features is not None else None)
        self._build_indexes()

    def _set_train(self, train: sp.csr_matrix) -> None:
        self.train_ = binary(train)
        self.popularity = np.asarray(self.train_.sum(axis=0)).ravel().astype(np.float32)

    def _set_times(self, train: sp.csr_matrix, timestamps: sp.csr_matrix | None) -> None:
        """Each user's last items and time, each item's last time (zeros without timestamps)."""
        n_users, n_items = train.shape
        self.recent = np.full((n_users, RECENT_ITEMS), -1, dtype=np.int64)
        self.user_last = np.zeros(n_users, dtype=np.float64)
        self.item_last = np.zeros(n_items, dtype=np.float64)
        if timestamps is None:
            return
        times = sp.csr_matrix(binary(train).multiply(sp.csr_matrix(timestamps)))
        times.sort_indices()
        for user in range(n_users):
            lo, hi = times.indptr[user], times.indptr[user + 1]
            if hi > lo:
                order = np.argsort(-times.data[lo:hi], kind="stable")[:RECENT_ITEMS]
                self.recent[user, : len(order)] = times.indices[lo:hi][order]
                self.user_last[user] = times.data[lo:hi].max()
        coo = times.tocoo()
        np.maximum.at(self.item_last, coo.col, coo.data)

    def _build_indexes(self) -> None:
        """FAISS indexes of the two-tower's and every factor source's item vectors."""
        spec = self.config.index_spec
        self.indexes = {
            "two_tower": ItemIndex.build(self.retriever.item_factors, spec=spec, normalize=False)
        }
        for source in self.sources:
            if source.index is None:
                source.build_index(spec)
            if source.index is not None:
                self.indexes[source.name] = source.index

    def _user_tag_rows(self, features: SideFeatures | None, n_users: int) -> np.ndarray | None:
        vocab = self.retriever.user_tag_vocab
        if not len(vocab) or features is None or features.user_tags is None:
            return None
        index = {t: i for i, t in enumerate(vocab)}
        return padded_bags([[index[t] for t in bag if t in index] for bag in features.user_tags])

    def _pairs(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidates ``(n, C)`` (-1 pads) and their dense features ``(n, C, F)``."""
        k = min(self.config.candidates, self.n_items)
        seen = self.train_[users]
        tt_vectors = self.retriever.user_factors[users]
        tt_ids, _ = self.indexes["two_tower"].search(tt_vectors, k, exclude=seen)
        candidates, retrieved = tt_ids, []
        for source in self.sources:
            ids, pair_scores = source.retrieve(users, k, seen)
            candidates = union(candidates, ids)
            retrieved.append((source.name, ids, pair_scores))
        if len(self.sources) > 1:  # slots no user fills, from the duplicates of three lists
            candidates = candidates[:, (candidates >= 0).any(axis=0)]
        safe = np.maximum(candidates, 0)
        user_text, _ = pool_item_embeddings(history_weights(seen, "mean"), self.retriever.item_text)
        activity = np.log1p(np.diff(seen.indptr)).astype(np.float32)
        recent = self.recent[users]
        recent_vectors = np.where(
            (recent >= 0)[..., None], self.retriever.item_factors[np.maximum(recent, 0)], 0.0
        ).sum(axis=1) / np.maximum((recent >= 0).sum(axis=1, keepdims=True), 1)
        staleness = np.maximum(self.user_last[users][:, None] - self.item_last[safe], 0) / 86400
        columns = {
            "two_tower_score": np.einsum(
                "nd,ncd->nc", tt_vectors, self.retriever.item_factors[safe]
            ),
            "two_tower_rank": np.log1p(ranks(candidates, tt_ids)),
            "text_similarity": np.einsum(
                "nd,ncd->nc", np.nan_to_num(user_text), self.retriever.item_text[safe]
            ),
            "log_popularity": np.log1p(self.popularity[safe]),
            "log_activity": np.broadcast_to(activity[:, None], candidates.shape),
            "recent_similarity": np.einsum(
                "nd,ncd->nc", recent_vectors, self.retriever.item_factors[safe]
            ),
            "staleness_days": np.log1p(np.where(self.item_last[safe] > 0, staleness, 0.0)),
        }
        for name, ids, pair_scores in retrieved:
            columns[f"{name}_score"] = pair_scores(safe)
            columns[f"{name}_rank"] = np.log1p(ranks(candidates, ids))
        dense = np.stack([columns[name] for name in dense_features(self.config)], axis=-1)
        return candidates, dense.astype(np.float32)

    # ---- stage two ------------------------------------------------------------------------

    def _logits(self, users: np.ndarray, candidates: np.ndarray, dense: np.ndarray):
        """Ranker logits ``(n, C)``; padding slots get -1e9."""

        n, width = candidates.shape
        items = candidates.reshape(-1)
        valid = items >= 0
        safe = np.maximum(items, 0)
        # Items never seen in training have an untrained id row: leave their id bag empty.
        rows = {"item": np.where(self.popularity[safe] > 0, safe, -1)[:, None]}
        if self.user_tags is not None:
            rows["user_tags"] = np.repeat(self.user_tags[users], width, axis=0)
        if self.retriever.item_tags is not None:
            rows["item_tags"] = self.retriever.item_tags[safe]
        kjt = padded_kjt(self._ranker.feature_keys, rows, len(items))
        if self._device is not None:
            kjt = kjt.to(self._device)
        x = (dense.reshape(-1, dense.shape[-1]) - self.dense_mean) / self.dense_std
        logits = self._ranker(as_tensor(x.astype(np.float32), self._device), kjt).reshape(n, width)
        return logits.masked_fill(as_tensor(~valid.reshape(n, width), self._device), -1e9)

    def _new_ranker(self) -> Any:
        """The DLRM for this config and the retriever's vocabularies (weights unset)."""
        c, tower = self.config, self.retriever
        return build_ranker(
            c.dim,
            len(dense_features(c)),
            tower.n_id_items,  # the catalogue at fit: items added later have no id row
            len(tower.user_tag_vocab),
            len(tower.item_tag_vocab),
            c.item_ids,
        )

    def _rank_scores(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        candidates, dense = self._pairs(users)
        with torch.inference_mode():
            logits = self._logits(users, candidates, dense).numpy()
        return candidates, logits

    def _stop_ndcg(self, users, candidates, dense, truth: sp.csr_matrix) -> float:
        """NDCG@10 of the reranked candidates against every held-out item of these users."""
        import torch

        self._ranker.eval()
        with torch.inference_mode():
            logits = self._logits(users, candidates, dense).cpu().numpy()
        top = np.take_along_axis(candidates, np.argsort(-logits, axis=1)[:, :10], axis=1)
        return float(ndcg(labels(top, truth) > 0, np.diff(sp.csr_matrix(truth).indptr)).mean())

    def score(self, userids: np.ndarray) -> np.ndarray:
        """Ranker logits for each user's candidates; every other item scores below them all,
        ordered by the two-tower score (unit vectors, so within [-1, 1])."""
        self._check_fitted()
        users = np.asarray(userids, dtype=np.int64)
        out = self.retriever.score(users).astype(np.float32)
        for lo in range(0, len(users), 256):
            batch = users[lo : lo + 256]
            candidates, logits = self._rank_scores(batch)
            row, col = np.nonzero(candidates >= 0)
            floor = np.where(candidates >= 0, logits, np.inf).min(axis=1)
            out[lo : lo + len(batch)] = (floor - 2.0)[:, None] + out[lo : lo + len(batch)] / 2
            out[lo + row, candidates[row, col]] = logits[row, col]
        return out

    def item_vectors(self) -> np.ndarray:
        return self.retriever.item_factors

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        """Add items never seen in fit: the two-tower embeds them from their text, every
        source extends its catalogue (zero factors or weights: no interactions), and the
        ranker scores them from their dense and genre features (no id row).

        Raises:
            ConfigError: a source that cannot take unseen items (nothing is changed then).
            DataError: as :meth:`TwoTower.extend_catalogue`.
        """
        stuck = [s.name for s in self.sources if not s.model.can_extend_catalogue()]
        if stuck:
            raise ConfigError(f"source(s) {stuck} cannot add items they never saw; refit")
        self.retriever.extend_catalogue(n_new, texts, tags)
        for source in self.sources:
            source.model.extend_catalogue(n_new)
            source.index = None
        n = self.n_items + n_new
        self.train_ = grown(self.train_, (self.train_.shape[0], n))
        self.popularity = np.concatenate([self.popularity, np.zeros(n_new, np.float32)])
        self.item_last = np.concatenate([self.item_last, np.zeros(n_new)])
        self.n_items = n
        self._build_indexes()

    # ---- persistence ----------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        state = {f"retriever.{k}": v for k, v in self.retriever._state().items()}
        for source in self.sources:
            state.update({f"source.{source.name}.{k}": v for k, v in source.model._state().items()})
        state.update({f"ranker.{k}": v.numpy() for k, v in self._ranker.state_dict().items()})
        state.update(
            train_indptr=self.train_.indptr,
            train_indices=self.train_.indices,
            dense_mean=self.dense_mean,
            dense_std=self.dense_std,
            recent=self.recent,
            user_last=self.user_last,
            item_last=self.item_last,
        )
        if self.user_tags is not None:
            state["user_tags"] = self.user_tags
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        from llmrec.rankers.state import check_all_finite, check_csr, check_ids, check_shape

        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

        c = self.config
        # A damaged file must give an error, not NaN scores or a crash inside scipy/faiss/torch.
        check_all_finite(state)
        state = legacy_state(state)
        self.retriever = TwoTower(c.retriever)
        self.retriever._set_state(part("retriever."))
        self.retriever.n_items = len(self.retriever.item_factors)
        self.n_items = self.retriever.n_items
        n_users, n_items = len(self.retriever.user_factors), self.n_items
        self.sources = []
        for config in c.sources:
            source = CandidateSource(config)
            source.model._set_state(part(f"source.{config.name}."))
            source.model.n_items = n_items
            check_source(source, n_users, n_items)
            self.sources.append(source)
        indices, indptr = state["train_indices"], state["train_indptr"]
        check_csr("train", indptr, indices, (n_users, n_items))
        check_ids("recent", state["recent"], n_items, (n_users, None))
        check_shape("user_last", state["user_last"], (n_users,))
        check_shape("item_last", state["item_last"], (n_items,))
        check_shape("dense_std", state["dense_std"], np.shape(state["dense_mean"]))
        if "user_tags" in state:
            vocab = len(self.retriever.user_tag_vocab)
            check_ids("user_tags", state["user_tags"], vocab, (n_users, None))
        self._set_train(
            sp.csr_matrix(
                (np.ones(len(indices), np.float32), indices, indptr), shape=(n_users, n_items)
            )
        )
        self.dense_mean, self.dense_std = state["dense_mean"], state["dense_std"]
        self.recent, self.user_last = state["recent"], state["user_last"]
        self.item_last = state["item_last"]
        self.user_tags = state.get("user_tags")
        self._build_indexes()
        self._ranker = self._new_ranker()
        self._ranker.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in part("ranker.").items()}
        )
        self._ranker.eval()
