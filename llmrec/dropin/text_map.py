"""The map from item text embeddings to collaborative factors, learned on warm items.

Ridge (closed form, penalty chosen by leave-one-out) or a small seeded MLP; the implicit drop-in
and any model with ``item_factors`` use it to give items nobody interacted with a place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import scipy.sparse as sp

from llmrec.errors import ConfigError, DataError

METHODS = ("ridge", "mlp")
MAP_PREFIX = "text_map_"
"""Keys of the text map in a saved ``.npz``."""
_SOLVE_CHUNK = 1024
"""Items per batched solve: 1024 systems of 64 x 64 float64 are 32 MiB."""
_RIDGE_GRID = np.logspace(-4, 2, 13)
"""Ridge penalties tried, times the mean squared singular value of the centred embeddings."""


# ---- the text map ----------------------------------------------------------------------------


def check_embeddings(embeddings: Any, where: str = "item_embeddings") -> np.ndarray:
    """``embeddings`` as a C-contiguous float32 ``(n, d)`` array, or a DataError saying why not.

    Raises:
        DataError: not numeric, not 2-d, empty, or with NaN/inf values (the first bad row named).
    """
    array = np.asarray(embeddings)
    if array.dtype.kind not in "fiu":
        raise DataError(f"{where} must be numeric, got dtype {array.dtype}")
    if array.ndim != 2:
        raise DataError(
            f"{where} must be a 2-d (n_items, dimension) array, got {array.ndim}-d shape "
            f"{array.shape}"
        )
    if 0 in array.shape:
        raise DataError(f"{where} is empty: shape {array.shape}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise DataError(
            f"{where} has NaN or inf values in {int(bad.sum())} rows (first: row "
            f"{int(np.argmax(bad))})"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


@dataclass
class TextMap:
    """A fitted map from item-text embeddings to item factors.

    Attributes:
        method: ``ridge`` or ``mlp``.
        in_mean: ``(d,)`` mean embedding of the items it was fitted on (subtracted first).
        out_mean, out_scale: the factors' ``(f,)`` mean and overall std (outputs are scaled
            back by them).
        weights: ridge ``(W,)``, ``(d, f)``; MLP ``(W1, b1, W2, b2)``.
        alpha: the ridge penalty used (NaN for the MLP).
    """

    method: str
    in_mean: np.ndarray
    out_mean: np.ndarray
    out_scale: float
    weights: tuple[np.ndarray, ...]
    alpha: float

    @property
    def dimension(self) -> int:
        return len(self.in_mean)

    @property
    def n_factors(self) -> int:
        return len(self.out_mean)

    def predict(self, embeddings: Any) -> np.ndarray:
        """float64 ``(n, f)`` factors for ``(n, d)`` embeddings.

        Raises:
            DataError: bad embeddings, or another dimension than the map was fitted on.
        """
        emb = check_embeddings(embeddings)
        if emb.shape[1] != self.dimension:
            raise DataError(
                f"item embeddings have dimension {emb.shape[1]}; the text map was fitted on "
                f"dimension {self.dimension}"
            )
        x = emb.astype(np.float64) - self.in_mean
        if self.method == "ridge":
            y = x @ self.weights[0]
        else:
            w1, b1, w2, b2 = self.weights
            y = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        return y * self.out_scale + self.out_mean

    def arrays(self) -> dict[str, Any]:
        """The map as ``.npz`` entries (keys start with ``text_map_``)."""
        parts: dict[str, Any] = {
            "method": self.method,
            "in_mean": self.in_mean,
            "out_mean": self.out_mean,
            "out_scale": self.out_scale,
            "alpha": self.alpha,
        }
        parts.update({f"w{i}": w for i, w in enumerate(self.weights)})
        return {MAP_PREFIX + key: value for key, value in parts.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> TextMap:
        """Rebuild a map from :meth:`arrays`' entries.

        Raises:
            DataError: a part is missing or the shapes do not chain.
        """
        parts = {key.removeprefix(MAP_PREFIX): value for key, value in arrays.items()}
        try:
            method = str(parts["method"])
            count = 1 if method == "ridge" else 4
            weights = tuple(np.asarray(parts[f"w{i}"], dtype=np.float64) for i in range(count))
            text = cls(
                method,
                np.asarray(parts["in_mean"], dtype=np.float64).reshape(-1),
                np.asarray(parts["out_mean"], dtype=np.float64).reshape(-1),
                float(parts["out_scale"]),
                weights,
                float(parts["alpha"]),
            )
        except KeyError as exc:
            raise DataError(f"the saved text map lacks its part {exc.args[0]!r}") from None
        shapes = [w.shape for w in weights]
        d, f = text.dimension, text.n_factors
        expected = (
            [(d, f)]
            if method == "ridge"
            else [(d, shapes[0][-1]), (shapes[0][-1],), (shapes[0][-1], f), (f,)]
        )
        if method not in METHODS or shapes != expected:
            raise DataError(f"the saved text map ({method}) has weights of shapes {shapes}")
        return text


def ridge_basis(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of centred embeddings, reused for every target and penalty."""
    u, s, vt = np.linalg.svd(np.asarray(x, dtype=np.float64), full_matrices=False)
    return u, s, vt


