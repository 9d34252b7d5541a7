"""Fixtures for the drop-in tests: implicit's own test mixin, fetched from its sdist on the
package registry, and MiniLM embeddings of ml-100k's items."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from llmrec.datasets import Dataset

IMPLICIT_SDIST = "implicit-0.7.3.tar.gz"
IMPLICIT_SDIST_SHA256 = "9571a52d70b3667e99a6e6aae6681526dd3286c765cf0ea10e1073d068a98057"
"""The sdist PyPI serves for implicit 0.7.3 (checked when it was first fetched)."""
MIXIN_MEMBER = "implicit-0.7.3/tests/recommender_base_test.py"
CACHE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "d" / "implicit-0.7.3"


def _fetch_mixin_file() -> tuple[Path | None, str]:
    """``recommender_base_test.py`` of implicit 0.7.3, extracted once into the pytest cache.

    Returns:
        The file, or None and why it could not be had (the registry out of reach).
    """
    target = CACHE / "recommender_base_test.py"
    if target.is_file():
        return target, ""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "implicit==0.7.3", "--no-deps"]
        command += ["--no-binary", "implicit", "--disable-pip-version-check", "-q", "-d", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return None, "pip download implicit==0.7.3 took over 600 s (registry out of reach?)"
        sdist = Path(tmp) / IMPLICIT_SDIST
        if done.returncode != 0 or not sdist.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"pip could not download implicit 0.7.3's sdist: {tail[0]}"
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        # A changed file is a failure, not a skip: it would test against unknown code.
        assert digest == IMPLICIT_SDIST_SHA256, f"{IMPLICIT_SDIST} has sha256 {digest}"
        with tarfile.open(sdist) as archive:
            text = archive.extractfile(MIXIN_MEMBER).read()
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    partial.write_bytes(text)
    partial.replace(target)
    return target, ""


def implicit_mixin() -> tuple[ModuleType | None, str]:
    """implicit's ``recommender_base_test`` module (it holds ``RecommenderBaseTestMixin``), or
    None and the reason it could not be fetched."""
    path, reason = _fetch_mixin_file()
    if path is None:
        return None, reason
    spec = importlib.util.spec_from_file_location("implicit_recommender_base_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, ""


@pytest.fixture(scope="session")
def item_embeddings(ml100k: Dataset, shared_cache: Path) -> np.ndarray:
    """MiniLM embeddings of ml-100k's item texts, row ``i`` for item index ``i``."""
    from llmrec.encoders.job import EncodeConfig, encode_dataset

    vectors = encode_dataset(ml100k, EncodeConfig(), shared_cache / "embeddings.sqlite").vectors
    assert vectors.shape == (ml100k.n_items, 384)
    return vectors
