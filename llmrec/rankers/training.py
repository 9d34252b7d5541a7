"""The epoch loop every torch model here shares: progress, early stopping, best weights.

implicit gives its models a ``callback(iteration, elapsed)``; the torch models here get the same
idea as two callables: ``run_epoch`` trains one pass and returns its mean loss, ``validate``
returns the score to maximise. The loop keeps the best weights, stops after ``patience`` epochs
without a gain and leaves the module holding the best weights, so no model repeats it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """What one :func:`train_epochs` call did.

    Attributes:
        history: one ``{"epoch", "loss", "valid"}`` record per epoch run.
        best_epochs: epochs up to and including the kept weights (all of them without
            ``validate``), what a refit without validation data should run.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epochs: int = 0


def train_epochs(
    module: Any,
    run_epoch: Callable[[int], float],
    validate: Callable[[], float] | None,
    *,
    epochs: int,
    patience: int,
    desc: str,
    show_progress_bar: bool | None = None,
) -> TrainingRun:
    """Train ``module`` for up to ``epochs`` epochs, early-stopped on ``validate``.

    Args:
        module: the ``torch.nn.Module`` whose ``state_dict`` is kept at its best.
        run_epoch: trains one epoch (given its number) and returns its mean loss.
        validate: the score to maximise after each epoch (the module in whatever mode
            ``run_epoch`` left it); None keeps the last weights and never stops early.
        epochs: the most epochs to run.
        patience: epochs without a better score before stopping.
        desc: the progress bar's label.
        show_progress_bar: a bar with the loss and score; None shows it on a terminal.

    Returns:
        The history and the number of epochs to the kept weights; ``module`` holds those
        weights on return.
    """
    run = TrainingRun()
    best, best_weights, stale = float("-inf"), None, 0
    bar = tqdm(
        range(epochs),
        desc=desc,
        unit="epoch",
        disable=None if show_progress_bar is None else not show_progress_bar,
    )
    for epoch in bar:
        loss = float(run_epoch(epoch))
        score = float(validate()) if validate is not None else 0.0
        run.history.append({"epoch": epoch, "loss": loss, "valid": score})
        bar.set_postfix(loss=f"{loss:.4f}", valid=f"{score:.4f}", refresh=False)
        log.debug("%s epoch %d: loss %.4f, valid %.4f", desc, epoch, loss, score)
        if validate is None or score > best:
            best, stale, run.best_epochs = score, 0, epoch + 1
            # A copy detached from the graph: the next step updates the live tensors in place.
            best_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    bar.close()
    if best_weights is not None:
        module.load_state_dict(best_weights)
    return run


def as_tensor(array: Any, device: Any = None) -> Any:
    """``array`` (numpy) as a torch tensor sharing its memory, moved to ``device`` when given."""
    import torch

    tensor = torch.from_numpy(array)
    return tensor if device is None else tensor.to(device)
