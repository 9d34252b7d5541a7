"""Bad-input and fault campaign against the llmrec CLI and Python API (issue 13).

Every case builds its own damaged input from fixtures made at the start of the run (a small
ml-100k slice, a tiny BERT encoder, three tiny two-stage models, embeddings, indexes, splits),
runs the CLI as a subprocess or the Python API in a forked child process (so that a segfault
is recorded as a failure of that case instead of ending the campaign), and judges the result:

* handled: the process exits non-zero (the API raises ValueError/TypeError/OSError) with a short
  message, no Python traceback, naming the file, option or id at fault; or the input is accepted
  and the result is checked to be right (same recommendations, same vectors, files kept);
* failed: a crash or signal, a raw traceback or exception type, a message that names nothing,
  exit 0 with wrong or changed results, data deleted or left behind;
* error: the campaign itself could not set the case up (a bug here, not in llmrec).

Run ``.venv/bin/python experiments/reliability/campaign.py`` from the repository root; see
README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.encoders.tiny_models builds the tiny encoder

# Before torch or faiss are imported anywhere: one thread per process (the campaign runs up to
# two processes at once on a 2-core machine), wide rich tables that do not wrap, no colours.
os.environ.update(
    {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "COLUMNS": "4000",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONHASHSEED": "0",
    }
)

FAMILIES = (
    "data loss",
    "crashes",
    "silent wrong results",
    "tracebacks and unclear errors",
    "smaller",
)
HANDLED, FAILED, ERROR, SKIPPED = "handled", "failed", "error", "skipped"
TRACEBACK = "Traceback (most recent call last)"
MAX_MESSAGE_LINES = 12
USERS = ["10", "20", "30", "ghost"]
HISTORY = ["50", "181", "172"]
COMMA_USER = "7, Jr."
THESIS = "four years of work\n"
NOISE = re.compile(
    r"\d+%\||it/s\]|s/it\]|^[WIE]\d{4} \d\d:|Warning: |^\s+warnings\.warn\(|is_fx_tracing"
)
SCORE_ITEM = re.compile(r"(.+?) \((-?\d+\.\d+|-?inf|nan)\)(?:, |$)")


def llmrec_command() -> str:
    here = Path(sys.executable).with_name("llmrec")
    return str(here) if here.exists() else shutil.which("llmrec") or "llmrec"


LLMREC = llmrec_command()


def drop_caps_prefix() -> list[str] | None:
    """A command prefix under which file permissions apply (root ignores them): setpriv without
    CAP_DAC_OVERRIDE. [] when not root; None when root and setpriv is missing."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


DROP_CAPS = drop_caps_prefix()


# ---- verdicts and cases ---------------------------------------------------------------------


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


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    run: Callable[[Ctx], Verdict]
    slow: bool = False
    timeout: float = 240.0


@dataclass
class Fixtures:
    root: Path
    bert: Path
    bert_tuned: Path
    data_a: Path
    data_c: Path
    fast_yaml: Path
    model_a: Path
    model_b: Path
    model_c: Path
    emb_items: Path
    emb_users: Path
    index_flat: Path
    index_hnsw: Path
    split_s1: Path
    split_s2: Path
    cache: Path
    ref: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    fx: Fixtures
    work: Path
    seed: int


CASES: list[Case] = []


def add(family: str, name: str, run: Callable[[Ctx], Verdict], slow: bool = False) -> None:
    assert family in FAMILIES, family
    CASES.append(Case(family, name, run, slow))


# ---- running the CLI and the API --------------------------------------------------------------


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
    problem = accepted()
    if problem:
        return failed(f"exit 0 with a wrong result: {problem}")
    return handled("accepted; result checked correct")


def cli_accepted(p: Proc, check: Callable[[], str | None]) -> Verdict:
    """Handled when a valid input is accepted and ``check()`` finds nothing wrong."""
    verdict = cli_error(p, [])
    if verdict is not None:
        if verdict.outcome == HANDLED:  # a clean refusal, of an input that is valid
            return failed(
                f"refused a valid input (exit {p.rc}): {short(gist(message_lines(p.err)))}"
            )
        return verdict
    problem = check()
    if problem:
        return failed(f"exit 0 with a wrong result: {problem}")
    return handled("accepted; result checked correct")


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
    problem = check(a.value)
    if problem:
        return failed(f"returned a wrong result: {problem}")
    return handled("accepted; result checked correct")


def api_refused(
    a: Attempt, names: Iterable[str], accepted: Callable[[Any], str | None] | None = None
) -> Verdict:
    verdict = api_error(a, names)
    if verdict is not None:
        return verdict
    if accepted is None:
        return failed(f"accepted (returned {short(repr(a.value), 80)}) instead of an error")
    problem = accepted(a.value)
    if problem:
        return failed(f"returned a wrong result: {problem}")
    return handled("accepted; result checked correct")


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


# ---- files ----------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst)
    return dst


