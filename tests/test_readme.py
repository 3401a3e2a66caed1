"""The README's Python examples and command lines run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the README runs, in order, in one namespace."""
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def test_command_line_section_runs(tmp_path: Path) -> None:
    """Every `loyaltyrules …` line of the README's command-line section exits 0."""
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in section.splitlines()
                if line.startswith("loyaltyrules ")]
    assert len(commands) >= 5
    for command in commands:
        args = shlex.split(command.replace("> program.schema.json", ""))[1:]
        if args[0] == "validate":
            args = ["validate", *sorted(str(p) for p in (ROOT / "programs").glob("*.yaml"))]
        result = subprocess.run([sys.executable, "-m", "loyaltyrules", *args], cwd=ROOT,
                                capture_output=True, text=True, check=False,
                                env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        assert result.returncode == 0, (command, result.stderr)


def test_the_worked_decision_in_decisions_md_is_what_the_library_gives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/decisions.md shows a decision's JSON and its explain() text as the output of the
    Python block above them: running that block gives exactly that JSON and that text."""
    import loyaltyrules as lr

    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / "decisions.md").read_text(encoding="utf-8")
    block = text.split("A gold member", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    shown = text.split("<!-- decision-json:", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    explained = text.split("explain()` gives the same as text", 1)[1].split(
        "```text\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {
        "lr": lr, "program": lr.load_program(ROOT / "programs" / "retail-4tier.yaml")}
    exec(compile(block.replace("print(", "_ = ("), "docs/decisions.md", "exec"), namespace)
    decision = namespace["decision"]
    assert isinstance(decision, lr.Decision)
    assert decision.model_dump_json(indent=2) + "\n" == shown
    assert decision.explain() + "\n" == explained
