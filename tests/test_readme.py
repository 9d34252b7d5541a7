"""README's examples as a user meets them: every Python block runs as written, and every
``llmrec`` command line parses against the real CLI (options and values exist)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from llmrec.cli import app, expand_seeds

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _commands() -> list[list[str]]:
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "llmrec":
                commands.append(words[1:])
    return commands


def test_readme_has_examples():
    assert len(_blocks("python")) >= 2 and len(_commands()) >= 8


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a[:2]))
def test_readme_command_lines_parse(args):
    command = typer.main.get_command(app)
    rest = expand_seeds(args)
    while hasattr(command, "commands"):  # a group (typer vendors click, so no isinstance)
        name, *rest = rest
        assert name in command.commands, f"README names an unknown command {name!r}"
        command = command.commands[name]
    command.make_context(command.name, rest)  # raises on an unknown option or a bad value


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, shared_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(shared_cache))
    code = _blocks("python")[index]
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
