"""Running llmrec: the CLI as a subprocess with a timeout, Python code in a forked child."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings import DROP_CAPS, LLMREC


@dataclass
class Proc:
    args: list[str]
    rc: int
    out: str
    err: str
    seconds: float
    timed_out: bool = False


def cli(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
    drop_caps: bool = False,
) -> Proc:
    """Run ``llmrec ARGS`` as a subprocess."""
    command = [LLMREC, *map(str, args)]
    if drop_caps:
        command = [*(DROP_CAPS or []), *command]
    start = time.monotonic()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return Proc(command, -9, out, err, time.monotonic() - start, timed_out=True)
    return Proc(command, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def fork_call(fn: Callable[[], Any], env: dict[str, str] | None = None) -> int:
    """Run ``fn`` in a forked process (with extra environment); returns its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.environ.update(env or {})
            fn()
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_forked(fn: Callable[[], Any], log: Path | None = None) -> Any:
    """``fn()`` in a forked child (its output to ``log``); its JSON result, or RuntimeError."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)

    def child() -> None:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        out.write_text(json.dumps(fn()))

    code = fork_call(child)
    try:
        if code != 0:
            detail = log.read_text()[-3000:] if log is not None and log.is_file() else ""
            raise RuntimeError(f"fixture step failed (exit {code})\n{detail}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
