"""Train the two-tower model across processes with TorchRec's ``DistributedModelParallel``.

The script that runs it under ``torchrun`` and saves a servable model folder is
:mod:`llmrec.pipeline.distributed`. Every rank prepares the same inputs; DMP shards the
embedding tables across the ranks (with fused row-wise Adagrad in the backward pass), DDP
all-reduces the dense towers (Adam), and each rank trains on its own stripe of the
interactions, on ``cuda:{rank}`` under nccl and on the CPU under gloo (as TorchRec's own
two-tower example does). At the end rank 0 gathers the full tables into an ordinary
single-process :class:`~llmrec.rankers.two_tower.TwoTower`, so serving never needs the
process group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from llmrec.datasets.features import SideFeatures
from llmrec.rankers.two_tower import TwoTower


def _gather_state(dmp, rank: int, device) -> dict:
    """The full state dict on rank 0 (sharded tables gathered); empty on the other ranks."""
    import torch
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    full = {}
    for key, value in dmp.state_dict().items():
        if isinstance(value, ShardedTensor):
            # the gathered tensor lives where the collective runs: the rank's GPU under nccl
            out = torch.empty(value.size(), dtype=value.dtype, device=device) if rank == 0 else None
            value.gather(dst=0, out=out)
            value = out
        elif hasattr(value, "full_tensor"):  # a DTensor
            value = value.full_tensor()
        full[key] = value
    return full if rank == 0 else {}


def fit_distributed(
    model: TwoTower,
    user_items: sp.csr_matrix,
    item_texts: Sequence[str],
    features: SideFeatures | None = None,
    sparse_learning_rate: float = 0.05,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[TwoTower, list[float], np.ndarray | None]:
    """Train ``model`` (no early stopping: a fixed ``config.epochs``) on every rank.

    Call it from each process of an initialised process group with the same arguments.

    Args:
        model: an unfitted two-tower model; its config sets sizes, epochs and seed.
        user_items: the training interactions (every rank passes the same).
        item_texts: one text per item column.
        features: item genre and user attribute bags.
        sparse_learning_rate: the fused row-wise Adagrad's rate for the sharded tables.
        on_epoch: called on every rank after each epoch with the epoch and the loss averaged
            over the ranks (the script prints it on rank 0).

    Returns:
        ``(model, losses, dmp_user_item_scores)``: on rank 0 the model is fitted from the gathered
        weights and the scores are those of the DMP model itself (users x items), for checks;
        other ranks get the unfitted model and None.
    """
    import torch
    import torch.distributed as dist
    from torchrec.distributed import DistributedModelParallel
    from torchrec.distributed.model_parallel import get_default_sharders
    from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
    from torchrec.distributed.planner.types import ParameterConstraints
    from torchrec.optim import RowWiseAdagrad
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward
    from torchrec.optim.keyed import KeyedOptimizerWrapper
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    rank, world = dist.get_rank(), dist.get_world_size()
    c = model.config
    users_in = model.prepare(user_items, item_texts, features)
    towers = model.new_towers()  # prepare seeded torch: every rank starts from the same weights
    apply_optimizer_in_backward(
        RowWiseAdagrad, towers.ebc.parameters(), {"lr": sparse_learning_rate}
    )
    # nccl needs each rank on its own GPU; gloo trains on the CPU.
    if dist.get_backend() == "nccl":
        device = torch.device(f"cuda:{rank % torch.cuda.device_count()}")
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    model._device = device
    # Every table table-wise with the fused kernel: the planner would otherwise replicate small
    # tables with the dense kernel, whose CPU lookup has no autograd support.
    constraints = {
        table.name: ParameterConstraints(sharding_types=["table_wise"], compute_kernels=["fused"])
        for table in towers.ebc.embedding_bag_configs()
    }
    planner = EmbeddingShardingPlanner(
        topology=Topology(world_size=world, compute_device=device.type), constraints=constraints
    )
    plan = planner.collective_plan(towers, get_default_sharders(), dist.GroupMember.WORLD)
    dmp = DistributedModelParallel(module=towers, device=device, plan=plan)
    dense = KeyedOptimizerWrapper(
        dict(in_backward_optimizer_filter(dmp.named_parameters())),
        lambda params: torch.optim.Adam(params, lr=c.learning_rate),
    )
    users, items = model.training_rows(sp.csr_matrix(user_items))
    stripe = np.arange(rank, len(users), world)
    # Every rank must run the same number of steps: the sharded lookups are collectives.
    steps = (len(users) // world) // c.batch_size
    rng = np.random.default_rng(c.seed + rank)
    losses = []
    for _ in range(c.epochs):
        dmp.train()
        order = rng.permutation(stripe)
        epoch_losses = []
        for step in range(steps):
            batch = order[step * c.batch_size : (step + 1) * c.batch_size]
            loss = model.loss(dmp, users_in, users[batch], items[batch])
            dense.zero_grad()
            loss.backward()
            dense.step()
            epoch_losses.append(loss.item())
        mean = torch.tensor(float(np.mean(epoch_losses)), device=device)
        dist.all_reduce(mean)
        losses.append(mean.item() / world)
        if on_epoch is not None:
            on_epoch(len(losses) - 1, losses[-1])

    dmp.eval()
    # no_grad, not inference_mode: the fused CPU lookup is only registered behind autograd.
    with torch.no_grad():
        u, v = _dmp_vectors(model, dmp, users_in)
    state = _gather_state(dmp, rank, device)
    model._device = None
    if rank != 0:
        return model, losses, None
    single = model.new_towers()
    single.load_state_dict({k.removeprefix("module."): t.cpu() for k, t in state.items()})
    model._model = single
    model._export(users_in)
    return model, losses, u @ v.T


def _dmp_vectors(model: TwoTower, dmp, users_in) -> tuple[np.ndarray, np.ndarray]:
    """User and item vectors computed through the sharded model, in one forward each side."""
    n_users, n_items = model.n_users, model.n_items
    users = np.arange(n_users)
    # The towers' forward runs both sides; pad the shorter side by repeating index 0.
    n = max(n_users, n_items)
    user_rows = np.concatenate([users, np.zeros(n - n_users, dtype=np.int64)])
    item_rows = np.concatenate([np.arange(n_items), np.zeros(n - n_items, dtype=np.int64)])
    u, v = dmp(*model._inputs(users_in, user_rows, item_rows, drop=False))
    return u[:n_users].cpu().numpy(), v[:n_items].cpu().numpy()
