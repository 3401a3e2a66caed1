"""Lint: design smells in a loaded program, found by reading it — nothing is evaluated.

A program that loads is valid; lint says where it is probably not what the designer meant:
a tier nobody can reach, a higher tier that gives less than a lower one, a promotion whose
window is over, two exclusive promotions that collide. Each check is a small generator
registered in :data:`CHECKS` under a stable code (``LR5xx``) with a default severity and a
one-line description, so the docs can list them (:func:`describe_checks`) and a program can
accept a finding it has looked at with ``lint: {ignore: [LR508]}``.

The date that "is over" is judged against is passed in: the library never reads the clock.

>>> program = load_program("programs/rfm-3tier.yaml")               # doctest: +SKIP
>>> for finding in lint(program, today=date(2026, 3, 1)):           # doctest: +SKIP
...     print(finding)
programs/rfm-3tier.yaml:22:15: tiers[1].discount: silver gives 5% off, less than bronze's 10% …
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Literal

from ._errors import did_you_mean, format_path, located
from ._expressions import MEMBER_FIELDS, Expression
from ._lifecycle import Redeeming
from ._model import (
    Behaviour,
    EarnRule,
    Multiplier,
    ProgramModel,
    Qualify,
    Rule,
    Schedule,
    Tier,
    Window,
)
from ._program import Program

__all__ = ["CHECKS", "Check", "Finding", "Severity", "describe_checks", "lint"]

Severity = Literal["error", "warning", "info"]
_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """One design smell: what looks wrong, where, and what to do about it.

    ``code`` is stable (``LR5xx``, see :data:`CHECKS`); ``path`` is the YAML path and
    ``source``/``line``/``column`` where it was written (``None`` for programs built from
    dicts).
    """

    code: str
    severity: Severity
    message: str
    path: _Path = ()
    source: str = "<program>"
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        text = located(self.source, self.line, self.column, self.path, self.message, self.hint)
        return f"{text} [{self.code} {self.severity}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "path": format_path(self.path),
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class _Smell:
    """What a check yields; :func:`lint` adds the code, the severity and the position."""

    path: _Path
    message: str
    hint: str | None = None
    severity: Severity | None = None  # None: the check's default


_HORIZON_YEARS = 100
"""How far ahead open-ended windows are searched for a day two schedules share."""


@dataclass
class _Expansion:
    """A schedule's days as a bit set, bit ``k`` being the day ``origin + k`` (ordinals),
    expanded once per lint run and only as far as asked: two schedules share a day where
    their bit sets do, so comparing a pair is an ``&``, not a walk through its days."""

    occurrences: Iterator[datetime]
    origin: int  # the schedule's start: no day before it is selected
    reached: int  # every selected day up to this ordinal is in bits
    bits: bytearray = field(default_factory=bytearray)
    _number: int | None = None  # bits as an int, until they grow again

    def extend(self, last: int) -> None:
        """Expand the schedule through the day ``last`` (an ordinal)."""
        while self.reached < last:
            occurrence = next(self.occurrences, None)
            if occurrence is None:  # pragma: no cover - schedules never end (no UNTIL/COUNT)
                self.reached = date.max.toordinal()
                break
            self.reached = occurrence.toordinal()
            k = self.reached - self.origin
            if k >> 3 >= len(self.bits):
                self.bits.extend(bytes(max((k >> 3) + 1 - len(self.bits), len(self.bits))))
            self.bits[k >> 3] |= 1 << (k & 7)
            self._number = None

    def between(self, first: int, last: int) -> int:
        """The selected days in [first, last] (ordinals, expanded that far), bit 0 = first."""
        if self._number is None:
            self._number = int.from_bytes(self.bits, "little")
        shift = first - self.origin
        number = self._number >> shift if shift >= 0 else self._number << -shift
        return number & ((1 << (last - first + 1)) - 1)


@dataclass
class _Context:
    """One lint run: the program, the day it is judged on, and schedule expansions."""

    program: Program
    today: date
    _possible: dict[Schedule, bool] = field(default_factory=dict)
    _expanded: dict[Schedule, _Expansion] = field(default_factory=dict)

    @property
    def model(self) -> ProgramModel:
        return self.program.model

    @property
    def zone(self) -> tzinfo:
        return self.program.zone

    def rules(self) -> Iterator[tuple[str, int, Rule]]:
        for section, rules in (("birthday", self.model.birthday),
                               ("promotions", self.model.promotions)):
            for i, rule in enumerate(rules):
                yield section, i, rule

    def possible(self, schedule: Schedule) -> bool:
        """Does the schedule ever select a day? (An impossible rule such as 30 February
        makes dateutil search to the year 9999, so the answer is kept.)"""
        known = self._possible.get(schedule)
        if known is None:
            known = next(iter(schedule.build()), None) is not None
            self._possible[schedule] = known
        return known

    def expansion(self, schedule: Schedule) -> _Expansion:
        """The schedule's days so far, shared by every rule with an equal schedule."""
        expansion = self._expanded.get(schedule)
        if expansion is None:
            origin = schedule.start.toordinal()
            expansion = self._expanded[schedule] = _Expansion(
                iter(schedule.build()), origin, origin - 1)
        return expansion

    def common_day(self, schedules: Sequence[Schedule], first: date, last: date) -> date | None:
        """The first local day in [first, last] that every schedule selects."""
        if first > last:
            return None
        if not schedules:
            return first
        if not all(self.possible(s) for s in schedules):
            return None
        expansions = [self.expansion(s) for s in schedules]
        start, end = first.toordinal(), last.toordinal()
        done, span = start - 1, 366  # days in [start, done] are known to be shared by none
        while done < end:
            # look as far as every schedule is already expanded, and at least a span further
            # (doubling, so a pair that meets early does not expand a century of days)
            upto = min(end, max(done + span, min(e.reached for e in expansions)))
            for e in expansions:
                e.extend(upto)
            shared = expansions[0].between(done + 1, upto)
            for e in expansions[1:]:
                shared &= e.between(done + 1, upto)
            if shared:
                return date.fromordinal(done + (shared & -shared).bit_length())
            done, span = upto, span * 2
        return None


# --- small helpers -----------------------------------------------------------------------------


def _num(value: Decimal | int) -> str:
    return format(Decimal(value).normalize(), "f")


def _pct(rate: Decimal) -> str:
    return f"{_num(rate * 100)}%"


def _local_day(instant: datetime, zone: tzinfo) -> date:
    return instant.astimezone(zone).date()


def _last_day(end: datetime, zone: tzinfo) -> date:
    """The last local day an exclusive end still includes."""
    return _local_day(end - timedelta(microseconds=1), zone)


def _ended(window: Window) -> str:
    end = window.end
    assert end is not None
    if isinstance(end, datetime):
        return end.strftime("%Y-%m-%d %H:%M") + (f" {end.tzname()}" if end.tzinfo else "")
    return end.isoformat()


def _describe(schedule: Schedule) -> str:
    if schedule.rrule is not None:
        return schedule.rrule.strip()
    parts = [f"freq: {schedule.freq}"]
    for name in ("interval", "bymonth", "bymonthday", "byweekday", "bysetpos"):
        value = getattr(schedule, name)
        if value not in (None, 1):
            shown = ", ".join(str(v) for v in value) if isinstance(value, tuple) else value
            parts.append(f"{name}: {shown}")
    return "{" + ", ".join(parts) + "}"


_UNKNOWN: Any = object()


def _constant(node: ast.AST) -> Any:
    """The value of an expression that reads nothing (``1 > 2``, ``False``), else _UNKNOWN."""
    if isinstance(node, ast.Expression):
        return _constant(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp):
        value = _constant(node.operand)
        if value is _UNKNOWN:
            return _UNKNOWN
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub) and isinstance(value, (int, Decimal)):
            return -value
        return value if isinstance(node.op, ast.UAdd) else _UNKNOWN
    if isinstance(node, ast.BoolOp):
        values = [_constant(v) for v in node.values]
        decisive = isinstance(node.op, ast.Or)  # `or` is settled by a true part, `and` by a false
        if any(v is not _UNKNOWN and bool(v) is decisive for v in values):
            return decisive
        return _UNKNOWN if any(v is _UNKNOWN for v in values) else values[-1]
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_constant(e) for e in node.elts]
        return _UNKNOWN if any(v is _UNKNOWN for v in items) else tuple(items)
    if isinstance(node, ast.IfExp):
        test = _constant(node.test)
        if test is _UNKNOWN:
            return _UNKNOWN
        return _constant(node.body if test else node.orelse)
    if isinstance(node, ast.Compare):
        operands = [_constant(node.left), *(_constant(c) for c in node.comparators)]
        if any(v is _UNKNOWN for v in operands):
            return _UNKNOWN
        try:
            return all(_compare(op, operands[k], operands[k + 1])
                       for k, op in enumerate(node.ops))
        except TypeError:
            return _UNKNOWN
    return _UNKNOWN


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: bool(a < b),
    ast.LtE: lambda a, b: bool(a <= b),
    ast.Gt: lambda a, b: bool(a > b),
    ast.GtE: lambda a, b: bool(a >= b),
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    return _COMPARE[type(op)](a, b)


