"""Checks on saved model state, run before scipy, faiss or torch touch the arrays.

Native code trusts its inputs: a sparse matrix with an index past its shape, or an id past an
embedding table, reads out of bounds and can kill the process. Every loader validates the
arrays it reads from a file with these helpers, which raise a DataError naming the array.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from llmrec.errors import DataError


def csr_state(name: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The arrays that :func:`csr_from_state` reads back, keyed ``{name}_data`` and so on."""
    return {
        f"{name}_data": matrix.data,
        f"{name}_indices": matrix.indices,
        f"{name}_indptr": matrix.indptr,
        f"{name}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_state(name: str, state: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    """Rebuild a matrix saved by :func:`csr_state`, validated first.

    Raises:
        DataError: a shape, pointer, index or value that does not fit (the message names it).
    """
    raw_shape = np.asarray(state[f"{name}_shape"])
    if raw_shape.shape != (2,) or raw_shape.dtype.kind not in "iu" or (raw_shape < 0).any():
        raise DataError(f"saved {name}_shape must be two counts, got {raw_shape.tolist()}")
    shape = (int(raw_shape[0]), int(raw_shape[1]))
    data = state[f"{name}_data"]
    check_csr(name, state[f"{name}_indptr"], state[f"{name}_indices"], shape, len(data))
    check_finite(f"{name}_data", data)
    return sp.csr_matrix((data, state[f"{name}_indices"], state[f"{name}_indptr"]), shape=shape)


def check_csr(
    name: str,
    indptr: np.ndarray,
    indices: np.ndarray,
    shape: tuple[int, int],
    n_data: int | None = None,
) -> None:
    """Check CSR parts against a shape: integer arrays, ``indptr`` from 0 to ``len(indices)``
    never decreasing, every index in ``0..shape[1]-1``.

    Raises:
        DataError: the first part that does not fit, named.
    """
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    for part, array in (("indptr", indptr), ("indices", indices)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise DataError(
                f"saved {name}_{part} must be a 1-d integer array, got {array.dtype} "
                f"of shape {array.shape}"
            )
    if len(indptr) != shape[0] + 1:
        raise DataError(
            f"saved {name}_indptr has {len(indptr)} entries; {shape[0]} rows need {shape[0] + 1}"
        )
    if indptr[0] != 0 or indptr[-1] != len(indices) or (np.diff(indptr) < 0).any():
        raise DataError(
            f"saved {name}_indptr must rise from 0 to the {len(indices)} indices, got "
            f"{indptr[0]}..{indptr[-1]}"
            + (" and it decreases" if (np.diff(indptr) < 0).any() else "")
        )
    if n_data is not None and n_data != len(indices):
        raise DataError(f"saved {name}: {n_data} values for {len(indices)} indices")
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        raise DataError(
            f"saved {name}_indices hold {indices.min()}..{indices.max()}, outside the "
            f"{shape[1]} columns"
        )


def check_ids(name: str, array: np.ndarray, size: int, shape: tuple[int | None, ...]) -> None:
    """Check an id array padded with -1: integers in ``-1..size-1`` and the expected shape
    (None: any length on that axis).

    Raises:
        DataError: wrong type, shape or an id out of range, named.
    """
    array = np.asarray(array)
    check_shape(name, array, shape)
    if array.dtype.kind not in "iu":
        raise DataError(f"saved {name} must hold integer ids, got {array.dtype}")
    if array.size and (array.min() < -1 or array.max() >= size):
        raise DataError(
            f"saved {name} holds ids {array.min()}..{array.max()}, outside -1..{size - 1}"
        )


def check_shape(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Check ``array.shape`` against ``shape`` (None matches any length on that axis).

    Raises:
        DataError: naming the array, its shape and the expected one.
    """
    actual = np.shape(array)
    if len(actual) != len(shape) or any(
        want is not None and got != want for got, want in zip(actual, shape, strict=True)
    ):
        expected = tuple("any" if n is None else n for n in shape)
        raise DataError(f"saved {name} has shape {actual}, expected {expected}")


def check_finite(name: str, array: np.ndarray) -> None:
    """Check that a float array holds no NaN or infinity.

    Raises:
        DataError: naming the array and how many values are not finite.
    """
    array = np.asarray(array)
    if array.dtype.kind in "fc":
        bad = int(array.size - np.isfinite(array).sum())
        if bad:
            raise DataError(f"saved {name} holds {bad} NaN or infinite value(s)")


def check_all_finite(state: Mapping[str, np.ndarray]) -> None:
    """:func:`check_finite` on every float array of a state dict."""
    for name, array in state.items():
        check_finite(name, array)


def grown(matrix: sp.spmatrix, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR copy of ``matrix`` with empty rows and columns added up to ``shape``."""
    out = sp.csr_matrix(matrix, copy=True)
    out.resize(shape)
    return out
