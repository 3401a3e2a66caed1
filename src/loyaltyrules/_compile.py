"""Compilation: a validated program → a Plan the engine runs without re-deriving anything.

Everything that does not depend on the transaction is worked out once, at load: window bounds
as aware instants, id sets, sort keys, tier discounts, and condition expressions compiled to
Python functions (see :mod:`._codegen`). The interpreted plan (simpleeval) is kept as the
reference; both run through the same engine and must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Literal

from ._calendar import birthday_change_blocks, is_birthday, period_key, uses
from ._decision import PerkGrant, PointsLine, build
from ._expressions import Expression, Scope
from ._member import COUNT_LIMIT
from ._model import (
    DiscountSpec,
    EarnRule,
    Expiry,
    Multiplier,
    ProgramModel,
    Qualify,
    Rule,
    Schedule,
    Tier,
)
from ._money import RoundingMode, plain, quantum
from ._trace import EarnText

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
    """Which local days a schedule selects: expanded one calendar year at a time
    (``Schedule.days_in``) into a set kept here, so a lookup is a set probe, without hashing
    the schedule."""

    schedule: Schedule
    years: dict[int, frozenset[date]] = field(default_factory=dict)

    def __contains__(self, day: date) -> bool:
        days = self.years.get(day.year)
        if days is None:
            days = frozenset(self.schedule.days_in(day.year))
            if len(self.years) > 200:
                self.years.clear()
            self.years[day.year] = days
        return day in days


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
    schedule_text: str = ""  # the schedule as the trace quotes it
    effects_text: str = ""  # its effects other than a discount, as the trace quotes them

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
    text: EarnText = field(init=False)  # the words its traced earn lines quote
    # the rule's own values, copied (as TierPlan's): the plan interpreter's loop reads them
    # for every rule on every decision, and a pydantic model's field read costs several
    # times a slot's
    id: str = field(init=False)
    paid: bool = field(init=False)  # basis: paid (else list)
    full: bool = field(init=False)  # blocks: full (else proportional)
    per: Decimal = field(init=False)
    points: Decimal = field(init=False)
    include_shipping: bool = field(init=False)
    include_tax: bool = field(init=False)
    base_rounding: RoundingMode | None = field(init=False)
    cap: int | None = field(init=False)

    def __post_init__(self) -> None:
        rule = self.rule
        for name, value in (("text", EarnText.of(rule)), ("id", rule.id),
                            ("paid", rule.basis == "paid"), ("full", rule.blocks == "full"),
                            ("per", rule.per), ("points", rule.points),
                            ("include_shipping", rule.include_shipping),
                            ("include_tax", rule.include_tax),
                            ("base_rounding", rule.base_rounding), ("cap", rule.cap)):
            object.__setattr__(self, name, value)


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

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def factor(self) -> Decimal:
        return self.rule.factor


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: Tier
    rank: int
    discount: DiscountSpec | None
    qualify: Qualify | None
    qualify_when: Condition | None
    source: tuple[Any, ...] | None = None
    perk_grants: tuple[PerkGrant, ...] = ()
    # the tier's own values, copied: read on every decision, and a pydantic model's field
    # read costs several times a slot's
    id: str = field(init=False)
    points_multiplier: Decimal = field(init=False)
    percent: Decimal | None = field(init=False)
    # the qualification's thresholds as the trace quotes them: (what, minimum, as written)
    thresholds: tuple[tuple[str, Decimal | int, str], ...] = field(init=False)
    match: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", self.tier.id)
        object.__setattr__(self, "points_multiplier", self.tier.points_multiplier)
        object.__setattr__(self, "percent",
                           None if self.discount is None else self.discount.percent)
        q = self.qualify
        thresholds: list[tuple[str, Decimal | int, str]] = []
        if q is not None:
            if q.spend is not None:
                thresholds.append(("spend", q.spend, plain(q.spend)))
            if q.points is not None:
                thresholds.append(("points", q.points, str(q.points)))
            if q.orders is not None:
                thresholds.append(("orders", q.orders, str(q.orders)))
        object.__setattr__(self, "thresholds", tuple(thresholds))
        object.__setattr__(self, "match", "all" if q is None else q.match)

    def qualifies(self, spend: Decimal, points: int, orders: int, lazy: Any) -> bool:
        """The engine's qualification test without its explanation (every check is run,
        as the engine does, so an erroring condition errors the same way)."""
        q = self.qualify
        assert q is not None
        when = None if self.qualify_when is None else lazy.when(
            self.tier.id, "qualification", self.qualify_when)
        return q.met(spend, points, orders, when)


RuleCheck = Callable[[datetime, date, Any, Any, str, Decimal, Any], bool]


@dataclass(frozen=True, slots=True)
class FastRule:
    """A birthday rule or promotion as the trace-free evaluator needs it."""

    id: str
    index: int
    priority: int
    promotion: bool
    exclusive: bool
    group: str | None
    check: RuleCheck
    source: tuple[Any, ...] | None
    min_paid: Decimal | None
    bonus: int | None
    bonus_line: PointsLine | None  # (its detail empty, as every line's is with the trace off)
    bonus_line_traced: PointsLine | None  # ("bonus 5 points")
    points_multiplier: Decimal | None
    perk_grant: PerkGrant | None
    limit_per: str | None
    start: datetime | None
    end: datetime | None
    days: _ScheduleDays | None
    channels: frozenset[str]
    has_other_effects: bool
    # a birthday-month rule whose first test that can fail, but for its window, is the
    # month of birth (no change guard, 29 February celebrated in February): outside the
    # member's birthday month it fails, whatever else it asks (see outside_birthday_month)
    month_only: bool = False


@dataclass(slots=True)
class FastPlan:
    """Program constants for :mod:`._fast`, decided once at load."""

    rules: tuple[FastRule, ...]
    currency: str
    zone: tzinfo
    quantum: Decimal
    zero: Decimal
    benefits_now: bool
    tie_by_id: bool
    resolves: bool
    money_rounding: str
    points_rounding: RoundingMode
    combine_best: bool
    additive: bool
    threshold_list: bool
    discount_excluded: frozenset[str]
    max_total: Decimal | None
    spend_paid: bool
    spend_excluded: frozenset[str]
    spend_shipping: bool
    spend_tax: bool
    earn: tuple[EarnPlan, ...]
    multipliers: tuple[MultiplierPlan, ...]
    combine_multipliers: str
    cap_truncate: bool
    best_rule: bool
    max_per_transaction: int | None
    max_per_period: int | None  # (policies.points.max_per_period: its points and its per)
    period_per: str
    index: dict[tuple[date, str], tuple[FastRule, ...]] = field(default_factory=dict)
    # the same, without the rules that only hold in a member's birthday month
    outside: dict[tuple[date, str], tuple[FastRule, ...]] = field(default_factory=dict)

    def rule_key(self, fr: FastRule) -> tuple[int, int | str]:
        return (-fr.priority, fr.id if self.tie_by_id else fr.index)

    def source_key(self, src: tuple[Any, ...]) -> tuple[int, int | str]:
        return (-src[7], src[0] if self.tie_by_id else src[8])

    @staticmethod
    def period(today: date, per: str) -> str:
        return period_key(today, per)

    def discount_cap(self, amounts: list[Decimal], items: Any) -> Decimal | None:
        if self.max_total is None:
            return None
        excluded = self.discount_excluded
        total = sum([a for a, i in zip(amounts, items, strict=True)
                     if i.category not in excluded], Decimal(0))
        return (total * self.max_total).quantize(self.quantum, rounding=ROUND_FLOOR)

    def candidates(self, day: date, channel: str) -> tuple[FastRule, ...]:
        """Rules that can apply on this local day and channel: an index by window, schedule
        and channel, so a program with a thousand promotions only checks the few that can."""
        key = (day, channel)
        hit = self.index.get(key)
        if hit is None:
            start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            end = start + timedelta(days=1)
            hit = tuple(
                fr for fr in self.rules
                if (fr.start is None or fr.start < end)
                and (fr.end is None or fr.end > start)
                and (fr.days is None or day in fr.days)
                and (not fr.channels or channel in fr.channels)
            )
            if len(self.index) > 20_000:
                self.index.clear()
            self.index[key] = hit
        return hit

    def outside_birthday_month(self, day: date, channel: str) -> tuple[FastRule, ...]:
        """:meth:`candidates` for a member outside their birthday month (or without a
        birthday): less the birthday-month rules (``month_only``), which cannot hold there.
        Most members, most days, then check none of the program's birthday-month perks."""
        key = (day, channel)
        hit = self.outside.get(key)
        if hit is None:
            hit = tuple(fr for fr in self.candidates(day, channel) if not fr.month_only)
            if len(self.outside) > 20_000:
                self.outside.clear()
            self.outside[key] = hit
        return hit


