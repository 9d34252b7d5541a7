"""Personas: clusters of users by taste (k-means over user embeddings), each with a centroid
embedding and a text made of the items nearest to it. They stand in for users with little or no
history."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np

from llmrec.encoders.base import normalize_rows
from llmrec.errors import ConfigError, DataError
from llmrec.io import atomic_write


class Personas:
    """Spherical k-means (faiss) over user embeddings.

    Args:
        n_personas: number of clusters.
        seed: k-means seed.
        niter: k-means iterations.
    """

    def __init__(self, n_personas: int = 16, seed: int = 42, niter: int = 25) -> None:
        if n_personas < 1:
            raise ConfigError(f"n_personas must be >= 1, got {n_personas}")
        self.n_personas, self.seed, self.niter = n_personas, seed, niter
        self.centroids = np.empty((0, 0), dtype=np.float32)
        self.sizes = np.empty(0, dtype=np.int64)
        self.texts: list[str] = []

    def fit(self, user_vectors: np.ndarray) -> Self:
        """Cluster users. Rows with NaN (users without history) are left out.

        Raises:
            DataError: fewer usable users than personas, or a non-2-d input.
        """
        import faiss

        if np.ndim(user_vectors) != 2:
            raise DataError(f"user_vectors must be 2-d, got shape {np.shape(user_vectors)}")
        usable = normalize_rows(user_vectors[np.isfinite(user_vectors).all(axis=1)])
        if len(usable) < self.n_personas:
            raise DataError(
                f"{len(usable)} users with history for {self.n_personas} personas; "
                "ask for fewer personas"
            )
        kmeans = faiss.Kmeans(
            usable.shape[1],
            self.n_personas,
            niter=self.niter,
            seed=self.seed,
            spherical=True,
            verbose=False,
        )
        kmeans.train(usable)
        if kmeans.centroids is None:  # faiss types it Optional: None only before train()
            raise RuntimeError("faiss Kmeans.train() left no centroids")
        self.centroids = normalize_rows(kmeans.centroids)
        self.sizes = np.bincount(self._nearest(usable), minlength=self.n_personas)
        return self

    def _nearest(self, unit_vectors: np.ndarray) -> np.ndarray:
        return np.argmax(unit_vectors @ self.centroids.T, axis=1)

    def _check_fitted(self, dimension: int | None = None) -> None:
        if self.centroids.size == 0:
            raise RuntimeError("Personas is not fitted: call fit() first")
        if dimension is not None and dimension != self.centroids.shape[1]:
            raise DataError(
                f"vectors are {dimension}-d but the personas are {self.centroids.shape[1]}-d"
            )

    def assign(self, user_vectors: np.ndarray) -> np.ndarray:
        """Persona id of each user; -1 for users without history (NaN rows)."""
        self._check_fitted(np.shape(user_vectors)[1])
        finite = np.isfinite(user_vectors).all(axis=1)
        out = np.full(len(user_vectors), -1, dtype=np.int64)
        out[finite] = self._nearest(normalize_rows(user_vectors[finite]))
        return out

    @property
    def largest(self) -> int:
        """The most common persona: the default for a user we know nothing about."""
        self._check_fitted()
        return int(np.argmax(self.sizes))

    def describe(self, item_vectors: np.ndarray, item_texts: list[str], top: int = 5) -> list[str]:
        """A text per persona: the ``top`` items nearest its centroid. Kept in ``texts``."""
        self._check_fitted(item_vectors.shape[1])
        if len(item_texts) != len(item_vectors):
            raise DataError(f"{len(item_texts)} item texts for {len(item_vectors)} item vectors")
        nearest = np.argsort(-(self.centroids @ normalize_rows(item_vectors).T), axis=1)[:, :top]
        self.texts = [
            f"A viewer who likes: {' '.join(item_texts[i] for i in row)}" for row in nearest
        ]
        return self.texts

    def save(self, path: str | Path) -> Path:
        """Save to ``.npz`` (no pickle), atomically."""
        self._check_fitted()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    centroids=self.centroids,
                    sizes=self.sizes,
                    texts=np.array(self.texts, dtype=str),
                    params=np.array([self.n_personas, self.seed, self.niter]),
                )

        return atomic_write(Path(path), write)

    @classmethod
    def load(cls, path: str | Path) -> Personas:
        with np.load(path, allow_pickle=False) as data:
            n, seed, niter = (int(v) for v in data["params"])
            personas = cls(n, seed, niter)
            personas.centroids, personas.sizes = data["centroids"], data["sizes"]
            personas.texts = [str(t) for t in data["texts"]]
        return personas
