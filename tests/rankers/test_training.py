"""The shared epoch loop: best weights kept, patience honoured, and the device option."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from llmrec.errors import ConfigError
from llmrec.rankers import TwoStage, TwoTower
from llmrec.rankers.training import as_tensor, train_epochs


def _counting_module():
    """A one-weight module and an epoch that sets the weight to the epoch's number (from 1),
    so the weight says which epoch's state the loop kept."""
    module = torch.nn.Linear(1, 1, bias=False)

    def run_epoch(epoch: int) -> float:
        with torch.no_grad():
            module.weight.fill_(float(epoch + 1))
        return 1.0 / (epoch + 1)

    return module, run_epoch


def _train(validate, epochs: int, patience: int):
    module, run_epoch = _counting_module()
    run = train_epochs(
        module, run_epoch, validate, epochs=epochs, patience=patience, desc="t",
        show_progress_bar=False,
    )  # fmt: skip
    return module.weight.item(), run


def test_keeps_the_best_weights_and_stops_after_patience():
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.9])  # the 0.9 comes after patience ran out
    weight, run = _train(lambda: next(scores), epochs=5, patience=2)
    assert [h["epoch"] for h in run.history] == [0, 1, 2, 3]
    assert run.best_epochs == 2
    assert weight == 2.0  # the weights after epoch 2, not the last ones
    assert run.history[1] == {"epoch": 1, "loss": 0.5, "valid": 0.5}


def test_without_validation_runs_every_epoch_and_keeps_the_last():
    weight, run = _train(None, epochs=4, patience=1)
    assert run.best_epochs == 4 and len(run.history) == 4 and weight == 4.0


def test_ties_keep_the_earliest_epoch():
    weight, run = _train(lambda: 0.5, epochs=3, patience=5)
    assert run.best_epochs == 1 and weight == 1.0


def test_as_tensor_shares_memory_on_the_cpu():
    array = np.arange(3, dtype=np.float32)
    tensor = as_tensor(array)
    array[0] = 7.0
    assert tensor[0].item() == 7.0
    assert as_tensor(array, torch.device("cpu")).device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a CPU-only build")
@pytest.mark.parametrize("model", [TwoTower, TwoStage])
def test_cuda_device_on_a_cpu_build_is_one_clear_error(model):
    matrix = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        model(device="cuda").fit(matrix, item_texts=["a", "b", "c", "d"])


def test_unknown_device_names_the_field():
    with pytest.raises(ConfigError, match="device"):
        TwoTower(device="tpu").fit(
            sp.csr_matrix(np.eye(2, dtype=np.float32)), item_texts=["a", "b"]
        )