def _always(expression: Expression | None) -> bool | None:
    """True or False when the condition does not depend on anything, else None."""
    if expression is None:
        return None
    value = _constant(expression.tree)
    return None if value is _UNKNOWN else bool(value)


def _metrics(q: Qualify) -> dict[str, Decimal]:
    return {name: Decimal(value) for name in ("spend", "points", "orders")
            if (value := getattr(q, name)) is not None}


def _terms(q: Qualify) -> tuple[Any, ...]:
    """What a qualify asks for, its condition compared as parsed (``member.orders>5`` and
    ``member.orders > 5`` are the same terms)."""
    when = ast.dump(q.when.tree) if q.when is not None else None
    return (_metrics(q), when, q.match)


# --- LR501 tiers ------------------------------------------------------------------------------


def _tier_ladder(ctx: _Context) -> Iterator[_Smell]:
    """Tiers nobody can reach, that everybody reaches at once, that need exactly what a lower
    tier needs, or that are harder to keep than to earn."""
    tiers = ctx.model.tiers
    for i, tier in enumerate(tiers):
        q = tier.qualify
        zeros = [m for m, v in _metrics(q).items() if v == 0] if q is not None else []
        if q is not None and zeros and (
                q.match == "any" or (len(zeros) == len(_metrics(q))
                                     and (q.when is None or _always(q.when) is True))):
            yield _Smell(("tiers", i, "qualify", zeros[0]),
                         f"every member qualifies for {tier.id} at once: qualify.{zeros[0]} "
                         "is 0, which every member has"
                         + (" (with match: any, one met term is enough)"
                            if q.match == "any" and len(_metrics(q)) + (q.when is not None) > 1
                            else ""),
                         "give the tier a real threshold (spend, points or orders above 0)")
        elif q is not None and q.when is not None:
            always = _always(q.when)
            others = bool(_metrics(q))
            where: _Path = ("tiers", i, "qualify", "when")
            if always is False and (q.match == "all" or not others):
                yield _Smell(where, f"{tier.id} can never be reached: its condition "
                             f"`{q.when.source}` is always false",
                             "fix the condition, or remove the tier", "error")
            elif always is True and (q.match == "any" or not others):
                yield _Smell(where, f"every member qualifies for {tier.id} at once: its "
                             f"condition `{q.when.source}` is always true",
                             "give the tier a real threshold (spend, points or orders)")
        if q is not None:
            same = next((lower for lower in tiers[1:i]
                         if lower.qualify is not None
                         and _terms(lower.qualify) == _terms(q)), None)
            if same is not None:
                yield _Smell(("tiers", i, "qualify"),
                             f"{tier.id} needs exactly what {same.id} needs, so members go "
                             f"straight to {tier.id} and {same.id} is never held",
                             f"raise what {tier.id} needs above {same.id}")
        r = tier.retain
        if r is None or i == 0:
            continue  # retain on the first tier has no effect: LR511 says so
        if _always(r.when) is False and (r.match == "all" or not _metrics(r)):
            yield _Smell(("tiers", i, "retain", "when"),
                         f"{tier.id} can never be kept: its retain condition "
                         f"`{r.when.source if r.when else ''}` is always false",
                         "fix the condition, or remove retain to keep on the qualify terms")
        if q is None:
            continue
        earn, keep = _metrics(q), _metrics(r)
        if r.match == "any" and len(keep) + (r.when is not None) > 1:
            continue  # another way to keep the tier may be easier
        for metric in ("spend", "points", "orders"):
            if metric in earn and metric in keep and keep[metric] > earn[metric]:
                yield _Smell(("tiers", i, "retain", metric),
                             f"{tier.id} is harder to keep than to earn: retain.{metric} "
                             f"{_num(keep[metric])} is above qualify.{metric} "
                             f"{_num(earn[metric])}, so a member who still meets the "
                             "qualify terms is moved down at a review",
                             f"set retain.{metric} at or below {_num(earn[metric])}")


# --- LR502 and LR503 windows ------------------------------------------------------------------


def _windowed(ctx: _Context) -> Iterator[tuple[_Path, str, Window]]:
    for section, i, rule in ctx.rules():
        if rule.window is not None:
            yield (section, i), rule.id, rule.window
    for i, reward in enumerate(ctx.model.rewards):
        if reward.window is not None:
            yield ("rewards", i), reward.id, reward.window


def _windows_over(ctx: _Context) -> Iterator[_Smell]:
    """Birthday rules, promotions and rewards whose window closed before ``today``."""
    today_starts = datetime.combine(ctx.today, datetime.min.time(), tzinfo=ctx.zone)
    for where, ident, window in _windowed(ctx):
        _, end = window.bounds(ctx.zone)
        if end is not None and end <= today_starts:
            yield _Smell((*where, "window", "end"), f"window ended {_ended(window)}",
                         f"{ident} no longer applies: remove it, or move its window if it "
                         "should run again")


def _windows_never(ctx: _Context) -> Iterator[_Smell]:
    """Rules whose schedule selects no day at all, or no day inside their window (a window
    that ends before it starts is LR408, which stops the load)."""
    zone = ctx.zone
    for section, i, rule in ctx.rules():
        schedule = rule.schedule
        if schedule is None:
            continue
        where: _Path = (section, i, "schedule")
        if not ctx.possible(schedule):
            yield _Smell(where, f"the schedule {_describe(schedule)} falls on no day at all, "
                         f"so {rule.id} never applies",
                         "check bymonth, bymonthday and bysetpos (there is no 30 February)")
            continue
        if rule.window is None:
            continue
        start, end = rule.window.bounds(zone)
        if end is None:
            continue  # a schedule that selects some day selects one after any start
        first = _local_day(start, zone) if start is not None else schedule.start
        last = _last_day(end, zone)
        if ctx.common_day([schedule], first, last) is None:
            span = f"between {first} and {last}" if start is not None else f"up to {last}"
            yield _Smell(where, f"the schedule {_describe(schedule)} falls on no day "
                         f"{span}, so {rule.id} never applies",
                         "move the window or change the schedule")


# --- LR504 exclusive promotions ---------------------------------------------------------------


def _overlap(a: Sequence[str], b: Sequence[str]) -> bool:
    """Scopes a single purchase can be in both of (an empty scope means "any")."""
    return not a or not b or bool(set(a) & set(b))


_Bound = tuple[Decimal, bool]  # a value and whether it is included


@dataclass(frozen=True)
class _Reach:
    """Whom and what a rule can match, as far as its settings and the top-level ``and``
    parts of its condition say: the tiers, and bounds on ``txn.amount``."""

    tiers: frozenset[str]
    low: _Bound | None = None
    high: _Bound | None = None

    def meets(self, other: _Reach) -> bool:
        if not self.tiers & other.tiers:
            return False
        for low, high in ((self.low, other.high), (other.low, self.high)):
            if low is not None and high is not None and (
                    low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))):
                return False
        return True


def _strings(node: ast.AST) -> set[str] | None:
    value = _constant(node)
    if isinstance(value, str):
        return {value}
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return set(value)
    return None


def _reach(rule: Rule, tier_ids: Sequence[str]) -> _Reach:
    tiers = set(rule.tiers or tier_ids)
    low: _Bound | None = None
    high: _Bound | None = None
    if rule.min_amount is not None:  # compared with list amounts, never above txn.amount
        low = (Decimal(rule.min_amount), True)
    parts = _conjuncts(rule.when.tree) if rule.when is not None else []
    for part in parts:
        if not (isinstance(part, ast.Compare) and len(part.ops) == 1):
            continue
        left, right, op = part.left, part.comparators[0], type(part.ops[0])
        if ast.unparse(right) in ("tier", "member.tier", "txn.amount"):
            left, right, op = right, left, _FLIP.get(op, op)
        read = ast.unparse(left)
        if read in ("tier", "member.tier"):
            named = _strings(right)
            if named is None:
                continue
            if op in (ast.Eq, ast.In):
                tiers &= named
            elif op in (ast.NotEq, ast.NotIn):
                tiers -= named
        elif read == "txn.amount":
            value = _constant(right)
            if not isinstance(value, (int, Decimal)) or isinstance(value, bool):
                continue
            bound = (Decimal(value), op in (ast.GtE, ast.LtE, ast.Eq))
            if op in (ast.Gt, ast.GtE, ast.Eq):
                low = _tighter(low, bound, 1)
            if op in (ast.Lt, ast.LtE, ast.Eq):
                high = _tighter(high, bound, -1)
    return _Reach(frozenset(tiers), low, high)


