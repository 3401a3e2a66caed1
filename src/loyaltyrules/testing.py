"""Hypothesis strategies that generate valid inputs for one program.

Install the test extra first: ``pip install loyaltyrules[test]`` (hypothesis is an optional
dependency; importing this module without it raises an ImportError saying so).

Every strategy takes the program and draws from what that program talks about: its tiers,
the categories, SKUs and channels its rules and multipliers name (plus a few others), amounts
in the currency's minor units around its thresholds, and the instants that matter in its time
zone — birthdays including 29 February, month and year ends, the edges of promotion windows,
scheduled days (the 8th of the month when nothing is scheduled), tier review days and
daylight-saving changes — and, for about half of the instants, the days the program's dated
promotions and birthday rules actually apply.

What comes out is plain data in the host's input format, which is also the step format of
scenario files: money as ``Decimal`` strings with the currency's minor units (``"100.00"``),
instants as ISO strings with the program zone's offset. A failing example can be pasted into a
``*.scenarios.yaml`` file as it is.

>>> from hypothesis import given                                    # doctest: +SKIP
>>> import loyaltyrules as lr                                       # doctest: +SKIP
>>> from loyaltyrules.testing import members, transactions          # doctest: +SKIP
>>> program = lr.load_program("programs/retail-4tier.yaml")         # doctest: +SKIP
>>> @given(members(program), transactions(program))                 # doctest: +SKIP
... def test_payable_is_never_negative(member, txn):
...     assert lr.evaluate(program, member, txn).payable >= 0

Added in 0.1.0.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "loyaltyrules.testing needs hypothesis: pip install loyaltyrules[test]"
    ) from exc
from pydantic import BaseModel

from ._calendar import birthday_in_year
from ._decision import Decision, LifecycleDecision
from ._expressions import Expression
from ._member import EARLIEST, LATEST, MemberState, instant_text
from ._model import Window
from ._program import Program
from ._scenario import run_step as _scenario_step

__all__ = [
    "STEP_KINDS",
    "amounts",
    "events",
    "instants",
    "members",
    "purchases",
    "run_step",
    "scenarios",
    "transactions",
]

STEP_KINDS = ("purchase", "refund", "behaviour", "reward", "advance")

#: The years instants are drawn from: two leap years (2024, 2028) and the years between.
YEARS = (2024, 2025, 2026, 2027, 2028)

_EXTRA_CATEGORIES = ("general", "other")
_EXTRA_CHANNELS = ("store", "online", "app")
_EXTRA_SKUS = ("a", "b", "c")
_BIRTHDAYS = (
    date(1992, 2, 29), date(2000, 2, 29), date(1991, 2, 28), date(1990, 3, 1),
    date(1985, 1, 1), date(1988, 12, 31), date(1994, 3, 20), date(1993, 4, 30),
    date(1987, 11, 8), date(1996, 7, 15),
)
_TIMES = (time(12, 0), time(0, 0), time(23, 59, 59))


# --- what a program talks about -------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """Everything the strategies draw from, collected once per program."""

    tiers: tuple[str, ...]
    categories: tuple[str, ...]
    skus: tuple[str, ...]
    channels: tuple[str, ...]
    quantum: Decimal
    unit: int  # minor units in one major unit (100 for CNY, 1 for JPY)
    zone: tzinfo
    special_amounts: tuple[int, ...]  # thresholds ± one minor unit
    marks: tuple[int, ...]  # the program's thresholds, in minor units
    thresholds: tuple[int, ...]  # what a purchase must reach: min_amount, min_paid, 满减
    spend_marks: tuple[int, ...]  # tier spend thresholds, in minor units
    point_marks: tuple[int, ...]
    order_marks: tuple[int, ...]
    ordinary: tuple[datetime, ...]
    month_edges: tuple[datetime, ...]  # the first and last day of every month
    year_edges: tuple[datetime, ...]  # the last second of a year and the first of the next
    leap_days: tuple[datetime, ...]  # 28 February, 29 February (leap years), 1 March
    scheduled: tuple[datetime, ...]  # schedule days of promotions and reviews (else the 8th)
    rule_days: tuple[datetime, ...]  # days a dated rule applies: in its window, on its schedule
    window_edges: tuple[datetime, ...]
    dst_changes: tuple[datetime, ...]
    behaviour_events: tuple[str, ...]
    event_attrs: tuple[str, ...]
    txn_attrs: tuple[str, ...]
    member_attrs: tuple[str, ...]
    refund_days: int
    pending_days: int
    referral: bool
    redemption_step: int | None
    birthday_feb29: Literal["feb28", "mar1"]


def _expressions(value: Any) -> Iterator[str]:
    if isinstance(value, Expression):
        yield value.source
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _expressions(getattr(value, name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _expressions(item)


_CALL = re.compile(r"\b(has_category|amount_in|quantity_in|has_sku)\s*\(([^)]*)\)")
_QUOTED = re.compile(r"""'([^'\\]{1,64})'|"([^"\\]{1,64})\"""")


