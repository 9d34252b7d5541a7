"""The model folder: ``config.json``, ``weights.safetensors`` and the FAISS ``index/``, written
and read as one artifact (see :mod:`llmrec.artifacts`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

import llmrec
from llmrec.artifacts import open_artifact, write_artifact
from llmrec.errors import ArtifactError, DataError
from llmrec.io import library_versions, read_json_object, write_json
from llmrec.rankers.base import make_config
from llmrec.rankers.state import check_csr
from llmrec.rankers.two_stage import TwoStage
from llmrec.rankers.two_tower import TwoTower
from llmrec.retrieval.index import ItemIndex

if TYPE_CHECKING:
    from llmrec.pipeline.recommender import Recommender

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, INDEX_DIR = "config.json", "weights.safetensors", "index"
KINDS: dict[str, type[TwoStage] | type[TwoTower]] = {
    TwoStage.kind: TwoStage,
    TwoTower.kind: TwoTower,
}
SEEN = "recommender.seen_"
"""Weights keys of the interactions fit saw (the two-stage model keeps its own copy as
``train_``; folders of llmrec 0.1 have only that one)."""


def save_folder(recommender: Recommender, path: Path, overwrite: bool) -> Path:
    """Write ``recommender`` (fitted) to the model folder ``path``."""
    from safetensors.numpy import save_file

    model = recommender.model
    assert model is not None  # the caller checked
    state = model._state()
    state.update(
        {SEEN + "indptr": recommender.seen_.indptr, SEEN + "indices": recommender.seen_.indices}
    )
    numeric = {k: np.ascontiguousarray(v) for k, v in state.items() if v.dtype.kind != "U"}
    strings = {k: v.tolist() for k, v in state.items() if v.dtype.kind == "U"}
    tower = model.retriever if isinstance(model, TwoStage) else model
    meta = {
        "format_version": FORMAT_VERSION,
        "llmrec_version": llmrec.__version__,
        "kind": model.kind,
        "config": recommender.config.model_dump(),
        "encoder_fingerprint": tower.encoder_fingerprint,
        "n_items": model.n_items,
        "user_ids": [str(u) for u in recommender.user_ids],
        "item_ids": [str(i) for i in recommender.item_ids],
        "strings": strings,
        "data_checksum": recommender.data_checksum,
        "versions": library_versions(),
    }

    def write(tmp: Path) -> None:
        save_file(numeric, str(tmp / WEIGHTS_FILE))
        recommender.index.save(tmp / INDEX_DIR)
        write_json(tmp / CONFIG_FILE, meta)

    tie = {"n_users": len(recommender.user_ids), "n_items": model.n_items}
    return write_artifact(path, "model", write, overwrite=overwrite, meta=tie)


def load_folder(cls: type[Recommender], folder: Path, check_encoder: bool) -> Recommender:
    """Read a model folder written by :func:`save_folder` into a ``cls``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    open_artifact(folder, "model")
    meta = read_json_object(folder / CONFIG_FILE, folder_kind="an llmrec model folder")
    if meta.get("format_version") != FORMAT_VERSION or meta.get("kind") not in KINDS:
        raise ArtifactError(
            f"{folder}: model format {meta.get('format_version')!r} of kind "
            f"{meta.get('kind')!r}; this llmrec {llmrec.__version__} reads format "
            f"{FORMAT_VERSION} of kinds {sorted(KINDS)}: retrain with `llmrec train`"
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
    seen_parts = {k: state.pop(k) for k in list(state) if k.startswith(SEEN)}
    model_class = KINDS[meta["kind"]]
    config = make_config(model_class.config_class, meta["config"])
    model = model_class(config)
    try:
        model._set_state(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise DataError(f"{folder}: weights do not match the config ({exc})") from exc
    tower = model.retriever if isinstance(model, TwoStage) else model
    fingerprint = meta["encoder_fingerprint"]
    if check_encoder:
        from llmrec.encoders.transformer import TransformerEncoder

        local = TransformerEncoder(tower.config.text_model).fingerprint
        if local != fingerprint:
            raise DataError(
                f"{folder}: trained with embedding model {fingerprint!r}, but the configured "
                f"encoder is {local!r}; load it with that encoder or retrain"
            )
    n_users = len(tower.user_factors)
    if len(meta["user_ids"]) != n_users or len(meta["item_ids"]) != model.n_items:
        raise DataError(
            f"{folder}: {CONFIG_FILE} lists {len(meta['user_ids'])} users and "
            f"{len(meta['item_ids'])} items, {WEIGHTS_FILE} holds {n_users} and "
            f"{model.n_items}: the parts come from different models"
        )
    seen = _seen(seen_parts, model, n_users, folder)
    index = ItemIndex.load(folder / INDEX_DIR, dimension=tower.item_factors.shape[1])
    if not np.array_equal(index.ids, np.arange(model.n_items)):
        raise DataError(
            f"{folder}/{INDEX_DIR} holds {len(index)} items, not the model's {model.n_items}"
        )
    if isinstance(model, TwoStage):
        model.indexes["two_tower"] = index
    out = cls(model.config)  # the config just validated, typed as the model's own
    out.model, out.index, out.seen_ = model, index, seen
    out.user_ids = np.array(meta["user_ids"], dtype=object)
    out.item_ids = np.array(meta["item_ids"], dtype=object)
    out._user_lookup, out._item_lookup = pd.Index(out.user_ids), pd.Index(out.item_ids)
    out.data_checksum = meta["data_checksum"]
    return out


def _seen(
    parts: dict[str, np.ndarray], model: TwoStage | TwoTower, n_users: int, folder: Path
) -> sp.csr_matrix:
    """The fit interactions saved with the model (checked), or the two-stage model's own."""
    if not parts:
        if isinstance(model, TwoStage):
            return model.train_
        raise DataError(f"{folder}/{WEIGHTS_FILE} lacks the interactions fit saw ({SEEN}*)")
    indptr, indices = parts.get(SEEN + "indptr"), parts.get(SEEN + "indices")
    if indptr is None or indices is None:
        raise DataError(f"{folder}/{WEIGHTS_FILE}: {sorted(parts)} without its pair")
    check_csr("seen", indptr, indices, (n_users, model.n_items))
    return sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(n_users, model.n_items)
    )