def _ridge_weights(
    basis: tuple[np.ndarray, np.ndarray, np.ndarray], y: np.ndarray, alpha: float | None
) -> tuple[np.ndarray, float]:
    """Ridge weights ``(d, f)`` for centred targets ``y``; ``alpha`` None: the grid point with the
    lowest exact leave-one-out squared error (hat-matrix shortcut, centring counted)."""
    u, s, vt = basis
    s2 = s**2
    uty = u.T @ y
    if alpha is None:
        scale = float(s2.mean()) if s2.size and s2.mean() > 0 else 1.0
        errors = []
        for candidate in scale * _RIDGE_GRID:
            shrink = s2 / (s2 + candidate)
            leverage = 1.0 / len(y) + (u**2) @ shrink
            residual = (y - u @ (shrink[:, None] * uty)) / np.maximum(1 - leverage, 1e-9)[:, None]
            errors.append(float((residual**2).sum()))
        alpha = float(scale * _RIDGE_GRID[int(np.argmin(errors))])
    return vt.T @ ((s / (s2 + alpha))[:, None] * uty), float(alpha)


def ridge_map(
    in_mean: np.ndarray,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray],
    factors: np.ndarray,
    alpha: float | None,
) -> TextMap:
    """A ridge :class:`TextMap` from the :func:`ridge_basis` of embeddings centred on
    ``in_mean`` (the fit loop refits it every iteration on new factors, with one basis)."""
    y = np.asarray(factors, dtype=np.float64)
    out_mean = y.mean(axis=0)
    scale = float(y.std()) or 1.0
    weights, alpha = _ridge_weights(basis, (y - out_mean) / scale, alpha)
    return TextMap("ridge", in_mean, out_mean, scale, (weights,), alpha)


def _mlp_weights(
    x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, seed: int
) -> tuple[np.ndarray, ...]:
    """One hidden ReLU layer, full-batch Adam on squared error, the epoch with the lowest error
    on a seeded 10% holdout kept (all rows train when there are fewer than 10)."""
    import torch

    order = np.random.default_rng(seed).permutation(len(x))
    n_hold = len(x) // 10
    hold, train = order[:n_hold], order[n_hold:]
    with torch.random.fork_rng(devices=[]):  # seed the net without touching the caller's RNG
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, y.shape[1]),
        )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
    best, best_state, patience = np.inf, None, 0
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(xt[train]), yt[train])
        loss.backward()
        optimizer.step()
        if n_hold:
            with torch.no_grad():
                held = float(torch.nn.functional.mse_loss(net(xt[hold]), yt[hold]))
            if held < best:
                best, patience = held, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                patience += 1
                if patience >= 25:
                    break
    if best_state is not None:
        net.load_state_dict(best_state)
    first, last = cast(torch.nn.Linear, net[0]), cast(torch.nn.Linear, net[2])
    return tuple(
        t.detach().numpy().astype(np.float64)
        for t in (first.weight.T, first.bias, last.weight.T, last.bias)
    )


def fit_text_map(
    embeddings: Any,
    factors: Any,
    method: str = "ridge",
    *,
    ridge_alpha: float | None = None,
    mlp_hidden: int = 256,
    mlp_epochs: int = 500,
    seed: int = 0,
) -> TextMap:
    """Learn a map from item embeddings to item factors.

    Args:
        embeddings: ``(n, d)`` embeddings of items with trusted factors.
        factors: ``(n, f)`` their factors.
        method: ``ridge`` (closed form) or ``mlp``.
        ridge_alpha: the ridge penalty; None picks it by leave-one-out error.
        mlp_hidden, mlp_epochs, seed: the MLP's size, most epochs and seed.

    Returns:
        The fitted :class:`TextMap`.

    Raises:
        ConfigError: an unknown method.
        DataError: bad arrays, a row-count mismatch, or fewer than 2 rows.
    """
    if method not in METHODS:
        raise ConfigError(f"text map method must be one of {METHODS}, got {method!r}")
    emb = check_embeddings(embeddings)
    y = np.asarray(factors, dtype=np.float64)
    if y.ndim != 2 or not np.isfinite(y).all():
        raise DataError(f"factors must be a finite 2-d array, got shape {y.shape}")
    if len(emb) != len(y):
        raise DataError(f"{len(emb)} embedding rows but {len(y)} factor rows")
    if len(emb) < 2:
        raise DataError(f"a text map needs 2 or more items to learn from, got {len(emb)}")
    in_mean = emb.mean(axis=0, dtype=np.float64)
    x = emb - in_mean
    if method == "ridge":
        return ridge_map(in_mean, ridge_basis(x), y, ridge_alpha)
    out_mean = y.mean(axis=0)
    scale = float(y.std()) or 1.0
    weights = _mlp_weights(x, (y - out_mean) / scale, mlp_hidden, mlp_epochs, seed)
    return TextMap("mlp", in_mean, out_mean, scale, weights, float("nan"))