def _tighter(old: _Bound | None, new: _Bound, sign: int) -> _Bound:
    """The tighter of two lower (``sign`` 1) or upper (-1) bounds."""
    if old is None or (new[0] - old[0]) * sign > 0 or (new[0] == old[0] and not new[1]):
        return new
    return old


def _exclusive_overlaps(ctx: _Context) -> Iterator[_Smell]:
    """Exclusive promotions that can both match one purchase: one silently loses."""
    promotions = [(i, p) for i, p in enumerate(ctx.model.promotions) if p.exclusive]
    by_id = ctx.model.policies.rules.tie_break == "id"
    tier_ids = [t.id for t in ctx.model.tiers]
    reach = {i: _reach(p, tier_ids) for i, p in promotions}
    for n, (i, a) in enumerate(promotions):
        for j, b in promotions[n + 1:]:
            if not (reach[i].meets(reach[j]) and _overlap(a.channels, b.channels)):
                continue
            when = _shared_time(ctx, a, b)
            if when is None:
                continue
            winner, loser = sorted(
                ((a, i), (b, j)),
                key=lambda e: (-e[0].priority, e[0].id if by_id else e[1]))
            basket = ""
            if (a.categories or a.skus) and (b.categories or b.skus) and not (
                    _overlap(a.categories, b.categories) and _overlap(a.skus, b.skus)):
                basket = " (one basket can hold items for both)"
            yield _Smell(("promotions", j, "exclusive"),
                         f"exclusive promotions {a.id} and {b.id} can both match one "
                         f"purchase {when}{basket}: only {winner[0].id} applies and "
                         f"{loser[0].id} is skipped without notice",
                         "separate their windows, channels or tiers, or make one of them "
                         "not exclusive")


def _shared_time(ctx: _Context, a: Rule, b: Rule) -> str | None:
    """How two rules' windows and schedules meet ("on 2026-11-27"), or None if never."""
    zone = ctx.zone
    starts, ends = [], []
    for rule in (a, b):
        start, end = rule.window.bounds(zone) if rule.window else (None, None)
        if start is not None:
            starts.append(start)
        if end is not None:
            ends.append(end)
    lo, hi = (max(starts) if starts else None), (min(ends) if ends else None)
    if lo is not None and hi is not None and lo >= hi:
        return None
    schedules = [s for s in (a.schedule, b.schedule) if s is not None]
    if not schedules:
        if lo is not None:
            return f"from {_local_day(lo, zone)}"
        return f"up to {_last_day(hi, zone)}" if hi is not None else "at any time"
    first = _local_day(lo, zone) if lo is not None else max(s.start for s in schedules)
    if hi is not None:
        last = _last_day(hi, zone)
    else:
        last = date(max(first, ctx.today).year + _HORIZON_YEARS, 12, 31)
    day = ctx.common_day(schedules, first, last)
    return f"on {day}" if day is not None else None


# --- LR505 perks ------------------------------------------------------------------------------


def _unused_perks(ctx: _Context) -> Iterator[_Smell]:
    """Perks declared under ``perks:`` that no tier, rule or reward grants."""
    model = ctx.model
    granted = {p for t in model.tiers for p in t.perks}
    granted |= {r.perk for _, _, r in ctx.rules() if r.perk is not None}
    granted |= {r.perk for r in model.rewards if r.perk is not None}
    for i, perk in enumerate(model.perks):
        if perk.id not in granted:
            yield _Smell(("perks", i, "id"),
                         f"perk {perk.id} is declared but no tier, rule or reward grants it",
                         "grant it (a tier's perks, a rule's or a reward's perk) or remove it")


# --- LR506 expressions that read what may be missing -------------------------------------------

_OPTIONAL: dict[str, str] = {
    "member.birthday": "a member may have no birthday on file",
    "member.joined": "a member may have no join date on file",
    "member.last_purchase": "a member who has never bought has none",
    "txn.store": "a purchase may come without a store (online orders)",
}
_NONE_SAFE = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)


def _read(node: ast.AST) -> str | None:
    """``member.joined`` or ``txn.attrs.vip`` for a read of an optional value, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        name = f"{node.value.id}.{node.attr}"
        if name in _OPTIONAL:
            return name
    if _is_attrs(getattr(node, "value", None)):
        assert isinstance(node, (ast.Attribute, ast.Subscript))
        base = ast.unparse(node.value)
        if isinstance(node, ast.Attribute):
            return f"{base}.{node.attr}"
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return f"{base}.{key.value}"
    return None


def _is_attrs(node: ast.AST | None) -> bool:
    """``member.attrs``, ``txn.attrs``, ``event.attrs``, ``items[1].attrs`` or the attrs of an
    item in a comprehension (``i.attrs``): host data, which may be missing."""
    if not (isinstance(node, ast.Attribute) and node.attr == "attrs"):
        return False
    owner = node.value
    return isinstance(owner, ast.Name) or (
        isinstance(owner, ast.Subscript) and isinstance(owner.value, ast.Name)
        and owner.value.id == "items")


@dataclass(frozen=True)
class _Known:
    """What is known to be there at some point of a condition: optional reads checked
    (``member.joined``, ``txn.attrs.vip``) and how many purchase lines there are at least."""

    names: frozenset[str] = frozenset()
    lines: int = 1  # every purchase has a line

    def __or__(self, other: _Known) -> _Known:  # both hold
        return _Known(self.names | other.names, max(self.lines, other.lines))

    def __and__(self, other: _Known) -> _Known:  # one of them holds
        return _Known(self.names & other.names, min(self.lines, other.lines))


_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE,
    ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def _counts_lines(node: ast.AST) -> bool:
    return ((isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id == "len" and len(node.args) == 1
             and isinstance(node.args[0], ast.Name) and node.args[0].id == "items")
            or (isinstance(node, ast.Attribute) and node.attr == "items_count"
                and isinstance(node.value, ast.Name) and node.value.id == "txn"))


def _line_bounds(node: ast.Compare) -> tuple[int, int]:
    """Lines a purchase has at least when ``len(items) <op> k`` is true, and when false."""
    if len(node.ops) != 1:
        return 1, 1
    left, right, op = node.left, node.comparators[0], type(node.ops[0])
    if _counts_lines(right) and not _counts_lines(left):
        left, right, op = right, left, _FLIP.get(op, op)
    if not (_counts_lines(left) and isinstance(right, ast.Constant)
            and type(right.value) is int):
        return 1, 1
    k = right.value
    true, false = {ast.Gt: (k + 1, 1), ast.GtE: (k, 1), ast.Eq: (k, 1), ast.NotEq: (1, k),
                   ast.Lt: (1, k), ast.LtE: (1, k + 1)}.get(op, (1, 1))
    return max(1, true), max(1, false)


def _facts(node: ast.AST, truth: bool) -> _Known:
    """What is known to be there when ``node`` has come out ``truth``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _facts(node.operand, not truth)
    if isinstance(node, ast.BoolOp):
        parts = [_facts(v, truth) for v in node.values]
        both = isinstance(node.op, ast.And) == truth  # every part came out `truth`
        out = parts[0]
        for part in parts[1:]:
            out = (out | part) if both else (out & part)
        return out
    if truth and (name := _read(node)) is not None:
        return _Known(frozenset({name}))  # a bare read that is true is there
    if not isinstance(node, ast.Compare):
        return _Known()
    names: set[str] = set()
    if len(node.ops) == 1:
        op, left, right = node.ops[0], node.left, node.comparators[0]
        present = (isinstance(op, (ast.IsNot, ast.NotEq)) if truth
                   else isinstance(op, (ast.Is, ast.Eq)))
        if present:
            for side, other in ((left, right), (right, left)):
                if isinstance(other, ast.Constant) and other.value is None:
                    names |= _there_when_not_none(side)
        if (isinstance(op, ast.In if truth else ast.NotIn) and _is_attrs(right)
                and isinstance(left, ast.Constant) and isinstance(left.value, str)):
            names.add(f"{ast.unparse(right)}.{left.value}")
    when_true, when_false = _line_bounds(node)
    return _Known(frozenset(names), when_true if truth else when_false)


