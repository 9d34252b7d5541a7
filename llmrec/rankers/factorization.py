"""implicit's ALS and BPR behind :class:`RecommenderBase`."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt
from threadpoolctl import threadpool_limits

from llmrec.rankers.base import FactorModel, FitInputs, RecommenderConfig, progress_enabled


class ALSConfig(RecommenderConfig):
    """implicit ``AlternatingLeastSquares`` hyper-parameters."""

    factors: PositiveInt = 64
    regularization: NonNegativeFloat = 0.05
    alpha: PositiveFloat = 1.0
    iterations: PositiveInt = 15


class BPRConfig(RecommenderConfig):
    """implicit ``BayesianPersonalizedRanking`` hyper-parameters."""

    factors: PositiveInt = 64
    learning_rate: PositiveFloat = 0.01
    regularization: NonNegativeFloat = 0.01
    iterations: PositiveInt = 100


class ImplicitModel(FactorModel):
    """Fits one of implicit's CPU factor models and keeps its factors."""

    def _make_model(self) -> Any:
        raise NotImplementedError

    def _fit(self, user_items: sp.csr_matrix, inputs: FitInputs) -> Self:
        show_progress_bar = inputs.show_progress_bar
        # implicit's own threads do the work; nested BLAS threads only slow it down. implicit
        # warns about the BLAS pool at construction, before the limit applies to its threads.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            model = self._make_model()
            matrix = sp.csr_matrix(user_items, dtype=np.float32)
            model.fit(matrix, show_progress=progress_enabled(show_progress_bar))
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.n_items = user_items.shape[1]
        return self


class ImplicitALS(ImplicitModel):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via the ``implicit`` package."""

    kind = "als"
    config_class = ALSConfig
    config: ALSConfig

    def _make_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        return AlternatingLeastSquares(
            factors=c.factors,
            regularization=c.regularization,
            alpha=c.alpha,
            iterations=c.iterations,
            random_state=c.seed,
        )


class ImplicitBPR(ImplicitModel):
    """Bayesian Personalized Ranking (Rendle et al. 2009) via the ``implicit`` package.

    Trained with one thread: implicit's multi-threaded SGD is not reproducible for a fixed seed.
    """

    kind = "bpr"
    config_class = BPRConfig
    config: BPRConfig

    def _make_model(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        return BayesianPersonalizedRanking(
            factors=c.factors,
            learning_rate=c.learning_rate,
            regularization=c.regularization,
            iterations=c.iterations,
            random_state=c.seed,
            num_threads=1,
        )
