"""Fit and evaluate models on one split, with an optional grid search on valid."""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import scipy.sparse as sp
import yaml
from pydantic import BaseModel, ConfigDict
from tqdm.auto import tqdm

from llmrec.datasets.features import side_features
from llmrec.datasets.splits import Split
from llmrec.datasets.text import item_text
from llmrec.errors import ConfigError
from llmrec.evaluation.evaluator import EvalResult, evaluate_scores
from llmrec.rankers.base import REGISTRY, RecommenderBase, make_config, progress_enabled

PRESET_DIR = Path(str(resources.files("llmrec") / "presets" / "rankers"))
"""Presets ship inside the package, so a wheel install finds them."""
TUNING_METRIC = "ndcg@10"
log = logging.getLogger(__name__)


class ModelSpec(BaseModel):
    """A named model: its kind, parameters and an optional grid to search on valid."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    params: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}

    def build(self, overrides: dict[str, Any] | None = None) -> RecommenderBase:
        if self.kind not in REGISTRY:
            raise ConfigError(
                f"model {self.name!r}: unknown kind {self.kind!r}; known: {sorted(REGISTRY)}"
            )
        cls = REGISTRY[self.kind]
        return cls(make_config(cls.config_class, {**self.params, **(overrides or {})}))

    def trials(self) -> list[dict[str, Any]]:
        """Every combination of the grid (one empty trial when there is no grid)."""
        keys = list(self.grid)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]


def resolve_model(name: str) -> ModelSpec:
    """A model by preset name (``rankers/NAME.yaml``), YAML path, ``recbole:MODEL`` or kind.

    Raises:
        ConfigError: nothing matches, or the preset is invalid.
    """
    path = Path(name)
    preset = PRESET_DIR / f"{name.replace(':', '-').lower()}.yaml"
    for candidate in (path, preset):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            try:
                raw = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
                return ModelSpec.model_validate({"name": name, **raw})
            except (yaml.YAMLError, ValueError) as exc:
                raise ConfigError(f"{candidate}: invalid model preset: {exc}") from exc
    if name.startswith("recbole:"):
        return ModelSpec(name=name, kind="recbole", params={"model": name.split(":", 1)[1]})
    if name in REGISTRY:
        return ModelSpec(name=name, kind=name)
    presets = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    raise ConfigError(
        f"unknown model {name!r}; use a preset ({', '.join(presets)}), a kind "
        f"({', '.join(sorted(REGISTRY))}), recbole:MODEL, or a YAML file path"
    )


PROTOCOLS = {
    "holdout": (
        "every model fits on train; valid only picks hyper-parameters and stops training early; "
        "test ranks exclude train and valid items"
    ),
    "refit": (
        "hyper-parameters and epoch counts are picked on valid as in holdout, then every model "
        "refits on train+valid with them; test ranks exclude train and valid items"
    ),
}


@dataclass
class ModelRun:
    """One model's run on one split: the JSON-ready record and the test evaluation."""

    record: dict[str, Any]
    test: EvalResult


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


def run_model(
    spec: ModelSpec,
    split: Split,
    ks: Sequence[int] = (10, 20),
    tune: bool = False,
    protocol: str = "holdout",
    show_progress_bar: bool | None = None,
    keep_top: bool = False,
) -> ModelRun:
    """Fit ``spec`` under ``protocol`` (best grid point by valid NDCG@10 when ``tune``) and
    evaluate.

    Every model sees the same interactions: train under ``holdout`` (valid only for choosing
    and early stopping), train+valid under ``refit`` (refitted with the chosen grid point and
    epoch count, no valid). Valid is ranked excluding train items; test excluding train and
    valid items, among the split's test candidates (the full catalogue too, when candidates are
    restricted).

    Returns:
        The JSON-ready record (config, tuning trials, fit time, valid/test metrics) and the
        test :class:`EvalResult` (with top lists when ``keep_top``).
    """
    check_protocol(protocol)
    valid = split.matrix("valid")
    item_texts = None
    features = side_features(split.dataset, split.train)
    trials = spec.trials() if tune else [{}]
    best: tuple[RecommenderBase, EvalResult, float, dict[str, Any]] | None = None
    history = []
    for number, overrides in enumerate(trials, start=1):
        model = spec.build(overrides)
        if model.needs_item_texts and item_texts is None:
            item_texts = item_text(split.dataset.items, split.dataset.text_columns).tolist()
        train = _matrix(split, "train", model)
        start = time.perf_counter()
        model.fit(
            train,
            valid=valid,
            item_texts=item_texts,
            features=features,
            show_progress_bar=show_progress_bar,
        )
        fit_seconds = time.perf_counter() - start
        valid_result = evaluate_scores(model.score, valid, exclude=train, ks=ks)
        score = valid_result.metrics[TUNING_METRIC]
        history.append({"params": overrides, "valid": score})
        line = (
            f"{spec.name} trial {number}/{len(trials)} {overrides or 'preset'}: "
            f"valid {TUNING_METRIC} {score:.4f} (fit {fit_seconds:.1f} s)"
        )
        log.info(line)
        if len(trials) > 1 and progress_enabled(show_progress_bar):
            tqdm.write(line, file=sys.stderr)
        if best is None or score > best[1].metrics[TUNING_METRIC]:
            best = (model, valid_result, fit_seconds, overrides)
    if best is None:  # a grid entry with no values leaves no trial to run
        raise ConfigError(f"model {spec.name!r}: grid {spec.grid} has a parameter with no values")
    model, valid_result, fit_seconds, chosen = best
    record: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "protocol": protocol}
    if protocol == "refit":
        refit_overrides = {**chosen, **model.refit_overrides()}
        record["refit_overrides"] = refit_overrides
        model = spec.build(refit_overrides)
        start = time.perf_counter()
        model.fit(
            _matrix(split, "train+valid", model),
            valid=None,
            item_texts=item_texts,
            features=side_features(split.dataset, pd.concat([split.train, split.valid])),
            show_progress_bar=show_progress_bar,
        )
        fit_seconds = time.perf_counter() - start
    exclude = split.matrix("train+valid")
    test = split.matrix("test")
    test_result = evaluate_scores(
        model.score,
        test,
        exclude=exclude,
        ks=ks,
        candidates=split.test_candidates,
        keep_top=keep_top,
    )
    record.update(
        {
            "config": model.config.model_dump(),
            "fit_seconds": round(fit_seconds, 3),
            "eval_seconds": round(test_result.seconds, 3),
            "valid": valid_result.metrics,
            "test": test_result.metrics,
            "test_users": test_result.n_users,
        }
    )
    if tune and spec.grid:
        record["tuning"] = {
            "metric": f"valid {TUNING_METRIC}",
            "grid": spec.grid,
            "trials": history,
        }
    if split.test_candidates is not None:
        full = evaluate_scores(model.score, test, exclude=exclude, ks=ks)
        record["test_full_catalogue"] = full.metrics
    return ModelRun(record, test_result)


def _matrix(split: Split, part: str, model: RecommenderBase) -> sp.csr_matrix:
    return split.matrix(part, values="rating" if model.uses_ratings else "ones")