def _quoted(text: str) -> list[str]:
    return [a or b for a, b in _QUOTED.findall(text)]


def _attr_names(sources: list[str], owner: str) -> tuple[str, ...]:
    pattern = re.compile(rf"\b{owner}\.attrs(?:\.([A-Za-z_]\w*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
    found: dict[str, None] = {}
    for source in sources:
        for a, b in pattern.findall(source):
            found[a or b] = None
    return tuple(found)


def _unique(*groups: Any) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for group in groups:
        for value in group:
            out[str(value)] = None
    return tuple(out)


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    """A wall-clock time in ``zone`` as a real instant (normalised through UTC, so a time that
    a daylight-saving change skips becomes the instant the zone actually means)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)


def _dst_changes(zone: tzinfo, years: tuple[int, ...]) -> list[datetime]:
    """The instants the zone's UTC offset changes, to the second."""
    out: list[datetime] = []
    for year in years:
        day = datetime(year, 1, 1, 12, tzinfo=UTC)
        before = day.astimezone(zone).utcoffset()
        while day.year == year:
            nxt = day + timedelta(days=1)
            after = nxt.astimezone(zone).utcoffset()
            if after != before:
                lo, hi = 0, 86_400
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if (day + timedelta(seconds=mid)).astimezone(zone).utcoffset() == before:
                        lo = mid
                    else:
                        hi = mid
                out.append(day + timedelta(seconds=hi))
                before = after
            day = nxt
    return out


def _window_instants(window: Window, zone: tzinfo) -> list[datetime]:
    start, end = window.bounds(zone)
    out: list[datetime] = []
    for edge in (start, end):
        if edge is not None:
            out += [t for t in (edge - timedelta(seconds=1), edge) if _accepted(t)]
    return out


def _accepted(at: datetime) -> bool:
    """An instant the engine takes, with a year to spare for what follows it in a scenario
    (a window may end on the last day the engine accepts)."""
    return at >= EARLIEST and at + _SPARE < LATEST


_SPARE = timedelta(days=400)


_RULE_DAYS = 24
"""At most this many days per dated rule: its first and last, and others spread between."""


def _spread(days: list[date]) -> list[date]:
    """Up to :data:`_RULE_DAYS` of ``days`` (sorted), the first and last among them."""
    if len(days) <= _RULE_DAYS:
        return days
    step = (len(days) - 1) / (_RULE_DAYS - 1)
    return [days[round(k * step)] for k in range(_RULE_DAYS)]


def _rule_days(rules: tuple[Any, ...], zone: tzinfo) -> set[date]:
    """The days each promotion or birthday rule with a window or a schedule applies on,
    in :data:`YEARS`: the days of its schedule inside its window, or the days of its window
    (a bounded number of each), so a yearly 18 June or a one-day 11.11 is actually tried."""
    lo, hi = date(YEARS[0], 1, 1), date(YEARS[-1], 12, 31)
    out: set[date] = set()
    for rule in rules:
        window, schedule = rule.window, rule.schedule
        if window is None and schedule is None:
            continue
        first, last = lo, hi
        if window is not None:
            start, end = window.bounds(zone)
            if start is not None:
                first = max(first, start.astimezone(zone).date())
            if end is not None:
                last = min(last, (end - timedelta(microseconds=1)).astimezone(zone).date())
        if first > last:
            continue
        if schedule is not None:
            found = schedule.build().between(datetime.combine(first, time(0, 0)),
                                             datetime.combine(last, time(0, 0)), inc=True)
            days = [d.date() for d in found]
        else:
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        out.update(_spread(days))
    return out


@lru_cache(maxsize=64)
def _facts(program: Program) -> _Facts:
    model = program.model
    zone = program.zone
    rules = (*model.birthday, *model.promotions)
    sources = list(_expressions(model))
    expr_categories: list[str] = []
    expr_skus: list[str] = []
    expr_channels: list[str] = []
    for source in sources:
        for name, args in _CALL.findall(source):
            (expr_skus if name == "has_sku" else expr_categories).extend(_quoted(args))
        if "channel" in source:
            expr_channels.extend(_quoted(source))
    categories = _unique(
        _EXTRA_CATEGORIES[:1],
        *(r.categories for r in model.earn), *(r.exclude_categories for r in model.earn),
        *(m.categories for m in model.multipliers), *(r.categories for r in rules),
        model.policies.discounts.exclude_categories,
        model.policies.qualifying_spend.exclude_categories,
        expr_categories, _EXTRA_CATEGORIES[1:],
    )
    skus = _unique(_EXTRA_SKUS, *(m.skus for m in model.multipliers),
                   *(r.skus for r in rules), expr_skus)
    channels = _unique(
        _EXTRA_CHANNELS[:1], *(r.channels for r in model.earn),
        *(m.channels for m in model.multipliers), *(r.channels for r in rules), expr_channels,
        _EXTRA_CHANNELS[1:],
    )
    quantum = program.quantum
    unit = int(1 / quantum)

    def minor(amount: Decimal) -> int:
        return int(amount * unit)

    marks: list[int] = []
    thresholds: set[int] = set()
    for rule in rules:
        for value in (rule.min_amount, rule.min_paid):
            if value is not None:
                marks.append(minor(value))
                thresholds.add(minor(value))
        spec = rule.discount
        if spec is not None and spec.threshold is not None:
            thresholds.add(minor(spec.threshold))
            if spec.repeat:
                thresholds.add(minor(spec.threshold) * 2)
        if spec is not None:
            for value in (spec.threshold, spec.amount, spec.off):
                if value is not None:
                    marks.append(minor(value))
            if spec.threshold is not None:
                marks += [minor(spec.threshold) * 2, minor(spec.threshold) * 3]
    for earn in model.earn:
        marks += [minor(earn.per), minor(earn.per) * 10]
    special = sorted({m + d for m in marks for d in (-1, 0, 1) if m + d > 0})
    marks = sorted({m for m in marks if m > 0})
    spend_marks = sorted({minor(q.spend) for t in model.tiers
                          for q in (t.qualify, t.retain) if q is not None and q.spend})
    point_marks = sorted({*(r.points for r in model.rewards),
                          *([model.redemption.minimum, model.redemption.step * 10]
                            if model.redemption else []),
                          *(t.qualify.points for t in model.tiers
                            if t.qualify is not None and t.qualify.points)} - {0})
    order_marks = sorted({t.qualify.orders for t in model.tiers
                          if t.qualify is not None and t.qualify.orders})

    ordinary = tuple(_local(d, at, zone) for d, at in (
        (date(2026, 3, 3), time(12, 0)), (date(2026, 6, 16), time(15, 30)),
        (date(2025, 10, 14), time(9, 15)), (date(2027, 5, 19), time(19, 45))))

    month_days = sorted({date(y, m, d) for y in YEARS for m in range(1, 13)
                         for d in (1, calendar.monthrange(y, m)[1])})
    month_edges = tuple(_local(d, at, zone) for d in month_days for at in _TIMES)
    year_edges = tuple(_local(date(y, 12, 31), at, zone) for y in (YEARS[0] - 1, *YEARS)
                       for at in (time(23, 59, 59), time(12, 0))) + tuple(
        _local(date(y, 1, 1), time(0, 0), zone) for y in (*YEARS, YEARS[-1] + 1))
    leap = sorted({date(y, 2, 28) for y in YEARS} | {date(y, 3, 1) for y in YEARS}
                  | {date(y, 2, 29) for y in YEARS if calendar.isleap(y)})
    leap_days = tuple(_local(d, at, zone) for d in leap for at in _TIMES)

    scheduled_days: set[date] = set()
    schedules = [r.schedule for r in rules if r.schedule is not None]
    if model.reviews.schedule is not None:
        schedules.append(model.reviews.schedule)
    first, last_day = datetime(YEARS[0], 1, 1), datetime(YEARS[-1], 12, 31)
    for schedule in schedules:
        found = schedule.build().between(first, last_day, inc=True)
        step = max(1, len(found) // 120)  # a daily rule would flood the pool
        scheduled_days.update(d.date() for d in found[::step])
    if not scheduled_days:  # no schedule: a typical monthly member day
        scheduled_days = {date(y, m, 8) for y in YEARS for m in range(1, 13)}
    rule_days = _rule_days(rules, zone)
    scheduled = tuple(sorted(
        {_local(d, at, zone) for d in scheduled_days for at in _TIMES}
        | {_local(d - timedelta(days=1), time(23, 59, 59), zone) for d in scheduled_days}))

    edges: list[datetime] = []
    for rule in rules:
        if rule.window is not None:
            edges += _window_instants(rule.window, zone)
    for reward in model.rewards:
        if reward.window is not None:
            edges += _window_instants(reward.window, zone)

    dst: list[datetime] = []
    for change in _dst_changes(zone, YEARS):
        for delta in (-3600, -60, -1, 0, 60, 3600):
            dst.append((change + timedelta(seconds=delta)).astimezone(zone))
        local_day = change.astimezone(zone).date()
        dst += [_local(local_day, time(0, 0), zone), _local(local_day, time(12, 0), zone)]

    return _Facts(
        tiers=program.tier_ids, categories=categories, skus=skus, channels=channels,
        quantum=quantum, unit=unit, zone=zone, special_amounts=tuple(special), marks=tuple(marks),
        thresholds=tuple(sorted(t for t in thresholds if t > 0)),
        spend_marks=tuple(spend_marks), point_marks=tuple(point_marks),
        order_marks=tuple(order_marks), ordinary=ordinary, month_edges=month_edges,
        year_edges=year_edges, leap_days=leap_days,
        scheduled=scheduled,
        rule_days=tuple(sorted({_local(d, at, zone) for d in rule_days for at in _TIMES})),
        window_edges=tuple(sorted(set(edges))),
        dst_changes=tuple(sorted(set(dst))),
        behaviour_events=_unique(b.event for b in model.behaviours),
        event_attrs=_attr_names(sources, "event"), txn_attrs=_attr_names(sources, "txn"),
        member_attrs=_attr_names(sources, "member"),
        refund_days=model.ledger.refund_days, pending_days=model.ledger.pending_days,
        referral=model.referral is not None, birthday_feb29=model.policies.birthday.feb29,
        redemption_step=model.redemption.step if model.redemption is not None else None,
    )


# --- building blocks ------------------------------------------------------------------------


def _money_text(facts: _Facts, minor: int) -> str:
    return format(Decimal(minor) * facts.quantum, "f")


def _amount_minor(facts: _Facts) -> st.SearchStrategy[int]:
    # round amounts first: hypothesis shrinks towards them, so counterexamples read "100.00"
    parts = [st.integers(1, 100).map(lambda n: n * 100 * facts.unit),
             st.integers(1, 20_000 * facts.unit)]
    if facts.special_amounts:
        parts.append(st.sampled_from(facts.special_amounts))
    if facts.marks:
        # up to 12% above a threshold: where a tier discount taken first can drop below it
        parts.append(st.builds(lambda m, pct: m + m * pct // 100, st.sampled_from(facts.marks),
                               st.integers(0, 12)))
    return st.one_of(*parts)


def _near_mark(facts: _Facts) -> st.SearchStrategy[int]:
    """Amounts at a threshold a purchase must reach (min_amount, min_paid, 满减): one minor
    unit below, at, a little above (up to 5 units), or up to 12% above (where a tier discount
    taken first can drop a purchase below it)."""
    marks = st.sampled_from(facts.thresholds)
    return st.one_of(
        st.builds(lambda m, d: max(1, m + d), marks, st.sampled_from((-1, 0, 0))),
        st.builds(lambda m, d: m + d, marks, st.integers(1, 5 * facts.unit)),
        st.builds(lambda m, pct: m + m * pct // 100, marks, st.integers(0, 12)))


def amounts(program: Program) -> st.SearchStrategy[str]:
    """Positive amounts of money as ``Decimal`` strings with the currency's minor units:
    round amounts, any amount up to 20,000, and the program's thresholds ± one minor unit
    (``min_amount``, 满减 thresholds, ``per`` blocks of earn rules …). (Generated purchases
    also put a third of their one-line baskets right at a threshold a purchase must reach.)

    >>> @given(amounts(program))                                    # doctest: +SKIP
    ... def test_amounts_have_two_decimals(amount):
    ...     assert len(amount.split(".")[1]) == 2                   # CNY, USD …
    """
    facts = _facts(program)
    return _amount_minor(facts).map(lambda n: _money_text(facts, n))


def _instants(facts: _Facts) -> st.SearchStrategy[datetime]:
    start = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    minutes = (datetime(YEARS[-1] + 1, 1, 1, tzinfo=UTC) - start) // timedelta(minutes=1)
    parts: list[st.SearchStrategy[datetime]] = [st.sampled_from(facts.ordinary)]
    for pool in (facts.month_edges, facts.year_edges, facts.leap_days, facts.scheduled,
                 facts.window_edges, facts.dst_changes):
        if pool:
            parts.append(st.sampled_from(pool))
    parts.append(st.integers(0, minutes - 1).map(
        lambda n: (start + timedelta(minutes=n)).astimezone(facts.zone)))
    if not facts.rule_days:
        return st.one_of(*parts)
    # half of all instants: the days the program's dated rules apply, which would otherwise
    # be a small share (a yearly 18 June is 5 days in 5 years of days that matter)
    return st.one_of(st.one_of(*parts), st.sampled_from(facts.rule_days))


def _instant_texts(facts: _Facts) -> st.SearchStrategy[str]:
    return st.builds(instant_text, _instants(facts), st.just(facts.zone),
                     st.sampled_from((False, False, False, True)))


def instants(program: Program) -> st.SearchStrategy[str]:
    """Instants that matter to the program, as ISO strings with the zone's UTC offset
    (now and then the same instant written in UTC): ordinary days, month and year ends and
    starts, 28/29 February and 1 March, every scheduled day of its promotions and reviews
    (the 8th when none is scheduled), for about half of them a day a dated promotion or
    birthday rule applies (in its window, on its schedule), a second before and at each
    window edge, around each daylight-saving change, and any minute of 2024–2028.

    >>> @given(instants(program))                                   # doctest: +SKIP
    ... def test_parses(at):
    ...     assert datetime.fromisoformat(at).tzinfo is not None
    """
    return _instant_texts(_facts(program))


def _bools(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, bool]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, st.booleans()))


# --- members --------------------------------------------------------------------------------


@st.composite
def _member(draw: st.DrawFn, facts: _Facts, member_id: str) -> dict[str, Any]:
    member: dict[str, Any] = {"id": member_id, "tier": draw(st.sampled_from(facts.tiers))}
    points = draw(st.one_of(st.just(0), st.integers(0, 100_000),
                            *([st.sampled_from(facts.point_marks)] if facts.point_marks else [])))
    if points:
        member["points"] = points
    spend_parts = [st.just(0), st.integers(0, 60_000 * facts.unit)]
    if facts.spend_marks:
        spend_parts.append(st.builds(lambda m, d: max(0, m - d), st.sampled_from(facts.spend_marks),
                                     st.sampled_from((facts.unit, 0, 500 * facts.unit))))
    spend = draw(st.one_of(*spend_parts))
    if spend:
        member["qualifying_spend"] = _money_text(facts, spend)
    orders = draw(st.one_of(st.just(0), st.integers(0, 60),
                            *([st.sampled_from(facts.order_marks).map(lambda n: n - 1)]
                              if facts.order_marks else [])))
    if orders:
        member["orders"] = orders
    birthday = draw(st.one_of(st.none(), st.sampled_from(_BIRTHDAYS),
                              st.dates(date(1940, 1, 1), date(2010, 12, 31))))
    if birthday is not None:
        member["birthday"] = birthday.isoformat()
    # joined before any generated purchase (YEARS), so no purchase predates the membership
    joined = draw(st.one_of(st.none(), st.dates(date(2015, 1, 1), date(YEARS[0] - 1, 12, 31))))
    if joined is not None:
        member["joined"] = joined.isoformat()
    if facts.referral and draw(st.booleans()):
        member["referred_by"] = "m0"
    attrs = draw(_bools(facts.member_attrs))
    if attrs:
        member["attrs"] = attrs
    return member


def members(program: Program, *, member_id: str = "m1") -> st.SearchStrategy[dict[str, Any]]:
    """Member states in the host's input format: one of the program's tiers, a points balance
    (0, any, or what its rewards and redemption need), qualifying spend at and just below its
    tier thresholds, orders, and maybe a birthday (29 February, 31 December … or any date), a
    join date and a referrer. Fields at their default are left out.

    >>> @given(members(program))                                    # doctest: +SKIP
    ... def test_tier_is_known(member):
    ...     assert member["tier"] in program.tier_ids
    """
    return _member(_facts(program), member_id)


# --- transactions ---------------------------------------------------------------------------


@st.composite
def _items(draw: st.DrawFn, facts: _Facts) -> list[dict[str, Any]]:
    items = []
    # a third of purchases with thresholds is one line whose amount is at one of them, so
    # the whole purchase sits at the threshold (lines that add up rarely do)
    at_mark = bool(facts.thresholds) and draw(st.sampled_from((False, True, False)))
    for _ in range(1 if at_mark else draw(st.sampled_from((1, 2, 1, 3, 4)))):
        minor = draw(_near_mark(facts) if at_mark else _amount_minor(facts))
        item: dict[str, Any] = {
            "sku": draw(st.sampled_from(facts.skus)),
            "category": draw(st.sampled_from(facts.categories)),
            "amount": _money_text(facts, minor),
        }
        quantity = draw(st.sampled_from((1, 1, 2, 3)))
        if quantity > 1:
            item["quantity"] = quantity
        items.append(item)
    return items


def _transaction(draw: st.DrawFn, facts: _Facts, txn_id: str, at: str,
                 member_id: str | None) -> dict[str, Any]:
    txn: dict[str, Any] = {"id": txn_id}
    if member_id is not None:
        txn["member_id"] = member_id
    txn["at"] = at
    channel = draw(st.sampled_from(facts.channels))
    if channel != "store":
        txn["channel"] = channel
    txn["items"] = draw(_items(facts))
    for name in ("shipping", "tax"):
        extra = draw(st.sampled_from((0, 0, 0, 8 * facts.unit, 1)))
        if extra:
            txn[name] = _money_text(facts, extra)
    attrs = draw(_bools(facts.txn_attrs))
    if attrs:
        txn["attrs"] = attrs
    return txn


@st.composite
def _txn(draw: st.DrawFn, facts: _Facts, member_id: str | None) -> dict[str, Any]:
    return _transaction(draw, facts, "t1", draw(_instant_texts(facts)), member_id)


def transactions(program: Program, *, member_id: str | None = None
                 ) -> st.SearchStrategy[dict[str, Any]]:
    """Purchases (id ``t1``) at an instant that matters to the program (:func:`instants`),
    on one of its channels, with one to four lines in its categories and SKUs, amounts from
    :func:`amounts`, and sometimes shipping and tax. ``member_id`` is set when given.

    >>> @given(members(program), transactions(program, member_id="m1"))  # doctest: +SKIP
    ... def test_points_are_never_negative(member, txn):
    ...     assert lr.evaluate(program, member, txn).points_total >= 0
    """
    return _txn(_facts(program), member_id)


# an ordinary year first (examples shrink to it), then a leap year and the others
_BIRTHDAY_YEARS = (2026, 2028, 2027, 2024, 2025)
_AROUND_BIRTHDAY = ("day", "day", "day", "other", "other", -1, 1, -3, 3, -4, 4, "monday",
                    "sunday", "month_start", "month_end")


@st.composite
def _birthday_instant(draw: st.DrawFn, facts: _Facts, birthday: date) -> datetime:
    """An instant on or around the member's birthday in one of :data:`YEARS`: the day itself
    (for 29 February in other years: the program's fallback and the other one), a few days
    either side, the Monday and Sunday of its ISO week, the first and last day of its month."""
    year = draw(st.sampled_from(_BIRTHDAY_YEARS))
    own = birthday_in_year(birthday, year, facts.birthday_feb29)
    kind = draw(st.sampled_from(_AROUND_BIRTHDAY))
    if kind == "other":
        other: Literal["feb28", "mar1"] = "mar1" if facts.birthday_feb29 == "feb28" else "feb28"
        day = birthday_in_year(birthday, year, other)
    elif isinstance(kind, int):
        day = own + timedelta(days=kind)
    elif kind == "monday":
        day = own - timedelta(days=own.weekday())
    elif kind == "sunday":
        day = own + timedelta(days=6 - own.weekday())
    elif kind == "month_start":
        day = date(year, birthday.month, 1)
    elif kind == "month_end":
        day = date(year, birthday.month, calendar.monthrange(year, birthday.month)[1])
    else:
        day = own
    return _local(day, draw(st.sampled_from(_TIMES)), facts.zone)


@st.composite
def _purchase(draw: st.DrawFn, facts: _Facts) -> tuple[dict[str, Any], dict[str, Any]]:
    member = draw(_member(facts, "m1"))
    if "birthday" in member and draw(st.booleans()):
        when = draw(_birthday_instant(facts, date.fromisoformat(member["birthday"])))
    else:
        when = draw(_instants(facts))
    at = instant_text(when, facts.zone)
    return member, _transaction(draw, facts, "t1", at, None)


def purchases(program: Program) -> st.SearchStrategy[tuple[dict[str, Any], dict[str, Any]]]:
    """``(member, transaction)`` pairs; when the member has a birthday, the purchase is often
    on or around it (the day, the days either side, the edges of its ISO week and month, and
    for 29 February both 28 February and 1 March in other years).

    >>> @given(purchases(program))                                  # doctest: +SKIP
    ... def test_birthday_gift_at_most_once(case):
    ...     member, txn = case
    ...     lr.evaluate(program, member, txn)
    """
    return _purchase(_facts(program))


# --- event sequences ------------------------------------------------------------------------


@dataclass
class _Bought:
    id: str
    at: datetime
    lines: int
    refunded_lines: set[int]
    full: bool = False


def _gaps(facts: _Facts) -> tuple[timedelta, ...]:
    gaps = [timedelta(hours=1), timedelta(minutes=1), timedelta(days=1), timedelta(days=8),
            timedelta(days=31), timedelta(days=92), timedelta(days=370)]
    if facts.pending_days:
        gaps.insert(3, timedelta(days=facts.pending_days))
    return tuple(gaps)


@st.composite
def _events(draw: st.DrawFn, facts: _Facts, max_steps: int, redeem: bool = False
            ) -> list[dict[str, Any]]:
    """``redeem``: purchases sometimes ask to pay with points (``redeem_points``); the caller
    must fit the number to the member's balance and the order (``loyaltyrules check`` does)."""
    steps: list[dict[str, Any]] = []
    at = draw(_instants(facts))
    gaps = _gaps(facts)
    bought: list[_Bought] = []
    counts = {"t": 0, "r": 0, "b": 0}
    for n in range(draw(st.integers(1, max_steps))):
        if n:
            later = at + draw(st.sampled_from(gaps))
            if not _accepted(later):  # (at the end of the calendar the engine accepts)
                break
            at = later
        text = instant_text(at, facts.zone)
        # a purchase can be refunded for ledger.refund_days (and is forgotten after that)
        open_ = [b for b in bought if not b.full
                 and at <= b.at + timedelta(days=facts.refund_days)]
        kinds = ["purchase", "advance"]
        if open_:
            kinds.insert(1, "refund")
        if facts.behaviour_events:
            kinds.append("behaviour")
        kind = draw(st.sampled_from(kinds))
        if kind == "purchase":
            counts["t"] += 1
            txn = _transaction(draw, facts, f"t{counts['t']}", text, None)
            if redeem and facts.redemption_step and draw(st.sampled_from((False, False, True))):
                txn["redeem_points"] = facts.redemption_step * draw(st.integers(1, 100))
            bought.append(_Bought(txn["id"], at, len(txn["items"]), set()))
            steps.append({"purchase": txn})
        elif kind == "refund":
            target = draw(st.sampled_from(open_))
            counts["r"] += 1
            event: dict[str, Any] = {"id": f"r{counts['r']}", "at": text,
                                     "transaction_id": target.id}
            left = [k for k in range(target.lines) if k not in target.refunded_lines]
            line = draw(st.sampled_from([None, *left]))
            if line is None:
                target.full = True
            else:
                event["lines"] = [{"line": line}]
                target.refunded_lines.add(line)
                target.full = len(target.refunded_lines) == target.lines
            steps.append({"refund": event})
        elif kind == "behaviour":
            counts["b"] += 1
            action: dict[str, Any] = {"id": f"b{counts['b']}", "at": text,
                                      "event": draw(st.sampled_from(facts.behaviour_events))}
            attrs = draw(_bools(facts.event_attrs))
            if attrs:
                action["attrs"] = attrs
            steps.append({"behaviour": action})
        else:
            steps.append({"advance": text})
    return steps


def events(program: Program, *, max_steps: int = 8) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Sequences of one to ``max_steps`` steps in time order, in the step format of scenario
    files: purchases (``t1``, ``t2`` …), refunds of earlier purchases (in full, or one line at a
    time, within ``ledger.refund_days``), behaviour events of the program's event
    types (with the ``event.attrs`` its conditions read), and ``advance`` to a later instant.
    Steps are minutes to a year apart (and exactly ``ledger.pending_days`` apart now and then).
    Rewards are not generated: whether a member can afford one depends on earlier steps.

    Run the steps with :func:`run_step` (a refund of lines that cost nothing raises
    "nothing to refund").

    >>> @given(members(program), events(program))                   # doctest: +SKIP
    ... def test_ledger_identity(member, steps):
    ...     state = lr.MemberState.model_validate(member)
    ...     for step in steps:
    ...         state = lr.apply(state, run_step(program, state, step))
    ...         assert lr.check_identity(state)
    """
    return _events(_facts(program), max_steps)


@st.composite
def _scenario(draw: st.DrawFn, facts: _Facts, max_steps: int, redeem: bool = False
              ) -> dict[str, Any]:
    return {"member": draw(_member(facts, "m1")),
            "steps": draw(_events(facts, max_steps, redeem))}


def scenarios(program: Program, *, max_steps: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """``{"member": …, "steps": […]}``: a member from :func:`members` and steps from
    :func:`events` — one scenario of a scenario file, without name and expectations.

    >>> @given(scenarios(program))                                  # doctest: +SKIP
    ... def test_runs(scenario):
    ...     state = lr.MemberState.model_validate(scenario["member"])
    ...     for step in scenario["steps"]:
    ...         state = lr.apply(state, run_step(program, state, step))
    """
    return _scenario(_facts(program), max_steps)


def run_step(program: Program, member: MemberState | dict[str, Any],
             step: Mapping[str, Any]) -> Decision | LifecycleDecision:
    """Run one scenario step (``purchase``, ``refund``, ``behaviour``, ``reward`` or
    ``advance``) for ``member`` and return its decision; apply it with :func:`loyaltyrules.apply`.

    >>> step = {"advance": "2026-04-01T00:00:00+08:00"}              # doctest: +SKIP
    >>> member = lr.apply(member, run_step(program, member, step))  # doctest: +SKIP
    """
    return _scenario_step(program, member, step)