def _none_safe(node: ast.AST, parent: ast.AST | None) -> bool:
    """A use that simply comes out false for None: ``txn.store == 'S1'``."""
    if not isinstance(parent, ast.Compare):
        return False
    operands = [parent.left, *parent.comparators]
    k = next(n for n, o in enumerate(operands) if o is node)
    left_ok = k == 0 or isinstance(parent.ops[k - 1], _NONE_SAFE)
    right_ok = k == len(parent.ops) or isinstance(parent.ops[k], (*_NONE_SAFE, ast.In, ast.NotIn))
    return left_ok and right_ok


def _none_checked(tree: ast.AST) -> set[int]:
    """The reads (ids) inside the checks themselves: ``days_since(member.last_purchase) is
    None`` is how a condition asks whether the field is there. Only reads whose None reaches
    the check as None count (:func:`_passes_none`): ``month(member.birthday) is None`` fails
    with an error for a member without a birthday before it compares anything."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(
                node.ops[0], _NONE_SAFE):
            for side, other in ((node.left, node.comparators[0]),
                                (node.comparators[0], node.left)):
                if isinstance(other, ast.Constant) and other.value is None:
                    out |= _passes_none(side)
    return out


def _there_when_not_none(node: ast.AST) -> set[str]:
    """The optional reads known to be there when ``node`` came out other than None: every
    read it evaluated on its way, but not the parts of an ``and``/``or`` or the branches of
    an ``if … else``, of which one may be None (``(member.joined or member.birthday) is not
    None`` says nothing of either)."""
    out: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if (name := _read(n)) is not None:
            out.add(name)
        if not isinstance(n, ast.BoolOp | ast.IfExp):
            todo.extend(ast.iter_child_nodes(n))
    return out


_GIVES_NONE_FOR_NONE = frozenset({"days_since"})  # (year(), month(), len() … fail on None)


def _passes_none(node: ast.AST) -> set[int]:
    """``node`` and the parts of it whose None becomes its value without an error: the
    argument of ``days_since``, the branches of ``a if t else b``, the parts of ``and``/``or``
    (ids)."""
    out = {id(node)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _GIVES_NONE_FOR_NONE and len(node.args) == 1):
        out |= _passes_none(node.args[0])
    elif isinstance(node, ast.IfExp):
        out |= _passes_none(node.body) | _passes_none(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            out |= _passes_none(value)
    return out


def _tested(node: ast.AST, parent: ast.AST | None) -> bool:
    """A use as true or false that simply comes out false for None: ``not x``, the test of
    ``a if x else b``, a part of ``and``/``or`` whose value is not the condition's value."""
    return ((isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not))
            or (isinstance(parent, ast.IfExp) and parent.test is node)
            or isinstance(parent, ast.BoolOp))


def _results(tree: ast.AST) -> set[int]:
    """The nodes whose value can become the condition's value (ids): the whole condition,
    every part of an ``and`` that is (a part that is None makes it None), the last part of an
    ``or`` that is, both branches of an ``if … else`` that is."""
    out: set[int] = set()
    todo = [tree.body if isinstance(tree, ast.Expression) else tree]
    while todo:
        node = todo.pop()
        out.add(id(node))
        if isinstance(node, ast.BoolOp):
            todo += node.values if isinstance(node.op, ast.And) else node.values[-1:]
        elif isinstance(node, ast.IfExp):
            todo += [node.body, node.orelse]
    return out


def _walk_known(node: ast.AST, known: _Known) -> Iterator[tuple[ast.AST, _Known]]:
    """Every node with what is known to be there when it is evaluated: the parts of an
    ``and`` after a check (``x is not None and …``), of an ``or`` after the opposite check
    (``x is None or …``), the branches of ``a if test else b``."""
    yield node, known
    if isinstance(node, ast.BoolOp):
        truth = isinstance(node.op, ast.And)  # the next part runs when this one came out so
        for value in node.values:
            yield from _walk_known(value, known)
            known = known | _facts(value, truth)
    elif isinstance(node, ast.IfExp):
        yield from _walk_known(node.test, known)
        yield from _walk_known(node.body, known | _facts(node.test, True))
        yield from _walk_known(node.orelse, known | _facts(node.test, False))
    else:
        for child in ast.iter_child_nodes(node):
            yield from _walk_known(child, known)


def _expressions(model: ProgramModel) -> Iterator[tuple[_Path, Expression]]:
    for i, tier in enumerate(model.tiers):
        for part, q in (("qualify", tier.qualify), ("retain", tier.retain)):
            if q is not None and q.when is not None:
                yield ("tiers", i, part, "when"), q.when
    sections: tuple[tuple[str, Sequence[EarnRule | Multiplier | Rule | Behaviour]], ...] = (
        ("earn", model.earn), ("multipliers", model.multipliers), ("birthday", model.birthday),
        ("promotions", model.promotions), ("behaviours", model.behaviours))
    for section, items in sections:
        for i, item in enumerate(items):
            if item.when is not None:
                yield (section, i, "when"), item.when
    for i, invariant in enumerate(model.invariants):
        yield ("invariants", i, "expect"), invariant.expect


def _risky_reads(ctx: _Context) -> Iterator[_Smell]:
    """Conditions that read a second purchase line or an optional field without checking
    first that it is there, or host data (``attrs``) that may not be sent: a check counts only
    where it is evaluated before the read, on the path that protects it."""
    for where, expression in _expressions(ctx.model):
        tree = expression.tree
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        results = _results(tree)
        checks = _none_checked(tree)
        said: set[str] = set()
        host: list[str] = []
        for node, known in _walk_known(tree, _Known()):
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                    and node.value.id == "items" and isinstance(node.slice, ast.Constant)
                    and type(node.slice.value) is int):
                index = node.slice.value  # a whole number >= 0: the loader allows no other
                text = ast.unparse(node)
                if index >= known.lines and text not in said:
                    said.add(text)
                    yield _Smell(where, f"reads {text}, but a purchase may have a single line: "
                                 "for such purchases this condition fails with an error",
                                 "use has_category(), has_sku() or amount_in(), or check "
                                 f"len(items) > {index} first (`len(items) > {index} and …`)")
                continue
            name = _read(node)
            if name is None or name in known.names or name in said:
                continue
            parent = parents.get(node)
            quiet = id(node) in checks or _none_safe(node, parent) or (
                _tested(node, parent) and id(node) not in results)
            if name in _OPTIONAL:
                if quiet:
                    continue
                said.add(name)
                yield _Smell(where, f"reads {name} without checking first that it is there: "
                             f"{_OPTIONAL[name]}, and for them this condition fails with an "
                             "error", f"write `{name} is not None and …`")
            elif quiet:
                said.add(name)
                host.append(name)
            else:
                said.add(name)
                owner, _, key = name.rpartition(".")
                yield _Smell(where, f"reads {name}, data the host must send, without checking "
                             "first that it is there: when it is missing it reads as None, and "
                             "this condition fails with an error",
                             f"make sure every host sends it, or write `'{key}' in {owner} "
                             "and …`")
        if host:
            owner, _, key = host[0].rpartition(".")
            yield _Smell(where, f"depends on data the host must send ({', '.join(host)}): "
                         "when it is missing it reads as None and the condition is quietly "
                         "false", "make sure every host sends it, or check for it "
                         f"(`'{key}' in {owner}`)", "info")


# --- LR507 bounds -----------------------------------------------------------------------------

_MAX_FACTOR = Decimal(10)
_MAX_BONUS = 100_000


def _discount_bounds(where: _Path, who: str, rate: Decimal) -> Iterator[_Smell]:
    if rate >= 1:
        yield _Smell(where, f"{who} gives {_pct(rate)} off: members pay nothing",
                     "a discount is what is taken off: 8折 (pay 80%) is 20%", "error")
    elif rate >= Decimal("0.5"):
        yield _Smell(where, f"{who} gives {_pct(rate)} off, half the price or more",
                     "a discount is what is taken off: 8折 (pay 80%) is 20%")


def _amount_off_bounds(where: _Path, who: str, off: Decimal, base: Decimal,
                       basket: str) -> Iterator[_Smell]:
    """An amount taken off, judged against the smallest basket it applies to (满减: the
    threshold; a flat amount: the rule's min_amount). A min_amount of 0 asks for no
    smallest basket, as none does: nothing to judge against."""
    if base <= 0:
        return
    rate = off / base
    if rate >= 1:
        yield _Smell(where, f"{who} takes {_num(off)} off {basket}: it pays nothing",
                     "满300减50 is threshold: 300, off: 50", "error")
    elif rate >= Decimal("0.5"):
        yield _Smell(where, f"{who} takes {_num(off)} off {basket}: {_pct(rate)} off, half "
                     "the price or more", "满300减50 is threshold: 300, off: 50")


