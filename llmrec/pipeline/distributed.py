"""``torchrun ... -m llmrec.pipeline.distributed``: train the two-tower across processes with
TorchRec's ``DistributedModelParallel`` and save a model folder that ``llmrec recommend`` and
``Recommender.load`` serve.

Run it under ``torchrun`` (gloo on CPU, nccl on GPUs)::

    torchrun --nproc_per_node 2 -m llmrec.pipeline.distributed --dataset ml-1m --out model/

Rank 0 prints each epoch's loss (averaged over the ranks) and the test metrics, and writes the
folder; see :func:`llmrec.rankers.distributed.fit_distributed` for how the ranks split the work.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def main(argv: Sequence[str] | None = None) -> None:
    """Train on a split's train, report test NDCG on rank 0 and save the model folder there."""
    import torch
    import torch.distributed as dist

    from llmrec.artifacts import check_target
    from llmrec.datasets import Dataset, load, split
    from llmrec.datasets.features import side_features
    from llmrec.datasets.text import item_text
    from llmrec.pipeline.recommender import Recommender
    from llmrec.rankers.base import make_config
    from llmrec.rankers.distributed import fit_distributed
    from llmrec.rankers.two_tower import TwoTower, TwoTowerConfig
    from llmrec.ranking import mean_ndcg

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="random")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-users", type=int, default=0, help="keep the first N users only")
    parser.add_argument("--params", default="{}", help="TwoTowerConfig fields as JSON")
    parser.add_argument("--out", type=Path, required=True, help="model folder (rank 0 writes)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--dmp-scores", type=Path, help="also save the sharded model's user x item scores (.npy)"
    )
    args = parser.parse_args(argv)
    config = make_config(TwoTowerConfig, json.loads(args.params))
    check_target(args.out, "model", args.overwrite)  # before any training, on every rank
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank()
    data = load(args.dataset)
    if args.max_users:
        keep = data.user_ids[: args.max_users]
        inter = data.interactions[data.interactions["user_id"].isin(keep)]
        data = Dataset(
            data.name,
            inter[["user_id", "item_id", "rating", "timestamp"]],
            data.items,
            data.users[data.users["user_id"].isin(keep)],
            data.checksum,
            text_columns=data.text_columns,
        )
    parts = split(data, args.split, args.seed)
    train = parts.matrix("train", values="rating")

    def report(epoch: int, loss: float) -> None:
        if rank == 0:
            print(f"epoch {epoch + 1}/{config.epochs}: loss {loss:.4f}", flush=True)

    model, losses, scores = fit_distributed(
        TwoTower(config),
        train,
        item_text(data.items, data.text_columns).tolist(),
        side_features(data, parts.train),
        on_epoch=report,
    )
    if rank == 0:
        test = mean_ndcg(model.score, parts.matrix("test"), exclude=parts.matrix("train+valid"))
        print(f"test NDCG@10 ({args.split} split): {test:.4f}", flush=True)
        recommender = Recommender.from_fitted(
            model, data.user_ids, data.item_ids, train, data.checksum
        )
        recommender.save(args.out, overwrite=args.overwrite)
        print(f"wrote {args.out} (losses: {', '.join(f'{x:.4f}' for x in losses)})", flush=True)
        if args.dmp_scores is not None:
            assert scores is not None  # rank 0 gets the sharded model's scores
            np.save(args.dmp_scores, scores)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
