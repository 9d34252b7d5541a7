"""implicit's ALS with item text: a drop-in for ``implicit.als.AlternatingLeastSquares``.

Swap the import and pass item-text embeddings (``(n_items, d)``, row ``i`` for item ``i``)::

    from llmrec.dropin.implicit import AlternatingLeastSquares
    model = AlternatingLeastSquares(factors=64, item_embeddings=emb)
    model.fit(user_items)  # items with no interactions get factors from their text

Items never seen in ``fit`` (all-zero columns, or rows added later with :meth:`add_items`) get
factors from a map learned on the warm items' text and ALS factors: closed-form ridge (default)
or a small seeded MLP. :func:`text_item_factors` applies the same map to a model already trained
with plain implicit.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares as _ImplicitALS

from llmrec.errors import ConfigError, DataError

__all__ = [
    "AlternatingLeastSquares",
    "TextMap",
    "check_embeddings",
    "fit_text_map",
    "text_item_factors",
]

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
    first, last = net[0], net[2]
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


# ---- the model -------------------------------------------------------------------------------


class AlternatingLeastSquares(_ImplicitALS):
    """implicit's CPU ALS (same arguments, defaults, methods and ``.npz`` files) plus item text.

    Args:
        factors, regularization, alpha, dtype, use_native, use_cg, iterations,
            calculate_training_loss, num_threads, random_state: as implicit's.
        item_embeddings: ``(n_items, d)`` text embeddings, one row per item column of
            ``user_items``; also settable in ``fit`` or with :meth:`set_item_embeddings`.
            None: the model is plain implicit ALS.
        text_method: ``ridge`` (closed form) or ``mlp`` (one hidden layer, torch, seeded by
            ``random_state``, 0 when that is not an int): how items without interactions get
            factors from text.
        text_regularization: weight ``mu`` of a penalty ``mu * ||v_i - W e_i||^2`` that pulls each
            warm item's factors ``v_i`` toward its text prediction, added to implicit's loss. 0
            (default) leaves implicit's fit untouched. When > 0, every iteration refits a ridge
            map ``W`` on the warm items and re-solves their factors exactly under the penalty
            (in numpy, after implicit's own item step); ``recalculate_item`` and
            :meth:`partial_fit_items` solve under it too, so items with few interactions stay
            near their text. Needs ``text_method='ridge'`` (refit every iteration). Same scale
            as ``regularization`` and the diagonal of ``XtX`` (users' squared factors summed):
            on ml-100k valid picked 1e4 among 0, 1e3, 1e4, 1e5 (``experiments/dropin/``).
        text_ridge_alpha: the ridge penalty; None picks it by exact leave-one-out error over a
            13-point grid.
        text_mlp_hidden: hidden units of the MLP.
        text_mlp_epochs: most full-batch Adam epochs; it stops early on a 10% holdout of the
            warm items.

    Raises:
        ConfigError: an invalid text setting.
        DataError: invalid ``item_embeddings``.
    """

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        dtype: Any = np.float32,
        use_native: bool = True,
        use_cg: bool = True,
        iterations: int = 15,
        calculate_training_loss: bool = False,
        num_threads: int = 0,
        random_state: Any = None,
        item_embeddings: np.ndarray | None = None,
        text_method: str = "ridge",
        text_regularization: float = 0.0,
        text_ridge_alpha: float | None = None,
        text_mlp_hidden: int = 256,
        text_mlp_epochs: int = 500,
    ) -> None:
        super().__init__(
            factors,
            regularization,
            alpha,
            dtype,
            use_native,
            use_cg,
            iterations,
            calculate_training_loss,
            num_threads,
            random_state,
        )
        self.text_method = text_method
        self.text_regularization = text_regularization
        self.text_ridge_alpha = text_ridge_alpha
        self.text_mlp_hidden = text_mlp_hidden
        self.text_mlp_epochs = text_mlp_epochs
        self.item_embeddings = (
            None if item_embeddings is None else check_embeddings(item_embeddings)
        )
        self.warm_items: np.ndarray | None = None
        """True where an item's factors come from interactions (``fit``/``partial_fit_items``)."""
        self.text_map: TextMap | None = None
        self._check_text_settings()

    # ---- fitting ---------------------------------------------------------------------------

    def fit(
        self,
        user_items: sp.spmatrix,
        show_progress: bool = True,
        callback: Callable[..., Any] | None = None,
        item_embeddings: np.ndarray | None = None,
    ) -> None:
        """implicit's ``fit``, then text factors for the items with no interactions.

        Args:
            user_items: ``(n_users, n_items)`` confidences, as implicit takes them.
            show_progress: implicit's progress bar.
            callback: called after each iteration with ``(iteration, seconds, loss)``.
            item_embeddings: sets :attr:`item_embeddings` first (see the class).

        Raises:
            DataError: the embeddings' row count is not ``user_items``' column count, or fewer
                than 2 items have interactions to learn the text map from.
        """
        if item_embeddings is not None:
            self.item_embeddings = check_embeddings(item_embeddings)
        self._check_text_settings()
        n_items = user_items.shape[1]
        emb = self.item_embeddings
        if emb is not None and len(emb) != n_items:
            raise DataError(
                f"item_embeddings have {len(emb)} rows but user_items has {n_items} items "
                "(columns); give one embedding row per item column"
            )
        # implicit converts (and warns about) its own copy; this one only reads the pattern.
        matrix = sp.csr_matrix(user_items, dtype=np.float32)
        warm = np.bincount(matrix.indices[matrix.data != 0], minlength=n_items) > 0
        if emb is not None and warm.sum() < 2:
            raise DataError(
                f"the text map needs 2 or more items with interactions, got {warm.sum()}"
            )
        self.text_map = None
        step = callback
        if emb is not None and self.text_regularization > 0:
            step = self._prior_step(matrix, warm, callback or self.fit_callback)
        super().fit(user_items, show_progress=show_progress, callback=step)
        self.warm_items = warm
        if self.text_map is not None:
            # The last penalised item solve moved the items after implicit solved the users:
            # one more of implicit's user steps leaves the users in line with the final items.
            self._clear_item_caches()
            cui = matrix * self.alpha if self.alpha != 1.0 else matrix
            self.solver(
                cui,
                self.user_factors,
                self.item_factors,
                self.regularization,
                num_threads=self.num_threads,
            )
            self._user_norms = self._XtX = None
        if emb is not None:
            self._fit_text(refit=self.text_map is None)

    def _prior_step(
        self, matrix: sp.csr_matrix, warm: np.ndarray, then: Callable[..., Any] | None
    ) -> Callable[[int, float, float | None], None]:
        """An iteration callback: refit the ridge map on the warm items, then re-solve their
        factors under the text penalty. The last map stays the model's :attr:`text_map`, the
        one ``recalculate_item`` and ``partial_fit_items`` pull toward.

        Cold items are left to implicit: solving them under the penalty would count every user
        as having skipped them, when nobody was shown them.
        """
        item_users = (matrix.T.tocsr()[warm] * self.alpha).astype(np.float32)
        emb = self.item_embeddings[warm]
        in_mean = emb.mean(axis=0, dtype=np.float64)
        basis = ridge_basis(emb - in_mean)  # the embeddings do not change between iterations

        def step(iteration: int, seconds: float, loss: float | None) -> None:
            self.text_map = ridge_map(
                in_mean, basis, self.item_factors[warm], self.text_ridge_alpha
            )
            self.item_factors[warm] = self._solve_with_prior(item_users, self.text_map.predict(emb))
            if then is not None:
                then(iteration, seconds, loss)

        return step

    def _solve_with_prior(self, item_users: sp.csr_matrix, prior: np.ndarray) -> np.ndarray:
        """Exact item factors under implicit's loss (its ``user_linear_equation``: negative
        confidences mean disliked) plus ``text_regularization * ||v - prior||^2``."""
        users = np.asarray(self.user_factors, dtype=np.float64)
        mu = float(self.text_regularization)
        base = users.T @ users + (self.regularization + mu) * np.eye(users.shape[1])
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
        return out.astype(self.dtype)

    def _prior_active(self) -> bool:
        return (
            self.text_regularization > 0
            and self.text_map is not None
            and self.item_embeddings is not None
        )

    def _fit_text(self, refit: bool = True) -> None:
        """Learn the text map on the warm items (unless the fit loop left one) and give every
        other item its prediction."""
        warm = self._warm(len(self.item_factors))
        emb = self.item_embeddings
        if refit:
            self.text_map = fit_text_map(
                emb[warm],
                self.item_factors[warm],
                self.text_method,
                ridge_alpha=self.text_ridge_alpha,
                mlp_hidden=self.text_mlp_hidden,
                mlp_epochs=self.text_mlp_epochs,
                seed=self._seed(),
            )
        if not warm.all():
            self.item_factors[~warm] = self.text_map.predict(emb[~warm]).astype(self.dtype)
        self._clear_item_caches()

    def set_item_embeddings(self, item_embeddings: np.ndarray) -> AlternatingLeastSquares:
        """Set the item text; on a fitted model, learn the text map now and refresh the factors
        of items without interactions.

        Args:
            item_embeddings: ``(n_items, d)``, one row per item of the model.

        Returns:
            The model.

        Raises:
            DataError: invalid embeddings, or a row count other than the fitted item count.
        """
        emb = check_embeddings(item_embeddings)
        if self.item_factors is not None and len(emb) != len(self.item_factors):
            raise DataError(
                f"item_embeddings have {len(emb)} rows but the model has "
                f"{len(self.item_factors)} items; give one row per item, and add new items "
                "with add_items"
            )
        self.item_embeddings = emb
        if self.item_factors is not None:
            self._fit_text()
        return self

    def add_items(self, item_embeddings: np.ndarray) -> np.ndarray:
        """Append new items that have text but no interactions yet; they get text factors.

        Args:
            item_embeddings: ``(n_new, d)`` embeddings of the new items.

        Returns:
            The new items' ids (consecutive, after the existing ones).

        Raises:
            ConfigError: the model has no text map (fit it with item embeddings first).
            DataError: invalid embeddings or another dimension than the model's.
        """
        if self.text_map is None or self.item_embeddings is None:
            raise ConfigError(
                "add_items needs a text map: fit with item_embeddings, or call "
                "set_item_embeddings on the fitted model"
            )
        emb = check_embeddings(item_embeddings)
        if emb.shape[1] != self.item_embeddings.shape[1]:
            raise DataError(
                f"new item embeddings have dimension {emb.shape[1]}, the model's have "
                f"{self.item_embeddings.shape[1]}"
            )
        start = len(self.item_factors)
        warm = self._warm(start)
        factors = self.text_map.predict(emb).astype(self.dtype)
        self.item_factors = np.concatenate([self.item_factors, factors])
        self.item_embeddings = np.concatenate([self.item_embeddings, emb])
        self.warm_items = np.concatenate([warm, np.zeros(len(emb), dtype=bool)])
        self._clear_item_caches()
        return np.arange(start, start + len(emb))

    def recalculate_item(self, itemid: Any, item_users: sp.csr_matrix) -> np.ndarray:
        """implicit's ``recalculate_item``; under ``text_regularization`` > 0 solved with the
        pull toward the items' text predictions, as ``fit`` solved them."""
        if not self._prior_active():
            return super().recalculate_item(itemid, item_users)
        ids = self._embedded(itemid)
        matrix = sp.csr_matrix(item_users, dtype=np.float32) * self.alpha
        factors = self._solve_with_prior(matrix, self.text_map.predict(self.item_embeddings[ids]))
        return factors[0] if np.isscalar(itemid) else factors

    def partial_fit_items(self, itemids: Any, item_users: sp.csr_matrix) -> None:
        """implicit's ``partial_fit_items`` (through :meth:`recalculate_item`); the items count
        as warm afterwards.

        Raises:
            DataError: the model has item text and an id has no embedding row (add the item
                with :meth:`add_items` first).
        """
        ids = self._embedded(itemids)
        super().partial_fit_items(itemids, item_users)
        warm = self._warm(len(self.item_factors))
        warm[ids] = True
        self.warm_items = warm

    def _embedded(self, itemids: Any) -> np.ndarray:
        """``itemids`` as an int array, checked to have embedding rows when the model has any."""
        ids = np.asarray(itemids, dtype=np.int64).reshape(-1)
        emb = self.item_embeddings
        if emb is not None and len(ids) and ids.max() >= len(emb):
            raise DataError(
                f"item {ids.max()} has no text embedding: the model has embeddings for "
                f"{len(emb)} items; add new items with add_items(embeddings) first"
            )
        return ids

    # ---- serving ---------------------------------------------------------------------------

    def recommend(
        self,
        userid: Any,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: Any = None,
        recalculate_user: bool = False,
        items: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """implicit's ``recommend``, except that it never returns a filtered item.

        implicit 0.7.3 fills the tail of a list with filtered items (score ``-inf``) when ``N``
        exceeds what is left, and with item 0 (score 0) past the catalogue. Here one user's
        list stops at the last unfiltered item; a batch's rows are padded with id ``-1`` and
        score ``-inf``. With ``items`` the behaviour is implicit's: every listed item is ranked,
        filtered ones last with ``-inf`` (implicit's own tests require it).
        """
        if items is None and self.item_factors is not None:
            N = min(N, len(self.item_factors))
        ids, scores = super().recommend(
            userid, user_items, N, filter_already_liked_items, filter_items, recalculate_user, items
        )
        if items is not None or not (filter_already_liked_items or filter_items is not None):
            return ids, scores
        # implicit marks filtered items with the lowest float (or -inf past what select fills)
        dropped = ~(scores > np.finfo(scores.dtype).min)
        if np.isscalar(userid):
            return ids[~dropped], scores[~dropped]
        return np.where(dropped, -1, ids), np.where(dropped, -np.inf, scores).astype(scores.dtype)

    # ---- saving ----------------------------------------------------------------------------

    def save(self, fileobj_or_path: str | IO[bytes]) -> None:
        """implicit's ``.npz`` (arrays only) plus the item text, the text settings and map."""
        buffer = io.BytesIO()
        super().save(buffer)  # implicit's own keys, whatever this version writes
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as parent:
            args: dict[str, Any] = {key: parent[key] for key in parent.files}
        ours = {
            "text_method": self.text_method,
            "text_regularization": self.text_regularization,
            "text_ridge_alpha": self.text_ridge_alpha,
            "text_mlp_hidden": self.text_mlp_hidden,
            "text_mlp_epochs": self.text_mlp_epochs,
            "item_embeddings": self.item_embeddings,
            "warm_items": self.warm_items,
            **(self.text_map.arrays() if self.text_map is not None else {}),
        }
        # None is left out, as implicit does: np.load could not read it without pickle.
        args.update({key: value for key, value in ours.items() if value is not None})
        np.savez(fileobj_or_path, **args)

    @classmethod
    def load(cls, fileobj_or_path: str | IO[bytes]) -> AlternatingLeastSquares:
        """Read a file written by :meth:`save`, or by implicit's own ALS (no text then).

        Raises:
            DataError: the file's parts do not fit together (embedding rows vs items, map
                dimensions).
        """
        model = super().load(fileobj_or_path)
        arrays = {
            k: model.__dict__.pop(k) for k in list(model.__dict__) if k.startswith(MAP_PREFIX)
        }
        model.text_map = TextMap.from_arrays(arrays) if arrays else None
        model._check_loaded()
        return model

    def _check_loaded(self) -> None:
        self._check_text_settings()
        n_items = None if self.item_factors is None else len(self.item_factors)
        if self.item_embeddings is not None:
            self.item_embeddings = check_embeddings(self.item_embeddings)
            if n_items is not None and len(self.item_embeddings) != n_items:
                raise DataError(
                    f"saved item_embeddings have {len(self.item_embeddings)} rows but the "
                    f"saved model has {n_items} items"
                )
        if self.warm_items is not None:
            self.warm_items = np.asarray(self.warm_items, dtype=bool).reshape(-1)
            if len(self.warm_items) != n_items:
                raise DataError(f"saved warm_items has {len(self.warm_items)} rows, not {n_items}")
        if self.text_map is not None:
            emb = self.item_embeddings
            if emb is None or emb.shape[1] != self.text_map.dimension:
                raise DataError("the saved text map does not match the saved item_embeddings")
            if n_items is None or self.item_factors.shape[1] != self.text_map.n_factors:
                raise DataError(
                    f"the saved text map predicts {self.text_map.n_factors} factors; the saved "
                    "model has other factors"
                )

    # ---- helpers ---------------------------------------------------------------------------

    def _check_text_settings(self) -> None:
        if self.text_method not in METHODS:
            raise ConfigError(f"text_method must be one of {METHODS}, got {self.text_method!r}")
        mu = self.text_regularization
        if not (isinstance(mu, int | float) and np.isfinite(mu) and mu >= 0):
            raise ConfigError(f"text_regularization must be a number >= 0, got {mu!r}")
        if mu > 0 and self.text_method != "ridge":
            raise ConfigError(
                "text_regularization > 0 needs text_method='ridge': the map is refitted every "
                "iteration, which only the closed form makes cheap"
            )
        ridge = self.text_ridge_alpha
        if ridge is not None and not (isinstance(ridge, int | float) and ridge > 0):
            raise ConfigError(f"text_ridge_alpha must be None or > 0, got {ridge!r}")
        for name in ("text_mlp_hidden", "text_mlp_epochs"):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and value >= 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

    def _warm(self, n_items: int) -> np.ndarray:
        """The warm mask grown to ``n_items``: items implicit added (``partial_fit_items`` past
        the end) start cold; a model loaded from implicit's own file counts every item warm."""
        warm = np.ones(0 if self.item_factors is None else n_items, dtype=bool)
        if self.warm_items is None:
            return warm
        warm[:] = False
        warm[: len(self.warm_items)] = self.warm_items[:n_items]
        return warm

    def _seed(self) -> int:
        state = self.random_state
        return int(state) if isinstance(state, int | np.integer) else 0

    def _clear_item_caches(self) -> None:
        self._item_norms = None
        self._YtY = None


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
