"""Device names checked before torch sees them (torch's own errors name no option), and torch
thread counts set for one block only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from llmrec.errors import ConfigError

SUPPORTED = ("cpu", "cuda", "cuda:N")


def resolve_device(device: str | None) -> str:
    """The torch device to use: ``device`` checked, or cuda when available, else cpu.

    Raises:
        ConfigError: an unknown device name, or a CUDA device that this machine or torch build
            does not have.
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(SUPPORTED)}") from exc
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type != "cuda":
        raise ConfigError(f"device {device!r} is not supported; use one of {', '.join(SUPPORTED)}")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r}: no CUDA GPU is available to this torch build "
            f"(torch {torch.__version__}); use cpu"
        )
    count = torch.cuda.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise ConfigError(f"device {device!r}: only {count} CUDA device(s) are visible")
    return str(parsed)


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` intra-op torch threads (None: leave torch's choice),
    then restore the previous count, so one model's setting never leaks into the process."""
    import torch

    if num_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
