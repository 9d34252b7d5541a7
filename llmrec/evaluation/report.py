"""Result files (JSON with provenance) and the printed comparison table."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from llmrec.datasets.splits import Split
from llmrec.io import library_versions, write_json


def build_report(
    split: Split, records: list[dict[str, Any]], ks: Sequence[int], wall_seconds: float
) -> dict[str, Any]:
    """Everything needed to reproduce and compare: data checksum, split, configs, versions."""
    dataset = split.dataset
    return {
        "command": " ".join(["llmrec", *sys.argv[1:]]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 2),
        "dataset": {
            "name": dataset.name,
            "checksum": dataset.checksum,
            "users": dataset.n_users,
            "items": dataset.n_items,
            "interactions": len(dataset.interactions),
        },
        "split": split.describe(),
        "protocol": (
            "full ranking over all items; train items excluded for valid, train+valid items "
            "excluded for test"
            + ("; test ranks only the held-out items" if split.test_candidates is not None else "")
        ),
        "ks": list(ks),
        "versions": library_versions(),
        "models": records,
    }


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write the report JSON atomically."""
    return write_json(path, report)


def print_table(report: dict[str, Any], console: Console | None = None) -> None:
    """A rich table of test metrics, one row per model."""
    console = console or Console()
    ks = report["ks"]
    split = report["split"]
    title = f"{report['dataset']['name']} · {split['split']} split · seed {split['seed']} · test"
    table = Table(title=title)
    table.add_column("model")
    columns = [f"{m}@{k}" for k in ks for m in ("ndcg", "recall")] + [
        f"mrr@{ks[0]}",
        f"coverage@{ks[0]}",
    ]
    for col in columns:
        table.add_column(col, justify="right")
    table.add_column("fit s", justify="right")
    best = {c: max(r["test"][c] for r in report["models"]) for c in columns}
    for record in report["models"]:
        cells = []
        for col in columns:
            value = record["test"][col]
            text = f"{value:.4f}"
            cells.append(f"[bold]{text}[/bold]" if value == best[col] else text)
        table.add_row(record["name"], *cells, f"{record['fit_seconds']:.1f}")
    console.print(table)
    if any("test_full_catalogue" in r for r in report["models"]):
        full = Table(title="same models, test ranked over the full catalogue")
        full.add_column("model")
        for col in columns:
            full.add_column(col, justify="right")
        for record in report["models"]:
            full.add_row(
                record["name"], *(f"{record['test_full_catalogue'][c]:.4f}" for c in columns)
            )
        console.print(full)
