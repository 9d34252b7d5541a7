"""Training throughput of the TorchRec two-tower model against the same model written with
plain PyTorch (``nn.Embedding`` / ``nn.EmbeddingBag``). Same data (ml-100k random train split),
batch size, features, loss and optimizer; the two alternate over rounds, and the script
reports the median samples/s ratio. Writes throughput-DATASET.json beside this file.

Usage: .venv/bin/python experiments/two_tower/throughput.py [--dataset ml-100k] [--steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llmrec.datasets import item_text, load, split
from llmrec.io import library_versions, write_json
from llmrec.rankers.two_tower import TwoTower


class PlainTowers(nn.Module):
    """The TorchRec towers, with torch.nn embedding layers instead of an EmbeddingBagCollection."""

    def __init__(self, n_users: int, n_items: int, text_dim: int, d: int) -> None:
        super().__init__()
        self.users = nn.Embedding(n_users, d)
        self.items = nn.Embedding(n_items, d)
        self.history = nn.EmbeddingBag(n_items, d, mode="mean")
        self.user_text, self.item_text = nn.Linear(text_dim, d), nn.Linear(text_dim, d)
        self.user_mlp = nn.Sequential(nn.Linear(3 * d, d), nn.ReLU(), nn.Linear(d, d))
        self.item_mlp = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, d))

    def forward(self, users, items, hist_values, hist_offsets, user_text, item_text, seen):
        # the history bag shares the item table, as in the TorchRec model
        self.history.weight = self.items.weight
        bag = self.history(hist_values, hist_offsets)
        u = torch.cat([self.users(users), bag, self.user_text(user_text)], dim=1)
        v = torch.cat([self.items(items) * seen.unsqueeze(1), self.item_text(item_text)], dim=1)
        return (
            nn.functional.normalize(self.user_mlp(u), dim=1),
            nn.functional.normalize(self.item_mlp(v), dim=1),
        )


def plain_batch(model: TwoTower, users_in: dict, users: np.ndarray, items: np.ndarray):
    history = users_in["history"][users]
    keep = (history >= 0) & (history != items[:, None])
    keep &= np.cumsum(keep, axis=1) <= model.config.history_len
    lengths = keep.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return (
        torch.from_numpy(users),
        torch.from_numpy(items),
        torch.from_numpy(history[keep]),
        torch.from_numpy(offsets),
        torch.from_numpy(users_in["text"][users]),
        torch.from_numpy(model.item_text[items]),
        torch.from_numpy(model.item_seen[items]),
    )


def train_steps(net, make_batch, users, items, batches, optimizer, temperature) -> float:
    start = time.perf_counter()
    for batch in batches:
        u, v = net(*make_batch(users[batch], items[batch]))
        logits = u @ v.T / temperature
        loss = nn.functional.cross_entropy(logits, torch.arange(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = split(load(args.dataset), "random", 42)
    train = data.matrix("train", "rating")
    texts = item_text(data.dataset.items, data.dataset.text_columns).tolist()
    # ID and text features only: the plain model has no tag bags
    model = TwoTower(batch_size=args.batch_size, use_tags=False)
    users_in = model.prepare(train, texts, None)
    n_users, n_items = train.shape
    d = model.config.dim
    torchrec_net = model.new_towers()
    plain_net = PlainTowers(n_users, n_items, model.item_text.shape[1], d)
    users = np.repeat(np.arange(n_users), np.diff(train.indptr))
    items = train.indices.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(users))
    batches = [
        order[lo : lo + args.batch_size]
        for lo in range(0, args.steps * args.batch_size, args.batch_size)
    ]

    def torchrec_batch(u, i):
        return model._inputs(users_in, u, i)

    def plain(u, i):
        return plain_batch(model, users_in, u, i)

    opt_a = torch.optim.Adam(torchrec_net.parameters(), lr=0.005)
    opt_b = torch.optim.Adam(plain_net.parameters(), lr=0.005)
    temperature = model.config.temperature
    ours, theirs = [], []
    for _ in range(args.rounds):
        ours.append(
            train_steps(torchrec_net, torchrec_batch, users, items, batches, opt_a, temperature)
        )
        theirs.append(train_steps(plain_net, plain, users, items, batches, opt_b, temperature))
    ratio = statistics.median(ours) / statistics.median(theirs)
    result = {
        "command": f"python experiments/two_tower/throughput.py --dataset {args.dataset} "
        f"--steps {args.steps}",
        "config": vars(args),
        "dataset": {"name": data.dataset.name, "checksum": data.dataset.checksum},
        "torchrec_samples_per_s": ours,
        "plain_pytorch_samples_per_s": theirs,
        "ratio_torchrec_over_plain": ratio,
        "versions": library_versions(),
    }
    write_json(Path(__file__).with_name(f"throughput-{args.dataset}.json"), result)
    print(
        f"TorchRec {statistics.median(ours):.0f} samples/s, plain PyTorch "
        f"{statistics.median(theirs):.0f} samples/s: ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