def _factor_bounds(where: _Path, who: str, factor: Decimal) -> Iterator[_Smell]:
    if factor > _MAX_FACTOR:
        yield _Smell(where, f"{who} multiplies points by {_num(factor)}, more than "
                     f"{_num(_MAX_FACTOR)}×", "double points is a factor of 2")


def _out_of_bounds(ctx: _Context) -> Iterator[_Smell]:
    """Discounts of half the price or more, multipliers above 10×, bonuses above 100,000
    points, points worth more than 1 currency unit each, a discount cap of 100% or more."""
    model = ctx.model
    currency = model.program.currency
    for i, tier in enumerate(model.tiers):
        if tier.discount is not None:
            yield from _discount_bounds(("tiers", i, "discount"), f"tier {tier.id}", tier.discount)
        yield from _factor_bounds(("tiers", i, "points_multiplier"), f"tier {tier.id}",
                                  tier.points_multiplier)
    for i, multiplier in enumerate(model.multipliers):
        yield from _factor_bounds(("multipliers", i, "factor"), multiplier.id, multiplier.factor)
    for section, i, rule in ctx.rules():
        spec = rule.discount
        if spec is not None and spec.percent is not None:
            yield from _discount_bounds((section, i, "discount"), rule.id, spec.percent)
        elif spec is not None and spec.threshold is not None and spec.off is not None:
            yield from _amount_off_bounds(
                (section, i, "discount", "off"), rule.id, spec.off, spec.threshold,
                f"a basket of exactly the threshold {_num(spec.threshold)} {currency}")
        elif spec is not None and spec.amount is not None and rule.min_amount is not None:
            yield from _amount_off_bounds(
                (section, i, "discount", "amount"), rule.id, spec.amount, rule.min_amount,
                f"a purchase of exactly min_amount {_num(rule.min_amount)} {currency}")
        if rule.points_multiplier is not None:
            yield from _factor_bounds((section, i, "points_multiplier"), rule.id,
                                      rule.points_multiplier)
        if rule.bonus_points is not None and rule.bonus_points > _MAX_BONUS:
            yield _Smell((section, i, "bonus_points"),
                         f"{rule.id} gives {rule.bonus_points:,} bonus points, more than "
                         f"{_MAX_BONUS:,}", "check for extra zeros")
    for i, behaviour in enumerate(model.behaviours):
        if behaviour.points > _MAX_BONUS:
            yield _Smell(("behaviours", i, "points"),
                         f"{behaviour.id} gives {behaviour.points:,} points, more than "
                         f"{_MAX_BONUS:,}", "check for extra zeros")
    redemption = model.redemption
    if redemption is not None and redemption.value > redemption.points:
        yield _Smell(("redemption", "value"),
                     f"each point pays {_num(redemption.value / redemption.points)} {currency}: "
                     f"{_num(redemption.points)} points pay {_num(redemption.value)} {currency}",
                     "points are usually worth a fraction of the currency: 10 points pay 5 "
                     "is points: 10, value: 5")
    for i, reward in enumerate(model.rewards):
        if reward.value is not None and reward.value > reward.points:
            yield _Smell(("rewards", i, "value"),
                         f"{reward.id} is worth {_num(reward.value)} {currency} for "
                         f"{reward.points} points, more than 1 {currency} a point",
                         "check points and value")
    cap = model.policies.discounts.max_total
    if cap is not None and cap >= 1:
        yield _Smell(("policies", "discounts", "max_total"),
                     f"a discount cap of {_pct(cap)} limits nothing",
                     "the cap is the most that all discounts together may take off, e.g. 40%")


# --- LR508 benefits along the tiers ------------------------------------------------------------


def _benefits_fall(ctx: _Context) -> Iterator[_Smell]:
    """A higher tier with a smaller discount, a smaller points multiplier, or without a
    perk of the tier below it. Only the tiers' own settings are compared: promotions and
    multipliers restricted to some tiers combine with them according to the policies and
    the purchase, which ``check`` (tier monotonicity) tests instead."""
    tiers = ctx.model.tiers
    for i, tier in enumerate(tiers[1:], start=1):
        lower = tiers[:i][::-1]  # nearest first
        discount = tier.discount or Decimal(0)
        better = next((t for t in lower if (t.discount or 0) > discount), None)
        if better is not None:
            assert better.discount is not None
            yield _Smell(("tiers", i, "discount"),
                         f"{tier.id} gives {_pct(discount)} off, less than "
                         f"{better.id}'s {_pct(better.discount)}",
                         "higher tiers usually get at least the discount of the tiers below; "
                         "remember 9折 is 10% off and 9.5折 only 5%")
        more = next((t for t in lower if t.points_multiplier > tier.points_multiplier), None)
        if more is not None:
            yield _Smell(("tiers", i, "points_multiplier"),
                         f"{tier.id} earns points ×{_num(tier.points_multiplier)}, less than "
                         f"{more.id}'s ×{_num(more.points_multiplier)}",
                         "higher tiers usually earn at least as fast as the tiers below")
        below = tiers[i - 1]
        missing = [p for p in below.perks if p not in tier.perks]
        if missing:
            yield _Smell(("tiers", i, "perks"),
                         f"{tier.id} does not get {', '.join(missing)}, which {below.id} gets",
                         f"add {', '.join(missing)} to {tier.id}'s perks")


# --- LR509 caps -------------------------------------------------------------------------------


def _caps_too_low(ctx: _Context) -> Iterator[_Smell]:
    """Earn caps of 0, or below the points of one ordinary block (before multipliers)."""
    model = ctx.model
    currency = model.program.currency
    reject = model.policies.points.cap == "reject"
    outcome = ("with cap: reject such a purchase earns nothing from it" if reject
               else "every purchase of one block or more is cut to the cap")
    for i, rule in enumerate(model.earn):
        if rule.cap is None:
            continue
        block = f"{_num(rule.per)} {currency} earn {_num(rule.points)} points"
        if rule.cap == 0:
            yield _Smell(("earn", i, "cap"), f"{rule.id} has a cap of 0, so it never earns "
                         "anything", "remove the cap or raise it", "error")
        elif rule.cap < rule.points:
            yield _Smell(("earn", i, "cap"),
                         f"the cap {rule.cap} is below one block ({block}): {outcome}",
                         f"raise the cap to at least {_num(rule.points)}",
                         "error" if reject else None)
    period = model.policies.points.max_per_period
    if period is not None and period.points == 0:
        yield _Smell(("policies", "points", "max_per_period", "points"),
                     f"max_per_period is 0 points a {period.per}, so no purchase earns any "
                     "points", "remove the limit or raise it", "error")
    elif period is not None and model.policies.points.max_per_transaction is not None \
            and period.points < model.policies.points.max_per_transaction:
        yield _Smell(("policies", "points", "max_per_period", "points"),
                     f"max_per_period {period.points} a {period.per} is below "
                     f"max_per_transaction {model.policies.points.max_per_transaction}, so "
                     "no purchase can ever reach max_per_transaction",
                     "raise max_per_period, or lower max_per_transaction to it")
    limit = model.policies.points.max_per_transaction
    if limit is None:
        return
    where: _Path = ("policies", "points", "max_per_transaction")
    if limit == 0:
        yield _Smell(where, "max_per_transaction is 0, so no purchase earns any points",
                     "remove the limit or raise it", "error")
        return
    biggest = max(model.earn, key=lambda r: r.points, default=None)
    if biggest is not None and limit < biggest.points:
        yield _Smell(where, f"max_per_transaction {limit} is below one block of {biggest.id} "
                     f"({_num(biggest.per)} {currency} earn {_num(biggest.points)} points)",
                     f"raise it to at least {_num(biggest.points)}", "error" if reject else None)


# --- LR510 repeatable flat rewards --------------------------------------------------------------


def _conjuncts(node: ast.AST) -> list[ast.AST]:
    """The parts of a condition that must all hold: ``a and (b and c)`` gives a, b, c."""
    if isinstance(node, ast.Expression):
        return _conjuncts(node.body)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [part for value in node.values for part in _conjuncts(value)]
    return [node]


