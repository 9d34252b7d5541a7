"""What item text adds to RecBole's own models through ``llmrec.dropin.recbole`` (issue 14).

The integration a RecBole user runs: ``llmrec export recbole`` writes ml-100k with MiniLM item
embeddings as a RecBole data folder, and RecBole 1.2.1 trains its plain model and our text model
on the same data, split and budget (one torch thread, both arms alike):

- ``random``: llmrec's random split (seeds 1-3) written as RecBole benchmark files; BPR vs
  TextBPR (item vector = projection of the text + id embedding), early-stopped on valid.
- ``temporal``: llmrec's ``temporal`` split (per user: last item test, second-to-last valid),
  made by RecBole's own leave-one-out by time (``LS: valid_and_test``, ``order: TO``) on the
  exported folder with each user's timestamps replaced by their rank in llmrec's order (ml-100k
  has many equal timestamps, which RecBole orders otherwise: 794 of 943 test items agreed on
  the raw times; the JSON counts the agreement); SASRec vs TextSASRec (item table started from
  the text's principal components, Harte et al., RecSys 2023), seeds 1-3 of the model init, the
  same short epoch budget for both (CPU only), best valid epoch kept.

Test scores are RecBole's ``full_sort_predict`` over every item; llmrec's evaluator ranks them
excluding the user's train and valid items (NDCG@10 full ranking). Paired t-tests over pooled
(seed, user) NDCG@10 (``compare_models``).

Usage: .venv/bin/python experiments/dropin/recbole_text_init.py [--seeds 1 2 3]
    [--out experiments/dropin/recbole-text-init.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from llmrec.datasets import Dataset, load, split
from llmrec.datasets.atomic import write_atomic_interactions
from llmrec.datasets.splits import Split
from llmrec.dropin.recbole import model_class, text_config
from llmrec.dropin.recbole_models import defaults_file
from llmrec.encoders.cache import default_cache_path
from llmrec.encoders.job import EncodeConfig, encode_dataset
from llmrec.evaluation import compare_models, evaluate_scores, mean_std
from llmrec.evaluation.evaluator import EvalResult
from llmrec.io import library_versions, write_json

KS = (10, 20)
METRICS = ("ndcg", "recall")
COMMON = {
    "state": "WARNING",
    "show_progress": False,
    "use_gpu": False,
    "reproducibility": True,
    "metrics": ["NDCG"],
    "topk": [10],
    "valid_metric": "NDCG@10",
    "eval_batch_size": 1_000_000,
    "train_batch_size": 2048,
}
BPR = {
    "embedding_size": 64,
    "learning_rate": 0.005,
    "epochs": 30,
    "stopping_step": 3,
    "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
}
"""Both BPR arms: at most 30 epochs, stopped after 3 without a better valid NDCG@10."""
SASREC = {
    "hidden_size": 32,
    "inner_size": 128,
    "n_layers": 1,
    "n_heads": 2,
    "MAX_ITEM_LIST_LENGTH": 20,
    "learning_rate": 0.005,
    "epochs": 4,
    "stopping_step": 4,
    "train_neg_sample_args": None,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
}
"""Both SASRec arms: SASRec.yaml's defaults but a smaller model (32 wide, 1 layer, last 20
items) and 4 epochs: one epoch costs 20-30 s on one contended CPU core."""


def export(data: Dataset, emb_dir: Path, out: Path) -> tuple[dict[str, Any], float]:
    """``llmrec export recbole`` as a user runs it (a fresh process); its config and seconds."""
    import yaml

    command = [
        sys.executable,
        "-c",
        "import sys; from llmrec.cli import app; import llmrec.cli.export; "
        "app(sys.argv[1:], prog_name='llmrec')",
        *("export", "recbole", "--dataset", data.name, "--embeddings", str(emb_dir)),
        *("--out", str(out)),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    return yaml.safe_load(done.stdout.split("loads it:\n", 1)[1]), round(seconds, 3)


def train(name: str, config_dict: dict[str, Any], seed: int) -> tuple[Any, Any, Any, dict]:
    """Train one RecBole model as ``run_recbole`` does; the best valid epoch's weights."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    cls = model_class(name)
    files = [f] if (f := defaults_file(cls)) else None
    config = Config(model=cls, config_file_list=files, config_dict={**config_dict, "seed": seed})
    init_seed(seed, True)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(seed, True)
    model = cls(config, train_data._dataset)
    trainer = Trainer(config, model)
    start = time.perf_counter()
    trainer.fit(train_data, valid_data, verbose=False, saved=True, show_progress=False)
    seconds = time.perf_counter() - start
    checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    epochs = len(trainer.train_loss_dict)
    facts = {
        "fit_seconds": round(seconds, 3),
        "epochs": epochs,
        "seconds_per_epoch": round(seconds / max(epochs, 1), 3),
        "best_epoch": int(checkpoint["epoch"]) + 1,
        "recbole_valid_ndcg@10": float(trainer.best_valid_score),
    }
    return model, dataset, test_data, facts


