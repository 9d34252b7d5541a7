"""Datasets: loading, filters, item text and splits."""

from __future__ import annotations

from llmrec.datasets.dataset import Dataset, to_csr
from llmrec.datasets.filters import DatasetFilters, apply_filters
from llmrec.datasets.loader import load
from llmrec.datasets.splits import SPLITS, Split, split
from llmrec.datasets.text import item_text, render_item

__all__ = [
    "SPLITS",
    "Dataset",
    "DatasetFilters",
    "Split",
    "apply_filters",
    "item_text",
    "load",
    "render_item",
    "split",
    "to_csr",
]
