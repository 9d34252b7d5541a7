"""Every model, behind one interface (:class:`RecommenderBase`): the baselines, text
similarity, the two-tower (a retriever) and the two-stage model (retrievers + a ranker). "Ranker"
here means anything that ranks items for a user; the vector indexes models search are in
:mod:`llmrec.retrieval`."""

from __future__ import annotations

from llmrec.rankers.base import REGISTRY, RecommenderBase, RecommenderConfig, make_config
from llmrec.rankers.factorization import ImplicitALS, ImplicitBPR
from llmrec.rankers.linear import EASE
from llmrec.rankers.neighbours import ItemKNN
from llmrec.rankers.popularity import Popularity
from llmrec.rankers.recbole_model import RecBoleModel
from llmrec.rankers.text_similarity import TextSimilarity
from llmrec.rankers.two_stage import TwoStage
from llmrec.rankers.two_tower import TwoTower

__all__ = [
    "EASE",
    "REGISTRY",
    "ImplicitALS",
    "ImplicitBPR",
    "ItemKNN",
    "Popularity",
    "RecBoleModel",
    "RecommenderBase",
    "RecommenderConfig",
    "TextSimilarity",
    "TwoStage",
    "TwoTower",
    "make_config",
]
