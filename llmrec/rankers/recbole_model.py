"""Any RecBole general recommender (BPR, LightGCN, ...) trained by RecBole itself on our split.

The split is written as RecBole benchmark files (``benchmark_filename``) whose tokens are our
user/item indices, RecBole trains with early stopping on valid, and the best checkpoint's
embeddings come back so that our evaluator scores the model like every other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self
from unittest import mock

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from llmrec.datasets.atomic import write_atomic_interactions
from llmrec.errors import DataError
from llmrec.rankers.base import FitInputs, RecommenderBase, RecommenderConfig, progress_enabled

UNKNOWN_SCORE = np.finfo(np.float32).min
"""Score of items RecBole never saw (in no split): ranked last, but still ranked."""


class RecBoleConfig(RecommenderConfig):
    """Which RecBole model and the RecBole config entries to override."""

    model: str = "BPR"
    epochs: PositiveInt = 300
    stopping_step: PositiveInt = 10
    train_batch_size: PositiveInt = 2048
    learning_rate: PositiveFloat = 0.001
    embedding_size: PositiveInt = 64
    params: dict[str, Any] = Field(default_factory=dict)
    """Other RecBole config entries, e.g. ``{"n_layers": 3, "reg_weight": 1e-4}``."""

    @field_validator("model")
    @classmethod
    def _general_recommender(cls, name: str) -> str:
        """Only RecBole's general (user-item) recommenders fit our interaction matrices."""
        import recbole.model.general_recommender as general

        known = sorted(n for n in dir(general) if n[:1].isupper())
        if name not in known:
            raise ValueError(
                f"{name!r} is not a RecBole 1.2.1 general recommender; known: {', '.join(known)}"
            )
        return name


