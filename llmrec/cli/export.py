"""``llmrec export``: llmrec's features as files other libraries read (``export recbole``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from llmrec.cli.common import (
    DatasetOpt,
    EncodingOpt,
    OverwriteOpt,
    app,
    console,
    fail,
    load_dataset,
)
from llmrec.errors import DataError, LLMRecError

export_app = typer.Typer(help="Write llmrec's features for other libraries.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("recbole")
def export_recbole_command(
    dataset: DatasetOpt,
    embeddings: Annotated[
        Path, typer.Option("--embeddings", help="Item embedding folder (llmrec encode).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write; it becomes RecBole's data_path.")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help="RecBole dataset name (default: the dataset's; ml-100k becomes ml-100k-llmrec, "
            "as RecBole 1.2.1 reads ml-100k from its bundled copy whatever data_path says)."
        ),
    ] = None,
    data: Annotated[
        bool,
        typer.Option(
            "--data/--no-data",
            help="Copy the dataset's atomic files beside the .itememb (--no-data: only it).",
        ),
    ] = True,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write NAME.itememb (item text embeddings RecBole loads with preload_weight) and print
    the RecBole config that loads it."""
    from llmrec.artifacts import check_target
    from llmrec.datasets.atomic import find_atomic_files, parse_header, write_atomic_interactions
    from llmrec.dropin.recbole import config_yaml, export_recbole, recbole_name
    from llmrec.encoders.job import EmbeddingSet

    start = time.perf_counter()
    try:
        check_target(out, "recbole", overwrite)
        source = load_dataset(dataset, encoding)
        items = EmbeddingSet.load(embeddings)
        if items.manifest["what"] != "items":
            raise DataError(f"{embeddings} holds embeddings of {items.manifest['what']}, not items")
        token = name or recbole_name(source.name)
        with tempfile.TemporaryDirectory(prefix="llmrec-export-") as tmp:
            files: dict[str, Path] = {}
            if data:
                folder = Path(source.source)
                files = find_atomic_files(folder) if folder.is_dir() else {}
                if "inter" not in files:
                    # A MovieLens folder or a table: RecBole needs atomic files, written here.
                    files = {"inter": Path(tmp) / "data.inter"}
                    inter = source.interactions
                    if inter["timestamp"].isna().all():
                        inter = inter.drop(columns="timestamp")
                    write_atomic_interactions(inter, files["inter"])
            columns = ["user_id", "item_id", "rating", "timestamp"]
            if "inter" in files:
                with open(files["inter"], encoding=encoding or "utf-8") as fh:
                    columns = parse_header(files["inter"], fh.readline())[0]
            result = export_recbole(
                out,
                token,
                source.item_ids,
                items.ids,
                items.vectors,
                files,
                inter_columns=columns,
                overwrite=overwrite,
                meta={
                    "dataset": {"name": source.name, "checksum": source.checksum},
                    "embeddings": str(embeddings),
                    "fingerprint": items.manifest.get("fingerprint"),
                },
            )
    except (LLMRecError, ValueError, OSError) as exc:
        fail(exc)
    dropped = (
        f"; {result.dropped} embedding ids not in the dataset left out" if result.dropped else ""
    )
    console.print(
        f"wrote {result.itememb}: {result.items} items x {result.dimension} in "
        f"{time.perf_counter() - start:.1f}s{dropped}",
        highlight=False,
        markup=False,
    )
    # Plain print: the YAML goes to a config file as is, and rich would read [itememb] as markup.
    print("# RecBole config (YAML) that loads it:")
    print(config_yaml(result.config), end="")