def index_maps(dataset: Any, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """llmrec user and item index of every RecBole id (-1 for RecBole's padding id 0)."""
    users = np.full(dataset.user_num, -1)
    users[1:] = data.user_index(dataset.field2id_token["user_id"][1:].tolist())
    items = np.full(dataset.item_num, -1)
    items[1:] = data.item_index(dataset.field2id_token["item_id"][1:].tolist())
    return users, items


def general_scores(model: Any, dataset: Any, data: Dataset) -> np.ndarray:
    """Every user's scores for every item, in llmrec's index space."""
    from recbole.data.interaction import Interaction

    users, items = index_maps(dataset, data)
    dense = np.full((data.n_users, data.n_items), np.finfo(np.float32).min, dtype=np.float32)
    with torch.no_grad():
        for lo in range(1, dataset.user_num, 256):
            batch = torch.arange(lo, min(lo + 256, dataset.user_num))
            out = model.full_sort_predict(Interaction({"user_id": batch})).view(len(batch), -1)
            dense[users[batch.numpy()][:, None], items[None, 1:]] = out[:, 1:].numpy()
    return dense


def bpr_split(data: Dataset, s: Split, itememb: Path, root: Path) -> dict[str, Any]:
    """The random split as benchmark files beside the exported ``.itememb``: the config."""
    folder = root / "bench"
    folder.mkdir(parents=True)
    for part in ("train", "valid", "test"):
        write_atomic_interactions(getattr(s, part), folder / f"bench.{part}.inter")
    (folder / "bench.itememb").write_bytes(itememb.read_bytes())
    return {
        **text_config("bench", root, inter_columns=("user_id", "item_id")),
        "benchmark_filename": ["train", "valid", "test"],
    }


def llmrec_order(data: Dataset, exported: dict[str, Any], root: Path) -> dict[str, Any]:
    """A copy of the exported folder whose timestamps are each user's interaction ranks in
    llmrec's temporal order (time, ties in file order): the config that reads it."""
    name = exported["dataset"]
    source = Path(exported["data_path"]) / name
    folder = root / name
    folder.mkdir(parents=True)
    ordered = data.interactions.sort_values(["user_idx", "timestamp"], kind="stable")
    ranked = ordered.assign(timestamp=ordered.groupby("user_idx").cumcount().astype(float))
    write_atomic_interactions(ranked, folder / f"{name}.inter")
    for suffix in ("item", "itememb"):
        (folder / f"{name}.{suffix}").write_bytes((source / f"{name}.{suffix}").read_bytes())
    return {**exported, "data_path": str(root)}


def sequential_scores(
    model: Any, dataset: Any, test_data: Any, data: Dataset
) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    """Scores of RecBole's test sequences, and the test truth and exclusions of its split.

    Truth is each user's test target; excluded are the user's other items (train and valid:
    ml-100k has one interaction per user-item pair).
    """
    users, items = index_maps(dataset, data)
    dense = np.zeros((data.n_users, data.n_items), dtype=np.float32)
    rows, cols = [], []
    with torch.no_grad():
        for interaction, _, _, _ in test_data:
            out = model.full_sort_predict(interaction)
            who = users[interaction["user_id"].numpy()]
            dense[who[:, None], items[None, 1:]] = out[:, 1:].numpy()
            rows += who.tolist()
            cols += items[interaction["item_id"].numpy()].tolist()
    truth = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=dense.shape)
    everything = data.user_items()
    exclude = everything - everything.multiply(truth)
    exclude.eliminate_zeros()
    return dense, truth, sp.csr_matrix(exclude)


def evaluate(dense: np.ndarray, truth: sp.csr_matrix, exclude: sp.csr_matrix) -> EvalResult:
    def scorer(users: np.ndarray) -> np.ndarray:
        return dense[users]

    return evaluate_scores(scorer, truth, exclude, KS, METRICS, keep_top=True)


