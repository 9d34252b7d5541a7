"""``llmrec.dropin.torchrec`` against the real TorchRec: text rows in an unsharded
``EmbeddingBagCollection``, in each shard of a 2-process gloo ``DistributedModelParallel``
(this file is also the worker torchrun starts), as a dense KJT feature, and in the two-tower.

Run as a script (``torchrun --nproc_per_node 2 test_torchrec.py OUT``), every rank builds the
same tables, shards them row-wise, column-wise and table-wise, copies the text rows in and
checks its own shards, a lookup through the sharded model and the table gathered on rank 0.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchrec import EmbeddingBagCollection, EmbeddingBagConfig, KeyedJaggedTensor, PoolingType

from llmrec.dropin.torchrec import (
    TextFeatures,
    init_from_text,
    project_text,
    text_embedding_configs,
    text_features,
    text_rows,
)
from llmrec.errors import ConfigError, DataError
from llmrec.rankers.text_init import default_init_std

SIZES = {"rw": (50, 64), "cw": (30, 64), "tw": (20, 16), "ids": (12, 8)}
"""Table name -> (rows, dim); ``ids`` has no text."""


def text(rows: int, seed: int, d: int = 96) -> np.ndarray:
    """Seeded unit-norm stand-ins for text embeddings, low-rank plus noise like real ones."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4)) @ rng.standard_normal((4, d))
    x += 0.1 * rng.standard_normal((rows, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def configs(names=("rw", "cw", "tw", "ids")) -> list[EmbeddingBagConfig]:
    return [
        EmbeddingBagConfig(
            name=name,
            num_embeddings=SIZES[name][0],
            embedding_dim=SIZES[name][1],
            feature_names=[f"f_{name}"],
            pooling=PoolingType.SUM,
        )
        for name in names
    ]


def text_configs(names=("rw", "cw", "tw", "ids")) -> list[EmbeddingBagConfig]:
    embeddings = {n: text(SIZES[n][0], seed=i) for i, n in enumerate(names) if n != "ids"}
    return text_embedding_configs(configs(names), embeddings)


# ---- unsharded --------------------------------------------------------------------------------


def test_unsharded_collection_holds_exactly_the_projected_rows():
    tables = text_configs()
    ebc = EmbeddingBagCollection(tables=tables)
    for i, name in enumerate(["rw", "cw", "tw"]):
        expected = project_text(text(SIZES[name][0], seed=i), SIZES[name][1])
        weight = ebc.embedding_bags[name].weight.detach().numpy()
        np.testing.assert_array_equal(weight, expected)
        assert expected.std() == pytest.approx(default_init_std(SIZES[name][0]), rel=1e-5)
    assert set(text_rows(tables)) == {"rw", "cw", "tw"}
    # a lookup reads them: bags [3], [0, 7] of f_cw sum their rows
    kjt = KeyedJaggedTensor.from_lengths_sync(  # two bags per key, empty but for f_cw's
        keys=["f_rw", "f_cw", "f_tw", "f_ids"],
        values=torch.tensor([3, 0, 7]),
        lengths=torch.tensor([0, 0, 1, 2, 0, 0, 0, 0]),
    )
    pooled = ebc(kjt)["f_cw"].detach().numpy()
    rows = text_rows(tables)["cw"]
    np.testing.assert_allclose(pooled, np.stack([rows[3], rows[0] + rows[7]]), rtol=1e-6)


def test_init_from_text_overwrites_a_built_collection_and_names_what_it_wrote():
    torch.manual_seed(0)
    ebc = EmbeddingBagCollection(tables=configs(("cw", "ids")))
    before_ids = ebc.embedding_bags["ids"].weight.detach().clone()
    rows = np.random.default_rng(1).standard_normal(SIZES["cw"]).astype(np.float32)
    written = init_from_text(ebc, {"cw": rows})
    assert written == {"cw": [(0, 0, 30, 64)]}
    np.testing.assert_array_equal(ebc.embedding_bags["cw"].weight.detach().numpy(), rows)
    assert torch.equal(ebc.embedding_bags["ids"].weight, before_ids)


def test_pca_rows_are_the_principal_component_scores():
    x = text(200, seed=5).astype(np.float64)
    rows = project_text(x, 6, std=1.0)
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    scores = u[:, :6] * s[:6]
    for j in range(6):  # the same column up to its sign and the common scale
        ratio = rows[:, j] / scores[:, j]
        assert np.allclose(ratio, ratio[0], rtol=1e-3), j
    assert rows.std() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(rows, project_text(x, 6, std=1.0))  # deterministic
    assert np.abs(rows[:, 0]).mean() > np.abs(rows[:, 5]).mean()  # ordered by variance


def test_random_projection_is_seeded_and_ridge_keeps_the_known_rows():
    x = text(80, seed=2, d=24)
    a, b = (
        project_text(x, 32, method="random", seed=1),
        project_text(x, 32, method="random", seed=2),
    )
    np.testing.assert_array_equal(a, project_text(x, 32, method="random", seed=1))
    assert not np.allclose(a, b)
    # targets a linear map of the text: the learned map recovers the rows it was not given
    w = np.random.default_rng(3).standard_normal((x.shape[1], 8))
    truth = (x - x.mean(axis=0)) @ w
    known = np.arange(0, 80, 2)  # 40 known rows for 24 text dimensions
    rows = project_text(
        x, 8, method="ridge", targets=truth[known], target_rows=known, ridge_alpha=1e-6
    )
    np.testing.assert_array_equal(rows[known], truth[known].astype(np.float32))
    np.testing.assert_allclose(rows[1::2], truth[1::2], atol=1e-3)


def test_text_tables_leave_every_other_parameter_as_a_random_start_would():
    torch.manual_seed(7)
    plain = EmbeddingBagCollection(tables=configs())
    torch.manual_seed(7)
    texted = EmbeddingBagCollection(tables=text_configs())
    assert torch.equal(plain.embedding_bags["ids"].weight, texted.embedding_bags["ids"].weight)
    assert not torch.equal(plain.embedding_bags["rw"].weight, texted.embedding_bags["rw"].weight)


# ---- the dense feature ------------------------------------------------------------------------


def test_text_features_pool_each_bag_of_the_key():
    emb = text(10, seed=4)
    kjt = KeyedJaggedTensor.from_lengths_sync(
        keys=["user", "history"],
        values=torch.tensor([0, 1, 2, 3, 9, 4, 4]),
        lengths=torch.tensor([1, 1, 1, 2, 0, 2]),  # user: [0] [1] [2]; history: [3 9] [] [4 4]
        weights=torch.tensor([1.0, 1.0, 1.0, 0.5, 2.0, 1.0, 3.0]),
    )
    mean = text_features(emb, kjt, "history").numpy()
    np.testing.assert_allclose(mean[0], (emb[3] + emb[9]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(mean[1], np.zeros(emb.shape[1], np.float32))
    np.testing.assert_allclose(mean[2], emb[4], rtol=1e-6)
    weighted = TextFeatures(emb, pooling="sum")(kjt, "history").numpy()
    np.testing.assert_allclose(weighted[0], 0.5 * emb[3] + 2.0 * emb[9], rtol=1e-6)
    np.testing.assert_allclose(weighted[2], 4.0 * emb[4], rtol=1e-6)
    np.testing.assert_allclose(text_features(emb, kjt, "user").numpy(), emb[:3], rtol=1e-6)


def test_text_features_name_a_bad_id_or_key():
    features = TextFeatures(text(10, seed=4))
    kjt = KeyedJaggedTensor.from_lengths_sync(
        keys=["item"], values=torch.tensor([2, 10, -1]), lengths=torch.tensor([1, 2])
    )
    with pytest.raises(DataError, match=r"2 ids outside 0\.\.9, first 10"):
        features(kjt, "item")
    with pytest.raises(ConfigError, match=r"'genre' is not in the batch; its keys: \['item'\]"):
        features(kjt, "genre")


# ---- bad input --------------------------------------------------------------------------------


def test_bad_embeddings_are_named_before_torch_sees_them():
    with pytest.raises(
        DataError, match=r"item_embeddings\['cw'\] has 29 rows but the table has 30"
    ):
        text_embedding_configs(configs(("cw",)), {"cw": text(29, seed=0)})
    bad = text(30, seed=0)
    bad[17, 3] = np.nan
    with pytest.raises(DataError, match="NaN or inf values in 1 rows, first row 17"):
        text_embedding_configs(configs(("cw",)), {"cw": bad})
    with pytest.raises(DataError, match="2-d"):
        text_embedding_configs(configs(("cw",)), {"cw": np.zeros(30)})
    with pytest.raises(ConfigError, match=r"no table named \['item'\]"):
        text_embedding_configs(configs(("cw",)), {"item": text(30, seed=0)})
    with pytest.raises(ConfigError, match="at most 24 components"):
        text_embedding_configs(configs(("cw",)), {"cw": text(30, seed=0, d=24)}, method="pca")
        project_text(text(30, seed=0), 64)  # 64 > 24, never reached: the configs refuse first


def test_init_from_text_checks_every_table_before_copying_any():
    ebc = EmbeddingBagCollection(tables=configs(("cw", "tw")))
    before = {n: ebc.embedding_bags[n].weight.detach().clone() for n in ("cw", "tw")}
    good = np.ones(SIZES["cw"], np.float32)
    with pytest.raises(DataError, match=r"rows of 'tw' have 8 values; the table's dimension is 16"):
        init_from_text(ebc, {"cw": good, "tw": np.ones((20, 8), np.float32)})
    with pytest.raises(DataError, match="rows of 'tw' has 21 rows but the table has 20"):
        init_from_text(ebc, {"cw": good, "tw": np.ones((21, 16), np.float32)})
    nan = np.ones((20, 16), np.float32)
    nan[4] = np.inf
    with pytest.raises(DataError, match="first row 4"):
        init_from_text(ebc, {"cw": good, "tw": nan})
    for name, weight in before.items():
        assert torch.equal(ebc.embedding_bags[name].weight, weight), name
    with pytest.raises(
        ConfigError, match=r"no table named 'rw' in the module; its tables: \['cw', 'tw'\]"
    ):
        init_from_text(ebc, {"rw": good})
    with pytest.raises(ConfigError, match="no table with text rows"):
        init_from_text(ebc, configs(("cw",)))


# ---- the two-tower ----------------------------------------------------------------------------


def test_two_tower_item_table_starts_from_its_item_text(tmp_path, monkeypatch):
    from llmrec.rankers import RecommenderBase, TwoTower
    from tests.rankers.test_text_similarity import board_texts
    from tests.recommender_base_test import checkerboard

    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path))
    matrix, texts = checkerboard(20), board_texts(20, True)
    model = TwoTower(init_items="text", dim=16, epochs=2, batch_size=32)
    model.prepare(matrix, texts, None)
    towers = model.new_towers()
    expected = project_text(model.item_text, 16, seed=model.config.seed)
    weight = towers.ebc.embedding_bags["item_table"].weight.detach().numpy()
    np.testing.assert_array_equal(weight, expected)
    # even and odd items have different texts: their rows start apart
    even, odd = expected[0::2].mean(axis=0), expected[1::2].mean(axis=0)
    assert np.linalg.norm(even - odd) > np.linalg.norm(expected[0] - expected[2])
    assert pickle.loads(pickle.dumps(towers)) is not None  # CopyRows is a plain class
    random = TwoTower(dim=16, epochs=2)
    random.prepare(matrix, texts, None)
    assert not np.allclose(
        random.new_towers().ebc.embedding_bags["item_table"].weight.detach(), weight
    )
    fitted = model.fit(matrix, item_texts=texts)
    loaded = RecommenderBase.load(fitted.save(tmp_path / "model"))
    assert loaded.config.init_items == "text"
    np.testing.assert_array_equal(loaded.score(np.arange(4)), fitted.score(np.arange(4)))


# ---- sharded: 2 processes over gloo -----------------------------------------------------------


def test_each_dmp_shard_holds_its_rows(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"),
        *(str(Path(__file__).resolve()), str(tmp_path)),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    written = [r["written"] for r in reports]
    # row-wise: each rank a block of rows; column-wise: a block of columns; the union is the table
    assert sorted(w["rw"][0][0] for w in written) == [0, 25] and all(
        w["rw"][0][2:] == [25, 64] for w in written
    )
    assert sorted(tuple(w["cw"][0][:2]) for w in written) == [(0, 0), (0, 32)]
    # table-wise on rank 1: the init_fn wrote it whole already; rank 0 holds no shard of it
    assert written[0]["tw"] == [] and written[1]["tw"] == [[0, 0, 20, 16]]
    assert reports[1]["tw_before_copy"] == "rows" and reports[0]["rw_before_copy"] == "random"
    assert all(r["checked"] == ["local shards", "lookup", "gathered"] for r in reports)


def _worker(out: Path) -> None:
    """One rank: shard, copy, check its shards, a lookup and (rank 0) the gathered tables."""
    import torch.distributed as dist
    from torch.distributed._shard.sharded_tensor import ShardedTensor
    from torchrec.distributed import DistributedModelParallel
    from torchrec.distributed.sharding_plan import (
        column_wise,
        construct_module_sharding_plan,
        row_wise,
        table_wise,
    )
    from torchrec.distributed.types import ShardingPlan

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tables = text_configs()
    expected = text_rows(tables)
    torch.manual_seed(rank)  # the ranks' uniform inits differ: only the copy can make them agree
    ebc = EmbeddingBagCollection(tables=tables, device=torch.device("meta"))
    plan = construct_module_sharding_plan(
        ebc,
        {
            "rw": row_wise(compute_kernel="fused"),
            "cw": column_wise(ranks=[0, 1], compute_kernel="fused"),
            "tw": table_wise(rank=1, compute_kernel="fused"),
            "ids": table_wise(rank=0, compute_kernel="fused"),
        },
        world_size=2,
        local_size=2,
        device_type="cpu",
    )
    dmp = DistributedModelParallel(ebc, device=torch.device("cpu"), plan=ShardingPlan({"": plan}))
    state = dmp.state_dict()

    def holds_rows(name: str) -> str:
        shards = state[f"embedding_bags.{name}.weight"].local_shards()
        if not shards:
            return "no shard"
        r, c = shards[0].metadata.shard_offsets
        nr, nc = shards[0].metadata.shard_sizes
        same = np.array_equal(shards[0].tensor.numpy(), expected[name][r : r + nr, c : c + nc])
        return "rows" if same else "random"

    report = {"rw_before_copy": holds_rows("rw"), "tw_before_copy": holds_rows("tw")}
    report["written"] = init_from_text(dmp, tables)
    state = dmp.state_dict()
    for name, rows in expected.items():
        weight = state[f"embedding_bags.{name}.weight"]
        assert isinstance(weight, ShardedTensor)
        for shard in weight.local_shards():
            (r, c), (nr, nc) = shard.metadata.shard_offsets, shard.metadata.shard_sizes
            np.testing.assert_array_equal(shard.tensor.numpy(), rows[r : r + nr, c : c + nc])
    checked = ["local shards"]
    # a lookup through the sharded model: each rank asks for other ids than the other rank
    ids = {name: np.array([rank, SIZES[name][0] - 1 - rank]) for name in expected}
    keys = [f"f_{n}" for n in ("rw", "cw", "tw", "ids")]
    values = [ids.get(k[2:], np.array([0, 1])) for k in keys]
    kjt = KeyedJaggedTensor.from_lengths_sync(
        keys=keys,
        values=torch.from_numpy(np.concatenate(values)),
        lengths=torch.ones(2 * len(keys), dtype=torch.int32),
    )
    with torch.no_grad():
        pooled = dmp(kjt).to_dict()
    for name, rows in expected.items():
        np.testing.assert_array_equal(pooled[f"f_{name}"].numpy(), rows[ids[name]])
    checked.append("lookup")
    for name, rows in expected.items():
        weight = state[f"embedding_bags.{name}.weight"]
        full = torch.empty(weight.size()) if rank == 0 else None
        weight.gather(dst=0, out=full)
        if full is not None:
            np.testing.assert_array_equal(full.numpy(), rows)
    checked.append("gathered")
    report["checked"] = checked
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
