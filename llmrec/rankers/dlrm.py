"""The two-stage model's second stage: torchrec's ``DLRM`` over dense pair features and
sparse id bags."""

from __future__ import annotations

from typing import Any

from llmrec.rankers.bags import tag_tables


def build_ranker(
    dim: int,
    n_dense: int,
    n_items: int,
    n_user_tags: int,
    n_item_tags: int,
    item_ids: bool = False,
) -> Any:
    """torchrec's DLRM over ``n_dense`` dense pair features and the sparse bags.

    Args:
        dim: the table and bottom-MLP output size.
        n_dense: dense inputs per (user, item) pair.
        n_items: rows of the item id table.
        n_user_tags: user attribute vocabulary (no table when 0).
        n_item_tags: item category vocabulary (no table when 0).
        item_ids: an item id table even when there are tags.

    Returns:
        The ``DLRM`` with ``feature_keys``: its KJT keys, in order.
    """
    import torch
    from torchrec import EmbeddingBagCollection, EmbeddingBagConfig
    from torchrec.models.dlrm import DLRM

    tables = []
    if item_ids or not (n_user_tags or n_item_tags):
        tables.append(
            EmbeddingBagConfig(
                name="item_table", embedding_dim=dim, num_embeddings=n_items, feature_names=["item"]
            )
        )
    tables += tag_tables(dim, n_user_tags, n_item_tags)
    ebc = EmbeddingBagCollection(tables=tables, device=torch.device("cpu"))
    model = DLRM(
        embedding_bag_collection=ebc,
        dense_in_features=n_dense,
        dense_arch_layer_sizes=[32, dim],
        over_arch_layer_sizes=[32, 1],
    )
    model.feature_keys = [f for t in tables for f in t.feature_names]
    return model
