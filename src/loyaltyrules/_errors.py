"""The one exception hierarchy of loyaltyrules.

::

    LoyaltyError                      anything this library raises on purpose
    ├── ProgramError (ValueError)     the program (YAML or dict) is wrong; lists every Diagnostic
    ├── InputError (ValueError)       a member state, transaction or decision is malformed
    │   ├── AlreadyApplied            a purchase the member's state already holds (a retry)
    │   └── StaleMemberState          a member state older than the one a household returned
    └── EvaluationError (RuntimeError) a rule failed while evaluating (e.g. an expression
                                       compared a number with a string); carries the trace

Each subclasses the builtin a caller would naturally catch, so ``except ValueError`` works too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._decision import TraceEntry

__all__ = [
    "AlreadyApplied",
    "Diagnostic",
    "EvaluationError",
    "InputError",
    "LoyaltyError",
    "ProgramError",
    "StaleMemberState",
    "did_you_mean",
    "format_path",
    "plain_words",
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


def show_value(value: Any, limit: int = 40, *, _depth: int = 0) -> str:
    """A value the way a designer wrote it: ``2.5`` not ``Decimal('2.5')``, ``true`` not
    ``True``; text quoted; long values cut short (and deeply nested ones: a list inside
    a list inside … is not walked further than a line could show)."""
    if _depth > limit and isinstance(value, (list, tuple, Mapping)):
        text = "…"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, int) and value.bit_length() > 4 * limit:
        # (Python refuses to write out more than 4,300 digits, and no message needs them)
        digits = int(value.bit_length() * 0.30103) + 1  # (log10 of 2: within one)
        text = f"{'minus ' if value < 0 else ''}a number of about {digits:,} digits"
    elif isinstance(value, Decimal):
        # (1E+100000000 written out would be a hundred million digits)
        wide = value.is_finite() and abs(value.adjusted()) > limit
        text = str(value) if wide or not value.is_finite() else format(value, "f")
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(show_value(v, limit, _depth=_depth + 1) for v in value[:10]) + \
            (", …" if len(value) > 10 else "") + "]"
    elif isinstance(value, Mapping):
        items = list(value.items())
        text = "{" + ", ".join(f"{k}: {show_value(v, limit, _depth=_depth + 1)}"
                               for k, v in items[:10]) + \
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



def did_you_mean(word: str, choices: list[str]) -> str | None:
    """The hint for a near miss (``glod`` among the tiers; ``MONTHLY`` or ``ROUND_HALF_UP``,
    the same word in capitals or as Python names it), or None."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        folded = word.lower().removeprefix("round_")
        close = [c for c in choices if c.lower() == folded][:1]
    return f"did you mean {close[0]!r}?" if close else None


# How a validation library's messages are said to the people who read ours: a program
# designer (diagnostics) and a host engineer (InputError) alike.
_PATTERNS: Final[dict[str, str]] = {
    r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$": "ids are letters, digits, _ . - (not starting with . or -)",
    r"^[A-Z]{3}$": "a currency is a 3-letter ISO 4217 code in capitals, such as CNY",
    r"^[a-z][a-z0-9_]*$": "event names are lower-case letters, digits and _, starting with a "
                          "letter",
    r"^LR[0-9]{3}$": "a finding's code is LR and three digits, such as LR508",
}
_EXAMPLES: Final[dict[str, str]] = {
    "Window": "{start: 2026-11-11, end: 2026-11-11}",
    "Limit": "{times: 1, per: year}",
    "Qualify": "{spend: 10000}",
    "Expiry": "{months: 24}, or never",
    "Meta": "{id: shop, version: 1, currency: CNY, timezone: Asia/Shanghai}",
    "Keep": "{until: end_of_year}",
    "Redemption": "{points: 100, value: 1}",
    "Gifting": "{minimum: 10, maximum: 1000}",
    "Households": "{share: 100%}",
    "Referral": "{referrer_points: 100, referee_points: 50}",
}


def plain_words(err: Any) -> tuple[str, str | None] | None:
    """A validation library's message in a designer's words (message, hint), or None to
    keep the message as it is (our own checks already speak plainly)."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f"(got {show_value(value)})"
    if kind == "string_pattern_mismatch":
        rule = _PATTERNS.get(str(ctx.get("pattern")))
        if rule is None:
            return None
        hint = None
        if rule.startswith("ids") and isinstance(value, str):
            if any(ord(c) > 127 for c in value):
                hint = "write Chinese and other text in name:, and a Latin id such as gold"
            elif " " in value:
                hint = "use - or _ instead of spaces"
        return f"{rule} {got}", hint
    if kind in ("tuple_type", "list_type"):
        return f"expected a list {got}", None
    if kind in ("too_short", "string_too_short"):
        if ctx.get("min_length") == 1:
            return "must not be empty", None
        return f"needs at least {ctx.get('min_length')} entries {got}", None
    if kind in ("too_long", "string_too_long"):
        unit = "characters" if isinstance(value, str) else "entries"
        length = len(value) if isinstance(value, (str, list, tuple, dict)) else "more"
        return f"must be at most {ctx.get('max_length')} {unit} long (got {length})", None
    if kind == "dict_type" and err["loc"][-1:] == ("name",):
        return f"expected a name, or names by language such as {{zh: 金卡, en: Gold}} {got}", None
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        example = _EXAMPLES.get(str(ctx.get("class_name")))
        such = f" such as {example}" if example else ""
        return f"expected a mapping{such} {got}", None
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        hint = did_you_mean(str(value), choices) if isinstance(value, (str, int)) else None
        return f"must be {expected} {got}", hint
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
        word, key = words[kind]
        return f"must be {word} {show_value(ctx.get(key))} {got}", None
    if kind == "string_type":
        return f"expected text {got}", None
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false {got}", None
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number {got}", None
    if kind.startswith(("date_", "datetime_")):
        return f"expected a date such as 2026-11-11 {got}", None
    return None

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
        # (LR6xx are a scenario file's own problems: its program may be fine)
        what = "scenario file" if all(d.code.startswith("LR6") for d in self.diagnostics) \
            else "program"
        lines = [f"{len(self.diagnostics)} problems in the {what}:"]
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


class StaleMemberState(InputError):
    """A member state older than the one a household call last returned for that member.

    Storing what a household call returns for it would drop what that call changed (points
    moved to or from the pool): pass the member's latest state instead. ``version`` is the
    state's, ``latest`` the one the household returned."""

    def __init__(self, member_id: str, household_id: str, version: int, latest: int) -> None:
        super().__init__(f"the state of member {member_id!r} is stale: version {version}, but "
                         f"household {household_id} returned version {latest} of it; pass the "
                         "member's latest state", field="member", kind="household")
        self.member_id = member_id
        self.version = version
        self.latest = latest
