"""The fault-and-fuzz suite's budget, its case counter and the artifacts it damages.

Budget: hypothesis profiles ``llmrec-default`` (small, derandomized: ``make test`` is fast and
reproducible) and ``llmrec-fuzz`` (20x the examples, fresh random cases each run), picked by
``LLMREC_FUZZ_PROFILE=default|fuzz``. Tests take their share of the profile's examples with
:func:`budget`. At the end of a session that ran fuzz tests, the terminal summary gives the
number of hypothesis cases, the seconds spent in the fuzz tests and the cases per second.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.faults import parts_of
from tests.fuzz.samples import tiny_config, tiny_interactions
from tests.fuzz.worker import LoadWorker

PROFILE_ENV = "LLMREC_FUZZ_PROFILE"
UNIT = 20
"""Examples per unit of :func:`budget` in the default profile; the fuzz profile runs 20x."""

_common: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("llmrec-default", max_examples=UNIT, derandomize=True, **_common)
settings.register_profile("llmrec-fuzz", max_examples=20 * UNIT, derandomize=False, **_common)
PROFILE = os.environ.get(PROFILE_ENV, "default")
if PROFILE not in ("default", "fuzz"):
    raise pytest.UsageError(f"{PROFILE_ENV} must be 'default' or 'fuzz', got {PROFILE!r}")


def budget(scale: float = 1.0) -> settings:
    """Settings for one fuzz test: ``scale`` units of the active profile's examples."""
    parent = settings.get_profile(f"llmrec-{PROFILE}")
    return settings(parent, max_examples=max(1, round(parent.max_examples * scale)))


# ---- counting cases -----------------------------------------------------------------------

_CASES = {"cases": 0, "seconds": 0.0, "tests": 0}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    test = getattr(getattr(item, "obj", None), "hypothesis", None)
    if test is not None and not getattr(test.inner_test, "counted", False):
        inner = test.inner_test

        @functools.wraps(inner)
        def counted(*args: Any, **kwargs: Any) -> Any:
            _CASES["cases"] += 1
            return inner(*args, **kwargs)

        counted.counted = True  # type: ignore[attr-defined]
        test.inner_test = counted
    started = time.perf_counter()
    yield
    _CASES["seconds"] += time.perf_counter() - started
    _CASES["tests"] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _CASES["tests"]:
        return
    cases, seconds = _CASES["cases"], _CASES["seconds"]
    terminalreporter.write_line(
        f"fuzz ({PROFILE} profile): {cases} cases in {seconds:.1f} s of fuzz tests "
        f"({_CASES['tests']} tests, fixtures excluded): {cases / max(seconds, 1e-9):.1f} cases/s"
    )


# ---- shared fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def worker() -> Iterator[LoadWorker]:
    """The load server; a crash while loading fails the test that sent the input."""
    server = LoadWorker()
    yield server
    server.close()


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Any:
    """``scratch()`` gives a fresh empty folder for one hypothesis example, removed after."""
    root = tmp_path_factory.mktemp("fuzz")

    @contextmanager
    def fresh() -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(dir=root))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return fresh


@dataclass
class Pair:
    """Two saved artifacts of one kind (same shapes, different content), with what the
    worker's loader returns for each."""

    kind: str
    a: Path
    b: Path
    expected_a: dict[str, Any]
    expected_b: dict[str, Any]
    parts: list[str]
    request: dict[str, Any]


MODEL_REQUEST = {
    "users": ["u1", "u2", "u7", "ghost", "nobody"],
    "histories": {"ghost": ["i1", "i2", "i3"]},
    "k": 5,
}


@pytest.fixture(scope="session")
def model_pair(tmp_path_factory, tiny_spec, worker) -> Pair:
    """Two model folders fitted on the same data with different seeds."""
    import torch

    from llmrec import Recommender

    root = tmp_path_factory.mktemp("models")
    train, items = tiny_interactions()
    folders = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only wait on each other (and on the CPU)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LLMREC_CACHE_DIR", str(root / "cache"))
            for seed in (1, 2):
                rec = Recommender(**tiny_config(str(tiny_spec.model), seed))
                rec.fit(train, items=items, show_progress_bar=False)
                folders.append(rec.save(root / f"model-{seed}"))
    finally:
        torch.set_num_threads(threads)
    return _pair(worker, "model", folders, MODEL_REQUEST)


@pytest.fixture(scope="session")
def index_pair(tmp_path_factory, worker) -> Pair:
    """Two HNSW index folders over different vectors (same count and dimension), each with
    a removed item and a search parameter."""
    from llmrec.retrieval import ItemIndex

    root = tmp_path_factory.mktemp("indexes")
    folders = []
    for seed in (1, 2):
        vectors = np.random.default_rng(seed).standard_normal((60, 8)).astype(np.float32)
        index = ItemIndex.build(vectors, spec="HNSW8", fingerprint=f"enc-{seed}", seed=seed)
        index.set_search_params(efSearch=16 + seed)
        index.remove([seed])
        folders.append(index.save(root / f"index-{seed}"))
    return _pair(worker, "index", folders, {"k": 6})


@pytest.fixture(scope="session")
def embeddings_pair(tmp_path_factory, worker) -> Pair:
    """Two embedding folders with the same ids and shape, different vectors."""
    from llmrec.encoders.job import EmbeddingSet

    root = tmp_path_factory.mktemp("embeddings")
    folders = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        ids = np.array([f"item-{i}" for i in range(40)], dtype=object)
        vectors = rng.standard_normal((40, 8)).astype(np.float32)
        manifest = {"what": "items", "count": 40, "dimension": 8, "seed": seed}
        manifest.update(fingerprint=f"encoder-{seed}", dataset="tiny")
        fallback = np.zeros(40, dtype=bool)
        found = EmbeddingSet(ids, vectors, manifest, fallback)
        folders.append(found.save(root / f"embeddings-{seed}"))
    return _pair(worker, "embeddings", folders, {})


def _pair(worker: LoadWorker, op: str, folders: list[Path], request: dict[str, Any]) -> Pair:
    answers = [worker.call(op, path=str(folder), **request) for folder in folders]
    for answer in answers:
        assert answer["ok"], answer
    assert answers[0]["result"] != answers[1]["result"], "the two artifacts must differ"
    parts = parts_of(folders[0])
    assert parts == parts_of(folders[1])
    expected = answers[0]["result"], answers[1]["result"]
    return Pair(op, folders[0], folders[1], *expected, parts, request)


@pytest.fixture(scope="session", params=["model", "index", "embeddings"])
def pair(request) -> Pair:
    """Each kind of artifact folder in turn."""
    return request.getfixturevalue(f"{request.param}_pair")
