"""The two-tower network as a module-level ``nn.Module`` (so fitted models pickle)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from llmrec.rankers.bags import tag_tables
from llmrec.rankers.text_init import CopyRows


class Towers(nn.Module):
    """User and item towers over one TorchRec ``EmbeddingBagCollection`` and text embeddings.

    Args:
        ebc: the tables; ``feature_keys`` lists the KJT keys in order.
        feature_keys: the features of ``ebc``'s tables, in order.
        dim: the output (and table) dimension.
        text_dim: the dimension of the LLM text embeddings.
        use_ids: user id, history bag and item id parts.
        use_user_tags: the user attribute bag.
        use_item_tags: the item category bag.
        use_text: the projected text embeddings.
    """

    def __init__(
        self,
        ebc: nn.Module,
        feature_keys: list[str],
        dim: int,
        text_dim: int,
        use_ids: bool,
        use_user_tags: bool,
        use_item_tags: bool,
        use_text: bool,
    ) -> None:
        super().__init__()
        self.ebc, self.feature_keys = ebc, feature_keys
        self.use_ids, self.use_text = use_ids, use_text
        self.use_user_tags, self.use_item_tags = use_user_tags, use_item_tags
        user_parts = 2 * use_ids + use_user_tags + use_text
        item_parts = use_ids + use_item_tags + use_text
        self.user_text = nn.Linear(text_dim, dim)
        self.item_text = nn.Linear(text_dim, dim)
        self.user_mlp = nn.Sequential(
            nn.Linear(user_parts * dim, dim), nn.ReLU(), nn.Linear(dim, dim)
        )
        self.item_mlp = nn.Sequential(
            nn.Linear(item_parts * dim, dim), nn.ReLU(), nn.Linear(dim, dim)
        )

    def users(
        self, pooled: dict[str, torch.Tensor], user_text: torch.Tensor, user_seen: torch.Tensor
    ) -> torch.Tensor:
        parts = []
        if self.use_ids:
            parts += [pooled["user"] * user_seen.unsqueeze(1), pooled["history"]]
        if self.use_user_tags:
            parts.append(pooled["user_tags"])
        if self.use_text:
            parts.append(self.user_text(user_text))
        return nn.functional.normalize(self.user_mlp(torch.cat(parts, dim=1)), dim=1)

    def items(
        self, pooled: dict[str, torch.Tensor], item_text: torch.Tensor, item_seen: torch.Tensor
    ) -> torch.Tensor:
        parts = []
        if self.use_ids:
            parts.append(pooled["item"] * item_seen.unsqueeze(1))
        if self.use_item_tags:
            parts.append(pooled["item_tags"])
        if self.use_text:
            parts.append(self.item_text(item_text))
        return nn.functional.normalize(self.item_mlp(torch.cat(parts, dim=1)), dim=1)

    def forward(
        self,
        kjt,
        user_text: torch.Tensor,
        user_seen: torch.Tensor,
        item_text: torch.Tensor,
        item_seen: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.ebc(kjt).to_dict()
        return self.users(pooled, user_text, user_seen), self.items(pooled, item_text, item_seen)


def build_towers(
    dim: int,
    n_users: int,
    n_items: int,
    text_dim: int,
    n_user_tags: int = 0,
    n_item_tags: int = 0,
    *,
    use_ids: bool = True,
    use_tags: bool = True,
    use_text: bool = True,
    item_rows: np.ndarray | None = None,
) -> Towers:
    """The two towers as one ``nn.Module`` around a TorchRec ``EmbeddingBagCollection``.

    Tag tables exist only when there are tags; ``feature_keys`` lists the KJT keys in order.
    ``item_rows`` (``(n_items, dim)``, e.g. projected item text) start the item table in place
    of TorchRec's uniform init, also under a table-wise ``DistributedModelParallel``.
    """
    from torchrec import EmbeddingBagCollection, EmbeddingBagConfig, PoolingType

    d = dim
    tables = [
        EmbeddingBagConfig(
            name="user_table", embedding_dim=d, num_embeddings=n_users, feature_names=["user"]
        ),
        EmbeddingBagConfig(
            name="item_table",
            embedding_dim=d,
            num_embeddings=n_items,
            feature_names=["item", "history"],
            pooling=PoolingType.MEAN,
            init_fn=None if item_rows is None else CopyRows(item_rows),
        ),
    ]
    tables += tag_tables(d, n_user_tags, n_item_tags)

    return Towers(
        EmbeddingBagCollection(tables=tables, device=torch.device("cpu")),
        [f for t in tables for f in t.feature_names],
        d,
        text_dim,
        use_ids,
        bool(use_tags and n_user_tags),
        bool(use_tags and n_item_tags),
        use_text,
    )
