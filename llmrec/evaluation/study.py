"""A comparison study: every model on the same splits (one per seed), under one protocol,
with mean ± std over seeds and paired significance tests against the best model."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from llmrec.datasets.dataset import Dataset
from llmrec.datasets.splits import Split
from llmrec.datasets.splits import split as make_split
from llmrec.errors import ConfigError
from llmrec.evaluation.evaluator import EvalResult
from llmrec.evaluation.report import build_report
from llmrec.evaluation.runner import ModelSpec, check_protocol, run_model
from llmrec.evaluation.significance import compare_models, mean_std

SIGNIFICANCE_METRIC = "ndcg@10"


def run_study(
    dataset: Dataset,
    split_name: str,
    seeds: Sequence[int],
    specs: Sequence[ModelSpec],
    ks: Sequence[int] = (10, 20),
    protocol: str = "holdout",
    tune: bool = False,
    stat_test: str = "student",
    on_model: Callable[[int, ModelSpec], None] | None = None,
) -> dict[str, Any]:
    """Run every model on the split of every seed and summarise.

    Args:
        dataset: the (possibly filtered) dataset.
        split_name: a split from :data:`llmrec.datasets.SPLITS`.
        seeds: split seeds; each model also trains with that seed.
        specs: the models.
        ks: metric cut-offs (10 is always included: it is the tuning and test metric).
        protocol: ``holdout`` or ``refit`` (see :data:`llmrec.evaluation.runner.PROTOCOLS`).
        tune: grid-search each preset's grid on valid.
        stat_test: ranx's paired test (``student``, ``fisher`` or ``tukey``).
        on_model: called before each fit (progress reporting).

    Returns:
        The JSON-ready report (see :func:`llmrec.evaluation.report.build_report`).

    Raises:
        ConfigError: no seeds, no models, duplicate model names, or an unknown protocol.
    """
    check_protocol(protocol)
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("--seeds is empty: give at least one split seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds has duplicates: {seeds}")
    if not specs:
        raise ConfigError("--models is empty: give at least one model")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--models names a model twice: {names}")
    ks = sorted({10, *ks})
    start = time.perf_counter()
    splits: list[Split] = []
    records: dict[int, list[dict[str, Any]]] = {}
    tests: dict[str, list[EvalResult]] = {name: [] for name in names}
    for seed in seeds:
        split = make_split(dataset, split_name, seed)
        splits.append(split)
        records[seed] = []
        for spec in specs:
            if on_model is not None:
                on_model(seed, spec)
            seeded = spec.model_copy(update={"params": {**spec.params, "seed": seed}})
            run = run_model(seeded, split, ks, tune=tune, protocol=protocol, keep_top=True)
            records[seed].append(run.record)
            tests[spec.name].append(run.test)
    summary = summarise(records, names)
    significance = None
    if len(specs) > 1:
        significance = compare_models(tests, metric=SIGNIFICANCE_METRIC, stat_test=stat_test)
    return build_report(
        splits,
        protocol,
        records,
        summary,
        significance,
        ks,
        time.perf_counter() - start,
    )


def summarise(records: dict[int, list[dict[str, Any]]], names: Sequence[str]) -> dict[str, Any]:
    """Per model: mean and std over seeds of every test metric and of the fit time."""
    out: dict[str, Any] = {}
    for name in names:
        runs = [r for seed_runs in records.values() for r in seed_runs if r["name"] == name]
        metrics = {}
        for key in runs[0]["test"]:
            mean, std = mean_std([r["test"][key] for r in runs])
            metrics[key] = {"mean": mean, "std": std}
        fit_mean, fit_std = mean_std([r["fit_seconds"] for r in runs])
        out[name] = {"test": metrics, "fit_seconds": {"mean": fit_mean, "std": fit_std}}
    return out