def _first_order_test(node: ast.AST) -> bool:
    """``member.orders == 0`` (``< 1``, ``<= 0``, either way round) or
    ``member.last_purchase is None``: true only before a member's first order."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return False
    left, right, op = node.left, node.comparators[0], type(node.ops[0])
    if ast.unparse(right) in ("member.orders", "member.last_purchase"):
        left, right, op = right, left, _FLIP.get(op, op)
    if not isinstance(right, ast.Constant):
        return False
    read, value = ast.unparse(left), right.value
    if read == "member.last_purchase":
        return op is ast.Is and value is None
    return read == "member.orders" and type(value) is int and (
        (op is ast.Eq and value == 0) or (op is ast.Lt and value == 1)
        or (op is ast.LtE and value == 0))


def _first_order_only(expression: Expression | None) -> bool:
    """The rule limits itself: a part of its condition that must hold is
    ``member.orders == 0`` or ``member.last_purchase is None`` (see _first_order_test)."""
    if expression is None:
        return False
    return any(_first_order_test(part) for part in _conjuncts(expression.tree))


def _unlimited_gifts(ctx: _Context) -> Iterator[_Smell]:
    """Bonus points or perks a member can collect again with every purchase (no limit)."""
    for section, i, rule in ctx.rules():
        if rule.limit is not None or _first_order_only(rule.when):
            continue
        gifts: list[tuple[str, str]] = []
        if rule.bonus_points is not None:
            gifts.append(("bonus_points", f"{rule.bonus_points:,} bonus points"))
        if rule.perk is not None:
            gifts.append(("perk", f"the perk {rule.perk}"))
        for key, what in gifts:
            yield _Smell((section, i, key),
                         f"{rule.id} gives {what} on every matching purchase, with no usage "
                         "limit: splitting one order into several collects it each time",
                         "add a limit such as {times: 1, per: day} (or per year, ever) if it "
                         "is meant once")


# --- LR511 settings without effect --------------------------------------------------------------


def _no_effect(ctx: _Context) -> Iterator[_Smell]:
    """Settings the engine never consults: ``exclusive`` on a birthday rule, ``retain`` on
    the first tier or in a program without reviews; and settings that change nothing: a
    group of one rule, a factor of 1, an ignored code no check has."""
    model = ctx.model
    for i, rule in enumerate(model.birthday):
        if rule.exclusive:
            yield _Smell(("birthday", i, "exclusive"),
                         f"exclusive has no effect on the birthday rule {rule.id}: only "
                         "promotions exclude each other", "move it to promotions, or remove "
                         "exclusive")
    reviews = model.reviews.schedule is not None or model.reviews.anniversary
    for i, tier in enumerate(model.tiers):
        if tier.retain is None:
            continue
        if i == 0:
            yield _Smell(("tiers", i, "retain"), f"{tier.id} is the first tier: members "
                         "cannot drop below it, so retain has no effect", "remove retain")
        elif not reviews:
            yield _Smell(("tiers", i, "retain"), f"retain is checked at reviews, and this "
                         f"program has none, so {tier.id}'s retain has no effect",
                         "add reviews: {schedule: …} or {anniversary: true}, or remove retain")
    # a group of one rule keeps nothing out: what a group's name written two ways makes
    groups: dict[str, list[tuple[str, int]]] = {}
    for section in ("birthday", "promotions"):
        for i, rule in enumerate(getattr(model, section)):
            if rule.group is not None:
                groups.setdefault(rule.group, []).append((section, i))
    for group, members in groups.items():
        if len(members) == 1:
            section, i = members[0]
            others = [g for g in groups if g != group]
            near = did_you_mean(group, others)
            yield _Smell((section, i, "group"), f"group {group} has only this rule, so it "
                         "keeps nothing out", near or "give the rules that compete the same "
                         "group, or remove group")
    for section in ("multipliers", "birthday", "promotions"):
        for i, item in enumerate(getattr(model, section)):
            key = "factor" if section == "multipliers" else "points_multiplier"
            if getattr(item, key) == 1:
                yield _Smell((section, i, key), f"{key} 1 multiplies points by one",
                             "remove it, or give the factor meant (2 = double)")
    known = set(CHECKS)
    for i, code in enumerate(model.lint.ignore):
        if code not in known:
            yield _Smell(("lint", "ignore", i), f"{code} is no lint check, so ignoring it "
                         "has no effect", did_you_mean(code, sorted(known)) or
                         "see loyaltyrules lint --help for the codes")


# --- LR512 settings that cancel their feature ---------------------------------------------------


def _kept_while_spend_grows(tier: Tier) -> bool:
    """Does a member who reached ``tier`` on its qualify terms still meet its keep terms
    (retain, else qualify) for as long as spend and orders do not fall? Only terms on spend
    and orders count: the points balance falls and a condition may turn false."""
    q, r = tier.qualify, tier.retain
    if q is None:
        return False  # pragma: no cover - a tier above the first has qualify (LR405)
    if any(t is not None and (t.when is not None or t.points is not None) for t in (q, r)):
        return False
    if r is None:
        return True
    earn, keep = _metrics(q), _metrics(r)
    if q.match == "all" or len(earn) == 1:  # every one of earn's thresholds was met
        met = [m in earn and keep[m] <= earn[m] for m in keep]
        return all(met) if r.match == "all" else any(met)
    # match any: only one of earn's thresholds may have been met, whichever it was
    return (r.match == "any" or len(keep) == 1) and all(
        m in keep and keep[m] <= earn[m] for m in earn)


def _effects(rule: Rule) -> list[str]:
    """What a rule gives besides its discount, for messages."""
    out = []
    if rule.points_multiplier is not None:
        out.append(f"points ×{_num(rule.points_multiplier)}")
    if rule.bonus_points is not None:
        out.append(f"{rule.bonus_points:,} bonus points")
    if rule.perk is not None:
        out.append(f"the perk {rule.perk}")
    return out


def _pending_outlasts_expiry(model: ProgramModel) -> Iterator[_Smell]:
    """Points pending for as long as the shortest life a lot can have: those earned late in
    a year, quarter or month expire before they are ever usable."""
    from ._lifecycle import expiry_day

    pending, expiry = model.ledger.pending_days, model.ledger.expiry
    if not pending or expiry.inactive_months is not None or expiry_day(
            expiry, date(2024, 1, 1)) is None:
        return
    # a lot earned at the last moment of day d is usable from d + pending (at that moment)
    # and gone at the first moment of its expiry day: lost when d + pending reaches it. The
    # days of a leap-year cycle cover every length of month, quarter and year
    first = date(2024, 1, 1)
    lives = []
    for n in range(1461):
        day = first + timedelta(days=n)
        end = expiry_day(expiry, day)
        assert end is not None
        lives.append(((end - day).days, day))
    shortest, day = min(lives)
    if pending < shortest:
        return
    yield _Smell(("ledger", "pending_days"),
                 f"points stay pending {pending} day{'s' if pending != 1 else ''}, but "
                 "points earned late on "
                 f"{day.day} {day:%B} expire {shortest} day{'s' if shortest > 1 else ''} "
                 "later: points earned late in a period expire before they are ever usable",
                 "shorten pending_days (a return window is usually 7 to 30 days), or let "
                 "points live longer")


def _cancelled(ctx: _Context) -> Iterator[_Smell]:
    """Settings that load but switch off the feature they configure: a discount cap of 0%,
    points that may pay 0% of an order, reviews that can never move anyone down, gifts no
    amount can satisfy, referrals worth 0 points, households that pool nothing, a keep with
    no length, tier_gap signals with no gap to measure, and 0% discounts."""
    model = ctx.model
    stack = model.policies.discounts.combine == "stack"
    if model.policies.discounts.max_total == 0:
        yield _Smell(("policies", "discounts", "max_total"),
                     "a discount cap of 0% cancels every discount: nothing is ever taken off, "
                     "and a rule whose discount comes to 0 does not apply",
                     "the cap is the most that all discounts together may take off, e.g. "
                     "40%; remove it for no cap")
    yield from _pending_outlasts_expiry(model)
    for section, i, rule in ctx.rules():
        spec = rule.discount
        if spec is None or spec.percent != 0:
            continue
        others = _effects(rule)
        if stack and others:
            what = (f"a rule whose discount comes to 0 does not apply, so it never gives "
                    f"{' or '.join(others)} either")
        elif stack:
            what = "a rule whose discount comes to 0 does not apply"
        elif others:
            what = (f"with combine: best the rule does not apply, so it gives no "
                    f"{' or '.join(others)}, on every purchase where no other rule's discount "
                    "is chosen (where one is, they are given)")
        else:
            what = "the discount never takes anything off"
        yield _Smell((section, i, "discount"), f"{rule.id} gives 0% off: {what}",
                     "give the discount a percentage, or remove it")
    redemption = model.redemption
    if redemption is not None and redemption.max_share == 0:
        outcome = "cut to 0 points" if redemption.over_ask == "clamp" else "refused"
        yield _Smell(("redemption", "max_share"),
                     f"max_share is 0%, so points can pay no part of an order: every "
                     f"redemption is {outcome}",
                     "max_share is the most of an order points may pay, e.g. 50% (the "
                     "default, 100%, lets points pay it all)")
    reviews = model.reviews
    households = model.households
    if ((reviews.schedule is not None or reviews.anniversary)
            and reviews.window == "lifetime" and reviews.rolling_months is None
            and not (households is not None and households.tiers_on == "group")
            and all(_kept_while_spend_grows(t) for t in model.tiers[1:])):
        key, when = (("schedule", "on a schedule") if reviews.schedule is not None
                     else ("anniversary", "on each membership anniversary"))
        yield _Smell(("reviews", key),
                     f"reviews run {when}, but tiers count lifetime spend, which only grows "
                     "(refunds aside): a review can move members up but never down",
                     "to requalify members each year, count spend over a window: "
                     "reviews: {window: calendar_year} (or membership_year, or "
                     "rolling_months: 12)")
    keep = reviews.keep
    if keep is not None and keep.until is None and keep.months is None:
        yield _Smell(("reviews", "keep"), "keep gives neither until nor months, so no tier "
                     "is ever kept", "write keep: {until: end_of_year}, {until: "
                     "end_of_next_year} or {months: 12}")
    # (gifting that no amount satisfies does not load: a program error, not a warning)
    referral = model.referral
    if referral is not None and not referral.referrer_points and not referral.referee_points:
        yield _Smell(("referral",), "referrer_points and referee_points are both 0, so a "
                     "referral rewards nobody", "give referrer_points, referee_points or "
                     "both, or remove referral")
    if households is not None and households.share == 0 and households.tiers_on == "individual":
        yield _Smell(("households", "share"),
                     "households pool a share of 0% of the points their members earn, and "
                     "tiers count each member's own spend, so a household changes nothing",
                     "set a share such as 50%, or tiers_on: group to let households share "
                     "tiers")
    tiers = model.tiers
    for i, signal in enumerate(model.signals):
        if signal.on == "tier_falls" and signal.times is not None:
            most = len(tiers) - 1
            if model.reviews.schedule is None and not model.reviews.anniversary:
                why = "the program has no reviews, and members move down only at a review"
                hint = "add reviews (a schedule, or anniversary: true), or remove the signal"
            elif signal.times > most:
                why = (f"{len(tiers)} tiers allow at most {most} fall{'s' if most != 1 else ''} "
                       f"in a row, not {signal.times}")
                hint = f"lower times to {most} or less"
            else:
                continue
            yield _Smell(("signals", i, "times"), f"the tier_falls signal {signal.id} never "
                         f"fires: {why}", hint)
            continue
        if signal.on != "tier_gap":
            continue
        measured = [(metric, getattr(signal, metric)) for metric in ("spend", "points")]
        if any(limit is not None and t.qualify is not None
               and getattr(t.qualify, metric) is not None
               for t in tiers[1:] for metric, limit in measured):
            continue
        if len(tiers) == 1:
            why = f"there is no tier above {tiers[0].id}"
        else:
            given = " or ".join(m for m, limit in measured if limit is not None)
            why = f"no tier above {tiers[0].id} qualifies on {given}"
        yield _Smell(("signals", i, "on"), f"the tier_gap signal {signal.id} never fires: "
                     f"{why}", "measure the gap in what the next tier asks for (its "
                     "qualify.spend or qualify.points), or remove the signal")


# --- the table and the entry point ------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One lint rule: its stable code, default severity, what it looks for, and the
    generator that looks."""

    code: str
    severity: Severity
    description: str
    run: Callable[[_Context], Iterator[_Smell]] = field(repr=False)


