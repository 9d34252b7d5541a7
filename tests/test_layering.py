"""Data flows one way: datasets -> llm -> encoders -> retrieval -> rankers -> evaluation ->
dropin -> pipeline -> pmg -> cli. No module imports a later layer, not even lazily inside a
function."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmrec"
LAYERS = [
    "datasets",
    "llm",
    "encoders",
    "retrieval",
    "rankers",
    "evaluation",
    "dropin",
    "pipeline",
    "pmg",
    "cli",
]
"""Top-level modules not listed (errors, io, artifacts, devices, ranking) are shared below all."""


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "llmrec" or len(parts) < 2:
        return -1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else -1


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_no_module_imports_a_later_layer():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":  # the facade re-exports the public API
            continue
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        own = _layer(module)
        for line, target in _imports(path):
            if _layer(target) > own:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_shared_modules_import_no_layer():
    for name in ("errors", "io", "artifacts", "devices", "ranking"):
        targets = [t for _, t in _imports(PACKAGE / f"{name}.py")]
        assert all(_layer(t) < 0 for t in targets), (name, targets)
