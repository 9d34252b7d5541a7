"""A load server in a child process, so that a crash in native code fails a test, not pytest.

Fuzz tests hand damaged folders and files to llmrec's loaders. A loader that lets bad bytes
reach scipy, faiss, pyarrow or torch can segfault; run in pytest's own process that would end
the whole session. :class:`LoadWorker` keeps one child (``python -m tests.fuzz.worker``) that
answers load requests, one JSON line each way, and reports its death (signal, exit status and
the faulthandler dump) as a test failure naming the input; the next request starts a new child.

Each answer is either ``{"ok": true, "result": ...}``, a summary of what the loaded object
returns (recommendations, search results, ids, row hashes) that tests compare with the
pristine artifact's, or ``{"ok": false, ...}`` with the exception's type, whether it is an
llmrec error, where it was raised and its message.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 6 << 30
"""Address-space limit of the child: a damaged length field must fail an allocation, not
swallow the memory of a machine that runs other work."""


class WorkerCrash(AssertionError):
    """The child died (signal, abort, out of memory) or hung while loading an input."""


class LoadWorker:
    """Client of the child process; restarts it after a crash."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        self.starts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        self._drop_log()
        fd, name = tempfile.mkstemp(prefix="llmrec-fuzz-worker-", suffix=".log")
        self.log = Path(name)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONFAULTHANDLER": "1",
            "OMP_NUM_THREADS": "1",  # small inputs: one thread is fastest and repeatable
        }
        env.pop("LLMREC_TEST_KILL_AT", None)
        with os.fdopen(fd, "wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                env=env,
            )
        self.starts += 1
        return self.proc

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_bytes().decode("utf-8", "replace")[-4000:]

    def _drop_log(self) -> None:
        if self.log is not None:
            self.log.unlink(missing_ok=True)
            self.log = None

    def call(self, op: str, **request: Any) -> dict[str, Any]:
        """Send one request; returns the child's answer.

        Raises:
            WorkerCrash: the child died or did not answer within ``timeout`` seconds.
        """
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        line = json.dumps({"op": op, **request}) + "\n"
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # the answer read below reports how it died
        ready, _, _ = select.select([proc.stdout], [], [], self.timeout)
        answer = proc.stdout.readline() if ready else b""
        if answer:
            return json.loads(answer)
        if not ready:
            proc.kill()
        status = proc.wait()
        tail = self._log_tail()
        self.proc = None
        how = f"signal {-status}" if status < 0 else f"exit status {status}"
        if not ready:
            how = f"no answer within {self.timeout:.0f} s (killed)"
        raise WorkerCrash(f"loader process died ({how}) on {op} {request}\n{tail}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._drop_log()


# ---- the child ----------------------------------------------------------------------------


def _floats(array: Any) -> list[Any]:
    """Exact float values (hex), so that answers compare bit for bit."""
    import numpy as np

    return [float(x).hex() for x in np.asarray(array, dtype=np.float64).ravel()]


def _ids(array: Any) -> list[Any]:
    import numpy as np

    return [None if x is None else str(x) for x in np.asarray(array, dtype=object).ravel()]


def _model(path: str, users: list[str], histories: dict[str, list[str]], k: int) -> dict:
    import numpy as np

    from llmrec import Recommender

    rec = Recommender.load(path, check_encoder=False)
    ids, scores = rec.recommend(users, k=k, histories=histories)
    shown = list(rec.item_ids[:3])
    similar, similarity = rec.similar_items(shown, k=k)
    return {
        "ids": _ids(ids),
        "scores": _floats(scores),
        "served": [str(s) for s in rec.served_by_],
        "similar": _ids(similar),
        "similarity": _floats(similarity),
        "catalogue": [str(i) for i in rec.item_ids],
        "users": len(rec.user_ids),
        "seed": rec.config.seed,
        "finite": bool(np.isfinite(scores[np.asarray(ids) != None]).all()),  # noqa: E711
    }


def _index(path: str, k: int) -> dict:
    import numpy as np

    from llmrec.retrieval import ItemIndex

    index = ItemIndex.load(path)
    queries = np.random.default_rng(0).standard_normal((4, index.dimension)).astype(np.float32)
    k = min(k, len(index))
    ids, scores = index.search(queries, k)
    seen = [[int(row[0])] if row[0] >= 0 else [] for row in ids]
    excluded, excluded_scores = index.search(queries, k, exclude=seen)
    return {
        "ids": ids.ravel().tolist(),
        "scores": _floats(scores),
        "excluded": excluded.ravel().tolist(),
        "excluded_scores": _floats(excluded_scores),
        "count": len(index),
        "fingerprint": index.fingerprint,
        "search_params": index.search_params,
    }


def _embeddings(path: str) -> dict:
    import hashlib

    import numpy as np

    from llmrec.encoders.job import EmbeddingSet

    found = EmbeddingSet.load(path)
    vectors = np.ascontiguousarray(found.vectors)
    return {
        "ids": [str(i) for i in found.ids],
        "vectors": hashlib.sha256(vectors.tobytes()).hexdigest(),
        "shape": list(vectors.shape),
        "dtype": str(vectors.dtype),
        "fallback": np.asarray(found.fallback).tolist(),
        "manifest": found.manifest,
    }


def _dataset(path: str, encoding: str | None) -> dict:
    import numpy as np

    from llmrec.datasets import load

    data = load(path) if encoding is None else load(path, encoding=encoding)
    inter = data.interactions
    return {
        "users": [str(u) for u in data.user_ids],
        "items": [str(i) for i in data.item_ids],
        "rows": [
            [str(u), str(i), float(r).hex(), None if np.isnan(t) else float(t).hex()]
            for u, i, r, t in zip(
                inter["user_id"], inter["item_id"], inter["rating"], inter["timestamp"], strict=True
            )
        ],
        "ratings_finite": bool(np.isfinite(inter["rating"].to_numpy()).all()),
    }


OPS = {"model": _model, "index": _index, "embeddings": _embeddings, "dataset": _dataset}


def _failure(exc: BaseException) -> dict[str, Any]:
    from llmrec.errors import LLMRecError

    frames = traceback.extract_tb(exc.__traceback__)
    origin = frames[-1] if frames else None
    return {
        "ok": False,
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "llmrec": isinstance(exc, LLMRecError),
        "value_error": isinstance(exc, ValueError),
        "origin": f"{origin.filename}:{origin.lineno}" if origin else "",
        "from_llmrec": bool(origin and Path(origin.filename).is_relative_to(ROOT / "llmrec")),
        "message": str(exc)[:2000],
        "traceback": "".join(traceback.format_exception(exc))[-6000:],
    }


def serve() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever the loaders print goes to the log, not into the answers
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        op = OPS[request.pop("op")]
        started = time.perf_counter()
        try:
            answer: dict[str, Any] = {"ok": True, "result": op(**request)}
        except Exception as exc:
            answer = _failure(exc)
        answer["seconds"] = time.perf_counter() - started
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