# --- LR513 conditions that can never hold -------------------------------------------------------

# what a part of a date or the clock can be: `txn.hour >= 24` or `today.month == 13` is never
_RANGED = {"month": (1, 12), "day": (1, 31), "hour": (0, 23), "minute": (0, 59),
           "weekday": (1, 7)}
# text a rule's own settings already fix: `channels: [app]` and `txn.channel == 'store'`
_CHOSEN = ("txn.channel", "event.type", "tier", "member.tier")

@dataclass
class _Span:
    """The numbers an and-part allows for one value: [low, high], either end open."""

    low: _Bound | None = None
    high: _Bound | None = None

    def meet(self, low: _Bound | None, high: _Bound | None) -> None:
        if low is not None and (self.low is None or low[0] > self.low[0]
                                or (low[0] == self.low[0] and not low[1])):
            self.low = low
        if high is not None and (self.high is None or high[0] < self.high[0]
                                 or (high[0] == self.high[0] and not high[1])):
            self.high = high

    def empty(self, whole: bool) -> bool:
        if self.low is None or self.high is None:
            return False
        (lo, lo_in), (hi, hi_in) = self.low, self.high
        if whole:  # (only whole numbers: 3 < x < 4 has none)
            first = math.ceil(lo) if lo_in else math.floor(lo) + 1
            last = math.floor(hi) if hi_in else math.ceil(hi) - 1
            return first > last
        return lo > hi or (lo == hi and not (lo_in and hi_in))


def _is_date(node: ast.expr) -> bool:
    """`today`, `txn.at`, `txn.date`, a member's date field: a value whose parts have a
    range (a host's `attrs.day` is whatever the host sends)."""
    if isinstance(node, ast.Name):
        return node.id == "today"
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and ((node.value.id == "txn" and node.attr in ("at", "date"))
                 or (node.value.id == "member" and MEMBER_FIELDS.get(node.attr, "")
                     .startswith("date"))))


def _ranged(node: ast.expr) -> tuple[int, int] | None:
    """The range of `today.month`, `txn.hour`, `weekday(today)` … or None."""
    if isinstance(node, ast.Attribute) and node.attr in _RANGED and (
            _is_date(node.value) or (isinstance(node.value, ast.Name)
                                     and node.value.id == "txn"
                                     and node.attr in ("hour", "weekday"))):
        return _RANGED[node.attr]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in ("day", "month", "weekday"):
        return _RANGED[node.func.id]
    return None


def _number(node: ast.expr) -> Decimal | None:
    value = _constant(node)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return Decimal(value)
    return None


def _never(expression: Expression, chosen: dict[str, set[str]]
           ) -> tuple[str, str] | None:
    """Why a condition can never hold and a hint, or None: and-parts that no value
    satisfies together (`txn.amount >= 500 and txn.amount < 100`), a part of a date or the
    clock out of its range (`txn.weekday == 0`: Monday is 1, Sunday 7), or text the rule's
    settings already fix
    (``chosen``: `channels: [app]` with `txn.channel == 'store'`)."""
    spans: dict[str, _Span] = {}
    whole: dict[str, tuple[int, int] | None] = {}
    allowed = {key: set(values) for key, values in chosen.items()}
    excluded: dict[str, set[str]] = {}
    pairs = [(operands[k], op, operands[k + 1])  # (3 < x < 4 is 3 < x and x < 4)
             for part in _conjuncts(expression.tree) if isinstance(part, ast.Compare)
             for operands in ([part.left, *part.comparators],)
             for k, op in enumerate(part.ops)]
    for left, op, right in pairs:
        if _number(left) is not None and _number(right) is None:
            left, right = right, left
            op = _FLIP.get(type(op), type(op))()
        key = ast.unparse(left)
        number = _number(right)
        if number is not None and isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq)):
            span = spans.setdefault(key, _Span())
            limits = whole.setdefault(key, _ranged(left))
            if limits is not None:
                span.meet((Decimal(limits[0]), True), (Decimal(limits[1]), True))
            bound = (number, not isinstance(op, (ast.Lt, ast.Gt)))
            span.meet(bound if isinstance(op, (ast.Gt, ast.GtE, ast.Eq)) else None,
                      bound if isinstance(op, (ast.Lt, ast.LtE, ast.Eq)) else None)
            if span.empty(limits is not None):
                shown = f" ({key} is {limits[0]} to {limits[1]})" if limits else ""
                return (f"no {key} satisfies all of its comparisons{shown}",
                        "weekdays are 1 (Monday) to 7 (Sunday), hours 0–23, months 1–12"
                        if limits else "check the bounds: one excludes the other")
            continue
        if key not in _CHOSEN or not isinstance(op, (ast.Eq, ast.In, ast.NotEq, ast.NotIn)):
            continue
        # (`in` a list of texts, `==` one text: `in 'app,web'` looks inside the text, and
        # `!= ['app']` is always true)
        value = _constant(right)
        if isinstance(op, (ast.In, ast.NotIn)):
            values = set(value) if isinstance(value, tuple) and all(
                isinstance(v, str) for v in value) else None
        else:
            values = {value} if isinstance(value, str) else None
        if values is None:
            continue
        if isinstance(op, (ast.Eq, ast.In)):
            allowed[key] = allowed[key] & values if key in allowed else values
        else:
            excluded[key] = excluded.get(key, set()) | values
        if key in allowed and not allowed[key] - excluded.get(key, set()):
            said = {"txn.channel": "its channels", "event.type": "its event",
                    "tier": "its tiers", "member.tier": "its tiers"}[key]
            fixed = f" with {said} ({', '.join(sorted(chosen[key]))})" if key in chosen else ""
            return (f"no {key} satisfies all of its comparisons{fixed}",
                    f"compare with a value {said} allow" if key in chosen
                    else "check the values: one excludes the other")
    return None


