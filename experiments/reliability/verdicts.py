"""Judging a run: handled, failed or a harness error, from a CLI exit or an API call."""

from __future__ import annotations

import re
import signal
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processes import Proc
from settings import ERROR, FAILED, HANDLED, SKIPPED

TRACEBACK = "Traceback (most recent call last)"
MAX_MESSAGE_LINES = 12
NOISE = re.compile(
    r"\d+%\||it/s\]|s/it\]|^[WIE]\d{4} \d\d:|Warning: |^\s+warnings\.warn\(|is_fx_tracing"
)


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str


def handled(reason: str) -> Verdict:
    return Verdict(HANDLED, reason)


def failed(reason: str) -> Verdict:
    return Verdict(FAILED, reason)


def harness_error(reason: str) -> Verdict:
    return Verdict(ERROR, reason)


PERMISSIONS_IGNORED = Verdict(SKIPPED, "running as root without setpriv: permissions cannot apply")
"""The verdict of a case that needs file permissions to apply, where they cannot."""
CORRECT = "accepted; result checked correct"


def checked(problem: str | None, wrong: str) -> Verdict:
    """Handled when an accepted input's result has no ``problem``; else failed, ``wrong``."""
    return failed(f"{wrong}: {problem}") if problem else handled(CORRECT)


def message_lines(err: str) -> list[str]:
    """stderr without progress bars and library warnings."""
    lines = err.replace("\r", "\n").splitlines()
    return [line for line in lines if line.strip() and not NOISE.search(line)]


PREFIXES: list[str] = []
"""Folder prefixes left out of reasons (a case's work folder, the fixtures)."""


def short(text: str, limit: int = 160) -> str:
    for prefix in PREFIXES:
        text = text.replace(prefix, "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def names_any(text: str, names: Iterable[str]) -> bool:
    flat = " ".join(text.split()).lower()
    glued = "".join(text.splitlines()).lower()  # rich breaks long paths across lines
    return any(n.lower() in flat or n.lower() in glued for n in names if n)


def signal_name(code: int) -> str:
    number = -code if code < 0 else code - 128
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def cli_error(p: Proc, names: Iterable[str]) -> Verdict | None:
    """The verdict on a CLI run that should have been refused, or None when it exited 0."""
    if p.timed_out:
        return failed(f"timed out after {p.seconds:.0f} s")
    if p.rc < 0 or p.rc in (134, 137, 139):
        return failed(f"crashed: exit {p.rc} ({signal_name(p.rc)})")
    if TRACEBACK in p.err:
        last = [line for line in p.err.strip().splitlines() if line.strip()][-1:]
        return failed(f"raw traceback (exit {p.rc}): {short(last[0] if last else '')}")
    if p.rc == 0:
        return None
    lines = message_lines(p.err)
    if not lines:
        return failed(f"exit {p.rc} with no message on stderr")
    text = "\n".join(lines)
    if len(lines) > MAX_MESSAGE_LINES:
        return failed(f"exit {p.rc} with a {len(lines)}-line message: {short(text, 100)}")
    names = list(names)
    if names and not names_any(text, names):
        return failed(f"message does not name {names[0]!r}: {short(gist(lines))}")
    return handled(f"refused (exit {p.rc}): {short(gist(lines))}")


def gist(lines: list[str]) -> str:
    """The message without click's usage lines and box drawing."""
    kept = [line for line in lines if not line.startswith(("Usage:", "Try '"))]
    text = " ".join(line.strip(" │╭╮╰╯─") for line in kept)
    return re.sub(r"^Error\s+", "", " ".join(text.split()))


def cli_refused(
    p: Proc, names: Iterable[str], accepted: Callable[[], str | None] | None = None
) -> Verdict:
    """Handled when refused with a clear message, or accepted and ``accepted()`` finds nothing
    wrong (it returns a problem, or None)."""
    verdict = cli_error(p, names)
    if verdict is not None:
        return verdict
    if accepted is None:
        return failed(f"accepted (exit 0) instead of an error: {short(p.out, 100)}")
    return checked(accepted(), "exit 0 with a wrong result")


def cli_accepted(p: Proc, check: Callable[[], str | None]) -> Verdict:
    """Handled when a valid input is accepted and ``check()`` finds nothing wrong."""
    verdict = cli_error(p, [])
    if verdict is not None:
        if verdict.outcome == HANDLED:  # a clean refusal, of an input that is valid
            return failed(
                f"refused a valid input (exit {p.rc}): {short(gist(message_lines(p.err)))}"
            )
        return verdict
    return checked(check(), "exit 0 with a wrong result")


@dataclass
class Attempt:
    value: Any = None
    exc: BaseException | None = None


def attempt(fn: Callable[[], Any]) -> Attempt:
    try:
        return Attempt(value=fn())
    except Exception as exc:
        return Attempt(exc=exc)


RAW_TYPES = (KeyError, IndexError, AttributeError, UnicodeError, AssertionError, sqlite3.Error)


def api_error(a: Attempt, names: Iterable[str]) -> Verdict | None:
    """The verdict on an API call that should have raised, or None when it returned."""
    exc = a.exc
    if exc is None:
        return None
    kind = type(exc).__name__
    text = f"{kind}: {short(str(exc))}"
    if isinstance(exc, RAW_TYPES) or not isinstance(exc, ValueError | TypeError | OSError):
        return failed(f"raw {text}")
    names = list(names)
    if not names_any(str(exc), names):
        return failed(f"{kind} does not name {names[0]!r}: {short(str(exc))}")
    return handled(f"raised {text}")


def api_accepted(a: Attempt, check: Callable[[Any], str | None]) -> Verdict:
    """Handled when a valid input is accepted and ``check(value)`` finds nothing wrong."""
    if a.exc is not None:
        return failed(f"refused a valid input: {type(a.exc).__name__}: {short(str(a.exc))}")
    return checked(check(a.value), "returned a wrong result")


def api_refused(
    a: Attempt, names: Iterable[str], accepted: Callable[[Any], str | None] | None = None
) -> Verdict:
    """Handled when the call raises a clear error, or returns and ``accepted(value)`` finds
    nothing wrong."""
    verdict = api_error(a, names)
    if verdict is not None:
        return verdict
    if accepted is None:
        return failed(f"accepted (returned {short(repr(a.value), 80)}) instead of an error")
    return checked(accepted(a.value), "returned a wrong result")


def intact(files: dict[Path, str]) -> str | None:
    """A problem when a foreign file is gone or changed."""
    for path, text in files.items():
        if not path.is_file():
            return f"foreign file {path.name} was deleted"
        if path.read_text() != text:
            return f"foreign file {path.name} was changed"
    return None


def kept_then_refused(
    p: Proc,
    files: dict[Path, str],
    names: Iterable[str],
    accepted: Callable[[], str | None] | None = None,
    lost: str | None = None,
) -> Verdict:
    """Failed when a foreign file (``files``: path -> text) is gone or changed, or ``lost``
    names another loss; otherwise as :func:`cli_refused`."""
    lost = intact(files) or lost
    if lost:
        return failed(f"exit {p.rc}; {lost}")
    return cli_refused(p, names, accepted=accepted)
