"""One torch thread for every PMG test module: the tiny models and MiniLM run many small ops,
and on a busy 2-core machine two torch threads mostly wait on each other (40-50x slower)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
