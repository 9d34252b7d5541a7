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
README.md beside this file. This file holds the command line and the runner; beside it:
settings.py (environment, constants), cases.py (what a case is, the registry), processes.py
(running the CLI and forked calls), commands.py (command lines), verdicts.py (judging a run),
files.py (copying and damaging files), outputs.py (reading and comparing llmrec's output),
artifact_verdicts.py (judging a damaged artifact by using it), fixtures.py, kills.py (killed
writers) and the cases_*.py modules, which register each family's cases.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the modules beside this file

import cases_crashes
import cases_data_loss
import cases_errors_artifacts
import cases_errors_calls
import cases_errors_files
import cases_silent_artifacts
import cases_silent_inputs
import cases_smaller
from cases import CASES, Case, Ctx, Fixtures
from fixtures import build_fixtures, reuse_fixtures
from outputs import recs_of
from processes import run_forked
from settings import ERROR, FAILED, FAMILIES, HANDLED, HERE, REPO, SKIPPED
from verdicts import PREFIXES, harness_error, short


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


CASE_MODULES = (
    cases_data_loss,
    cases_crashes,
    cases_silent_artifacts,
    cases_silent_inputs,
    cases_errors_files,
    cases_errors_artifacts,
    cases_errors_calls,
    cases_smaller,
)
"""The modules that register the cases, in the order of the families and their cases."""


def register() -> None:
    for module in CASE_MODULES:
        module.register()


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
