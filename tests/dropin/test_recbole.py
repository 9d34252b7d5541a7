"""llmrec.dropin.recbole against the real RecBole 1.2.1: the export read back by RecBole's own
loader, the text models trained for an epoch, and the errors on bad input."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from llmrec.datasets import Dataset
from llmrec.datasets.atomic import write_atomic_interactions
from llmrec.dropin.recbole import (
    RecBoleExport,
    TextBPR,
    TextSASRec,
    check_text_config,
    export_recbole,
    read_itememb,
    run,
    text_config,
    write_itememb,
)
from llmrec.errors import ConfigError, DataError

DIM = 16
QUICK = {
    "epochs": 1,
    "state": "WARNING",
    "show_progress": False,
    "use_gpu": False,
    "seed": 7,
    "eval_batch_size": 1_000_000,
    "metrics": ["NDCG"],
    "topk": [10],
    "valid_metric": "NDCG@10",
}
SEQUENTIAL = {
    "train_neg_sample_args": None,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
    "hidden_size": 16,
    "inner_size": 32,
    "n_layers": 1,
    "MAX_ITEM_LIST_LENGTH": 10,
}


@pytest.fixture(autouse=True)
def _contained(tmp_path, monkeypatch):
    """RecBole writes ``log/`` and ``log_tensorboard/`` under the working directory and adds
    handlers to the root logger: both kept inside the test. One torch thread: on a shared CPU,
    two threads made RecBole epochs four times slower."""
    import torch

    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level, threads = list(root.handlers), root.level, torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", sys.argv[:1])  # RecBole reads --key=value overrides there
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def _vectors(ids: np.ndarray, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((len(ids), dim)).astype(np.float32)


@pytest.fixture(scope="module")
def small(ml100k_small: Dataset, tmp_path_factory) -> tuple[RecBoleExport, np.ndarray]:
    """ml100k_small exported as a RecBole dataset with 16-d item embeddings."""
    tmp = tmp_path_factory.mktemp("recbole-small")
    write_atomic_interactions(ml100k_small.interactions, tmp / "small.inter")
    vectors = _vectors(ml100k_small.item_ids)
    ids = ml100k_small.item_ids
    export = export_recbole(
        tmp / "data", "small", ids, ids, vectors, {"inter": tmp / "small.inter"}
    )
    return export, vectors


def _config(model: type, export: RecBoleExport, **extra):
    from recbole.config import Config

    from llmrec.dropin.recbole_models import defaults_file

    config_dict = {**export.config, **QUICK, "checkpoint_dir": "saved", **extra}
    return Config(model=model, config_file_list=[defaults_file(model)], config_dict=config_dict)


def _train(config, model_class: type):
    """RecBole's own pipeline, one epoch: what a user's script or run_recbole does."""
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    init_seed(config["seed"], True)
    dataset = create_dataset(config)
    train, _, test = data_preparation(config, dataset)
    model = model_class(config, train._dataset)
    Trainer(config, model).fit(train, valid_data=None, saved=False, show_progress=False)
    model.eval()
    return model, train._dataset, test


# ---- the export ------------------------------------------------------------------------------


def test_cli_export_loads_in_recbole(ml100k, tmp_path):
    """The printed config loads the file with RecBole's own Dataset: every id's row is its
    embedding, bit for bit."""
    from recbole.config import Config
    from recbole.data import create_dataset

    from llmrec.cli import app
    from llmrec.cli import export as _  # noqa: F401  (registers `llmrec export`)
    from llmrec.encoders.job import EmbeddingSet

    vectors = _vectors(ml100k.item_ids, 24)
    ids = np.asarray(ml100k.item_ids).astype(str)
    manifest = {"what": "items", "count": len(ids), "dimension": 24, "fingerprint": "t"}
    manifest["dataset"] = {"name": "ml-100k", "checksum": ml100k.checksum}
    EmbeddingSet(ids, vectors, manifest, np.zeros(len(ids), bool)).save(tmp_path / "emb")
    args = ["export", "recbole", "--dataset", "ml-100k", "--embeddings", str(tmp_path / "emb")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output.split("loads it:\n", 1)[1])
    assert printed["dataset"] == "ml-100k-llmrec"  # RecBole reads "ml-100k" from its own copy
    assert printed["additional_feat_suffix"] == ["itememb"]
    assert printed["alias_of_item_id"] == ["iid"]
    assert printed["preload_weight"] == {"iid": "item_emb"}
    folder = tmp_path / "out" / "ml-100k-llmrec"
    assert sorted(p.suffix for p in folder.iterdir()) == [".inter", ".item", ".itememb", ".user"]
    head = (folder / "ml-100k-llmrec.itememb").read_text().splitlines()[:2]
    assert head[0] == "iid:token\titem_emb:float_seq" and len(head[1].split("\t")[1].split()) == 24

    dataset = create_dataset(Config(model="BPR", config_dict={**printed, "state": "WARNING"}))
    weights = dataset.get_preload_weight("iid")
    assert weights.shape == (ml100k.n_items + 1, 24)
    for item in ("1", "50", "1682", ids[777]):
        row = ml100k.item_index([item])[0]
        internal = dataset.token2id(dataset.iid_field, item)
        np.testing.assert_array_equal(weights[internal].astype(np.float32), vectors[row])
    assert not weights[0].any()  # RecBole's padding id

    again = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--no-data"])
    assert again.exit_code == 0, again.output  # its own folder: replaced
    assert [p.suffix for p in folder.iterdir()] == [".itememb"]


def test_cli_export_names_missing_ids_and_refuses_foreign_folders(ml100k, tmp_path):
    from llmrec.cli import app
    from llmrec.cli import export as _  # noqa: F401
    from llmrec.encoders.job import EmbeddingSet

    ids = np.asarray(ml100k.item_ids[3:]).astype(str)  # items 1, 2, 3 have no embedding
    manifest = {"what": "items", "count": len(ids), "dimension": 4, "fingerprint": "t"}
    manifest["dataset"] = {"name": "other", "checksum": "x"}
    EmbeddingSet(ids, _vectors(ids, 4), manifest, np.zeros(len(ids), bool)).save(tmp_path / "e")
    args = ["export", "recbole", "--dataset", "ml-100k", "--embeddings", str(tmp_path / "e")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "lack 3 of the dataset's 1682 items, first ['1', '2', '3']" in result.output
    assert not (tmp_path / "out").exists()

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "mine")])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"

    manifest["what"] = "users"
    EmbeddingSet(ids, _vectors(ids, 4), manifest, np.zeros(len(ids), bool)).save(tmp_path / "u")
    result = CliRunner().invoke(
        app, [*args[:-1], str(tmp_path / "u"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "embeddings of users, not items" in result.output


def test_itememb_round_trip_and_ragged_rows(tmp_path):
    ids = np.array(["a", "b c", "d"])
    vectors = np.array([[0.1, -2e-9, 3.5], [1 / 3, 7, 1e30], [0, 0, -1]], dtype=np.float32)
    write_itememb(tmp_path / "x.itememb", ids, vectors)
    read_ids, read_vectors = read_itememb(tmp_path / "x.itememb")
    assert read_ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(read_vectors, vectors)

    lines = (tmp_path / "x.itememb").read_text().splitlines()
    lines[2] = "b c\t1 2"
    (tmp_path / "x.itememb").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"item 'b c' \(line 3\) has 2 values, item 'a' has 3"):
        read_itememb(tmp_path / "x.itememb")
    with pytest.raises(DataError, match="tab or newline"):
        write_itememb(tmp_path / "y.itememb", ["ok", "bad\tid"], vectors[:2])


# ---- the models ------------------------------------------------------------------------------


def test_text_bpr_trains_and_scores_untrained_items_by_text(small):
    export, _ = small
    model, _, _ = _train(_config(TextBPR, export), TextBPR)
    seen = model.trained.squeeze(1).bool().numpy()
    cold = np.flatnonzero(~seen)[1:]  # id 0 is RecBole's padding
    assert len(cold) > 10 and seen.sum() > 500  # items only in valid/test exist on this slice
    ids = model.item_id_embedding.weight.detach()
    assert not ids[cold].any() and ids[seen].abs().sum() > 0  # warm rows trained, cold untouched
    users = {"user_id": np.arange(1, 9)}
    from recbole.data.interaction import Interaction

    scores = model.full_sort_predict(Interaction(users)).view(8, -1).detach()
    expected = model.user_embedding.weight[1:9] @ model.projection(model.text).T
    np.testing.assert_allclose(scores[:, cold], expected.detach()[:, cold], rtol=1e-5, atol=1e-6)
    user_all, item_all = model()
    np.testing.assert_allclose((user_all[1:9] @ item_all.T).detach(), scores, rtol=1e-5, atol=1e-6)
    state = model.state_dict()
    model.load_state_dict({**state, "projection.weight": state["projection.weight"] * 2})
    again = model.full_sort_predict(Interaction(users)).view(8, -1).detach()  # not the cache
    np.testing.assert_allclose(again[:, cold], 2 * scores[:, cold], rtol=1e-5, atol=1e-6)


def test_text_sasrec_starts_from_the_text_and_keeps_untrained_items_there(small):
    export, _ = small
    config = _config(TextSASRec, export, **SEQUENTIAL)
    assert config["loss_type"] == "CE"  # SASRec.yaml's defaults reached the Config
    model, train, test = _train(config, TextSASRec)
    table = model.item_embedding
    start, weight = table.start.numpy(), table.weight.detach().numpy()
    seen = table.trained.squeeze(1).numpy()
    text = train.get_preload_weight("iid")[1:]
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    centred = text - text.mean(axis=0)
    first_pc = np.linalg.svd(centred, full_matrices=False)[2][0]
    assert abs(np.corrcoef(start[1:, 0], centred @ first_pc)[0, 1]) > 0.999
    assert start[1:].std() == pytest.approx(config["initializer_range"], rel=1e-3)
    cold = np.flatnonzero(~seen)[1:]
    assert len(cold) > 0
    np.testing.assert_array_equal(weight[cold], start[cold])
    assert not np.allclose(weight[seen], start[seen])
    batch = next(iter(test))[0]
    scores = model.full_sort_predict(batch)
    assert scores.shape[1] == train.item_num and np.isfinite(scores.detach().numpy()).all()


@pytest.mark.parametrize(("model", "extra"), [(TextBPR, {}), ("TextSASRec", SEQUENTIAL)])
def test_run_is_run_recbole_for_our_classes(small, model, extra):
    export, _ = small
    result = run(model, config_dict={**export.config, **QUICK, **extra})
    assert set(result) >= {"best_valid_score", "test_result"}
    assert 0 <= result["test_result"]["ndcg@10"] <= 1


# ---- bad input -------------------------------------------------------------------------------


def test_config_errors_name_the_problem_before_recbole_loads_data(small, tmp_path):
    export, _ = small
    with pytest.raises(DataError, match=r"small-typo/small-typo\.itememb, which does not exist"):
        run(TextBPR, config_dict={**export.config, **QUICK, "dataset": "small-typo"})
    with pytest.raises(DataError, match="bundled copy"):
        run(TextBPR, config_dict={**export.config, **QUICK, "dataset": "ml-100k"})
    plain = {"data_path": export.config["data_path"], "dataset": "small", **QUICK}
    with pytest.raises(ConfigError, match=r"preload_weight: \{iid: item_emb\}"):
        run(TextBPR, config_dict=plain)
    with pytest.raises(ConfigError, match=f"text_embedding_size is 384 but .* {DIM}-d"):
        run(TextBPR, config_dict={**export.config, **QUICK, "text_embedding_size": 384})
    with pytest.raises(ConfigError, match="'NoSuchModel' is neither an llmrec text model"):
        run("NoSuchModel", config_dict={**export.config, **QUICK})
    final = {**export.config, "data_path": str(export.path / "small"), "text_embedding_size": DIM}
    assert check_text_config(final) == DIM


def test_items_without_embeddings_are_named(small, ml100k_small, tmp_path):
    export, vectors = small
    folder = tmp_path / "data" / "part"
    folder.mkdir(parents=True)
    (folder / "part.inter").write_bytes((export.path / "small" / "small.inter").read_bytes())
    ids = np.asarray(ml100k_small.item_ids)
    write_itememb(folder / "part.itememb", ids[2:], vectors[2:])  # the first two left out
    with pytest.raises(DataError, match=r"2 of the dataset's .* items have no text") as error:
        run(TextBPR, config_dict={**text_config("part", tmp_path / "data"), **QUICK})
    assert f"'{ids[0]}'" in str(error.value) and f"'{ids[1]}'" in str(error.value)

    (folder / "part.itememb").write_text("iid:token\titem_emb:float_seq\na\t1 2\nb\t1\n")
    with pytest.raises(DataError, match=r"item 'b' .* has 1 values, item 'a' has 2"):
        run(TextBPR, config_dict={**text_config("part", tmp_path / "data"), **QUICK})


def test_export_refuses_mismatched_embeddings(tmp_path):
    ids = np.array(["1", "2", "3"])
    with pytest.raises(DataError, match=r"lack 1 of the dataset's 3 items, first \['3'\]"):
        export_recbole(tmp_path / "o", "d", ids, ids[:2], _vectors(ids[:2]))
    with pytest.raises(DataError, match="2 ids for 3 vectors"):
        export_recbole(tmp_path / "o", "d", ids, ids[:2], _vectors(ids))
    with pytest.raises(ConfigError, match="plain folder name"):
        export_recbole(tmp_path / "o", "../d", ids, ids, _vectors(ids))
    done = export_recbole(tmp_path / "o", "d", ids[:2], ids, _vectors(ids))
    assert done.dropped == 1 and done.items == 2 and not (tmp_path / "o" / "d" / "d.inter").exists()
    assert Path(done.config["data_path"]) == tmp_path / "o"


# ---- through llmrec's recbole: wrapper ---------------------------------------------------------


def _wrapper_trains_text_models() -> bool:
    from llmrec.rankers.recbole_model import RecBoleModel

    # The subclass lives here (llmrec.dropin is a layer above llmrec.rankers); it needs the
    # wrapper's two hooks.
    return hasattr(RecBoleModel, "_extra_data") and hasattr(RecBoleModel, "_recbole_class")


@pytest.mark.skipif(
    not _wrapper_trains_text_models(),
    reason="RecBoleModel lacks the _recbole_class/_extra_data hooks (issue 14 patch)",
)
def test_recbole_wrapper_trains_text_bpr_on_our_split(ml100k_small, tiny_spec, shared_cache):
    from llmrec.datasets import item_text, split
    from llmrec.dropin.recbole_models import RecBoleTextModel
    from llmrec.evaluation import resolve_model
    from llmrec.rankers.recbole_model import UNKNOWN_SCORE

    spec = resolve_model("recbole:TextBPR")
    assert spec.kind == "recbole-text"
    with pytest.raises(ConfigError, match=r"TextSASRec is sequential.*llmrec.dropin.recbole.run"):
        RecBoleTextModel(model="TextSASRec")
    s = split(ml100k_small, "random", 1)
    train = s.matrix("train")
    texts = item_text(ml100k_small.items, ml100k_small.text_columns).tolist()
    model = spec.build({"epochs": 2, "learning_rate": 0.01, "encoder": tiny_spec.model})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMREC_CACHE_DIR", str(shared_cache))
        model.fit(train, valid=s.matrix("valid"), item_texts=texts)
    cold = np.flatnonzero(np.asarray(train.sum(axis=0)).ravel() == 0)
    assert len(cold) > 10  # items only in valid/test: the plain wrapper ranks them last
    assert model.known_items.all() and model.dense_scores is None  # factors, checked by RecBole
    scores = model.score(np.arange(5))
    assert np.isfinite(scores).all() and (scores[:, cold] > UNKNOWN_SCORE).all()
    assert len(np.unique(scores[0, cold])) > 1  # scored by their text, not one fallback value
