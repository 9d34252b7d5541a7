"""Family 2, crashes: every part of a model, index and embedding folder damaged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifact_verdicts import ARTIFACTS
from cases import Ctx, Run, add
from files import copy, corrupt_bytes, edit_json, edit_npy, edit_tensors, reseal
from settings import FAMILIES
from verdicts import Verdict

MODEL_PARTS = (
    "weights.safetensors",
    "config.json",
    "index/index.faiss",
    "index/removed.npy",
    "index/manifest.json",
    "index/artifact.json",
)
INDEX_PARTS = ("index.faiss", "removed.npy", "manifest.json", "item_ids.npy")
EMB_PARTS = ("vectors.npy", "ids.npy", "fallback.npy", "manifest.json")
BYTE_KINDS = ("truncate", "bitflip", "garbage")


def damaged_copy(ctx: Ctx, artifact: str) -> tuple[Path, Callable[..., Verdict]]:
    """A copy of the artifact's fixture to damage, and the verdict that judges it."""
    source, verdict, name = ARTIFACTS[artifact]
    return copy(source(ctx.fx), ctx.work / name), verdict


def case_bytes(artifact: str, part: str, kind: str, mode: str) -> Run:
    """A part truncated, bit-flipped or replaced by garbage; ``mode`` "checked" leaves the
    manifest as written, "resealed" rewrites it to vouch for the damage."""

    def run(ctx: Ctx) -> Verdict:
        folder, verdict = damaged_copy(ctx, artifact)
        corrupt_bytes(folder / part, kind, ctx.seed)
        if mode == "resealed":
            reseal(folder)
        return verdict(ctx, folder, [part, Path(part).name], lenient=mode == "resealed")

    return run


def case_structured(
    artifact: str, part: str, edit: Callable[[Path], None], names: list[str]
) -> Run:
    """A targeted edit of a part, resealed: only an error naming it, or an unchanged result,
    counts."""

    def run(ctx: Ctx) -> Verdict:
        folder, verdict = damaged_copy(ctx, artifact)
        edit(folder / part)
        reseal(folder)
        return verdict(ctx, folder, [*names, part, Path(part).name], lenient=False)

    return run


def tensors(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda path: edit_tensors(path, fn)


def npy(fn: Callable[[Any], Any]) -> Callable[[Path], None]:
    return lambda path: edit_npy(path, fn)


def _set(name: str, index: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        array = state[name].copy()
        array.flat[index] = value
        state[name] = array

    return edit


def _drop_row(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        state[name] = state[name][:-1].copy()

    return edit


def _decreasing(state: dict[str, Any]) -> None:
    array = state["train_indptr"].copy()
    array[1] = array[-1]
    state["train_indptr"] = array


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda state: state.pop(name)


def _extra(state: dict[str, Any]) -> None:
    import numpy as np

    state["campaign.extra"] = np.zeros(3, dtype=np.float32)


def _json_key(key: str, value: Any) -> Callable[[Path], None]:
    return lambda path: edit_json(path, lambda d: {**d, key: value})


def _nan_row(array: Any) -> Any:
    out = array.copy()
    out[3] = float("nan")
    return out


def _const(values: list[float]) -> Callable[[Any], Any]:
    def edit(_: Any) -> Any:
        import numpy as np

        return np.array(values)

    return edit


def _dup_ids(array: Any) -> Any:
    out = array.copy()
    out[1] = out[0]
    return out


WEIGHT_EDITS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    # (what, the edit of the tensors in weights.safetensors, the words that name it)
    ("train_indices holds 10**6", _set("train_indices", 0, 10**6), ["train_indices"]),
    ("train_indices holds -5", _set("train_indices", 0, -5), ["train_indices"]),
    ("train_indptr decreases", _decreasing, ["train_indptr"]),
    ("recent holds an item id past the catalogue", _set("recent", 0, 10**6), ["recent"]),
    ("item_last holds inf", _set("item_last", 0, float("inf")), ["item_last"]),
    ("cf.item_factors one row short", _drop_row("cf.item_factors"), ["cf.item_factors"]),
    (
        "retriever.item_factors one row short",
        _drop_row("retriever.item_factors"),
        ["retriever.item_factors", "item_factors"],
    ),
    ("dense_mean missing", _drop("dense_mean"), ["dense_mean"]),
    ("an extra unknown tensor", _extra, ["campaign.extra"]),
]
PART_EDITS: list[tuple[str, str, str, Callable[[Path], None], list[str]]] = [
    # (artifact, part, what, the edit of the part, the words that name it)
    ("index", "removed.npy", "removed id 10**6", npy(_const([10**6])), ["removed"]),
    ("index", "removed.npy", "removed id -5", npy(_const([-5])), ["removed"]),
    ("index", "removed.npy", "removed ids are floats", npy(_const([1.5])), ["removed"]),
    ("index", "manifest.json", "dimension + 1", _json_key("dimension", 33), ["dimension"]),
    ("index", "manifest.json", "item_count + 1", _json_key("item_count", 1683), ["item_count"]),
    ("index", "item_ids.npy", "item_ids one short", npy(lambda a: a[:-1]), ["item_ids"]),
    ("embeddings", "vectors.npy", "a NaN vector", npy(_nan_row), ["NaN", "vectors"]),
    (
        "embeddings",
        "vectors.npy",
        "vectors stored as float16",
        npy(lambda a: a.astype("float16")),
        ["float16", "vectors"],
    ),
    (
        "embeddings",
        "vectors.npy",
        "vectors flattened to 1-d",
        npy(lambda a: a.ravel()),
        ["vectors"],
    ),
    ("embeddings", "ids.npy", "a duplicate id", npy(_dup_ids), ["duplicate", "ids"]),
    ("embeddings", "ids.npy", "ids one short", npy(lambda a: a[:-1]), ["ids"]),
    ("embeddings", "fallback.npy", "fallback one short", npy(lambda a: a[:-1]), ["fallback"]),
]


def register() -> None:
    fam = FAMILIES[1]
    parts = {"model": MODEL_PARTS, "index": INDEX_PARTS, "embeddings": EMB_PARTS}
    for artifact, names in parts.items():
        for part in (*names, "artifact.json"):
            for kind in BYTE_KINDS:
                modes = ("checked",) if part == "artifact.json" else ("checked", "resealed")
                for mode in modes:
                    add(
                        fam,
                        f"{artifact} {part} {kind} ({mode})",
                        case_bytes(artifact, part, kind, mode),
                    )
    weights = "weights.safetensors"
    structured = [
        ("model", weights, what, tensors(edit), names) for what, edit, names in WEIGHT_EDITS
    ]
    for artifact, part, what, edit, names in [*structured, *PART_EDITS]:
        add(
            fam,
            f"{artifact} {part}: {what} (resealed)",
            case_structured(artifact, part, edit, names),
        )
