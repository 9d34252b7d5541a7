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
from typing import IO, Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares as _ImplicitALS

from llmrec.dropin.text_map import (
    MAP_PREFIX,
    METHODS,
    TextMap,
    check_embeddings,
    fit_text_map,
    ridge_basis,
    ridge_map,
    solve_with_prior,
    text_item_factors,
)
from llmrec.errors import ConfigError, DataError

__all__ = [
    "AlternatingLeastSquares",
    "TextMap",
    "check_embeddings",
    "fit_text_map",
    "text_item_factors",
]

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

    item_factors: np.ndarray  # implicit sets it in fit; declared for the type checker

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
        emb = self._emb()[warm]
        in_mean = emb.mean(axis=0, dtype=np.float64)
        basis = ridge_basis(emb - in_mean)  # the embeddings do not change between iterations

        def step(iteration: int, seconds: float, loss: float | None) -> None:
            self.text_map = ridge_map(
                in_mean, basis, self.item_factors[warm], self.text_ridge_alpha
            )
            self.item_factors[warm] = self._solve_with_prior(item_users, self._map().predict(emb))
            if then is not None:
                then(iteration, seconds, loss)

        return step

    def _solve_with_prior(self, item_users: sp.csr_matrix, prior: np.ndarray) -> np.ndarray:
        """Exact warm item factors under implicit's loss plus the pull toward ``prior``."""
        out = solve_with_prior(
            self.user_factors, item_users, prior, self.regularization, self.text_regularization
        )
        return out.astype(self.dtype)

    def _prior_active(self) -> bool:
        return (
            self.text_regularization > 0
            and self.text_map is not None
            and self.item_embeddings is not None
        )

    def _emb(self) -> np.ndarray:
        if self.item_embeddings is None:
            raise ConfigError("no item_embeddings: pass them to fit or set_item_embeddings")
        return self.item_embeddings

    def _map(self) -> TextMap:
        if self.text_map is None:
            raise ConfigError("no text map yet: fit the model with item_embeddings first")
        return self.text_map

    def _fit_text(self, refit: bool = True) -> None:
        """Learn the text map on the warm items (unless the fit loop left one) and give every
        other item its prediction."""
        warm = self._warm(len(self.item_factors))
        emb = self._emb()
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
            self.item_factors[~warm] = self._map().predict(emb[~warm]).astype(self.dtype)
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
        known = self._emb()
        if emb.shape[1] != known.shape[1]:
            raise DataError(
                f"new item embeddings have dimension {emb.shape[1]}, the model's have "
                f"{known.shape[1]}"
            )
        start = len(self.item_factors)
        warm = self._warm(start)
        factors = self._map().predict(emb).astype(self.dtype)
        self.item_factors = np.concatenate([self.item_factors, factors])
        self.item_embeddings = np.concatenate([known, emb])
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
        factors = self._solve_with_prior(matrix, self._map().predict(self._emb()[ids]))
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