@dataclass(frozen=True, slots=True)
class LedgerPlan:
    """What completing a purchase needs from the program, worked out once."""

    pending: timedelta
    refund: timedelta
    expires: bool
    keeps_log: bool
    # points have dates a late event may have passed already (pending points released,
    # lots expired): such an event is completed by _lifecycle.complete_purchase, which
    # says so in its events
    dated: bool


@dataclass(frozen=True, slots=True)
class LineShares:
    """What a purchase record's line shares read of the program (._lifecycle's
    attribute_to_lines), resolved once."""

    earn: dict[str, EarnPlan]
    scoped: tuple[MultiplierPlan, ...]  # the multipliers that weight some lines
    # every earn rule and the tier count every line alike (paid basis, no categories of
    # their own): lines then differ only by a multiplier or a category left out
    alike: bool
    excluded: frozenset[str]  # the categories an earn rule or the tier's spend leaves out
    by_sku: bool  # some of ``scoped`` names skus (else a line's weight is its category's)
    how: str  # policies.points.combine_multipliers
    scale: Decimal  # minor units per unit of the currency (1 / quantum)
    scoped_ids: tuple[str, ...]  # the ids of ``scoped``, in its order
    # the tier's qualifying spend, as policies.qualifying_spend says: its basis (paid, else
    # list), and whether shipping and tax count (read for every purchase of several lines)
    spend_paid: bool
    spend_shipping: bool
    spend_tax: bool
    # a line's weight as a fraction, by the scoped multipliers that fired (their indexes),
    # category and sku: the few a program's multipliers make (bounded in attribute_to_lines)
    weights: dict[tuple[tuple[int, ...], str, str | None], tuple[int, int]] = field(
        default_factory=dict, compare=False)
    # a basket's lines' weights over their common denominator, by the scoped multipliers
    # that fired and the lines' categories (when no multiplier names skus): one read a basket
    baskets: dict[tuple[Any, ...], tuple[list[int], int]] = field(default_factory=dict,
                                                                   compare=False)


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
    fast: FastPlan
    lifecycle: bool
    points_paid_earns: bool
    behaviour_conditions: dict[str, Condition]
    # the trace-free decision: generated for this program in compiled mode (._specialise),
    # the plan interpreter (._fast.decide) in interpreted mode, the reference it equals
    decide: Callable[..., Any]
    ledger: LedgerPlan
    shares: LineShares  # (._lifecycle.attribute_to_lines)
    # the traced decision generated for this program (compiled mode, ._specialise.traceable),
    # or None: the engine traces it
    decide_traced: Callable[..., Any] | None = None
    # the whole trace-free purchase, completed in the same generated function (compiled
    # mode, ._specialise.completes_inline), or None: ._lifecycle.complete_purchase completes it
    purchase: Callable[..., Any] | None = None
    # the same with the full trace (a program with both generated functions)
    purchase_traced: Callable[..., Any] | None = None
    # a member who will have earned less than this before a purchase (earned total plus any
    # balance no lot holds) cannot reach the count limit with one purchase of this program
    # (see points_bound): only above it is a purchase checked (._engine._countable)
    count_room: int = 0


