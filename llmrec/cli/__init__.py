"""The ``llmrec`` command line: ``data``, ``evaluate``, ``encode``, ``index``, ``train``,
``recommend``, ``demo``."""

from __future__ import annotations

import sys

from llmrec.cli import (  # noqa: F401  (register the commands)
    demo,
    embeddings,
    evaluate,
    export,
    llm,
    serving,
    thumbnails,
)
from llmrec.cli.common import app
from llmrec.dropin import recbole_models  # noqa: F401  (registers the recbole-text model kind)

__all__ = ["app", "expand_seeds", "main"]


def expand_seeds(argv: list[str]) -> list[str]:
    """``--seeds 1 2 3`` -> ``--seeds 1 --seeds 2 --seeds 3`` (click options take one value)."""
    out, i = [], 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] == "--seeds":
            j = i + 1
            while j < len(argv) and argv[j].lstrip("-").replace(",", "").isdigit():
                if j > i + 1:
                    out.append("--seeds")
                out.append(argv[j])
                j += 1
            i = j
            continue
        i += 1
    return out


def main() -> None:
    app(args=expand_seeds(sys.argv[1:]), prog_name="llmrec")
