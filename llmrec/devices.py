"""Device names checked before torch sees them (torch's own errors name no option)."""

from __future__ import annotations

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
