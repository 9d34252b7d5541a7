"""What a case is and what it is given (the fixtures, a work folder, a seed); the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from settings import FAMILIES
from verdicts import Verdict


@dataclass
class Fixtures:
    """The paths of the fixtures (built by fixtures.py), and ``ref``: the reference outputs of
    the intact ones."""

    root: Path
    bert: Path
    bert_tuned: Path
    data_a: Path
    data_c: Path
    fast_yaml: Path
    model_a: Path
    model_b: Path
    model_c: Path
    emb_items: Path
    emb_users: Path
    index_flat: Path
    index_hnsw: Path
    split_s1: Path
    split_s2: Path
    cache: Path
    ref: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    fx: Fixtures
    work: Path
    seed: int


Run = Callable[[Ctx], Verdict]
"""A case: it sets up its input, runs llmrec on it and judges the result."""


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    run: Run
    slow: bool = False
    timeout: float = 240.0


CASES: list[Case] = []


def add(family: str, name: str, run: Run, slow: bool = False) -> None:
    assert family in FAMILIES, family
    CASES.append(Case(family, name, run, slow))