def corrupt_bytes(path: Path, kind: str, seed: int) -> None:
    data = path.read_bytes()
    rng = random.Random(seed)
    if kind == "truncate":
        new = data[: len(data) // 2]
    elif kind == "empty":
        new = b""
    elif kind == "bitflip":
        buf = bytearray(data)
        for _ in range(8):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        new = bytes(buf)
    elif kind == "garbage":
        new = rng.randbytes(len(data))
    else:
        raise ValueError(kind)
    path.write_bytes(new)


def reseal(folder: Path) -> None:
    """Rewrite every ``artifact.json`` under ``folder`` (innermost first) so its checksums match
    the parts as they are now: the damage then reaches the loaders' own validation."""
    manifests = sorted(folder.rglob("artifact.json"), key=lambda p: -len(p.parts))
    for manifest in manifests:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            continue  # the damaged part itself: left as it is
        for name in data.get("parts", {}):
            part = manifest.parent / name
            if part.is_file():
                data["parts"][name] = {"sha256": sha256(part), "bytes": part.stat().st_size}
        manifest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def edit_json(path: Path, fn: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(fn(data), indent=2) + "\n", encoding="utf-8")


def edit_tensors(path: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata()
    state = load_file(str(path))
    fn(state)
    save_file(state, str(path), metadata=metadata)


def edit_npy(path: Path, fn: Callable[[Any], Any]) -> None:
    import numpy as np

    array = np.load(path, allow_pickle=False)
    np.save(path, fn(array), allow_pickle=False)


def leftovers(parent: Path, keep: Iterable[str]) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in set(keep))


def intact(files: dict[Path, str]) -> str | None:
    """A problem when a foreign file is gone or changed."""
    for path, text in files.items():
        if not path.is_file():
            return f"foreign file {path.name} was deleted"
        if path.read_text() != text:
            return f"foreign file {path.name} was changed"
    return None


@contextlib.contextmanager
def chmod(path: Path, mode: int) -> Any:
    old = path.stat().st_mode & 0o7777
    os.chmod(path, mode)
    try:
        yield
    finally:
        os.chmod(path, old)


# ---- results of the library ----------------------------------------------------------------


DEFAULT: Any = object()
"""Stands for "the usual argument" where None is itself a value under test."""


def recs_of(rec: Any, users: Any = DEFAULT, k: int | Any = 10, histories: Any = DEFAULT) -> dict:
    import numpy as np

    wanted = USERS if users is DEFAULT else users
    hist = {"ghost": HISTORY} if histories is DEFAULT else histories
    ids, scores = rec.recommend(wanted, k=k, histories=hist)
    ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
    return {
        "ids": [[None if i is None else str(i) for i in row] for row in ids],
        "served": [str(s) for s in rec.served_by_],
        "finite": bool(np.isfinite(scores).all()),
    }


def recs_diff(got: dict, ref: dict) -> str | None:
    if got["served"] != ref["served"]:
        return f"served_by {got['served']} instead of {ref['served']}"
    for n, (a, b) in enumerate(zip(got["ids"], ref["ids"], strict=True)):
        if a != b:
            at = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            return f"user {n}, rank {at + 1}: {a[at : at + 3]}... instead of {b[at : at + 3]}..."
    return None


def recs_insane(got: dict) -> str | None:
    if not got["finite"] or any(i is None for row in got["ids"] for i in row):
        return "None items with -inf scores served"
    return None


def table_rows(out: str) -> list[list[str]]:
    """The cells of a rich table; a cell wrapped over several lines is joined again."""
    rows: list[list[str]] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if rows and not cells[0] and len(cells) == len(rows[-1]):
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return rows


def scored_items(cell: str) -> list[tuple[str, float]]:
    return [(name, float(score)) for name, score in SCORE_ITEM.findall(cell)]


def search_rows(out: str) -> dict[str, list[str]]:
    return {row[0]: [n for n, _ in scored_items(row[-1])] for row in table_rows(out) if row}


def recommend_rows(out: str) -> dict[str, tuple[str, list[str]]]:
    return {
        row[0]: (row[1], [n for n, _ in scored_items(row[2])])
        for row in table_rows(out)
        if len(row) >= 3
    }


def search_insane(out: str, k: int) -> str | None:
    rows = table_rows(out)
    if not rows:
        return "no result table"
    for row in rows:
        items = scored_items(row[-1])
        if (
            len(items) != k
            or len({n for n, _ in items}) != k
            or any(s != s or abs(s) == float("inf") for _, s in items)
        ):
            return f"user {row[0]}: {len(items)} items or non-finite scores"
    return None


def search_all_args(fx: Fixtures, index: Path) -> list[str | Path]:
    k = str(fx.ref["n_items"])
    return [
        "index",
        "search",
        "--index",
        index,
        "--queries",
        fx.emb_users,
        "--users",
        "10",
        "-k",
        k,
    ]


def emb_arrays(folder: Path) -> tuple[Any, Any, Any]:
    from llmrec.encoders.job import EmbeddingSet

    emb = EmbeddingSet.load(folder)
    return emb.ids, emb.vectors, emb.fallback


def emb_diff(got: tuple[Any, Any, Any], ref: Path, atol: float = 0.0) -> str | None:
    import numpy as np

    ids, vectors, fallback = got
    r_ids, r_vectors, r_fallback = emb_arrays(ref)
    if list(map(str, ids)) != list(map(str, r_ids)):
        return "ids differ from the original"
    if vectors.shape != r_vectors.shape:
        return f"vectors {vectors.shape} instead of {r_vectors.shape}"
    if not np.allclose(vectors.astype(np.float64), r_vectors, atol=atol, rtol=0):
        bad = int((~np.isclose(vectors, r_vectors, atol=max(atol, 1e-7), rtol=0)).any(1).sum())
        return f"{bad} vectors differ from the original"
    if list(fallback) != list(r_fallback):
        return "fallback flags differ"
    return None


# ---- fixtures -------------------------------------------------------------------------------


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


def write_datasets(fx: Fixtures) -> dict[str, Any]:
    import pandas as pd

    src = REPO.parent / "shared" / "data" / "ml-100k"
    if not (src / "ml-100k.inter").is_file():
        from llmrec.datasets.loader import recbole_example

        src = recbole_example("ml-100k")
    inter = pd.read_csv(src / "ml-100k.inter", sep="\t", dtype=str, keep_default_na=False)
    items = pd.read_csv(src / "ml-100k.item", sep="\t", dtype=str, keep_default_na=False)
    comma_item = None
    title_col = "movie_title:token_seq"
    for _, row in items.iterrows():
        if ", " in row[title_col] and row["item_id:token"] not in HISTORY:
            comma_item = f"{row[title_col]} ({row['release_year:token']})"
            old_item = row["item_id:token"]
            break
    assert comma_item is not None
    items.loc[items["item_id:token"] == old_item, "item_id:token"] = comma_item
    inter.loc[inter["item_id:token"] == old_item, "item_id:token"] = comma_item
    users = sorted(inter["user_id:token"].unique(), key=int)
    for folder, chosen, rename in (
        (fx.data_a, users[:150], True),
        (fx.data_c, users[150:300], False),
    ):
        folder.mkdir(parents=True)
        part = inter[inter["user_id:token"].isin(chosen)].copy()
        if rename:
            part.loc[part["user_id:token"] == "7", "user_id:token"] = COMMA_USER
        part.to_csv(folder / f"{folder.name}.inter", sep="\t", index=False)
        items.to_csv(folder / f"{folder.name}.item", sep="\t", index=False)
    return {"comma_item": comma_item}


def make_tuned_copy(src: Path, dst: Path) -> None:
    """A copy of an encoder folder with other weights in a file of the same size."""
    import numpy as np

    copy(src, dst)
    weights = dst / "model.safetensors"
    size = weights.stat().st_size

    def perturb(state: dict[str, Any]) -> None:
        name = next(k for k in sorted(state) if "word_embeddings" in k)
        rng = np.random.default_rng(1)
        state[name] = (state[name] + rng.normal(0, 0.5, state[name].shape)).astype(
            state[name].dtype
        )

    edit_tensors(weights, perturb)
    if weights.stat().st_size != size:
        raise RuntimeError("the tuned encoder copy changed size")


def prepare(fx: Fixtures) -> dict[str, Any]:
    from tests.encoders.tiny_models import save_tiny_bert

    save_tiny_bert(fx.bert)
    make_tuned_copy(fx.bert, fx.bert_tuned)
    info = write_datasets(fx)
    fx.fast_yaml.write_text(
        "kind: two_stage\n"
        "params:\n"
        "  candidates: 20\n"
        "  epochs: 2\n"
        "  retriever: {epochs: 2, batch_size: 1024, dim: 8, history_len: 5, "
        f"learning_rate: 0.01, text_model: {json.dumps(str(fx.bert))}}}\n"
        "  cf: {factors: 8, iterations: 5}\n"
        "  ease: null\n"
    )
    return info


def build_steps(fx: Fixtures) -> list[list[tuple[str, list[str | Path]]]]:
    """CLI fixture steps in waves (a wave needs the previous ones)."""
    train = ["train", "--model", fx.fast_yaml]
    return [
        [
            (
                "train model A",
                [*train, "--dataset", fx.data_a, "--seed", "42", "--out", fx.model_a],
            ),
            (
                "encode items",
                ["encode", "--dataset", fx.data_a, "--model", fx.bert, "--out", fx.emb_items],
            ),
        ],
        [
            ("train model B", [*train, "--dataset", fx.data_a, "--seed", "7", "--out", fx.model_b]),
            (
                "encode users",
                [
                    "encode",
                    "--dataset",
                    fx.data_a,
                    "--model",
                    fx.bert,
                    "--what",
                    "users",
                    "--user-text",
                    "pool",
                    "--out",
                    fx.emb_users,
                ],
            ),
            (
                "index flat",
                ["index", "build", "--embeddings", fx.emb_items, "--out", fx.index_flat],
            ),
            (
                "index hnsw",
                [
                    "index",
                    "build",
                    "--embeddings",
                    fx.emb_items,
                    "--spec",
                    "HNSW32",
                    "--out",
                    fx.index_hnsw,
                ],
            ),
        ],
        [
            (
                "train model C",
                [*train, "--dataset", fx.data_c, "--seed", "42", "--out", fx.model_c],
            ),
            ("split seed 1", ["data", "split", fx.data_a, "--seed", "1", "--out", fx.split_s1]),
            ("split seed 2", ["data", "split", fx.data_a, "--seed", "2", "--out", fx.split_s2]),
        ],
    ]


def run_waves(waves: list[list[tuple[str, list[str | Path]]]], jobs: int, logs: Path) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    for wave in waves:
        pending = list(wave)
        running: list[tuple[str, subprocess.Popen, float, Path]] = []
        while pending or running:
            while pending and len(running) < jobs:
                name, args = pending.pop(0)
                log = logs / (name.replace(" ", "-") + ".log")
                with log.open("w") as fh:
                    proc = subprocess.Popen(
                        [LLMREC, *map(str, args)], stdout=fh, stderr=subprocess.STDOUT
                    )
                running.append((name, proc, time.monotonic(), log))
            for entry in list(running):
                name, proc, start, log = entry
                if proc.poll() is None:
                    continue
                running.remove(entry)
                if proc.returncode != 0:
                    raise RuntimeError(f"fixture {name} failed:\n{log.read_text()[-3000:]}")
                print(f"  fixture {name}: {time.monotonic() - start:.0f} s", flush=True)
            time.sleep(0.1)


def references(fx: Fixtures) -> dict[str, Any]:
    from llmrec import Recommender
    from llmrec.datasets import load

    rec = Recommender.load(fx.model_a)
    ref: dict[str, Any] = {"recs": recs_of(rec), "n_items": int(rec.model.n_items)}
    fx.ref["n_items"] = ref["n_items"]  # this child's copy, for search_all_args
    ref["checksum"] = {
        name: json.loads((folder / "config.json").read_text())["data_checksum"]
        for name, folder in (("a", fx.model_a), ("b", fx.model_b), ("c", fx.model_c))
    }
    ref["users_fingerprint"] = json.loads((fx.emb_users / "manifest.json").read_text())[
        "fingerprint"
    ]
    ref["items_fingerprint"] = json.loads((fx.emb_items / "manifest.json").read_text())[
        "fingerprint"
    ]
    data = load(fx.data_a)
    inter = data.interactions
    ref["seen"] = {
        u: sorted(inter.loc[inter["user_id"] == u, "item_id"].astype(str)) for u in USERS[:3]
    }
    users = ",".join(USERS[:3])
    plain = cli(
        "index", "search", "--index", fx.index_flat, "--queries", fx.emb_users, "--users", users
    )
    seen = cli(
        "index",
        "search",
        "--index",
        fx.index_flat,
        "--queries",
        fx.emb_users,
        "--users",
        users,
        "--dataset",
        fx.data_a,
    )
    full = cli(*search_all_args(fx, fx.index_flat))
    if plain.rc or seen.rc or full.rc:
        raise RuntimeError(f"reference index search failed: {plain.err}{seen.err}{full.err}")
    ref["search"], ref["search_seen"] = search_rows(plain.out), search_rows(seen.out)
    ref["search_all"] = search_rows(full.out)
    if len(ref["search_all"].get("10", [])) != ref["n_items"]:
        raise RuntimeError("cannot read the full-catalogue search table")
    with contextlib.closing(sqlite3.connect(fx.cache)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ref


def fixture_paths(root: Path) -> Fixtures:
    return Fixtures(
        root=root,
        bert=root / "tiny-bert",
        bert_tuned=root / "tiny-bert-tuned",
        data_a=root / "ml100k-a",
        data_c=root / "ml100k-c",
        fast_yaml=root / "fast.yaml",
        model_a=root / "model-a",
        model_b=root / "model-b",
        model_c=root / "model-c",
        emb_items=root / "emb-items",
        emb_users=root / "emb-users",
        index_flat=root / "index-flat",
        index_hnsw=root / "index-hnsw",
        split_s1=root / "split-seed1",
        split_s2=root / "split-seed2",
        cache=root / "cache" / "embeddings.sqlite",
    )


def build_fixtures(root: Path, jobs: int) -> Fixtures:
    fx = fixture_paths(root)
    os.environ["LLMREC_CACHE_DIR"] = str(fx.cache.parent)
    logs = root.parent / "fixture-logs"
    fx.ref.update(run_forked(lambda: prepare(fx), logs / "prepare.log"))
    run_waves(build_steps(fx), jobs, logs)
    fx.ref.update(run_forked(lambda: references(fx), logs / "references.log"))
    # Cases that change permissions run without root's override: they must reach the fixtures.
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, os.stat(path).st_mode | (0o755 if path.is_dir() else 0o644))
    (root / "ref.json").write_text(json.dumps(fx.ref, indent=2) + "\n")
    return fx


def reuse_fixtures(root: Path) -> Fixtures:
    """Fixtures a ``--keep`` run left (for working on the campaign; a real run builds its own)."""
    fx = fixture_paths(root)
    fx.ref.update(json.loads((root / "ref.json").read_text()))
    os.environ["LLMREC_CACHE_DIR"] = str(fx.cache.parent)
    return fx


# ---- family 1: data loss ----------------------------------------------------------------------


def writer_args(fx: Fixtures, writer: str, out: Path | str) -> list[str | Path]:
    return {
        "encode": ["encode", "--dataset", fx.data_a, "--model", fx.bert, "--out", out],
        "index build": ["index", "build", "--embeddings", fx.emb_items, "--out", out],
        "train": ["train", "--dataset", fx.data_a, "--model", fx.fast_yaml, "--out", out],
        "data split": ["data", "split", fx.data_a, "--seed", "2", "--out", out],
    }[writer]


CLI_WRITERS = ("encode", "index build", "train", "data split")


def own_artifact(fx: Fixtures, writer: str) -> Path:
    return {
        "encode": fx.emb_items,
        "index build": fx.index_flat,
        "train": fx.model_a,
        "data split": fx.split_s1,
    }[writer]


def foreign_content(target: Path, variant: str, outside: Path) -> dict[Path, str]:
    target.mkdir(parents=True, exist_ok=True)
    files = {
        "file": target / "thesis.txt",
        "nested": target / "notes" / "draft.md",
        "hidden": target / ".env",
    }
    if variant == "symlink":
        outside.write_text(THESIS)
        (target / "link").symlink_to(outside)
        return {outside: THESIS}
    path = files[variant]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(THESIS)
    return {path: THESIS}


def symlink_kept(target: Path, variant: str) -> str | None:
    if variant == "symlink" and not (target / "link").is_symlink():
        return "the symlink in the folder was deleted"
    return None


def case_foreign_cli(writer: str, variant: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        target = ctx.work / "my-documents"
        files = foreign_content(target, variant, ctx.work / "outside.txt")
        p = cli(*writer_args(ctx.fx, writer, target))
        lost = intact(files) or symlink_kept(target, variant)
        if lost:
            return failed(f"exit {p.rc}; {lost}")
        return cli_refused(p, [target.name], accepted=lambda: None)

    return run


def api_saver(kind: str, fx: Fixtures) -> Callable[[Path], Any]:
    def save(target: Path) -> Any:
        if kind == "Recommender.save":
            from llmrec import Recommender

            return Recommender.load(fx.model_a, check_encoder=False).save(target)
        if kind == "EmbeddingSet.save":
            from llmrec.encoders.job import EmbeddingSet

            return EmbeddingSet.load(fx.emb_items).save(target)
        if kind == "ItemIndex.save":
            from llmrec.retrieval import ItemIndex

            return ItemIndex.load(fx.index_flat).save(target)
        from llmrec.datasets import load, split

        return split(load(fx.data_a), "random", 3).save(target)

    return save


def case_foreign_api(kind: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        target = ctx.work / "my-documents"
        files = foreign_content(target, "file", ctx.work / "outside.txt")
        a = attempt(lambda: api_saver(kind, ctx.fx)(target))
        lost = intact(files)
        if lost:
            return failed(lost)
        return api_refused(a, [target.name], accepted=lambda _: None)

    return run


def case_extra_file(writer: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        target = copy(own_artifact(ctx.fx, writer), ctx.work / "my-artifact")
        files = {target / "notes.txt": THESIS}
        (target / "notes.txt").write_text(THESIS)
        p = cli(*writer_args(ctx.fx, writer, target))
        lost = intact(files)
        if lost:
            return failed(f"exit {p.rc}; {lost}")
        return cli_refused(p, [target.name], accepted=lambda: None)

    return run


OTHER_KIND = {
    "encode": "index build",
    "index build": "encode",
    "train": "data split",
    "data split": "train",
}
KIND_OF = {"encode": "embeddings", "index build": "index", "train": "model", "data split": "split"}


def case_other_kind(writer: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        from llmrec.artifacts import verify_artifact

        other = OTHER_KIND[writer]
        target = copy(own_artifact(ctx.fx, other), ctx.work / "their-artifact")
        p = cli(*writer_args(ctx.fx, writer, target))
        check = attempt(lambda: verify_artifact(target, KIND_OF[other]))
        if check.exc is not None and p.rc != 0:
            return failed(f"refused, but the {KIND_OF[other]} there is damaged: {check.exc}")
        return cli_refused(
            p,
            [target.name],
            accepted=lambda: f"the {KIND_OF[other]} folder was replaced by {KIND_OF[writer]}",
        )

    return run


def case_resave(writer: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        from llmrec.artifacts import verify_artifact

        parent = ctx.work / "p"
        parent.mkdir()
        if writer == "Recommender.save":
            target = copy(ctx.fx.model_a, parent / "art")
            from llmrec import Recommender

            a = attempt(lambda: Recommender.load(ctx.fx.model_b, check_encoder=False).save(target))
            if a.exc is not None:
                return failed(f"re-saving a model over an older one raised {a.exc!r}")
            kind = "model"
        else:
            target = copy(own_artifact(ctx.fx, writer), parent / "art")
            args = writer_args(ctx.fx, writer, target)
            if writer == "index build":
                args = [*args, "--spec", "HNSW32"]
            p = cli(*args)
            if p.rc != 0:
                return failed(f"re-writing its own {writer} folder failed: {short(p.err)}")
            kind = KIND_OF[writer]
        check = attempt(lambda: verify_artifact(target, kind))
        if check.exc is not None:
            return failed(f"the new {kind} does not verify: {check.exc}")
        left = leftovers(parent, ["art"])
        if left:
            return failed(f"leftovers beside the artifact: {left}")
        return handled("replaced its own artifact; verifies; no leftovers")

    return run


@dataclass
class KillTarget:
    old: Callable[[Fixtures, Path], None]
    write: Callable[[Fixtures, Path, dict[str, str]], int]
    identity: Callable[[Fixtures, Path], str]
    fail_write: Callable[[Fixtures, Path], int]


def _model_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    from llmrec import Recommender

    return fork_call(lambda: Recommender.load(fx.model_b, check_encoder=False).save(target), env)


def _model_identity(fx: Fixtures, target: Path) -> str:
    from llmrec import Recommender

    checksum = Recommender.load(target, check_encoder=False).data_checksum
    return {fx.ref["checksum"]["a"]: "old", fx.ref["checksum"]["b"]: "new"}.get(checksum, "?")


def _model_fail(fx: Fixtures, target: Path) -> int:
    from llmrec.artifacts import write_artifact

    def broken(tmp: Path) -> None:
        (tmp / "weights.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    return fork_call(lambda: write_artifact(target, "model", broken))


def _emb_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    from llmrec.encoders.job import EmbeddingSet

    return fork_call(lambda: EmbeddingSet.load(fx.emb_users).save(target), env)


def _emb_identity(fx: Fixtures, target: Path) -> str:
    from llmrec.encoders.job import EmbeddingSet

    return {"items": "old", "users": "new"}.get(EmbeddingSet.load(target).manifest["what"], "?")


def _index_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    args = ["index", "build", "--embeddings", fx.emb_items, "--spec", "HNSW32", "--out", target]
    return cli(*args, env=env).rc


def _index_identity(fx: Fixtures, target: Path) -> str:
    import numpy as np

    from llmrec.retrieval import ItemIndex

    spec = ItemIndex.load(target).spec
    np.load(target / "item_ids.npy", allow_pickle=False)
    return {"Flat": "old", "HNSW32": "new"}.get(spec, "?")


def _split_write(fx: Fixtures, target: Path, env: dict[str, str]) -> int:
    return cli("data", "split", fx.data_a, "--seed", "2", "--out", target, env=env).rc


def _split_identity(fx: Fixtures, target: Path) -> str:
    import pandas as pd

    from llmrec.artifacts import open_artifact

    open_artifact(target, "split")
    seed = json.loads((target / "split.json").read_text())["seed"]
    ref = {1: fx.split_s1, 2: fx.split_s2}.get(seed)
    if ref is None:
        return "?"
    for part in ("train", "valid", "test"):
        if not pd.read_parquet(target / f"{part}.parquet").equals(
            pd.read_parquet(ref / f"{part}.parquet")
        ):
            return f"mixed (split.json says seed {seed}, {part} is not from it)"
    return {1: "old", 2: "new"}[seed]


def _split_fail(fx: Fixtures, target: Path) -> int:
    return cli("data", "split", fx.root / "no-such-dataset", "--out", target).rc


def _copier(attr: str) -> Callable[[Fixtures, Path], None]:
    def put(fx: Fixtures, target: Path) -> None:
        copy(getattr(fx, attr), target)

    return put


KILL_TARGETS = {
    "Recommender.save": KillTarget(_copier("model_a"), _model_write, _model_identity, _model_fail),
    "EmbeddingSet.save": KillTarget(_copier("emb_items"), _emb_write, _emb_identity, _model_fail),
    "llmrec index build": KillTarget(
        _copier("index_flat"), _index_write, _index_identity, _model_fail
    ),
    "llmrec data split": KillTarget(
        _copier("split_s1"), _split_write, _split_identity, _split_fail
    ),
}


KILL_ENV = "LLMREC_TEST_KILL_AT"
DEFAULT_KILL_STAGES = ("started", "written", "old-moved", "swapped")


def kill_stages() -> tuple[str, ...]:
    """The writer's kill points (``llmrec.artifacts.KILL_STAGES``; the issue's four when this
    llmrec has no such hook, whose cases then report that the hook did not fire)."""
    try:
        from llmrec.artifacts import KILL_STAGES
    except ImportError:
        return DEFAULT_KILL_STAGES
    return tuple(KILL_STAGES)


def case_kill(writer: str, stages: list[str], then_fail: bool) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        kt = KILL_TARGETS[writer]
        parent = ctx.work / "p"
        parent.mkdir()
        target = parent / "art"
        kt.old(ctx.fx, target)
        (parent / "thesis.txt").write_text(THESIS)
        for stage in stages:
            code = kt.write(ctx.fx, target, {KILL_ENV: stage})
            if code != 137:
                return harness_error(f"the kill hook did not fire at {stage!r} (exit {code})")
        if then_fail and kt.fail_write(ctx.fx, target) == 0:
            return harness_error("the failing save did not fail")
        lost = intact({parent / "thesis.txt": THESIS})
        if lost:
            return failed(lost)
        who = attempt(lambda: kt.identity(ctx.fx, target))
        if who.exc is not None:
            return failed(f"after the kill nothing loads at the path: {short(repr(who.exc))}")
        if who.value not in ("old", "new"):
            return failed(f"after the kill the path holds {who.value}")
        code = kt.write(ctx.fx, target, {})
        if code != 0:
            return failed(
                f"after the kill ({who.value} artifact loaded) the next save exits {code}"
            )
        again = attempt(lambda: kt.identity(ctx.fx, target))
        if again.value != "new":
            return failed(f"the next save left {again.value or again.exc!r}, not the new artifact")
        left = leftovers(parent, ["art", "thesis.txt"])
        if left:
            return failed(f"leftovers after the next save: {left}")
        return handled(f"the {who.value} artifact loaded after the kill; next save clean")

    return run


def family_data_loss() -> None:
    fam = FAMILIES[0]
    for writer in CLI_WRITERS:
        for variant in ("file", "nested", "hidden", "symlink"):
            add(
                fam,
                f"llmrec {writer} --out folder with a foreign {variant}",
                case_foreign_cli(writer, variant),
            )
    for kind in ("Recommender.save", "EmbeddingSet.save", "ItemIndex.save", "Split.save"):
        add(fam, f"{kind} into a folder with a foreign file", case_foreign_api(kind))
    for writer in CLI_WRITERS:
        add(fam, f"llmrec {writer} --out its own kind plus a foreign file", case_extra_file(writer))
    for writer in CLI_WRITERS:
        add(fam, f"llmrec {writer} --out an artifact of another kind", case_other_kind(writer))
    for writer in ("encode", "index build", "data split", "Recommender.save"):
        add(fam, f"{writer} replaces its own previous artifact", case_resave(writer), slow=True)
    for writer in KILL_TARGETS:
        for stage in kill_stages():
            add(fam, f"{writer} killed at {stage!r}", case_kill(writer, [stage], False))
    for writer in ("Recommender.save", "llmrec data split"):
        add(
            fam,
            f"{writer} killed at 'old-moved', then killed at 'written'",
            case_kill(writer, ["old-moved", "written"], False),
        )
        add(
            fam,
            f"{writer} killed at 'old-moved', then a failing save",
            case_kill(writer, ["old-moved"], True),
        )


# ---- family 2: crashes ----------------------------------------------------------------------

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


def model_verdict(ctx: Ctx, folder: Path, names: list[str], lenient: bool) -> Verdict:
    """Load and serve a damaged model. ``lenient``: the manifest vouches for changed bytes, so
    any sane output counts (only crashes, raw errors and None/-inf items fail)."""
    from llmrec import Recommender

    a = attempt(lambda: recs_of(Recommender.load(folder)))
    verdict = api_error(a, [*names, folder.name])
    if verdict is not None:
        return verdict
    diff = recs_diff(a.value, ctx.fx.ref["recs"])
    if diff is None:
        return handled("accepted; recommendations identical to the intact model's")
    insane = recs_insane(a.value)
    if lenient and insane is None:
        return handled("accepted without crash; sane output (resealed manifest vouches for it)")
    return failed(f"loaded and served changed recommendations: {insane or diff}")


def index_verdict(ctx: Ctx, folder: Path, names: list[str], lenient: bool) -> Verdict:
    """Search the whole catalogue for one user, so that every item and name is shown."""
    k = ctx.fx.ref["n_items"]
    p = cli(*search_all_args(ctx.fx, folder))
    verdict = cli_error(p, [*names, folder.name])
    if verdict is not None:
        return verdict
    if search_rows(p.out) == ctx.fx.ref["search_all"]:
        return handled("accepted; search results identical to the intact index's")
    insane = search_insane(p.out, k)
    if lenient and insane is None:
        return handled("accepted without crash; sane output (resealed manifest vouches for it)")
    return failed(f"exit 0 with changed search results{': ' + insane if insane else ''}")


def emb_verdict(ctx: Ctx, folder: Path, names: list[str], lenient: bool) -> Verdict:
    import numpy as np

    a = attempt(lambda: emb_arrays(folder))
    verdict = api_error(a, [*names, folder.name])
    if verdict is not None:
        return verdict
    diff = emb_diff(a.value, ctx.fx.emb_items, atol=1e-2)
    if diff is None:
        return handled("accepted; vectors identical to the intact folder's")
    ids, vectors, fallback = a.value
    sane = (
        vectors.ndim == 2
        and len(ids) == len(vectors) == len(fallback)
        and np.isfinite(vectors).all()
        and len(set(map(str, ids))) == len(ids)
    )
    if lenient and sane:
        return handled("accepted without crash; sane output (resealed manifest vouches for it)")
    if not np.isfinite(vectors).all():
        diff = "NaN or inf vectors returned without an error"
    return failed(f"loaded changed embeddings: {diff}")


ARTIFACTS: dict[str, tuple[Callable[[Fixtures], Path], Callable[..., Verdict], str]] = {
    "model": (lambda fx: fx.model_a, model_verdict, "mut-model"),
    "index": (lambda fx: fx.index_flat, index_verdict, "mut-index"),
    "embeddings": (lambda fx: fx.emb_items, emb_verdict, "mut-emb"),
}


def case_bytes(artifact: str, part: str, kind: str, mode: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        source, verdict, name = ARTIFACTS[artifact]
        folder = copy(source(ctx.fx), ctx.work / name)
        corrupt_bytes(folder / part, kind, ctx.seed)
        if mode == "resealed":
            reseal(folder)
        return verdict(ctx, folder, [part, Path(part).name], lenient=mode == "resealed")

    return run


def case_structured(
    artifact: str, part: str, edit: Callable[[Path], None], names: list[str]
) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        source, verdict, name = ARTIFACTS[artifact]
        folder = copy(source(ctx.fx), ctx.work / name)
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


def family_crashes() -> None:
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
        (
            "model",
            weights,
            "train_indices holds 10**6",
            tensors(_set("train_indices", 0, 10**6)),
            ["train_indices"],
        ),
        (
            "model",
            weights,
            "train_indices holds -5",
            tensors(_set("train_indices", 0, -5)),
            ["train_indices"],
        ),
        ("model", weights, "train_indptr decreases", tensors(_decreasing), ["train_indptr"]),
        (
            "model",
            weights,
            "recent holds an item id past the catalogue",
            tensors(_set("recent", 0, 10**6)),
            ["recent"],
        ),
        (
            "model",
            weights,
            "item_last holds inf",
            tensors(_set("item_last", 0, float("inf"))),
            ["item_last"],
        ),
        (
            "model",
            weights,
            "cf.item_factors one row short",
            tensors(_drop_row("cf.item_factors")),
            ["cf.item_factors"],
        ),
        (
            "model",
            weights,
            "retriever.item_factors one row short",
            tensors(_drop_row("retriever.item_factors")),
            ["retriever.item_factors", "item_factors"],
        ),
        ("model", weights, "dense_mean missing", tensors(_drop("dense_mean")), ["dense_mean"]),
        ("model", weights, "an extra unknown tensor", tensors(_extra), ["campaign.extra"]),
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
    for artifact, part, what, edit, names in structured:
        add(
            fam,
            f"{artifact} {part}: {what} (resealed)",
            case_structured(artifact, part, edit, names),
        )


# ---- family 3: silent wrong results -----------------------------------------------------------


def case_fingerprint_cli(ctx: Ctx) -> Verdict:
    """Issue 5: a same-size fine-tuned copy must not get the base model's cached vectors."""
    from llmrec.datasets import load
    from llmrec.encoders.job import EncodeConfig, encode_dataset

    cache = ctx.work / "cache.sqlite"
    base = cli(
        "encode",
        "--dataset",
        ctx.fx.data_a,
        "--model",
        ctx.fx.bert,
        "--cache",
        cache,
        "--out",
        ctx.work / "base",
    )
    tuned = cli(
        "encode",
        "--dataset",
        ctx.fx.data_a,
        "--model",
        ctx.fx.bert_tuned,
        "--cache",
        cache,
        "--out",
        ctx.work / "tuned",
    )
    if base.rc or tuned.rc:
        return failed(f"encode failed: {short(base.err + tuned.err)}")
    config = EncodeConfig.model_validate({"encoder": {"model": str(ctx.fx.bert_tuned)}})
    truth = encode_dataset(load(ctx.fx.data_a), config, ctx.work / "fresh.sqlite").vectors
    return vectors_match(emb_arrays(ctx.work / "tuned")[1], truth, emb_arrays(ctx.work / "base")[1])


def vectors_match(got: Any, truth: Any, other: Any) -> Verdict:
    import numpy as np

    if np.allclose(truth, other, atol=1e-4):
        return harness_error("the tuned copy encodes like the base model; cannot tell them apart")
    error = float(np.abs(got - truth).max())
    if error > 1e-4:
        return failed(f"served the base model's cached vectors (max error {error:.3f})")
    return handled("vectors of the tuned copy, not the base model's cached ones")


def case_fingerprint_inplace(ctx: Ctx) -> Verdict:
    from llmrec.datasets import load
    from llmrec.encoders.job import EncodeConfig, encode_dataset

    model = copy(ctx.fx.bert, ctx.work / "my-model")
    config = EncodeConfig.model_validate({"encoder": {"model": str(model)}})
    data = load(ctx.fx.data_a)
    before = encode_dataset(data, config, ctx.work / "cache.sqlite").vectors
    time.sleep(0.01)
    shutil.copyfile(ctx.fx.bert_tuned / "model.safetensors", model / "model.safetensors")
    after = encode_dataset(data, config, ctx.work / "cache.sqlite").vectors
    truth = encode_dataset(data, config, ctx.work / "fresh.sqlite").vectors
    return vectors_match(after, truth, before)


def case_fingerprint_api(ctx: Ctx) -> Verdict:
    from llmrec.encoders.transformer import TransformerEncoder

    a = TransformerEncoder(ctx.fx.bert).fingerprint
    b = TransformerEncoder(ctx.fx.bert_tuned).fingerprint
    if a == b:
        return failed(f"same fingerprint {a} for two models with different weights")
    return handled("different weights of the same size give different fingerprints")


def case_model_other_encoder(ctx: Ctx) -> Verdict:
    from llmrec import Recommender

    folder = copy(ctx.fx.model_a, ctx.work / "mut-model")

    def point(meta: dict) -> dict:
        meta["config"]["retriever"]["text_model"] = str(ctx.fx.bert_tuned)
        return meta

    edit_json(folder / "config.json", point)
    reseal(folder)
    a = attempt(lambda: Recommender.load(folder))
    return api_refused(a, ["encoder", "embedding model", "fingerprint"])


def cache_copy(fx: Fixtures, dst: Path) -> Path:
    with (
        contextlib.closing(sqlite3.connect(fx.cache)) as src,
        contextlib.closing(sqlite3.connect(dst)) as out,
    ):
        src.backup(out)
    return dst


SET_VECTOR = "UPDATE embeddings SET vector = ? WHERE fingerprint = ? AND text_hash = ?"
SET_DIGEST = "UPDATE checksums SET digest = ? WHERE fingerprint = ? AND text_hash = ?"


def cache_edit(kind: str) -> Callable[[sqlite3.Connection, str], None]:
    def edit(db: sqlite3.Connection, fp: str) -> None:
        import numpy as np

        rows = db.execute(
            "SELECT text_hash, vector FROM embeddings WHERE fingerprint = ? ORDER BY text_hash",
            (fp,),
        ).fetchall()
        if kind == "bitflip":
            for key, blob in rows[:41]:
                buf = bytearray(blob)
                buf[len(buf) // 2] ^= 0x40
                db.execute(SET_VECTOR, (bytes(buf), fp, key))
        elif kind == "nan":
            key, blob = rows[0]
            nan = np.full(len(blob) // 4, np.nan, dtype=np.float32).tobytes()
            db.execute(SET_VECTOR, (nan, fp, key))
            with contextlib.suppress(ImportError, sqlite3.Error):
                from llmrec.encoders.cache import row_digest

                db.execute(SET_DIGEST, (row_digest(key, nan), fp, key))
        elif kind == "short":
            key, blob = rows[0]
            db.execute(SET_VECTOR, (blob[:-4], fp, key))
        elif kind == "swapped":  # two rows exchange vectors and checksums
            (k1, b1), (k2, b2) = rows[0], rows[1]
            digests: dict[bytes, bytes] = {}
            if _has_table(db, "checksums"):
                found = db.execute(
                    "SELECT text_hash, digest FROM checksums WHERE fingerprint = ?", (fp,)
                ).fetchall()
                digests = {k: d for k, d in found if k in (k1, k2)}
            db.execute(SET_VECTOR, (b2, fp, k1))
            db.execute(SET_VECTOR, (b1, fp, k2))
            if len(digests) == 2:
                db.execute(SET_DIGEST, (digests[k2], fp, k1))
                db.execute(SET_DIGEST, (digests[k1], fp, k2))
        db.commit()

    return edit


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def case_cache_rows(kind: str) -> Callable[[Ctx], Verdict]:
    """Issue 6: damaged cached vectors are recomputed or reported, never served."""

    def run(ctx: Ctx) -> Verdict:
        cache = cache_copy(ctx.fx, ctx.work / "cache.sqlite")
        with contextlib.closing(sqlite3.connect(cache)) as db:
            cache_edit(kind)(db, ctx.fx.ref["items_fingerprint"])
        out = ctx.work / "emb"
        p = cli(
            "encode",
            "--dataset",
            ctx.fx.data_a,
            "--model",
            ctx.fx.bert,
            "--cache",
            cache,
            "--out",
            out,
        )
        return cli_refused(
            p, [cache.name], accepted=lambda: emb_diff(emb_arrays(out), ctx.fx.emb_items, atol=1e-4)
        )

    return run


def case_swap(what: str, mode: str = "checked") -> Callable[[Ctx], Verdict]:
    """Issue 7: parts of a model folder that do not belong together."""

    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        folder = copy(fx.model_a, ctx.work / "mut-model")
        names = ["mut-model"]
        if what == "index from B":
            shutil.rmtree(folder / "index")
            copy(fx.model_b / "index", folder / "index")
            names += ["index"]
        elif what == "weights from B":
            shutil.copyfile(fx.model_b / "weights.safetensors", folder / "weights.safetensors")
            names += ["weights.safetensors"]
        elif what == "weights from C":
            shutil.copyfile(fx.model_c / "weights.safetensors", folder / "weights.safetensors")
            names += ["weights.safetensors"]
        elif what == "config from C":
            shutil.copyfile(fx.model_c / "config.json", folder / "config.json")
            names += ["config.json"]
        elif what == "weights and artifact.json from B":
            for part in ("weights.safetensors", "artifact.json"):
                shutil.copyfile(fx.model_b / part, folder / part)
            names += ["config.json", "weights.safetensors"]
        elif what == "user_ids shifted by one":
            edit_json(
                folder / "config.json",
                lambda m: {**m, "user_ids": m["user_ids"][1:] + m["user_ids"][:1]},
            )
            names += ["config.json", "user_ids"]
        elif what == "item_ids one short":
            edit_json(folder / "config.json", lambda m: {**m, "item_ids": m["item_ids"][:-1]})
            names += ["config.json", "item_ids"]
        elif what == "NaN in a ranker weight":
            edit_tensors(folder / "weights.safetensors", _nan_tensor("ranker."))
            names += ["weights.safetensors", "ranker"]
        elif what == "NaN in retriever.item_factors":
            edit_tensors(folder / "weights.safetensors", _nan_tensor("retriever.item_factors"))
            names += ["weights.safetensors", "item_factors"]
        if mode == "resealed":
            reseal(folder)
        return model_verdict(ctx, folder, names, lenient=False)

    return run


def _nan_tensor(prefix: str) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        name = next(k for k in sorted(state) if k.startswith(prefix) and state[k].dtype.kind == "f")
        array = state[name].copy()
        array.flat[0] = float("nan")
        state[name] = array

    return edit


def case_swap_cli(ctx: Ctx) -> Verdict:
    folder = copy(ctx.fx.model_a, ctx.work / "mut-model")
    shutil.rmtree(folder / "index")
    copy(ctx.fx.model_b / "index", folder / "index")
    p = recommend_cli(folder, ",".join(USERS), "--history", ",".join(HISTORY))
    return cli_refused(
        p, ["mut-model", "index"], accepted=lambda: recommend_diff(p.out, ctx.fx.ref["recs"])
    )


def recommend_cli(model: Path, users: str, *extra: str, drop_caps: bool = False) -> Proc:
    return cli("recommend", "--model", model, "--users", users, *extra, drop_caps=drop_caps)


def recommend_diff(out: str, ref: dict) -> str | None:
    rows = recommend_rows(out)
    for n, user in enumerate(USERS):
        if user not in rows:
            continue
        served, items = rows[user]
        if served != ref["served"][n] or items != [i for i in ref["ids"][n] if i]:
            want = f"{ref['served'][n]} {ref['ids'][n][:3]}"
            return f"user {user}: {served} {items[:3]}... instead of {want}..."
    return None


def atomic_copy(ctx: Ctx, name: str, edit: Callable[[Any], Any] | None = None) -> Path:
    """A copy of dataset A as ``name/name.inter`` (+ .item), the interactions edited."""
    import pandas as pd

    folder = ctx.work / name
    folder.mkdir()
    src = ctx.fx.data_a
    inter = pd.read_csv(src / f"{src.name}.inter", sep="\t", dtype=str, keep_default_na=False)
    if edit is not None:
        inter = edit(inter)
    inter.to_csv(folder / f"{name}.inter", sep="\t", index=False)
    shutil.copyfile(src / f"{src.name}.item", folder / f"{name}.item")
    return folder


def _cell(column: str, value: str, row: int = 5) -> Callable[[Any], Any]:
    def edit(frame: Any) -> Any:
        frame.loc[frame.index[row], column] = value
        return frame

    return edit


def case_bad_rating(
    value: str, column: str = "rating:float", command: str = "pool"
) -> Callable[[Ctx], Verdict]:
    """Issue 8: inf ratings (and NaN, and inf timestamps) are refused where they enter."""

    def run(ctx: Ctx) -> Verdict:
        data = atomic_copy(ctx, "bad-values", _cell(column, value))
        if command == "pool":
            args = [
                "encode",
                "--dataset",
                data,
                "--model",
                ctx.fx.bert,
                "--what",
                "users",
                "--user-text",
                "pool",
                "--out",
                ctx.work / "emb",
            ]
        else:
            args = ["data", "split", data, "--split", "temporal", "--out", ctx.work / "split"]
        return cli_refused(cli(*args), [column.split(":")[0], "bad-values.inter"])

    return run


def case_inf_csv(ctx: Ctx) -> Verdict:
    path = ctx.work / "ratings.csv"
    path.write_text("user_id,item_id,rating\n1,10,4\n1,11,inf\n2,10,3\n")
    return cli_refused(cli("data", "describe", path), ["rating", "ratings.csv"])


def small_train(fx: Fixtures, n_users: int = 30) -> tuple[Any, Any]:
    from llmrec.datasets import load

    data = load(fx.data_a)
    inter = data.interactions
    keep = inter["user_id"].isin(sorted(inter["user_id"].unique())[:n_users])
    return inter.loc[keep, ["user_id", "item_id", "rating", "timestamp"]].reset_index(
        drop=True
    ), data.items


def case_fit_inf(ctx: Ctx) -> Verdict:
    from llmrec import Recommender

    train, items = small_train(ctx.fx)
    train.loc[3, "rating"] = float("inf")
    a = attempt(lambda: Recommender(**fast_params(ctx.fx)).fit(train, items=items))
    return api_refused(a, ["rating"])


def fast_params(fx: Fixtures) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(fx.fast_yaml.read_text())["params"]


def case_float_ids_parquet(ctx: Ctx) -> Verdict:
    """Issue 9: float-typed ids become "196", never "196.0"."""
    from llmrec.datasets import load

    train, _ = small_train(ctx.fx)
    numeric = train[train["item_id"].str.isdigit() & train["user_id"].str.isdigit()].copy()
    numeric["user_id"] = numeric["user_id"].astype(float)
    numeric["item_id"] = numeric["item_id"].astype(float)
    path = ctx.work / "float-ids.parquet"
    numeric.to_parquet(path)
    a = attempt(lambda: load(path))

    def check(data: Any) -> str | None:
        bad = [u for u in [*data.user_ids, *data.item_ids] if str(u).endswith(".0")]
        return f"ids like {bad[:3]}" if bad else None

    return api_accepted(a, check)


def case_float_ids_csv(ctx: Ctx) -> Verdict:
    from llmrec.datasets import load

    path = ctx.work / "mixed.csv"
    path.write_text("user_id,item_id,rating\n196,242,3\n196.0,302,3\n22,377,1\n22.0,51,2\n")
    a = attempt(lambda: load(path))
    return api_refused(
        a,
        ["user_id"],
        accepted=lambda d: (
            None if sorted(d.user_ids) == ["196", "22"] else f"users {list(d.user_ids)}"
        ),
    )


def case_typed_user(
    users: Any, histories: Any = DEFAULT, as_numpy: bool = False, k: Any = 10
) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        import numpy as np

        from llmrec import Recommender

        rec = Recommender.load(ctx.fx.model_a, check_encoder=False)
        wanted = np.array(users) if as_numpy else users
        value = np.int64(10) if k == "numpy" else k
        a = attempt(lambda: recs_of(rec, users=wanted, histories=histories, k=value))
        ref = ctx.fx.ref["recs"]
        n = len(a.value["ids"]) if a.exc is None else 0
        expected = {"ids": ref["ids"][:n], "served": ref["served"][:n]}
        if n == len(USERS):
            expected = ref
        return api_accepted(a, lambda got: recs_diff(got, expected))

    return run


def case_histories(histories: Any) -> Callable[[Ctx], Verdict]:
    """Issue 10: a history that is not a list of ids is refused."""

    def run(ctx: Ctx) -> Verdict:
        from llmrec import Recommender

        rec = Recommender.load(ctx.fx.model_a, check_encoder=False)
        a = attempt(lambda: recs_of(rec, users=["ghost"], histories=histories))
        return api_refused(a, ["histories", "history"])

    return run


def case_search_dataset(which: str) -> Callable[[Ctx], Verdict]:
    """Issue 11: index search --dataset with embeddings made from another dataset."""

    def run(ctx: Ctx) -> Verdict:
        import pandas as pd

        fx = ctx.fx
        if which == "same":
            data = fx.data_a
        elif which == "other users":
            data = fx.data_c
        else:
            data = atomic_copy(ctx, "reordered")
            item_file = data / "reordered.item"
            items = pd.read_csv(item_file, sep="\t", dtype=str, keep_default_na=False)
            items.iloc[::-1].to_csv(item_file, sep="\t", index=False)
        users = ",".join(USERS[:3])
        p = cli(
            "index",
            "search",
            "--index",
            fx.index_flat,
            "--queries",
            fx.emb_users,
            "--users",
            users,
            "--dataset",
            data,
        )

        def check() -> str | None:
            rows = search_rows(p.out)
            for user in USERS[:3]:
                seen = set(fx.ref["seen"][user]) if which != "other users" else set()
                shown = rows.get(user, [])
                if seen & set(shown):
                    both = sorted(seen & set(shown))[:3]
                    return f"user {user} is shown items seen in {data.name}: {both}"
                expected = fx.ref["search_seen" if which != "other users" else "search"][user]
                if shown != expected:
                    return f"user {user}: {shown[:3]}... instead of {expected[:3]}..."
            return None

        verdict = cli_refused(p, [data.name, "dataset", "checksum"], accepted=check)
        if which == "same" and verdict.outcome == HANDLED and p.rc != 0:
            return failed(f"the matching dataset is refused: {verdict.reason}")
        return verdict

    return run


def case_cli_param(
    args_of: Callable[[Fixtures, Path], list[str | Path]], names: list[str]
) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        return cli_refused(cli(*args_of(ctx.fx, ctx.work / "out")), names)

    return run


K_NAMES = ["k must", "k=", "'k'", "`k`", "--k", "-k ", "k (", "k is"]


def case_api_k(k: Any, method: str = "recommend") -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        from llmrec import Recommender

        rec = Recommender.load(ctx.fx.model_a, check_encoder=False)
        value = rec.model.n_items + 1 if k == "n_items + 1" else k
        if method == "similar_items":
            a = attempt(lambda: rec.similar_items(["50"], k=value))
        else:
            a = attempt(lambda: recs_of(rec, k=value))
        return api_refused(a, K_NAMES)

    return run


def case_search_param(spec: str, name: str, value: int) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        from llmrec.encoders.job import EmbeddingSet
        from llmrec.retrieval import ItemIndex

        vectors = EmbeddingSet.load(ctx.fx.emb_items).vectors
        index = ItemIndex.build(vectors, spec=spec)
        a = attempt(lambda: index.set_search_params(**{name: value}))
        if a.exc is None:
            a = attempt(lambda: index.search(vectors[:3], 5))
            return api_refused(
                a,
                [name],
                accepted=lambda r: (
                    None if (r[0] >= 0).all() else "searches return fewer than k items"
                ),
            )
        return api_refused(a, [name])

    return run


def family_silent() -> None:
    fam = FAMILIES[2]
    add(
        fam,
        "5 encode: same-size fine-tuned copy shares the cache (CLI)",
        case_fingerprint_cli,
        slow=True,
    )
    add(
        fam,
        "5 encode: model weights replaced in place, same size",
        case_fingerprint_inplace,
        slow=True,
    )
    add(fam, "5 fingerprints of two same-size models differ", case_fingerprint_api)
    add(fam, "5 model loaded with a same-size other encoder", case_model_other_encoder)
    for kind in ("bitflip", "nan", "short", "swapped"):
        add(fam, f"6 encode with cached rows damaged: {kind}", case_cache_rows(kind), slow=True)
    for what in (
        "index from B",
        "weights from B",
        "weights from C",
        "config from C",
        "weights and artifact.json from B",
        "user_ids shifted by one",
        "item_ids one short",
        "NaN in a ranker weight",
    ):
        add(fam, f"7 model part swapped: {what}", case_swap(what))
    for what in ("item_ids one short", "NaN in a ranker weight", "NaN in retriever.item_factors"):
        add(fam, f"7 model part swapped: {what} (resealed)", case_swap(what, "resealed"))
    add(fam, "7 llmrec recommend with index/ from another run", case_swap_cli, slow=True)
    add(fam, "8 encode --user-text pool with a rating of inf", case_bad_rating("inf"))
    add(fam, "8 encode --user-text pool with a rating of -inf", case_bad_rating("-inf"))
    add(fam, "8 encode --user-text pool with a rating of nan", case_bad_rating("nan"))
    add(
        fam,
        "8 data split --split temporal with a timestamp of inf",
        case_bad_rating("inf", "timestamp:float", "split"),
    )
    add(fam, "8 data describe a CSV with a rating of inf", case_inf_csv)
    add(fam, "8 Recommender.fit with a rating of inf", case_fit_inf)
    add(fam, "9 Parquet with float ids", case_float_ids_parquet)
    add(fam, "9 CSV mixing 196 and 196.0", case_float_ids_csv)
    add(fam, "9 recommend(int ids)", case_typed_user([10, 20, 30, "ghost"]))
    add(fam, "9 recommend(float ids)", case_typed_user([10.0, 20.0, 30.0, "ghost"]))
    add(fam, "9 recommend(numpy int64 ids)", case_typed_user([10, 20, 30], as_numpy=True))
    add(
        fam,
        "9 histories with int item ids",
        case_typed_user(USERS, {"ghost": [int(i) for i in HISTORY]}),
    )
    for label, histories in (
        ("a string", {"ghost": "181"}),
        ("bytes", {"ghost": b"181"}),
        ("an int", {"ghost": 181}),
        ("a dict", {"ghost": {"181": 1}}),
        ("a list instead of a mapping", [["181"]]),
    ):
        add(fam, f"10 histories given {label}", case_histories(histories))
    add(fam, "11 index search --dataset: the embeddings' own dataset", case_search_dataset("same"))
    add(
        fam,
        "11 index search --dataset: same interactions, items reordered",
        case_search_dataset("reordered"),
    )
    add(
        fam,
        "11 index search --dataset: another dataset's users",
        case_search_dataset("other users"),
    )
    build = ["index", "build"]
    params: list[tuple[str, Callable[[Fixtures, Path], list[str | Path]], list[str]]] = [
        (
            "index build --ef-search -5",
            lambda fx, o: [
                *build,
                "--embeddings",
                fx.emb_items,
                "--spec",
                "HNSW32",
                "--ef-search",
                "-5",
                "--out",
                o,
            ],
            ["--ef-search", "efSearch"],
        ),
        (
            "index build --ef-search 0",
            lambda fx, o: [
                *build,
                "--embeddings",
                fx.emb_items,
                "--spec",
                "HNSW32",
                "--ef-search",
                "0",
                "--out",
                o,
            ],
            ["--ef-search", "efSearch"],
        ),
        (
            "index build --nprobe 0",
            lambda fx, o: [
                *build,
                "--embeddings",
                fx.emb_items,
                "--spec",
                "IVF16,Flat",
                "--nprobe",
                "0",
                "--out",
                o,
            ],
            ["--nprobe", "nprobe"],
        ),
        (
            "index build --nprobe -1",
            lambda fx, o: [
                *build,
                "--embeddings",
                fx.emb_items,
                "--spec",
                "IVF16,Flat",
                "--nprobe",
                "-1",
                "--out",
                o,
            ],
            ["--nprobe", "nprobe"],
        ),
        (
            "encode --max-items 0",
            lambda fx, o: [
                "encode",
                "--dataset",
                fx.data_a,
                "--model",
                fx.bert,
                "--what",
                "users",
                "--max-items",
                "0",
                "--out",
                o,
            ],
            ["--max-items", "max_items"],
        ),
        (
            "encode --max-items -3",
            lambda fx, o: [
                "encode",
                "--dataset",
                fx.data_a,
                "--model",
                fx.bert,
                "--what",
                "users",
                "--max-items",
                "-3",
                "--out",
                o,
            ],
            ["--max-items", "max_items"],
        ),
        (
            "encode --batch-size 0",
            lambda fx, o: [
                "encode",
                "--dataset",
                fx.data_a,
                "--model",
                fx.bert,
                "--batch-size",
                "0",
                "--out",
                o,
            ],
            ["--batch-size", "batch_size"],
        ),
        (
            "encode --workers 0",
            lambda fx, o: [
                "encode",
                "--dataset",
                fx.data_a,
                "--model",
                fx.bert,
                "--workers",
                "0",
                "--out",
                o,
            ],
            ["--workers", "workers"],
        ),
        (
            "index search -k 0",
            lambda fx, o: [
                "index",
                "search",
                "--index",
                fx.index_flat,
                "--queries",
                fx.emb_users,
                "--users",
                "10",
                "-k",
                "0",
            ],
            K_NAMES,
        ),
        (
            "index search -k past the catalogue",
            lambda fx, o: [
                "index",
                "search",
                "--index",
                fx.index_flat,
                "--queries",
                fx.emb_users,
                "--users",
                "10",
                "-k",
                "100000",
            ],
            K_NAMES,
        ),
        (
            "evaluate --k 0",
            lambda fx, o: ["evaluate", "--dataset", fx.data_a, "--models", "pop", "--k", "0"],
            ["cut-off", "--k"],
        ),
    ]
    for label, args_of, names in params:
        add(fam, f"12 {label}", case_cli_param(args_of, names))
    add(fam, "12 recommend(k=0)", case_api_k(0))
    add(fam, "12 recommend(k=-1)", case_api_k(-1))
    add(fam, "12 recommend(k=catalogue + 1)", case_api_k("n_items + 1"))
    add(fam, "12 similar_items(k=0)", case_api_k(0, "similar_items"))
    add(
        fam,
        "12 ItemIndex.set_search_params(efSearch=0)",
        case_search_param("HNSW32", "efSearch", 0),
    )
    add(
        fam,
        "12 ItemIndex.set_search_params(nprobe=-1)",
        case_search_param("IVF16,Flat", "nprobe", -1),
    )


# ---- family 4: raw tracebacks and unclear errors ------------------------------------------------


def case_encoding(kind: str) -> Callable[[Ctx], Verdict]:
    """Non-UTF-8 files: refused naming the file, or read with the right characters."""

    def run(ctx: Ctx) -> Verdict:
        import pandas as pd

        from llmrec.datasets import load

        src = ctx.fx.data_a
        inter = pd.read_csv(src / f"{src.name}.inter", sep="\t", dtype=str, keep_default_na=False)
        items = pd.read_csv(src / f"{src.name}.item", sep="\t", dtype=str, keep_default_na=False)
        folder = ctx.work / "latin"
        folder.mkdir()
        want: Callable[[Any], bool]
        culprit = ""
        if kind in (
            "atomic .item latin-1",
            "atomic .inter latin-1",
            "atomic .user latin-1",
            "atomic .inter utf-16",
            "atomic .inter utf-8 BOM",
        ):
            suffix = kind.split()[1]
            encoding = {"latin-1": "latin-1", "utf-16": "utf-16", "BOM": "utf-8-sig"}[
                kind.split()[-1]
            ]
            inter.loc[inter["user_id:token"] == "10", "user_id:token"] = "José"
            items.loc[items["item_id:token"] == "1", "movie_title:token_seq"] = "Café"
            files = {".inter": inter, ".item": items}
            if suffix == ".user":
                files[".user"] = pd.DataFrame(
                    {"user_id:token": ["10", "20"], "occupation:token": ["médico", "writer"]}
                )
            for ext, frame in files.items():
                enc = encoding if ext == suffix else "utf-8"
                frame.to_csv(folder / f"latin{ext}", sep="\t", index=False, encoding=enc)
            culprit = f"latin{suffix}"
            target: Path = folder
            want = {
                ".item": lambda d: "Café" in set(d.items.get("movie_title", [])),
                ".inter": lambda d: "José" in set(d.user_ids),
                ".user": lambda d: "médico" in set(d.users.get("occupation", [])),
            }[suffix]
        elif kind == "raw MovieLens u.item latin-1":
            numeric = inter[inter["item_id:token"].str.isdigit()]
            numeric.to_csv(folder / "u.data", sep="\t", header=False, index=False)
            lines = [
                f"{i}|{'Café' if i == '1' else 'Movie ' + i} (1995)|01-Jan-1995||url|"
                + "|".join(["0"] * 19)
                for i in sorted(set(numeric["item_id:token"]), key=int)
            ]
            (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
            culprit, target = "u.item", folder
            want = lambda d: "Café" in set(d.items["title"])  # noqa: E731
        else:  # CSV latin-1
            target = ctx.work / "ratings.csv"
            target.write_bytes(
                "user_id,item_id,rating\nJosé,1,4\nJosé,2,3\nAnn,1,5\n".encode("latin-1")
            )
            culprit = "ratings.csv"
            want = lambda d: "José" in set(d.user_ids)  # noqa: E731
        p = cli("data", "describe", target)

        def check() -> str | None:
            a = attempt(lambda: load(target))
            if a.exc is not None:
                return f"the CLI accepted it, the API raised {a.exc!r}"
            return None if want(a.value) else "characters decoded wrongly"

        if kind.startswith("raw MovieLens"):  # the original ml-100k files are Latin-1
            return cli_accepted(p, check)
        return cli_refused(p, [culprit], accepted=check)

    return run


def perm_case(
    build: Callable[[Ctx], tuple[list[str | Path], Path, list[str]]],
) -> Callable[[Ctx], Verdict]:
    """Run a CLI command without root's permission override, ``path`` made unreadable."""

    def run(ctx: Ctx) -> Verdict:
        if DROP_CAPS is None:
            return Verdict(SKIPPED, "running as root without setpriv: permissions cannot apply")
        args, path, names = build(ctx)
        with chmod(path, 0):
            p = cli(*args, drop_caps=True)
        return cli_refused(p, names, accepted=lambda: "exit 0 although the path was unreadable")

    return run


def _perm_dataset(part: str) -> Callable[[Ctx], tuple[list[str | Path], Path, list[str]]]:
    def build(ctx: Ctx) -> tuple[list[str | Path], Path, list[str]]:
        folder = atomic_copy(ctx, "locked")
        path = folder if part == "folder" else folder / f"locked.{part}"
        return ["data", "describe", folder], path, [path.name, "permission"]

    return build


def _perm_model(part: str) -> Callable[[Ctx], tuple[list[str | Path], Path, list[str]]]:
    def build(ctx: Ctx) -> tuple[list[str | Path], Path, list[str]]:
        folder = copy(ctx.fx.model_a, ctx.work / "locked-model")
        path = folder if part == "folder" else folder / part
        return ["recommend", "--model", folder, "--users", "10"], path, [path.name]

    return build


def _perm_emb(part: str) -> Callable[[Ctx], tuple[list[str | Path], Path, list[str]]]:
    def build(ctx: Ctx) -> tuple[list[str | Path], Path, list[str]]:
        folder = copy(ctx.fx.emb_items, ctx.work / "locked-emb")
        path = folder if part == "folder" else folder / part
        return (
            ["index", "build", "--embeddings", folder, "--out", ctx.work / "idx"],
            path,
            [path.name],
        )

    return build


def _perm_index(ctx: Ctx) -> tuple[list[str | Path], Path, list[str]]:
    folder = copy(ctx.fx.index_flat, ctx.work / "locked-index")
    args = ["index", "search", "--index", folder, "--queries", ctx.fx.emb_users, "--users", "10"]
    return args, folder, [folder.name]


def _perm_cache(part: str) -> Callable[[Ctx], tuple[list[str | Path], Path, list[str]]]:
    def build(ctx: Ctx) -> tuple[list[str | Path], Path, list[str]]:
        folder = ctx.work / "locked-cache"
        folder.mkdir()
        cache = cache_copy(ctx.fx, folder / "cache.sqlite")
        path = folder if part == "folder" else cache
        args = [
            "encode",
            "--dataset",
            ctx.fx.data_a,
            "--model",
            ctx.fx.bert,
            "--cache",
            cache,
            "--out",
            ctx.work / "emb",
        ]
        return args, path, [path.name]

    return build


def _perm_encoder(ctx: Ctx) -> tuple[list[str | Path], Path, list[str]]:
    model = copy(ctx.fx.bert, ctx.work / "locked-encoder")
    args = ["encode", "--dataset", ctx.fx.data_a, "--model", model, "--out", ctx.work / "emb"]
    return args, model, [model.name]


def out_args(fx: Fixtures, writer: str, out: Path | str) -> list[str | Path]:
    if writer == "evaluate":
        return ["evaluate", "--dataset", fx.data_a, "--models", "pop", "--out", out]
    return writer_args(fx, writer, out)


def case_out_file(writer: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        if writer == "evaluate":  # its --out is a file: a folder is the wrong kind here
            target = ctx.work / "reports"
            target.mkdir()
            (target / "thesis.txt").write_text(THESIS)
            files = {target / "thesis.txt": THESIS}
        else:
            target = ctx.work / "notes.txt"
            target.write_text(THESIS)
            files = {target: THESIS}
        p = cli(*out_args(ctx.fx, writer, target))
        lost = intact(files)
        if lost:
            return failed(f"exit {p.rc}; {lost}")
        return cli_refused(p, [target.name, "--out"])

    return run


def case_out_readonly(writer: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        if DROP_CAPS is None:
            return Verdict(SKIPPED, "running as root without setpriv: permissions cannot apply")
        parent = ctx.work / "readonly"
        parent.mkdir()
        target = parent / ("report.json" if writer == "evaluate" else "new")
        with chmod(parent, 0o555):
            p = cli(*out_args(ctx.fx, writer, target), drop_caps=True)
        verdict = cli_refused(p, [parent.name, "--out"])
        if verdict.outcome == HANDLED and re.search(r"^fit |\bfit \S+", p.out, re.M):
            return failed(f"refused only after fitting: {verdict.reason}")
        return verdict

    return run


def case_out_dot(writer: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        here = ctx.work / "my-project"
        here.mkdir()
        (here / "thesis.txt").write_text(THESIS)
        p = cli(*writer_args(ctx.fx, writer, "."), cwd=here)
        lost = intact({here / "thesis.txt": THESIS})
        if lost or not here.is_dir():
            return failed(f"exit {p.rc}; {lost or 'the working folder was replaced'}")
        return cli_refused(p, [here.name, "'.'", "--out"])

    return run


def case_missing_key(artifact: str, part: str, key: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        source = {"model": fx.model_a, "index": fx.index_flat, "embeddings": fx.emb_items}[artifact]
        folder = copy(source, ctx.work / f"mut-{artifact}")
        if key == "a list":
            edit_json(folder / part, lambda _: [])
        elif part == "artifact.json" and key == "sha256 of a part":
            edit_json(
                folder / part, lambda m: {**m, "parts": {**m["parts"], "config.json": {"bytes": 1}}}
            )
        elif part == "artifact.json" and key == "a part outside the folder":
            edit_json(
                folder / part,
                lambda m: {
                    **m,
                    "parts": {**m["parts"], "../escape": {"sha256": "0" * 64, "bytes": 1}},
                },
            )
        else:
            edit_json(folder / part, lambda m: {k: v for k, v in m.items() if k != key})
        if part != "artifact.json":
            reseal(folder)
        names = [part, folder.name] + ([key] if key not in ("a list",) else [])
        if artifact == "model":
            from llmrec import Recommender

            return api_refused(attempt(lambda: Recommender.load(folder)), names)
        if artifact == "index":
            from llmrec.retrieval import ItemIndex

            def search() -> Any:
                index = ItemIndex.load(folder, fingerprint=fx.ref["items_fingerprint"])
                return index.search(__import__("numpy").ones((1, index.dimension), "float32"), 5)

            return api_refused(attempt(search), names)
        p = cli("index", "build", "--embeddings", folder, "--out", ctx.work / "idx")
        return cli_refused(p, names)

    return run


def case_cache_file(kind: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        cache = ctx.work / "cache.sqlite"
        if kind == "garbage":
            cache.write_bytes(random.Random(ctx.seed).randbytes(8192))
        elif kind == "truncated":
            cache_copy(ctx.fx, cache)
            data = cache.read_bytes()
            cache.write_bytes(data[: len(data) // 2])
        elif kind == "a folder":
            cache.mkdir()
        elif kind == "another schema":
            with contextlib.closing(sqlite3.connect(cache)) as db:
                db.execute("CREATE TABLE embeddings (name TEXT, value REAL)")
                db.execute("CREATE TABLE models (x INTEGER)")
                db.commit()
        elif kind == "a text file":
            cache.write_text("hello, this is not a database\n" * 100)
        elif kind == "empty":
            cache.write_bytes(b"")
        out = ctx.work / "emb"
        p = cli(
            "encode",
            "--dataset",
            ctx.fx.data_a,
            "--model",
            ctx.fx.bert,
            "--cache",
            cache,
            "--out",
            out,
        )
        return cli_refused(
            p, [cache.name], accepted=lambda: emb_diff(emb_arrays(out), ctx.fx.emb_items, atol=1e-4)
        )

    return run


def case_fit_bad(kind: str) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        import pandas as pd

        from llmrec import Recommender

        train, items = small_train(ctx.fx)
        kwargs: dict[str, Any] = {"items": items}
        names: list[str]
        if kind == "rating 'five'":
            train["rating"] = train["rating"].astype(object)
            train.loc[4, "rating"] = "five"
            names = ["rating"]
        elif kind == "a list of tuples":
            train = list(train[["user_id", "item_id"]].itertuples(index=False, name=None))
            names = ["train", "DataFrame"]
        elif kind == "no item_id column":
            train = train.drop(columns="item_id")
            names = ["item_id"]
        elif kind == "items=None":
            kwargs["items"] = None
            names = ["items"]
        elif kind == "an empty train":
            train = train.iloc[:0]
            names = ["train", "empty"]
        elif kind == "a None user id":
            train["user_id"] = train["user_id"].astype(object)
            train.loc[2, "user_id"] = None
            names = ["user_id", "row"]
        elif kind == "items without a title":
            kwargs["items"] = pd.DataFrame({"item_id": items["item_id"]})
            names = ["title", "items"]
        else:  # users given as a list
            kwargs["users"] = ["10", "20"]
            names = ["users"]
        a = attempt(lambda: Recommender(**fast_params(ctx.fx)).fit(train, **kwargs))
        return api_refused(a, names)

    return run


def help_options(command: list[str]) -> set[str]:
    p = cli(*command, "--help")
    return set(re.findall(r"(--[a-z][a-z-]+)", p.out))


def case_comma(where: str) -> Callable[[Ctx], Verdict]:
    """Ids that contain commas (ml-1m titles): some CLI syntax must pass them."""

    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        comma_item = fx.ref["comma_item"]
        if where == "index search --users":
            command = ["index", "search", "--index", fx.index_flat, "--queries", fx.emb_users]
        else:
            command = ["recommend", "--model", fx.model_a]
        options = help_options(command[:2] if command[0] == "index" else command[:1])
        value = comma_item if where == "recommend --history" else COMMA_USER
        listing = ctx.work / "ids.txt"
        listing.write_text(value + "\n")
        plural = "--history" if where == "recommend --history" else "--users"
        single = {"--users": "--user", "--history": "--item"}[plural]
        tries: list[list[str | Path]] = []
        if single in options:
            tries.append([single, value])
        tries += [[o, listing] for o in sorted(options) if o.endswith("-file") and plural[2:6] in o]
        tries.append([plural, f'"{value}"'])
        if where == "recommend --history":
            tries = [[*t, "--users", "ghost"] for t in tries]
        tried = []
        for extra in tries:
            p = cli(*command, *extra)
            tried.append(" ".join(map(str, extra)))
            if p.rc != 0:
                continue
            rows = recommend_rows(p.out) if command[0] == "recommend" else search_rows(p.out)
            if where == "recommend --history":
                served, items = rows.get("ghost", ("", []))
                if served == "history" and comma_item not in items:
                    return handled(f"passed with {tried[-1]}")
            elif where == "recommend --users":
                if rows.get(COMMA_USER, ("", []))[0] == "model":
                    return handled(f"passed with {tried[-1]}")
            elif len(rows.get(COMMA_USER, [])) == 10:
                return handled(f"passed with {tried[-1]}")
        return failed(f"no syntax passes the id {value!r} (tried {'; '.join(tried)})")

    return run


def family_tracebacks() -> None:
    fam = FAMILIES[3]
    for kind in (
        "atomic .item latin-1",
        "atomic .inter latin-1",
        "atomic .user latin-1",
        "atomic .inter utf-16",
        "atomic .inter utf-8 BOM",
        "raw MovieLens u.item latin-1",
        "CSV latin-1",
    ):
        add(fam, f"data describe: {kind}", case_encoding(kind))
    perms: list[tuple[str, Callable[[Ctx], tuple[list[str | Path], Path, list[str]]]]] = [
        ("data describe: dataset folder unreadable", _perm_dataset("folder")),
        ("data describe: .inter unreadable", _perm_dataset("inter")),
        ("data describe: .item unreadable", _perm_dataset("item")),
        ("recommend: model folder unreadable", _perm_model("folder")),
        ("recommend: weights.safetensors unreadable", _perm_model("weights.safetensors")),
        ("index build: embeddings folder unreadable", _perm_emb("folder")),
        ("index build: vectors.npy unreadable", _perm_emb("vectors.npy")),
        ("index search: index folder unreadable", _perm_index),
        ("encode: cache file unreadable", _perm_cache("file")),
        ("encode: cache folder unreadable", _perm_cache("folder")),
        ("encode: encoder folder unreadable", _perm_encoder),
    ]
    for label, build in perms:
        add(fam, label, perm_case(build), slow=label.startswith(("recommend", "encode")))
    for writer in (*CLI_WRITERS, "evaluate"):
        kind = "a folder" if writer == "evaluate" else "a file"
        add(fam, f"{writer} --out {kind}", case_out_file(writer))
    for writer in (*CLI_WRITERS, "evaluate"):
        add(fam, f"{writer} --out in a read-only folder", case_out_readonly(writer))
    for writer in CLI_WRITERS:
        add(fam, f"{writer} --out . (a folder with a foreign file)", case_out_dot(writer))
    for key in (
        "format_version",
        "kind",
        "config",
        "strings",
        "encoder_fingerprint",
        "user_ids",
        "item_ids",
        "data_checksum",
    ):
        add(
            fam,
            f"model config.json without {key!r} (resealed)",
            case_missing_key("model", "config.json", key),
        )
    add(
        fam,
        "model config.json is a JSON list (resealed)",
        case_missing_key("model", "config.json", "a list"),
    )
    for key in ("what", "fingerprint", "count", "dimension"):
        add(
            fam,
            f"embeddings manifest.json without {key!r} (resealed)",
            case_missing_key("embeddings", "manifest.json", key),
        )
    for key in (
        "format_version",
        "fingerprint",
        "dimension",
        "spec",
        "normalize",
        "seed",
        "item_count",
        "search_params",
    ):
        add(
            fam,
            f"index manifest.json without {key!r} (resealed)",
            case_missing_key("index", "manifest.json", key),
        )
    for key in ("parts", "kind", "sha256 of a part", "a part outside the folder"):
        add(
            fam,
            f"model artifact.json without {key!r}"
            if key in ("parts", "kind")
            else f"model artifact.json with {key} missing/odd",
            case_missing_key("model", "artifact.json", key),
        )
    for kind in ("garbage", "truncated", "a folder", "another schema", "a text file", "empty"):
        add(fam, f"encode --cache that is {kind}", case_cache_file(kind), slow=True)
    for models, names in (
        (",,,", ["--models", "model"]),
        ("", ["--models", "model"]),
        (" , ", ["--models", "model"]),
        ("no-such-model", ["no-such-model"]),
    ):
        add(
            fam,
            f"evaluate --models {models!r}",
            case_cli_param(
                lambda fx, o, m=models: ["evaluate", "--dataset", fx.data_a, "--models", m], names
            ),
        )
    for option, value in (
        ("--device", "bogus"),
        ("--device", "cuda:99"),
        ("--dtype", "int8"),
        ("--pooling", "weird"),
        ("--what", "things"),
    ):
        add(
            fam,
            f"encode {option} {value}",
            case_cli_param(
                lambda fx, o, op=option, v=value: [
                    "encode",
                    "--dataset",
                    fx.data_a,
                    "--model",
                    fx.bert,
                    op,
                    v,
                    "--out",
                    o,
                ],
                [option, f"{option[2:]}:", value],
            ),
        )
    for k in (5.0, "5", True, None, 2.5):
        add(fam, f"recommend(k={k!r})", case_api_k(k))
    add(fam, "recommend(k=numpy.int64(10)) is accepted", case_typed_user(USERS, k="numpy"))
    for kind in (
        "rating 'five'",
        "a list of tuples",
        "no item_id column",
        "items=None",
        "an empty train",
        "a None user id",
        "items without a title",
        "users as a list",
    ):
        add(fam, f"Recommender.fit with {kind}", case_fit_bad(kind))
    for where in ("recommend --users", "recommend --history", "index search --users"):
        add(
            fam,
            f"{where}: an id containing a comma",
            case_comma(where),
            slow=where.startswith("recommend"),
        )


# ---- family 5: smaller ----------------------------------------------------------------------


def modes_ok(folder: Path, mask: int) -> str | None:
    paths = [folder, *folder.rglob("*")] if folder.is_dir() else [folder]
    for path in paths:
        mode = path.stat().st_mode & 0o777
        if mask == 0o022:
            need = 0o755 if path.is_dir() else 0o644
            if mode & need != need:
                return f"{path.name} is {oct(mode)} under umask 022 (want {oct(need)})"
        elif mode & 0o077:
            return f"{path.name} is {oct(mode)} under umask 077"
    return None


def case_umask(writer: str, mask: int) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        os.umask(mask)
        target = ctx.work / ("report.json" if writer == "evaluate" else "art")
        if writer == "Recommender.save":
            from llmrec import Recommender

            Recommender.load(ctx.fx.model_a, check_encoder=False).save(target)
        else:
            p = cli(*out_args(ctx.fx, writer, target))
            if p.rc != 0:
                return failed(f"{writer} failed: {short(p.err)}")
        problem = modes_ok(target, mask)
        return failed(problem) if problem else handled(f"modes follow umask {oct(mask)}")

    return run


def case_user_id(users: Any, expect_ok: bool) -> Callable[[Ctx], Verdict]:
    def run(ctx: Ctx) -> Verdict:
        from llmrec import Recommender

        rec = Recommender.load(ctx.fx.model_a, check_encoder=False)
        a = attempt(lambda: recs_of(rec, users=users))
        if not expect_ok:
            return api_refused(a, ["user", "id"])
        ref = ctx.fx.ref["recs"]
        return api_accepted(
            a,
            lambda got: recs_diff(got, {"ids": ref["ids"][:1], "served": ref["served"][:1]}),
        )

    return run


def case_user_id_cli(ctx: Ctx) -> Verdict:
    p = recommend_cli(ctx.fx.model_a, " 10 ")

    def check() -> str | None:
        rows = recommend_rows(p.out)
        ref = ctx.fx.ref["recs"]
        served, items = next(iter(rows.values()), ("", []))
        if served != "model" or items != [i for i in ref["ids"][0] if i]:
            return f"' 10 ' served {served!r} {items[:3]}, not user 10's recommendations"
        return None

    return cli_accepted(p, check)


def case_resume(ctx: Ctx) -> Verdict:
    """The cache keeps finished work of a killed run (commits at least every few seconds)."""
    import numpy as np

    from llmrec.encoders.base import TextEncoder
    from llmrec.encoders.cache import CachedEncoder, EmbeddingCache

    calls = ctx.work / "calls"

    class Slow(TextEncoder):
        dimension = 4
        fingerprint = "campaign-slow-encoder"

        def __init__(self, die_after: int | None) -> None:
            self.die_after, self.calls = die_after, 0

        def _encode_batch(self, texts: list[str]) -> np.ndarray:
            self.calls += 1
            with calls.open("a") as fh:
                fh.write(f"{len(texts)}\n")
            if self.die_after is not None and self.calls > self.die_after:
                os._exit(137)
            time.sleep(0.5)
            return np.array([[len(t), 1.0, 2.0, 3.0] for t in texts], dtype=np.float32)

    texts = [f"text number {i}" for i in range(120)]
    cache = ctx.work / "cache.sqlite"
    code = fork_call(lambda: CachedEncoder(Slow(12), cache).encode(texts, batch_size=4))
    if code != 137:
        return harness_error(f"the slow encoder was not killed (exit {code})")
    db = EmbeddingCache(cache, Slow.fingerprint, 4)
    saved = len(db)
    db.close()
    if saved == 0:
        return failed("a run killed after 6 s of encoding (12 batches) left nothing in the cache")
    calls.write_text("")
    CachedEncoder(Slow(None), cache).encode(texts, batch_size=4)
    redone = sum(int(n) for n in calls.read_text().split())
    if redone > len(texts) - saved:
        return failed(f"the rerun encoded {redone} texts although {saved} were cached")
    return handled(f"{saved} of 48 finished texts survived the kill; the rerun encoded {redone}")


def family_smaller() -> None:
    fam = FAMILIES[4]
    for writer in ("encode", "index build", "data split", "Recommender.save", "evaluate"):
        add(
            fam,
            f"{writer} under umask 022: readable by group and others",
            case_umask(writer, 0o022),
            slow=writer == "encode",
        )
    for writer in ("index build", "data split"):
        add(fam, f"{writer} under umask 077: private", case_umask(writer, 0o077))
    add(fam, "recommend('')", case_user_id("", False))
    add(fam, "recommend(None)", case_user_id(None, False))
    add(fam, "recommend([nan])", case_user_id([float("nan")], False))
    add(fam, "recommend(['10', ''])", case_user_id(["10", ""], False))
    add(fam, "recommend(' 10 ') is user 10", case_user_id([" 10 "], True))
    add(fam, "llmrec recommend --users ' 10 ' is user 10", case_user_id_cli, slow=True)
    add(fam, "encode cache keeps work of a killed run", case_resume)


# ---- running --------------------------------------------------------------------------------


def warm_modules(fx: Fixtures) -> list[str]:
    """The modules that loading and serving a model, embeddings and an index import."""
    import numpy as np

    before = set(sys.modules)
    from llmrec import Recommender
    from llmrec.encoders.job import EmbeddingSet
    from llmrec.retrieval import ItemIndex

    recs_of(Recommender.load(fx.model_a))
    vectors = EmbeddingSet.load(fx.emb_users).vectors
    ItemIndex.load(fx.index_flat).search(np.asarray(vectors[:2]), 5)
    return sorted(set(sys.modules) - before)


def child_main(index: int, case: Case, fx: Fixtures, tmp: Path) -> None:  # pragma: no cover
    try:
        run_child(index, case, fx, tmp)
    finally:
        os._exit(1)  # never return into the parent's loop


def run_child(index: int, case: Case, fx: Fixtures, tmp: Path) -> None:  # pragma: no cover
    os.setsid()
    work = tmp / "cases" / f"{index:03d}"
    work.mkdir(parents=True)
    log = os.open(work.parent / f"{index:03d}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    PREFIXES[:] = [f"{work}/", f"{fx.root}/"]
    start = time.monotonic()
    try:
        verdict = case.run(Ctx(fx, work, zlib.crc32(case.name.encode())))
    except Exception as exc:
        traceback.print_exc()
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        verdict = harness_error(
            f"{type(exc).__name__}: {short(str(exc))} ({Path(tb.filename).name}:{tb.lineno})"
        )
    reason = verdict.reason
    for prefix in PREFIXES:
        reason = reason.replace(prefix, "")
    result = {
        "outcome": verdict.outcome,
        "reason": reason,
        "seconds": time.monotonic() - start,
    }
    (tmp / "results" / f"{index:03d}.json").write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_cases(cases: list[Case], fx: Fixtures, tmp: Path, jobs: int) -> list[dict[str, Any]]:
    (tmp / "results").mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(cases)), key=lambda i: not cases[i].slow)
    running: dict[int, tuple[int, float]] = {}
    results: dict[int, dict[str, Any]] = {}
    timed_out: set[int] = set()
    while order or running:
        while order and len(running) < jobs:
            i = order.pop(0)
            pid = os.fork()
            if pid == 0:
                child_main(i, cases[i], fx, tmp)
            running[pid] = (i, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child, (i, start) in running.items():
                if now - start > cases[i].timeout and child not in timed_out:
                    timed_out.add(child)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child, signal.SIGKILL)
            time.sleep(0.05)
            continue
        if pid not in running:
            continue
        i, start = running.pop(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # grandchildren a case left behind
        file = tmp / "results" / f"{i:03d}.json"
        if file.is_file():
            result = json.loads(file.read_text())
        elif pid in timed_out:
            result = {"outcome": FAILED, "reason": f"timed out after {cases[i].timeout:.0f} s"}
        elif os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            result = {"outcome": FAILED, "reason": f"the API call crashed the process ({name})"}
        else:
            code = os.waitstatus_to_exitcode(status)
            result = {"outcome": FAILED, "reason": f"the process exited {code} inside the API call"}
        result.setdefault("seconds", time.monotonic() - start)
        results[i] = {"family": cases[i].family, "name": cases[i].name, **result}
        done = len(results)
        print(
            f"[{done:3d}/{len(cases)}] {result['outcome']:8s} {cases[i].family}: {cases[i].name} "
            f"({result['seconds']:.1f} s)",
            flush=True,
        )
    return [results[i] for i in range(len(cases))]


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for family in [*FAMILIES, "total"]:
        rows = [r for r in results if family in ("total", r["family"])]
        table[family] = {
            "tried": len(rows),
            HANDLED: sum(r["outcome"] == HANDLED for r in rows),
            FAILED: sum(r["outcome"] == FAILED for r in rows),
            ERROR: sum(r["outcome"] == ERROR for r in rows),
            SKIPPED: sum(r["outcome"] == SKIPPED for r in rows),
        }
    return table


def print_report(results: list[dict[str, Any]], table: dict[str, dict[str, int]]) -> None:
    extra = [k for k in (ERROR, SKIPPED) if table["total"][k]]
    header = f"{'family':32s} {'tried':>6s} {'handled':>8s} {'failed':>7s}" + "".join(
        f" {k:>8s}" for k in extra
    )
    print("\n" + header)
    print("-" * len(header))
    for family, row in table.items():
        if family == "total":
            print("-" * len(header))
        print(
            f"{family:32s} {row['tried']:6d} {row[HANDLED]:8d} {row[FAILED]:7d}"
            + "".join(f" {row[k]:8d}" for k in extra)
        )
    for outcome in (FAILED, ERROR, SKIPPED):
        rows = [r for r in results if r["outcome"] == outcome]
        if rows:
            print(f"\n{outcome} cases ({len(rows)}):")
            for r in rows:
                print(f"- [{r['family']}] {r['name']}: {r['reason']}")


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "llmrec")
    return commit + ("+dirty" if dirty else "")


def register() -> None:
    family_data_loss()
    family_crashes()
    family_silent()
    family_tracebacks()
    family_smaller()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument(
        "--only", default="", help="regex: run the cases whose family or name match"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", type=Path, default=HERE / "campaign.json", help="result file")
    parser.add_argument(
        "--reuse", type=Path, help="reuse the fixtures folder of a --keep run (development only)"
    )
    args = parser.parse_args()
    register()
    cases = [c for c in CASES if re.search(args.only, f"{c.family}: {c.name}")]
    names = [c.name for c in CASES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SystemExit(f"duplicate case names: {duplicates}")
    if args.list:
        for c in cases:
            print(f"{c.family}: {c.name}")
        print(f"{len(cases)} cases")
        return
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="llmrec-campaign-"))
    os.chmod(tmp, 0o755)
    try:
        print(f"building fixtures in {tmp}", flush=True)
        if args.reuse:
            fx = reuse_fixtures(args.reuse.resolve())
        else:
            fx = build_fixtures(tmp / "fixtures", max(1, args.jobs))
        fixture_seconds = time.monotonic() - start
        print(f"fixtures ready in {fixture_seconds:.0f} s; running {len(cases)} cases", flush=True)
        # Every module a model load pulls in, imported here once (imports only: the parent
        # never computes, so forked cases inherit no thread pools) so each case starts warm.
        for name in run_forked(lambda: warm_modules(fx), tmp / "fixture-logs" / "warm.log"):
            with contextlib.suppress(BaseException):
                importlib.import_module(name)
        from llmrec.io import library_versions

        results = run_cases(cases, fx, tmp, max(1, args.jobs))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            for path in tmp.rglob("*"):  # unreadable leftovers of permission cases
                with contextlib.suppress(OSError):
                    if not path.is_symlink():
                        os.chmod(path, 0o755)
            shutil.rmtree(tmp, ignore_errors=True)
    table = summarise(results)
    print_report(results, table)
    seconds = time.monotonic() - start
    report = {
        "issue": 13,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "llmrec_commit": git_commit(),
        "versions": library_versions(),
        "jobs": args.jobs,
        "only": args.only,
        "seconds": round(seconds, 1),
        "fixture_seconds": round(fixture_seconds, 1),
        "totals": table,
        "cases": results,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(results)} cases in {seconds:.0f} s; wrote {args.json}")


if __name__ == "__main__":
    main()