def _never_holds(ctx: _Context) -> Iterator[_Smell]:
    """Conditions of rules, earn rules, multipliers and behaviours that are always false
    (error: the rule can never apply) or always true (warning: the condition says
    nothing)."""
    model = ctx.model
    same_tier = model.policies.tiers.benefits_from == "next_transaction"
    for section in ("earn", "multipliers", "birthday", "promotions", "behaviours"):
        for i, item in enumerate(getattr(model, section)):
            when = item.when
            if when is None:
                continue
            where: _Path = (section, i, "when")
            chosen: dict[str, set[str]] = {}
            if getattr(item, "channels", ()):
                chosen["txn.channel"] = set(item.channels)
            if section == "behaviours":
                chosen["event.type"] = {item.event}
            elif item.tiers and same_tier:  # (tiers test the benefits tier, tier the one
                chosen["tier"] = chosen["member.tier"] = set(item.tiers)  # before)
            always = _always(when)
            if always is False:
                yield _Smell(where, f"{item.id} can never apply: `{when.source}` is always "
                             "false", "fix the condition, or remove the rule", "error")
            elif always is True:
                yield _Smell(where, f"`{when.source}` is always true, so it says nothing",
                             "remove when, or write the condition meant", "warning")
            elif (never := _never(when, chosen)) is not None:
                yield _Smell(where, f"{item.id} can never apply: {never[0]}", never[1],
                             "error")


# --- LR514 redemption steps worth less than the currency's unit ------------------------------


def _steps_below_unit(ctx: _Context) -> Iterator[_Smell]:
    """A redemption ``step`` worth less than the smallest amount the currency pays (100
    points = ¥1 with step 1): points are only taken for money they pay, so many requests
    are refused (or trimmed, with ``over_ask: clamp``); the step suggested is the smallest
    whose points pay whole units."""
    r = ctx.model.redemption
    if r is None:
        return
    currency, quantum = ctx.model.program.currency, ctx.program.quantum
    per_point = Fraction(r.value) / Fraction(r.points)  # (exact: Decimal → Fraction)
    if r.step * per_point >= Fraction(quantum):
        return
    rate = Redeeming(r.points, r.value, r.step, quantum)
    least = rate.points_for(1)
    spare = least + r.step  # (one step more pays the same, unless steps are nearly a unit)
    example = (f", or {spare} (which pay {_num(quantum)} {currency}, as {least} do),"
               if rate.units(spare) == 1 else "")
    fits = (per_point / Fraction(quantum)).denominator  # the fewest points paying whole units
    outcome = "trimmed to the points that pay" if r.over_ask == "clamp" else "refused"
    yield _Smell(("redemption", "step"),
                 f"a step of {r.step} point{'s' if r.step > 1 else ''} is worth "
                 f"{_fraction(r.step * per_point)} {currency}, less than {_num(quantum)} "
                 f"{currency}, the smallest amount paid: points are only taken for money they "
                 f"pay, so a request of fewer than {least} points{example} is {outcome}",
                 f"step: {fits} ({fits} points pay {_fraction(fits * per_point)} {currency})")


def _fraction(value: Fraction) -> str:
    """A money value worked out exactly, as a decimal (to 6 places when it does not end)."""
    exact = Decimal(value.numerator) / value.denominator
    rounded = exact.quantize(Decimal("0.000001"))
    return _num(exact if exact == rounded else rounded)


CHECKS: Mapping[str, Check] = MappingProxyType({check.code: check for check in (
    Check("LR501", "warning", "tiers nobody can reach (error), that everybody reaches at once "
          "(a 0 threshold too), that need what a lower tier needs, or that are harder to keep "
          "than to earn",
          _tier_ladder),
    Check("LR502", "warning", "birthday rules, promotions and rewards whose window is over",
          _windows_over),
    Check("LR503", "error", "rules whose schedule falls on no day (inside their window)",
          _windows_never),
    Check("LR504", "warning", "exclusive promotions that can match the same purchase",
          _exclusive_overlaps),
    Check("LR505", "warning", "perks that no tier, rule or reward grants", _unused_perks),
    Check("LR506", "warning", "conditions that read a second purchase line, an optional field "
          "or host data (attrs) without checking first that it is there, where a missing "
          "value raises (host data that is only quietly false: info)", _risky_reads),
    Check("LR507", "warning", "discounts of 50% or more (100%: error; an amount off counts "
          "against its threshold or min_amount), multipliers above 10, "
          "bonuses above 100,000 points, points worth more than 1 currency unit, a discount "
          "cap of 100%", _out_of_bounds),
    Check("LR508", "warning", "a higher tier with a smaller discount or points multiplier, "
          "or without a perk of the tier below", _benefits_fall),
    Check("LR509", "warning", "earn caps and max_per_transaction of 0 (error) or below one "
          "block (error with points.cap: reject), max_per_period of 0 (error) or below "
          "max_per_transaction", _caps_too_low),
    Check("LR510", "info", "bonus points or perks collectable again on every purchase "
          "(no usage limit)", _unlimited_gifts),
    Check("LR511", "warning", "settings with no effect: exclusive on a birthday rule, retain "
          "on the first tier or without reviews, a group of one rule, a factor of 1, an "
          "ignored code that is no check", _no_effect),
    Check("LR512", "warning", "settings that cancel their feature: a discount cap of 0%, a 0% "
          "discount, redemption max_share 0%, reviews of lifetime spend (never move down), "
          "referral of 0 points, households sharing 0%, keep with "
          "no length, tier_gap signals with no gap to measure, tier_falls signals that "
          "cannot fire, points pending longer than they can live",
          _cancelled),
    Check("LR513", "error", "conditions that can never hold (a constant false, comparisons "
          "no value meets together, a weekday, hour or month out of its range, a channel, "
          "event or tier the rule's own settings exclude) or always hold (warning)",
          _never_holds),
    Check("LR514", "warning", "a redemption step worth less than the currency's smallest "
          "unit (points that would pay nothing: requests refused or trimmed)",
          _steps_below_unit),
)})
"""Every lint check by code, in code order."""


def describe_checks() -> list[tuple[str, str, str]]:
    """``(code, default severity, description)`` for every check, for docs and ``--help``."""
    return [(c.code, c.severity, c.description) for c in CHECKS.values()]


def lint(program: Program, *, today: date) -> list[Finding]:
    """Every design smell in ``program``, sorted by position; codes the program lists under
    ``lint: {ignore: […]}`` are left out. ``today`` (a local date in the program's zone)
    decides which windows are over.

    >>> [f.code for f in lint(program, today=date(2026, 3, 1))]     # doctest: +SKIP
    ['LR508', 'LR508']
    """
    context = _Context(program, today)
    smap = program.source_map
    ignored = set(program.model.lint.ignore)
    findings: list[Finding] = []
    for check in CHECKS.values():
        if check.code in ignored:
            continue
        for smell in check.run(context):
            position = smap.locate(smell.path)
            findings.append(Finding(
                code=check.code,
                severity=smell.severity or check.severity,
                message=smell.message,
                path=smell.path,
                source=smap.source,
                line=position.line if position else None,
                column=position.column if position else None,
                hint=smell.hint,
            ))
    findings.sort(key=lambda f: (f.line is None, f.line or 0, f.column or 0, f.code,
                                 format_path(f.path)))
    return findings