def summarise(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    models = list(next(iter(per_seed.values())))
    summary: dict[str, Any] = {}
    for model in models:
        runs = [per_seed[seed][model] for seed in per_seed]
        entry: dict[str, Any] = {}
        for metric in runs[0]["test"]:
            mean, std = mean_std([r["test"][metric] for r in runs])
            entry[metric] = {"mean": mean, "std": std}
        for key in ("fit_seconds", "seconds_per_epoch", "epochs"):
            mean, std = mean_std([r[key] for r in runs])
            entry[key] = {"mean": round(mean, 3), "std": round(std, 3)}
        summary[model] = entry
    results = {m: [per_seed[seed][m]["_result"] for seed in per_seed] for m in models}
    return {"summary": summary, "significance": compare_models(results, "ndcg@10")}


def temporal_agreement(dataset: Any, test_data: Any, data: Dataset) -> dict[str, int]:
    """How many users' RecBole test item is llmrec's ``temporal`` test item."""
    users, items = index_maps(dataset, data)
    ours = split(data, "temporal").test
    mine = dict(zip(ours["user_idx"], ours["item_idx"], strict=True))
    same = total = 0
    for interaction, _, _, _ in test_data:
        for u, i in zip(
            interaction["user_id"].numpy(), interaction["item_id"].numpy(), strict=True
        ):
            total += 1
            same += int(mine.get(users[u]) == items[i])
    return {"users": total, "same_test_item": same}


def tree_state() -> dict[str, Any]:
    """The commit this ran on and the files that differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"head": git("rev-parse", "HEAD").strip(), "modified": [line[3:] for line in changed]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "recbole-text-init.json"
    )
    args = parser.parse_args()
    wall = time.perf_counter()
    # Two threads on this shared 2-core machine made RecBole epochs 4x slower than one.
    torch.set_num_threads(1)
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # RecBole reloads its own checkpoints
    sys.argv = sys.argv[:1]  # RecBole reads --key=value overrides from the command line
    data = load("ml-100k")
    start = time.perf_counter()
    embeddings = encode_dataset(data, EncodeConfig(), default_cache_path())
    encode_seconds = round(time.perf_counter() - start, 3)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": data.describe(),
        "encoder": {
            "fingerprint": embeddings.manifest["fingerprint"],
            "dimension": embeddings.manifest["dimension"],
            "seconds_this_run": encode_seconds,
            "note": "encode_dataset through the default embedding cache (warm: model load only)",
        },
        "config": {"common": COMMON, "bpr": BPR, "sasrec": SASREC, "seeds": args.seeds},
        "protocol": (
            "same data, split, budget and torch thread count for both arms; valid picks the "
            "checkpoint (RecBole's full-sort NDCG@10 on valid); test: llmrec's evaluator over "
            "RecBole's full_sort_predict scores, every item ranked, the user's train and valid "
            "items excluded"
        ),
        "versions": library_versions(),
        "git": tree_state(),
        "load_average_at_start": os.getloadavg(),
    }
    out = args.out.resolve()
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="llmrec-recbole-exp-") as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)  # RecBole's trainer writes log_tensorboard/ under the working directory
        embeddings.save(tmp / "emb")
        exported, export_seconds = export(data, tmp / "emb", tmp / "recbole")
        itememb = Path(exported["data_path"]) / exported["dataset"]
        itememb = itememb / f"{exported['dataset']}.itememb"
        report["export"] = {
            "cli_seconds": export_seconds,
            "itememb_bytes": itememb.stat().st_size,
            "config": exported,
            "note": "llmrec export recbole in a fresh process: imports, dataset and embedding "
            "load, alignment, writing the .itememb and copying the atomic files",
        }
        print("export", export_seconds, "s")

        per_seed: dict[int, dict[str, dict[str, Any]]] = {}
        for seed in args.seeds:
            s = split(data, "random", seed)
            config = {
                **COMMON,
                **BPR,
                **bpr_split(data, s, itememb, tmp / f"bpr-{seed}"),
                "checkpoint_dir": str(tmp / f"saved-bpr-{seed}"),
            }
            truth, exclude = s.matrix("test"), s.matrix("train+valid")
            per_seed[seed] = {}
            for name in ("BPR", "TextBPR"):
                model, dataset, _, facts = train(name, config, seed)
                result = evaluate(general_scores(model, dataset, data), truth, exclude)
                per_seed[seed][name] = {**facts, "test": result.metrics, "_result": result}
                print("random", seed, name, round(result.metrics["ndcg@10"], 4), facts)
        report["random"] = {
            "models": "BPR vs TextBPR",
            "split_seeds": args.seeds,
            **summarise(per_seed),
            "runs": {
                seed: {m: {k: v for k, v in r.items() if k != "_result"} for m, r in runs.items()}
                for seed, runs in per_seed.items()
            },
        }

        per_seed = {}
        sequential = {**COMMON, **SASREC, **llmrec_order(data, exported, tmp / "ranked")}
        agreement = None
        for seed in args.seeds:
            per_seed[seed] = {}
            for name in ("SASRec", "TextSASRec"):
                config = {**sequential, "checkpoint_dir": str(tmp / f"saved-sasrec-{seed}")}
                model, dataset, test_data, facts = train(name, config, seed)
                if agreement is None:
                    agreement = temporal_agreement(dataset, test_data, data)
                dense, truth, exclude = sequential_scores(model, dataset, test_data, data)
                result = evaluate(dense, truth, exclude)
                per_seed[seed][name] = {**facts, "test": result.metrics, "_result": result}
                print("temporal", seed, name, round(result.metrics["ndcg@10"], 4), facts)
        report["temporal"] = {
            "models": "SASRec vs TextSASRec",
            "model_seeds": args.seeds,
            "agreement_with_llmrec_temporal_split": agreement,
            **summarise(per_seed),
            "runs": {
                seed: {m: {k: v for k, v in r.items() if k != "_result"} for m, r in runs.items()}
                for seed, runs in per_seed.items()
            },
        }
        os.chdir(home)
    # timings on a shared machine mean little without the load they ran under
    report["load_average_at_end"] = os.getloadavg()
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    write_json(out, report)
    print(f"wrote {out} in {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
