"""One error hierarchy: llmrec raises the classes of :mod:`llmrec.errors` (``ConfigError`` for a
bad parameter or option, ``DataError`` for bad data, ...), never a bare ``ValueError``,
``TypeError`` or ``KeyError``. Pydantic validators are the exception: pydantic turns only
``ValueError`` (and ``AssertionError``) raised there into a ``ValidationError``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmrec"
BARE = {"ValueError", "TypeError", "KeyError"}
VALIDATORS = {"field_validator", "model_validator"}


def _name(node: ast.expr) -> str | None:
    """``foo`` for ``foo``, ``pkg.foo`` and ``foo(...)``/``pkg.foo(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


class _BareRaises(ast.NodeVisitor):
    """Collects ``(line, exception)`` for bare raises outside pydantic validators."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self.in_validator = 0

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        validator = any(_name(d) in VALIDATORS for d in node.decorator_list)
        self.in_validator += validator
        self.generic_visit(node)
        self.in_validator -= validator

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Raise(self, node: ast.Raise) -> None:
        if node.exc is not None and not self.in_validator and _name(node.exc) in BARE:
            self.found.append((node.lineno, _name(node.exc)))
        self.generic_visit(node)


def bare_raises(source: str) -> list[tuple[int, str]]:
    visitor = _BareRaises()
    visitor.visit(ast.parse(source))
    return visitor.found


def test_no_bare_builtin_errors_in_the_package():
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} raises {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in bare_raises(path.read_text(encoding="utf-8"))
    ]
    assert not wrong, "use a class from llmrec.errors instead:\n" + "\n".join(wrong)


def test_the_scan_flags_bare_raises_and_spares_validators():
    source = """
from pydantic import field_validator, model_validator

def plain(x):
    if x:
        raise ValueError("bad")
    raise TypeError

class Config:
    @field_validator("model")
    @classmethod
    def _check(cls, value):
        raise ValueError("pydantic needs ValueError here")

    @model_validator(mode="after")
    def _whole(self):
        raise ValueError("and here")

    def lookup(self, key):
        raise KeyError(key)
"""
    assert bare_raises(source) == [(6, "ValueError"), (7, "TypeError"), (20, "KeyError")]
