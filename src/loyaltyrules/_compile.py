"""Compilation: a validated program → a Plan the engine runs without re-deriving anything.

Everything that does not depend on the transaction is worked out once, at load: window bounds
as aware instants, id sets, sort keys, tier discounts, and condition expressions compiled to
Python functions (see :mod:`._codegen`). The interpreted plan (simpleeval) is kept as the
reference; both run through the same engine and must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from dateutil import rrule as _rrule

from ._expressions import Expression, Scope
from ._model import (
    DiscountSpec,
    EarnRule,
    Multiplier,
    ProgramModel,
    Qualify,
    Rule,
    Schedule,
    Tier,
)

__all__ = ["Mode", "Plan", "build_plan"]

Mode = Literal["compiled", "interpreted"]
Check = Callable[[Scope], Any]


@dataclass(frozen=True, slots=True)
class Condition:
    """A `when:` expression ready to run, with its source for traces and errors."""

    expression: Expression
    run: Check


@dataclass(slots=True)
class _ScheduleDays:
    """Which local days a schedule selects, memoised per day (days repeat a lot)."""

    schedule: Schedule
    rule: _rrule.rrule
    days: dict[date, bool] = field(default_factory=dict)

    def __contains__(self, day: date) -> bool:
        hit = self.days.get(day)
        if hit is None:
            start = datetime.combine(day, time(0))
            nxt = self.rule.after(start, inc=True)
            hit = nxt is not None and nxt.date() == day
            if len(self.days) > 50_000:
                self.days.clear()
            self.days[day] = hit
        return hit


@dataclass(frozen=True, slots=True)
class RulePlan:
    rule: Rule
    kind: Literal["birthday", "promotion"]
    index: int
    start: datetime | None
    end: datetime | None
    days: _ScheduleDays | None
    tiers: frozenset[str]
    channels: frozenset[str]
    categories: frozenset[str]
    skus: frozenset[str]
    when: Condition | None

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass(frozen=True, slots=True)
class EarnPlan:
    rule: EarnRule
    tiers: frozenset[str]
    channels: frozenset[str]
    categories: frozenset[str]
    exclude: frozenset[str]
    when: Condition | None


@dataclass(frozen=True, slots=True)
class MultiplierPlan:
    rule: Multiplier
    tiers: frozenset[str]
    channels: frozenset[str]
    categories: frozenset[str]
    skus: frozenset[str]
    when: Condition | None

    @property
    def item_scoped(self) -> bool:
        return bool(self.categories or self.skus)


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: Tier
    rank: int
    discount: DiscountSpec | None
    qualify: Qualify | None
    qualify_when: Condition | None


@dataclass(frozen=True, slots=True)
class Plan:
    model: ProgramModel
    mode: Mode
    tiers: tuple[TierPlan, ...]
    tier_index: dict[str, TierPlan]
    rules: tuple[RulePlan, ...]
    earn: tuple[EarnPlan, ...]
    multipliers: tuple[MultiplierPlan, ...]
    excluded_from_discounts: frozenset[str]
    excluded_from_spend: frozenset[str]
    has_expressions: bool


def _condition(expr: Expression | None, mode: Mode, label: str) -> Condition | None:
    if expr is None:
        return None
    if mode == "compiled":
        from ._codegen import compile_expression

        return Condition(expr, compile_expression(expr, label))
    return Condition(expr, expr.evaluate)


def build_plan(model: ProgramModel, mode: Mode = "compiled") -> Plan:
    zone = model.program.zone
    tiers = tuple(
        TierPlan(
            tier=t,
            rank=i,
            discount=DiscountSpec(percent=t.discount) if t.discount else None,
            qualify=t.qualify,
            qualify_when=_condition(t.qualify.when if t.qualify else None, mode, t.id),
        )
        for i, t in enumerate(model.tiers)
    )
    rules: list[RulePlan] = []
    sections: tuple[tuple[tuple[Rule, ...], Literal["birthday", "promotion"]], ...] = (
        (model.birthday, "birthday"),
        (model.promotions, "promotion"),
    )
    for section, kind in sections:
        for rule in section:
            start, end = rule.window.bounds(zone) if rule.window else (None, None)
            rules.append(RulePlan(
                rule=rule,
                kind=kind,
                index=len(rules),
                start=start,
                end=end,
                days=_ScheduleDays(rule.schedule, rule.schedule.build()) if rule.schedule
                else None,
                tiers=frozenset(rule.tiers),
                channels=frozenset(rule.channels),
                categories=frozenset(rule.categories),
                skus=frozenset(rule.skus),
                when=_condition(rule.when, mode, rule.id),
            ))
    earn = tuple(
        EarnPlan(e, frozenset(e.tiers), frozenset(e.channels), frozenset(e.categories),
                 frozenset(e.exclude_categories), _condition(e.when, mode, e.id))
        for e in model.earn
    )
    multipliers = tuple(
        MultiplierPlan(m, frozenset(m.tiers), frozenset(m.channels), frozenset(m.categories),
                       frozenset(m.skus), _condition(m.when, mode, m.id))
        for m in model.multipliers
    )
    has_expressions = any(
        c is not None
        for c in (*(t.qualify_when for t in tiers), *(r.when for r in rules),
                  *(e.when for e in earn), *(m.when for m in multipliers))
    )
    return Plan(
        model=model,
        mode=mode,
        tiers=tiers,
        tier_index={t.tier.id: t for t in tiers},
        rules=tuple(rules),
        earn=earn,
        multipliers=multipliers,
        excluded_from_discounts=frozenset(model.policies.discounts.exclude_categories),
        excluded_from_spend=frozenset(model.policies.qualifying_spend.exclude_categories),
        has_expressions=has_expressions,
    )


ZERO = Decimal(0)