def points_bound(model: ProgramModel) -> int:
    """More points than one purchase of this program can earn: every amount at its largest
    (1,000 lines and shipping and tax, each below 10^15), every earn rule at once, every
    multiplier, tier factor and rule factor of 1 or more applied together, every bonus and a
    referral. Real programs stay below 10^20 by far, so the count check costs nothing."""
    basis = Decimal(1002 * 10**15)
    factors = Decimal(1)
    for f in [*(m.factor for m in model.multipliers), *(t.points_multiplier for t in model.tiers),
              *(r.points_multiplier for r in (*model.birthday, *model.promotions)
                if r.points_multiplier is not None)]:
        factors *= max(f, Decimal(1))
    total = Decimal(0)
    for e in model.earn:
        earned = basis * e.points / e.per * factors + 1
        total += earned if e.cap is None else min(earned, Decimal(e.cap))
    cap = model.policies.points.max_per_transaction
    if cap is not None:
        total = min(total, Decimal(cap))
    total += sum(r.bonus_points or 0 for r in (*model.birthday, *model.promotions))
    if model.referral is not None:
        total += model.referral.referee_points
    return int(total.to_integral_value(ROUND_FLOOR)) + 1


def _condition(expr: Expression | None, mode: Mode, label: str) -> Condition | None:
    if expr is None:
        return None
    if mode == "compiled":
        from ._codegen import compile_expression

        return Condition(expr, compile_expression(expr, label))
    return Condition(expr, expr.evaluate)