def text_item_factors(
    model: Any,
    item_embeddings: np.ndarray,
    warm_items: Any,
    method: str = "ridge",
    *,
    ridge_alpha: float | None = None,
    mlp_hidden: int = 256,
    mlp_epochs: int = 500,
    seed: int = 0,
) -> np.ndarray:
    """Factors for the items of ``item_embeddings`` not in ``warm_items``, from a text map
    learned on the warm ones: for a model already trained (plain implicit works).

    Example::

        cold = np.setdiff1d(np.arange(len(emb)), warm)
        model.item_factors[cold] = text_item_factors(model, emb, warm)

    Args:
        model: anything with ``item_factors`` (numpy, or implicit's GPU matrix).
        item_embeddings: ``(n, d)``, rows ``0..n_items-1`` the model's items; rows past them
            are new items.
        warm_items: ids (or a boolean mask over the model's items) whose factors to learn from.
        method: ``ridge`` or ``mlp`` (see :class:`AlternatingLeastSquares`).
        ridge_alpha, mlp_hidden, mlp_epochs, seed: the map's settings.

    Returns:
        ``(n - len(warm), factors)`` in ascending item order, the model's factor dtype.

    Raises:
        ConfigError: an unknown method, or a model without factors.
        DataError: fewer embedding rows than model items, other bad embeddings, or warm ids
            out of range.
    """
    factors = getattr(model, "item_factors", None)
    if factors is not None and hasattr(factors, "to_numpy"):
        factors = factors.to_numpy()
    if factors is None:
        raise ConfigError("the model has no item_factors: fit it first")
    factors = np.asarray(factors)
    emb = check_embeddings(item_embeddings)
    if len(emb) < len(factors):
        raise DataError(
            f"item_embeddings have {len(emb)} rows but the model has {len(factors)} items"
        )
    warm = np.asarray(warm_items)
    if warm.dtype == bool:
        if warm.shape != (len(factors),):
            raise DataError(f"a warm_items mask needs {len(factors)} entries, got {warm.shape}")
        warm = np.flatnonzero(warm)
    warm = np.unique(warm.astype(np.int64).reshape(-1))
    if len(warm) and (warm.min() < 0 or warm.max() >= len(factors)):
        raise DataError(f"warm_items must be item ids in [0, {len(factors)}), got {warm.max()}")
    text = fit_text_map(
        emb[warm],
        factors[warm],
        method,
        ridge_alpha=ridge_alpha,
        mlp_hidden=mlp_hidden,
        mlp_epochs=mlp_epochs,
        seed=seed,
    )
    other = np.setdiff1d(np.arange(len(emb)), warm)
    return text.predict(emb[other]).astype(factors.dtype)


def solve_with_prior(
    users: np.ndarray,
    item_users: sp.csr_matrix,
    prior: np.ndarray,
    regularization: float,
    mu: float,
) -> np.ndarray:
    """Exact item factors under implicit's loss (its ``user_linear_equation``: negative
    confidences mean disliked) plus ``mu * ||v - prior||^2``, in float64."""
    users = np.asarray(users, dtype=np.float64)
    base = users.T @ users + (regularization + mu) * np.eye(users.shape[1])
    indptr, indices, data = item_users.indptr, item_users.indices, item_users.data
    out = np.empty(prior.shape, dtype=np.float64)
    for lo in range(0, len(prior), _SOLVE_CHUNK):
        hi = min(lo + _SOLVE_CHUNK, len(prior))
        lhs = np.repeat(base[None], hi - lo, axis=0)
        rhs = mu * prior[lo:hi].astype(np.float64)
        for row in range(lo, hi):
            start, end = indptr[row], indptr[row + 1]
            x = users[indices[start:end]]
            conf = data[start:end].astype(np.float64)
            lhs[row - lo] += x.T @ ((np.abs(conf) - 1)[:, None] * x)
            rhs[row - lo] += np.where(conf > 0, conf, 0.0) @ x
        out[lo:hi] = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    return out
