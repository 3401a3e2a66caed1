"""The one exception hierarchy of loyaltyrules.

::

    LoyaltyError                      anything this library raises on purpose
    ├── ProgramError (ValueError)     the program (YAML or dict) is wrong; lists every Diagnostic
    ├── InputError (ValueError)       a member state, transaction or decision is malformed
    │   └── AlreadyApplied            a purchase the member's state already holds (a retry)
    └── EvaluationError (RuntimeError) a rule failed while evaluating (e.g. an expression
                                       compared a number with a string); carries the trace

Each subclasses the builtin a caller would naturally catch, so ``except ValueError`` works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._decision import TraceEntry

__all__ = [
    "AlreadyApplied",
    "Diagnostic",
    "EvaluationError",
    "InputError",
    "LoyaltyError",
    "ProgramError",
    "format_path",
    "show_value",
]


def format_path(path: tuple[str | int, ...]) -> str:
    """Render a path into a document the way a designer reads it: ``tiers[2].discount``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def show_value(value: Any, limit: int = 40) -> str:
    """A value the way a designer wrote it: ``2.5`` not ``Decimal('2.5')``, ``true`` not
    ``True``; text quoted; long values cut short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(show_value(v, limit) for v in value[:10]) + \
            (", …" if len(value) > 10 else "") + "]"
    elif isinstance(value, Mapping):
        items = list(value.items())
        text = "{" + ", ".join(f"{k}: {show_value(v, limit)}" for k, v in items[:10]) + \
            (", …" if len(items) > 10 else "") + "}"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def located(source: str, line: int | None, column: int | None, path: tuple[str | int, ...],
            message: str, hint: str | None) -> str:
    """``file:line:col: path: message — hint``, the one way findings are written."""
    where = source if line is None else f"{source}:{line}:{column or 1}"
    text = f"{where}: {format_path(path)}: {message}"
    return f"{text} — {hint}" if hint else text


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a program: what failed, where, on what.

    ``code`` is stable (``LR1xx`` YAML, ``LR2xx`` model, ``LR3xx`` expressions,
    ``LR4xx`` cross-references and consistency) so tools and docs can refer to it.
    """

    code: str
    message: str
    path: tuple[str | int, ...] = ()
    source: str = "<program>"
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        text = located(self.source, self.line, self.column, self.path, self.message, self.hint)
        return f"{text} [{self.code}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "path": format_path(self.path),
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


class LoyaltyError(Exception):
    """Base of every exception loyaltyrules raises on purpose."""


class ProgramError(LoyaltyError, ValueError):
    """A program could not be loaded; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.diagnostics) == 1:
            return str(self.diagnostics[0])
        lines = [f"{len(self.diagnostics)} problems in the program:"]
        lines += [f"  {d}" for d in self.diagnostics]
        return "\n".join(lines)


class InputError(LoyaltyError, ValueError):
    """A member state, transaction or decision given to the engine is malformed.

    ``field`` names the offending field (``items[1].amount``) so a host can point at it.
    """

    def __init__(self, message: str, *, field: str | None = None, kind: str = "input") -> None:
        self.field = field
        self.kind = kind
        text = f"{kind}: {field}: {message}" if field else f"{kind}: {message}"
        super().__init__(text)


class EvaluationError(LoyaltyError, RuntimeError):
    """A rule raised while being evaluated: reported, never treated as "not matched"."""

    def __init__(self, rule: str, message: str, *, trace: list[TraceEntry] | None = None) -> None:
        self.rule = rule
        self.trace = list(trace or [])
        super().__init__(f"rule {rule!r} failed: {message}")


class AlreadyApplied(InputError):
    """A purchase whose id the member's state already holds: a retry, with nothing to do.

    ``apply`` is idempotent already; evaluating a known purchase again says so instead of
    computing a decision from a state that already includes it."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(f"transaction {transaction_id!r} was already applied to this member: "
                         "a retry changes nothing", field="id", kind="transaction")
        self.transaction_id = transaction_id
