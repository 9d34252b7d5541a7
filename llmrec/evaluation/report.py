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
from llmrec.evaluation.runner import PROTOCOLS
from llmrec.io import library_versions, write_json

REPORT_VERSION = 2
TABLE_COLUMNS = ("ndcg@10", "recall@20", "mrr@10")


def build_report(
    splits: Sequence[Split],
    protocol: str,
    records: dict[int, list[dict[str, Any]]],
    summary: dict[str, Any],
    significance: dict[str, Any] | None,
    ks: Sequence[int],
    wall_seconds: float,
) -> dict[str, Any]:
    """Everything needed to reproduce and compare: data checksum and filters, splits, protocol,
    configs, per-seed records, the summary over seeds, significance tests and versions."""
    dataset = splits[0].dataset
    ranking = (
        "full ranking over all items; train items excluded for valid, train+valid items "
        "excluded for test"
        + ("; test ranks only the held-out items" if splits[0].test_candidates is not None else "")
    )
    return {
        "report_version": REPORT_VERSION,
        "command": " ".join(["llmrec", *sys.argv[1:]]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 2),
        "dataset": {
            "name": dataset.name,
            "checksum": dataset.checksum,
            "users": dataset.n_users,
            "items": dataset.n_items,
            "interactions": len(dataset.interactions),
            "filters": getattr(dataset, "filters", {}),
        },
        "split": splits[0].name,
        "seeds": [s.seed for s in splits],
        "splits": [s.describe() for s in splits],
        "protocol": {"name": protocol, "fit": PROTOCOLS[protocol], "ranking": ranking},
        "ks": list(ks),
        "versions": library_versions(),
        "summary": summary,
        "significance": significance,
        "runs": {str(seed): runs for seed, runs in records.items()},
    }


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write the report JSON atomically."""
    return write_json(path, report)


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Per model, how it compares on the significance metric with the model of the best mean:
    ``best``, ``n.s.`` (p >= alpha) or ``worse (p=...)``."""
    sig = report.get("significance")
    if not sig:
        return {}
    best = max(sig["means"], key=sig["means"].get)
    out = {best: "best"}
    for name in sig["means"]:
        if name != best:
            pair = sig["pairs"][name][best]
            p = pair["p_value"]
            # Short enough for an 80-column table: "worse p<.001", "n.s. p=.327".
            shown = "p<.001" if p < 0.001 else f"p={p:.3f}".replace("0.", ".", 1)
            out[name] = f"worse {shown}" if pair["significant"] else f"n.s. {shown}"
    return out


def print_table(report: dict[str, Any], console: Console | None = None) -> None:
    """Test metrics per model, mean ± std over seeds, and the significance verdicts."""
    console = console or Console()
    seeds = report["seeds"]
    title = (
        f"{report['dataset']['name']} · {report['split']} · {report['protocol']['name']} · "
        f"seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))} · test"
    )
    marks = verdicts(report)
    caption = None
    if marks:
        spread = "mean over seeds, ±std below; " if len(seeds) > 1 else ""
        stat = report["significance"]["stat_test"]
        caption = f"{spread}vs best: paired {stat} t-test on ndcg@10, p < 0.05"
    table = Table(title=title, caption=caption)
    table.add_column("model", no_wrap=True)
    columns = [c for c in TABLE_COLUMNS if c in next(iter(report["summary"].values()))["test"]]
    for col in columns:
        table.add_column(col, justify="right")
    table.add_column("fit s", justify="right")
    if marks:
        table.add_column("vs best", no_wrap=True)
    summary = report["summary"]
    best = {c: max(s["test"][c]["mean"] for s in summary.values()) for c in columns}
    for name, entry in summary.items():
        cells = []
        for col in columns:
            stat = entry["test"][col]
            # The std on a second line keeps the table inside 80 columns.
            text = f"{stat['mean']:.4f}" + (f"\n±{stat['std']:.4f}" if len(seeds) > 1 else "")
            cells.append(f"[bold]{text}[/bold]" if stat["mean"] == best[col] else text)
        row = [name, *cells, f"{entry['fit_seconds']['mean']:.1f}"]
        if marks:
            row.append(marks.get(name, ""))
        table.add_row(*row)
    console.print(table)
