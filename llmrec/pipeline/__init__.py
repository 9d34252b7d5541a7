"""The end-to-end pipeline over your own ids: :class:`Recommender`, and the script that trains
its two-tower across processes (``torchrun -m llmrec.pipeline.distributed``)."""

from __future__ import annotations

from llmrec.pipeline.recommender import Recommender

__all__ = ["Recommender"]