class RecBoleModel(RecommenderBase):
    """A RecBole general recommender behind :class:`RecommenderBase`."""

    kind = "recbole"
    reads = frozenset({"valid"})
    config_class = RecBoleConfig
    config: RecBoleConfig

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        valid = inputs.valid
        show_progress_bar = inputs.show_progress_bar
        if valid is not None and valid.shape != user_items.shape:
            raise DataError(f"valid has shape {valid.shape}, train has {user_items.shape}")
        n_users, self.n_items = user_items.shape
        with (
            tempfile.TemporaryDirectory(prefix="llmrec-recbole-") as tmp,
            _contained(Path(tmp)),
            warnings.catch_warnings(),
        ):
            # RecBole 1.2.1 warns about pandas/torch APIs it uses; none concern our results.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            model, dataset = self._train(
                Path(tmp), user_items, valid, progress_enabled(show_progress_bar)
            )
            self._export(model, dataset, n_users)
        return self

    def _train(
        self, tmp: Path, train: sp.csr_matrix, valid: sp.csr_matrix | None, show_progress: bool
    ) -> tuple[Any, Any]:
        """Train with early stopping on ``valid``; without it, for exactly ``epochs`` epochs
        (RecBole's ``eval_step: 0``), keeping the last."""
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import get_trainer, init_seed

        data_dir = tmp / "llmrec"
        data_dir.mkdir()
        # RecBole needs valid and test files; we score test ourselves, so valid stands in for
        # it, and without valid one train row fills both (RecBole never evaluates them then).
        held = valid if valid is not None else _first_user_row(train)
        for part, matrix in (("train", train), ("valid", held), ("test", held)):
            write_atomic_interactions(_frame(matrix), data_dir / f"llmrec.{part}.inter")
        c = self.config
        config_dict = {
            "data_path": str(tmp),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "seed": c.seed,
            "reproducibility": True,
            "epochs": c.epochs,
            "stopping_step": c.stopping_step,
            "train_batch_size": c.train_batch_size,
            "learning_rate": c.learning_rate,
            "embedding_size": c.embedding_size,
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            "metrics": ["NDCG"],
            "topk": [10],
            "valid_metric": "NDCG@10",
            "checkpoint_dir": str(tmp / "saved"),
            "show_progress": show_progress,
            "use_gpu": False,
            "device": "cpu",
            "worker": 0,
            "state": "WARNING",
            **({} if valid is not None else {"eval_step": 0}),
            **self._extra_data(data_dir),
            **c.params,
        }
        model_class = self._recbole_class()
        # RecBole also parses sys.argv for config overrides; ours are not for it.
        argv, sys.argv = sys.argv, sys.argv[:1]
        try:
            config = Config(model=model_class, dataset="llmrec", config_dict=config_dict)
        finally:
            sys.argv = argv
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, _ = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        model = model_class(config, train_data._dataset).to("cpu")
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        trainer.fit(
            train_data,
            valid_data if valid is not None else None,
            verbose=False,
            saved=True,
            show_progress=show_progress,
        )
        self.best_valid_ndcg = float(trainer.best_valid_score) if valid is not None else None
        # Early stopping ends ``cur_step`` evaluations after the best one (eval_step 1).
        trained = max(1, len(trainer.train_loss_dict))
        self.best_epochs_ = max(1, trained - (trainer.cur_step if valid is not None else 0))
        checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))
        model.eval()
        return model, dataset

    def _recbole_class(self) -> type:
        """The RecBole model class to train; subclasses train classes from elsewhere (RecBole's
        ``get_model`` finds only its own)."""
        from recbole.utils import get_model

        return get_model(self.config.model)

    def _extra_data(self, data_dir: Path) -> dict[str, Any]:
        """Write more atomic files into ``data_dir`` (named ``llmrec.SUFFIX``) beside the split;
        returns the RecBole config entries that load them."""
        return {}

    def _export(self, model: Any, dataset: Any, n_users: int) -> None:
        """Copy RecBole's scores into our index space: factors when the model has them (checked
        against its own ``full_sort_predict``), otherwise the dense score matrix."""
        import torch
        from recbole.data.interaction import Interaction

        user_tokens = dataset.field2id_token["user_id"][1:].astype(np.int64)
        item_tokens = dataset.field2id_token["item_id"][1:].astype(np.int64)
        self.known_items = np.zeros(self.n_items, dtype=bool)
        self.known_items[item_tokens] = True
        with torch.no_grad():
            users_t = torch.arange(1, len(user_tokens) + 1)
            factors = _factors(model)
            probe = users_t[:8]
            reference = model.full_sort_predict(Interaction({"user_id": probe}))
            reference = reference.view(len(probe), -1)[:, 1:].numpy()
            if factors is not None:
                u, v = (f.detach().numpy().astype(np.float32) for f in factors)
                if not np.allclose(u[1:9] @ v[1:].T, reference, rtol=1e-4, atol=1e-4):
                    factors = None
            if factors is not None:
                self.user_factors = np.zeros((n_users, u.shape[1]), dtype=np.float32)
                self.user_factors[user_tokens] = u[1:]
                self.item_factors = np.zeros((self.n_items, v.shape[1]), dtype=np.float32)
                self.item_factors[item_tokens] = v[1:]
                self.dense_scores = None
            else:
                dense = np.zeros((n_users, self.n_items), dtype=np.float32)
                for lo in range(0, len(users_t), 256):
                    batch = users_t[lo : lo + 256]
                    out = model.full_sort_predict(Interaction({"user_id": batch}))
                    dense[user_tokens[lo : lo + 256][:, None], item_tokens[None, :]] = out.view(
                        len(batch), -1
                    )[:, 1:].numpy()
                self.dense_scores = dense

    def refit_overrides(self) -> dict[str, Any]:
        return {"epochs": self.best_epochs_}

    def score(self, userids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(userids)
        if self.dense_scores is not None:
            scores = self.dense_scores[users].copy()
        else:
            scores = self.user_factors[users] @ self.item_factors.T
        scores[:, ~self.known_items] = UNKNOWN_SCORE
        return scores

    def item_vectors(self) -> np.ndarray:
        if self.dense_scores is not None:
            return super().item_vectors()
        return self.item_factors

    def _state(self) -> dict[str, np.ndarray]:
        state = {"known_items": self.known_items}
        if self.dense_scores is not None:
            state["dense_scores"] = self.dense_scores
        else:
            state.update(user_factors=self.user_factors, item_factors=self.item_factors)
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.known_items = state["known_items"]
        self.dense_scores = state.get("dense_scores")
        if self.dense_scores is None:
            self.user_factors = state["user_factors"]
            self.item_factors = state["item_factors"]


def _first_user_row(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """A matrix holding only the first interaction of ``matrix`` (a placeholder split)."""
    coo = sp.coo_matrix(matrix)
    return sp.csr_matrix(
        ([1.0], ([coo.row[0]], [coo.col[0]])), shape=matrix.shape, dtype=np.float32
    )


def _frame(matrix: sp.csr_matrix) -> pd.DataFrame:
    coo = sp.coo_matrix(matrix)
    return pd.DataFrame({"user_id": coo.row, "item_id": coo.col})


def _factors(model: Any) -> tuple[Any, Any] | None:
    """User and item embedding tables of a RecBole model, if it exposes them."""
    import inspect

    forward = getattr(model, "forward", None)
    params = inspect.signature(forward).parameters if forward else {}
    if forward and not params:
        out = forward()
        if isinstance(out, tuple) and len(out) == 2:
            return out
    if hasattr(model, "user_embedding") and hasattr(model, "item_embedding"):
        return model.user_embedding.weight, model.item_embedding.weight
    return None


@contextlib.contextmanager
def _contained(tmp: Path) -> Iterator[None]:
    """Keep RecBole 1.2.1's process-wide side effects inside ``fit``, undone afterwards.

    Its trainer writes TensorBoard logs to ``log_tensorboard/`` under the working directory (sent
    to ``tmp`` instead, without changing the working directory); it loads its own best checkpoint
    with ``torch.load``, which torch >= 2.6 refuses to unpickle unless
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set (set, then restored); it logs at INFO on the root
    logger (raised to WARNING, then restored).
    """
    import recbole.trainer.trainer as trainer_module
    from torch.utils.tensorboard import SummaryWriter

    def tensorboard(_logger: Any) -> SummaryWriter:
        return SummaryWriter(str(tmp / "tensorboard"))

    env_before = os.environ.get(_TORCH_LOAD_ENV)
    root = logging.getLogger()
    level_before = root.level
    os.environ[_TORCH_LOAD_ENV] = "1"
    root.setLevel(max(level_before, logging.WARNING))
    try:
        with mock.patch.object(trainer_module, "get_tensorboard", tensorboard):
            yield
    finally:
        root.setLevel(level_before)
        if env_before is None:
            os.environ.pop(_TORCH_LOAD_ENV, None)
        else:
            os.environ[_TORCH_LOAD_ENV] = env_before


_TORCH_LOAD_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
