"""The process environment and the constants that every part of the campaign shares."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

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
USERS = ["10", "20", "30", "ghost"]
HISTORY = ["50", "181", "172"]
COMMA_USER = "7, Jr."
THESIS = "four years of work\n"


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
