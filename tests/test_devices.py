from __future__ import annotations

import pytest
import torch

from llmrec.devices import resolve_device
from llmrec.errors import ConfigError


def test_default_and_cpu():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["bogus", "", "cuda:x", "gpu0"])
def test_unknown_names_are_config_errors(name):
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device(name)


def test_device_types_we_do_not_run_on():
    with pytest.raises(ConfigError, match="not supported"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_names_the_device():
    with pytest.raises(ConfigError, match="'cuda:1': no CUDA GPU is available"):
        resolve_device("cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_index_out_of_range():
    with pytest.raises(ConfigError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
