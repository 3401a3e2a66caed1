"""pytest plugin: every ``*.scenarios.yaml`` file is collected, one test item per scenario.

Registered as the ``loyaltyrules`` ``pytest11`` entry point, so installing loyaltyrules is
enough: put scenario files where pytest looks (``testpaths``) and run ``pytest``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ._errors import ProgramError
from ._program import Program
from ._scenario import Scenario, load_scenarios, run_scenario

__all__ = ["ScenarioFile", "ScenarioItem", "pytest_collect_file"]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(".scenarios.yaml"):
        collected: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
        return collected
    return None


class ScenarioFile(pytest.File):
    """A scenario file; loading it (and its program) happens at collection."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            program, scenarios = load_scenarios(self.path)
        except ProgramError as exc:
            raise self.CollectError(str(exc)) from None
        # (a failure names its file as the command line does, from where the tests run: the
        # project's root, not the file's absolute path)
        try:
            shown = str(self.path.relative_to(self.config.rootpath))
        except ValueError:  # (a file outside the root: named as it is)
            shown = str(self.path)
        for scenario in scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.name, program=program,
                                           scenario=replace(scenario, source=shown))


class ScenarioItem(pytest.Item):
    def __init__(self, *, program: Program, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.program = program
        self.scenario = scenario

    def runtest(self) -> None:
        result = run_scenario(self.program, self.scenario)
        if not result.ok:
            raise ScenarioFailed(result.render())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.scenario.line or 1) - 1, f"scenario: {self.name}"


class ScenarioFailed(AssertionError):
    """A scenario's expectation did not hold; the message is the readable report."""
