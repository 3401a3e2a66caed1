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