def build_plan(model: ProgramModel, mode: Mode = "compiled") -> Plan:
    zone = model.program.zone
    tier_priority = model.policies.discounts.tier_priority
    tiers = tuple(
        TierPlan(
            tier=t,
            rank=i,
            discount=DiscountSpec(percent=t.discount) if t.discount else None,
            qualify=t.qualify,
            qualify_when=_condition(t.qualify.when if t.qualify else None, mode, t.id),
            source=(t.id, "tier", "percent", "basket", DiscountSpec(percent=t.discount),
                    frozenset(), frozenset(), tier_priority, -1) if t.discount else None,
            perk_grants=tuple(build(PerkGrant, {"perk": p, "rule": t.id}) for p in t.perks),
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
                days=_ScheduleDays(rule.schedule) if rule.schedule
                else None,
                tiers=frozenset(rule.tiers),
                channels=frozenset(rule.channels),
                categories=frozenset(rule.categories),
                skus=frozenset(rule.skus),
                when=_condition(rule.when, mode, rule.id),
                schedule_text=describe_schedule(rule.schedule) if rule.schedule else "",
                effects_text=_effects_text(rule),
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
    from ._fast import decide

    plan = Plan(
        decide=decide,
        ledger=LedgerPlan(
            pending=timedelta(days=model.ledger.pending_days),
            refund=timedelta(days=model.ledger.refund_days),
            expires=model.ledger.expiry != Expiry(),
            dated=model.ledger.expiry != Expiry() or model.ledger.pending_days > 0,
            keeps_log=model.reviews.rolling_months is not None
            or model.reviews.window != "lifetime"),
        model=model,
        mode=mode,
        fast=_fast_plan(model, tiers, rules, earn, multipliers),
        tiers=tiers,
        tier_index={t.tier.id: t for t in tiers},
        rules=tuple(rules),
        earn=earn,
        multipliers=multipliers,
        excluded_from_discounts=frozenset(model.policies.discounts.exclude_categories),
        excluded_from_spend=frozenset(model.policies.qualifying_spend.exclude_categories),
        has_expressions=has_expressions,
        lifecycle=bool(model.ledger.pending_days or model.ledger.expiry != Expiry()
                       or model.reviews.schedule is not None or model.reviews.anniversary
                       or model.signals),
        points_paid_earns=model.redemption is not None and model.redemption.earns_points,
        count_room=COUNT_LIMIT - points_bound(model),
        shares=LineShares(
            earn={ep.rule.id: ep for ep in earn},
            scoped=tuple(mp for mp in multipliers if mp.item_scoped),
            alike=model.policies.qualifying_spend.basis == "paid" and all(
                ep.rule.basis == "paid" and not ep.categories for ep in earn),
            excluded=frozenset(model.policies.qualifying_spend.exclude_categories).union(
                *(ep.exclude for ep in earn)),
            by_sku=any(mp.skus for mp in multipliers),
            how=model.policies.points.combine_multipliers,
            scale=1 / quantum(model.program.units),
            scoped_ids=tuple(mp.id for mp in multipliers if mp.item_scoped),
            spend_paid=model.policies.qualifying_spend.basis == "paid",
            spend_shipping=model.policies.qualifying_spend.include_shipping,
            spend_tax=model.policies.qualifying_spend.include_tax),
        behaviour_conditions={
            b.id: c for b in model.behaviours
            if (c := _condition(b.when, mode, b.id)) is not None},
    )
    if mode == "compiled":
        from ._specialise import specialise, traceable

        # the generated functions need the finished plan (conditions reach it lazily)
        generated, purchase = specialise(plan)
        object.__setattr__(plan, "decide", generated)
        object.__setattr__(plan, "purchase", purchase)
        if traceable(plan):
            traced, purchase_traced = specialise(plan, traced=True)
            object.__setattr__(plan, "decide_traced", traced)
            object.__setattr__(plan, "purchase_traced", purchase_traced)
    return plan


def _fast_plan(model: ProgramModel, tiers: tuple[TierPlan, ...], rules: list[RulePlan],
               earn: tuple[EarnPlan, ...], multipliers: tuple[MultiplierPlan, ...]
               ) -> FastPlan:
    pol = model.policies
    q = quantum(model.program.units)
    fast_rules = tuple(_fast_rule(rp, model) for rp in rules)
    return FastPlan(
        rules=fast_rules,
        currency=model.program.currency,
        zone=model.program.zone,
        quantum=q,
        zero=Decimal(0).quantize(q),
        benefits_now=pol.tiers.benefits_from == "this_transaction",
        tie_by_id=pol.rules.tie_break == "id",
        resolves=any(fr.exclusive or fr.group is not None for fr in fast_rules),
        money_rounding=pol.rounding.money,
        points_rounding=pol.rounding.points,
        combine_best=pol.discounts.combine == "best",
        additive=pol.discounts.stacking == "additive",
        threshold_list=pol.discounts.threshold_basis == "list",
        discount_excluded=frozenset(pol.discounts.exclude_categories),
        max_total=pol.discounts.max_total,
        spend_paid=pol.qualifying_spend.basis == "paid",
        spend_excluded=frozenset(pol.qualifying_spend.exclude_categories),
        spend_shipping=pol.qualifying_spend.include_shipping,
        spend_tax=pol.qualifying_spend.include_tax,
        earn=earn,
        multipliers=multipliers,
        combine_multipliers=pol.points.combine_multipliers,
        cap_truncate=pol.points.cap == "truncate",
        best_rule=pol.points.combine_rules == "best",
        max_per_transaction=pol.points.max_per_transaction,
        max_per_period=None if pol.points.max_per_period is None
        else pol.points.max_per_period.points,
        period_per="" if pol.points.max_per_period is None else pol.points.max_per_period.per,
    )


def _bonus_line(rule: Rule, detail: str) -> PointsLine:
    return build(PointsLine, {"rule": rule.id, "kind": "bonus", "points": rule.bonus_points,
                              "basis": ZERO, "multiplier": Decimal(1), "detail": detail})


def _fast_rule(rp: RulePlan, model: ProgramModel) -> FastRule:
    rule = rp.rule
    spec = rule.discount
    scoped = bool(rp.categories or rp.skus)
    source = None
    if spec is not None:
        source = (rule.id, rp.kind, spec.kind, "items" if scoped else "basket", spec,
                  rp.categories, rp.skus, rule.priority, rp.index)
    return FastRule(
        id=rule.id,
        index=rp.index,
        priority=rule.priority,
        promotion=rp.kind == "promotion",
        exclusive=rule.exclusive and rp.kind == "promotion",
        group=rule.group,
        check=_rule_check(rp, model),
        source=source,
        min_paid=rule.min_paid,
        bonus=rule.bonus_points,
        bonus_line=_bonus_line(rule, "") if rule.bonus_points else None,
        bonus_line_traced=_bonus_line(rule, f"bonus {rule.bonus_points} points")
        if rule.bonus_points else None,
        points_multiplier=rule.points_multiplier,
        perk_grant=build(PerkGrant, {"perk": rule.perk, "rule": rule.id}) if rule.perk else None,
        limit_per=rule.limit.per if rule.limit else None,
        start=rp.start,
        end=rp.end,
        days=rp.days,
        channels=rp.channels,
        has_other_effects=any(x is not None for x in (
            rule.points_multiplier, rule.bonus_points, rule.perk)),
        month_only=rule.on == "birthday_month" and model.policies.birthday.feb29 == "feb28"
        and model.policies.birthday.change_guard_days <= 0,
    )


def _rule_check(rp: RulePlan, model: ProgramModel) -> RuleCheck:
    """The rule's conditions as one function, in the engine's order; the window, schedule
    and channel are also pre-filtered by the day index, and re-checked here exactly."""
    rule = rp.rule
    start, end, days = rp.start, rp.end, rp.days
    on = rule.on
    feb29, week = model.policies.birthday.feb29, model.policies.birthday.week
    guard = model.policies.birthday.change_guard_days
    tiers, channels, categories, skus = rp.tiers, rp.channels, rp.categories, rp.skus
    scoped = bool(categories or skus)
    min_amount = rule.min_amount
    spec = rule.discount
    threshold = spec.threshold if spec is not None else None
    excluded = frozenset(model.policies.discounts.exclude_categories)
    limit = rule.limit
    when = rp.when
    rule_id, kind = rule.id, rp.kind

    def check(at: datetime, today: date, m: Any, t: Any, tier: str, total: Decimal,
              lazy: Any) -> bool:
        if start is not None and at < start:
            return False
        if end is not None and at >= end:
            return False
        if days is not None and today not in days:
            return False
        if on is not None and (m.birthday is None or birthday_change_blocks(
                m.birthday, m.birthday_set_on, today, guard, feb29) or not is_birthday(
                m.birthday, today, on, feb29=feb29, week=week)):
            return False
        if tiers and tier not in tiers:
            return False
        if channels and t.channel not in channels:
            return False
        if scoped and not any((not categories or i.category in categories)
                              and (not skus or i.sku in skus) for i in t.items):
            return False
        if min_amount is not None and total < min_amount:
            return False
        if threshold is not None:
            reach = sum([i.amount for i in t.items if i.category not in excluded and (
                not scoped or ((not categories or i.category in categories)
                               and (not skus or i.sku in skus)))], Decimal(0))
            if reach < threshold:
                return False
        if limit is not None and \
                uses(m.usage.get(rule_id), period_key(today, limit.per)) >= limit.times:
            return False
        if when is not None:
            ok: bool = lazy.when(rule_id, kind, when)
            return ok
        return True

    return check


ZERO = Decimal(0)


def _effects_text(rule: Rule) -> str:
    parts = []
    if rule.points_multiplier is not None:
        parts.append(f"points ×{format(rule.points_multiplier, 'f')}")
    if rule.bonus_points:
        parts.append(f"+{rule.bonus_points} bonus points")
    if rule.perk:
        parts.append(f"perk {rule.perk}")
    return ", ".join(parts)


def describe_schedule(schedule: Schedule) -> str:
    """A schedule as a trace quotes it: its rrule text, or its parts."""
    if schedule.rrule:
        return schedule.rrule
    parts = [f"freq={schedule.freq}"]
    for name in ("interval", "bymonth", "bymonthday", "byweekday", "bysetpos"):
        value = getattr(schedule, name)
        if value not in (None, 1):
            parts.append(f"{name}={list(value) if isinstance(value, tuple) else value}")
    return ", ".join(parts)
