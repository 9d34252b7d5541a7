"""The built wheel works outside the checkout: presets ship inside it."""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the llmrec wheel; its dependencies come from this venv's
    site-packages through a plain path entry (no editable finder, so the checkout is unseen)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(work / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next((work / "dist").glob("llmrec-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "llmrec/presets/rankers/two-stage.yaml" in names
    assert "llmrec/presets/datasets/ml-1m.yaml" in names
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(purelib)  # a wheel is a zip of site-packages content
    deps = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    (purelib / "zz-deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    return venv


def _run(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_presets_resolve_from_the_installed_wheel(installed, tmp_path):
    result = _run(
        installed,
        "import llmrec, sys; from llmrec.evaluation import resolve_model; "
        "from llmrec.datasets.loader import PRESET_DIR; "
        "spec = resolve_model('two-stage'); als = resolve_model('als'); "
        "print(llmrec.__file__); print(spec.kind, bool(als.grid), PRESET_DIR.is_dir())",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    where, facts = result.stdout.split("\n")[:2]
    assert str(ROOT) not in where and "site-packages" in where
    assert facts == "two_stage True True"


def test_cli_entry_point_from_the_installed_wheel(installed, tmp_path):
    result = _run(
        installed,
        "import sys; sys.argv = ['llmrec', 'demo', '--help']; from llmrec.cli import main; main()",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "embedded default data" in " ".join(result.stdout.split())
