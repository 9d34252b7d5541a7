"""Full-ranking evaluation: every user is ranked against every item, no sampled negatives."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from llmrec.errors import ConfigError
from llmrec.evaluation.metrics import METRICS, coverage
from llmrec.ranking import Scorer, ranked_batches, relevant_rows, tie_keys, top_k

__all__ = ["EvalResult", "Scorer", "evaluate_scores", "tie_keys", "top_k"]


DEFAULT_METRICS = ("recall", "ndcg", "mrr", "hit", "precision")


@dataclass
class EvalResult:
    """Mean metric values, keyed ``"ndcg@10"``, plus ``coverage@K``, users and timing.

    Attributes:
        metrics: mean metric values over the evaluated users.
        n_users: users with at least one relevant item after exclusion and candidate restriction.
        seconds: wall time of the ranking and scoring loop.
        per_user: per-user metric arrays, aligned with ``users``; empty unless asked for.
        users: int64 ``(n_users,)`` user indices evaluated, in order; None unless ``keep_top``.
        top: int64 ``(n_users, max_k)`` ranked item indices, best first, ``-1`` where fewer
            items could be ranked; None unless ``keep_top``.
        truth: CSR ``(n_users, n_items)`` relevant items per evaluated user, after exclusion
            and candidate restriction (what the metrics were computed against); None unless
            ``keep_top``.
    """

    metrics: dict[str, float]
    n_users: int
    seconds: float
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    users: np.ndarray | None = field(default=None, repr=False)
    top: np.ndarray | None = field(default=None, repr=False)
    truth: sp.csr_matrix | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def evaluate_scores(
    scorer: Scorer,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None = None,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = DEFAULT_METRICS,
    candidates: np.ndarray | None = None,
    batch_size: int = 1024,
    show_progress_bar: bool | None = None,
    keep_per_user: bool = False,
    keep_top: bool = False,
) -> EvalResult:
    """Rank every item for every user with test items and score the top K.

    Args:
        scorer: user indices -> ``(n, n_items)`` scores.
        truth: CSR user x item matrix of relevant (test) items.
        exclude: CSR matrix of items not to rank per user (seen in train, and valid for test).
        ks: cut-offs.
        metrics: names among ``recall, ndcg, mrr, hit, precision``.
        candidates: item indices to rank among (e.g. held-out cold items); None = all items.
        batch_size: users scored per call.
        show_progress_bar: tqdm bar over user batches; None shows it only on a terminal.
        keep_per_user: keep per-user metric arrays in the result.
        keep_top: keep the evaluated users, their top ``max(ks)`` items and their effective
            truth rows in the result (for significance tests, see
            :mod:`llmrec.evaluation.significance`).

    Returns:
        :class:`EvalResult` with means over users who have at least one relevant item.

    Raises:
        ConfigError: unknown metric or bad ``ks``.
        DataError: shape mismatch or NaN scores.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; valid: {', '.join(METRICS)}")
    if not ks or min(ks) < 1:
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")
    n_items = truth.shape[1]
    n_rankable = n_items if candidates is None else len(np.unique(candidates))
    allowed = None
    if candidates is not None:
        allowed = np.zeros(n_items, dtype=bool)
        allowed[np.asarray(candidates)] = True
    truth, users = relevant_rows(truth, exclude, allowed)
    max_k = max(ks)
    per_user = {f"{m}@{k}": np.empty(len(users)) for m in metrics for k in ks}
    tops = []
    start = time.perf_counter()
    batches = range(0, len(users), batch_size)
    disable = None if show_progress_bar is None else not show_progress_bar
    progress = tqdm(batches, desc="evaluate", unit="batch", disable=disable, leave=False)
    done = 0
    for batch, top, hits, n_rel in ranked_batches(
        scorer, truth, users, max_k, exclude, allowed, batch_size, progress
    ):
        for k in ks:
            for m in metrics:
                per_user[f"{m}@{k}"][done : done + len(batch)] = METRICS[m]()(hits[:, :k], n_rel)
        done += len(batch)
        tops.append(top)
    all_top = np.concatenate(tops) if tops else np.empty((0, max_k), dtype=np.int64)
    means = {key: float(values.mean()) if len(values) else 0.0 for key, values in per_user.items()}
    for k in ks:
        means[f"coverage@{k}"] = coverage(all_top[:, :k], n_rankable)
    return EvalResult(
        metrics=means,
        n_users=len(users),
        seconds=time.perf_counter() - start,
        per_user=per_user if keep_per_user else {},
        users=users.astype(np.int64) if keep_top else None,
        top=all_top.astype(np.int64, copy=False) if keep_top else None,
        truth=truth[users] if keep_top else None,
    )
