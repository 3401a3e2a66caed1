"""Evaluation: one transaction, one member state → one Decision. A pure function.

The order of the steps is the documented pipeline (docs/evaluation.md):
conditions → discounts (priced lines) → qualifying spend → tier qualification → points →
perks and usage. Nothing here reads a clock, a file or the machine's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from dateutil import rrule as _rrule

from ._calendar import is_birthday, period_key
from ._decision import (
    Decision,
    DiscountAllocation,
    DiscountLine,
    LineResult,
    PerkGrant,
    PointsLine,
    ProgramRef,
    RuleKind,
    Status,
    TraceEntry,
    UsageConsumed,
)
from ._errors import EvaluationError, InputError
from ._expressions import Expression, ExpressionRuntimeError, Scope
from ._member import MemberState, Transaction, coerce
from ._model import DiscountSpec, EarnRule, Multiplier, Qualify, Rule, Schedule, Tier
from ._money import allocate, round_money, round_points
from ._program import Program

__all__ = ["evaluate"]

_ZERO = Decimal(0)
_ONE = Decimal(1)


def _fmt(d: Decimal) -> str:
    return format(d, "f")


def _pct(rate: Decimal) -> str:
    return f"{_fmt((rate * 100).normalize())}%"


@dataclass
class _Ctx:
    program: Program
    member: MemberState
    txn: Transaction
    today: date
    local_at: datetime
    tier_before: Tier
    scope: Scope
    tracing: bool
    trace: list[TraceEntry] = field(default_factory=list)
    fired: dict[str, None] = field(default_factory=dict)

    def note(self, rule: str, kind: RuleKind, status: Status, reason: str | Callable[[], str]
             ) -> None:
        if status == "fired" and kind != "qualification":
            self.fired[rule] = None
        if self.tracing or status == "error":
            text = reason() if callable(reason) else reason
            self.trace.append(
                TraceEntry(rule=rule, kind=kind, status=status, reason=text)
            )

    def when(self, rule: str, kind: RuleKind, expr: Expression) -> tuple[bool, str]:
        try:
            result = expr.evaluate(self.scope)
        except ExpressionRuntimeError as exc:
            self.note(rule, kind, "error", str(exc))
            raise EvaluationError(rule, str(exc), trace=self.trace) from None
        if not isinstance(result, bool):
            message = f"`{expr}` gave {result!r}, not true or false"
            self.note(rule, kind, "error", message)
            raise EvaluationError(rule, message, trace=self.trace)
        if result:
            return True, ""
        return False, expr.explain(self.scope) if self.tracing else f"`{expr}` is false"


# --- schedules --------------------------------------------------------------------------------

_SCHEDULE_CACHE: dict[tuple[int, date], bool] = {}
_RRULES: dict[int, _rrule.rrule] = {}


def _on_schedule(schedule: Schedule, day: date) -> bool:
    """Does the rrule produce this local day? Cached per (schedule, day): days repeat a lot."""
    key = (id(schedule), day)
    hit = _SCHEDULE_CACHE.get(key)
    if hit is not None:
        return hit
    rule = _RRULES.get(id(schedule))
    if rule is None:
        rule = _RRULES[id(schedule)] = schedule.build()
    start = datetime(day.year, day.month, day.day)
    nxt = rule.after(start, inc=True)
    result = nxt is not None and nxt.date() == day
    if len(_SCHEDULE_CACHE) > 100_000:
        _SCHEDULE_CACHE.clear()
    _SCHEDULE_CACHE[key] = result
    return result


# --- conditions shared by rules ----------------------------------------------------------------


def _rule_conditions(ctx: _Ctx, rule: Rule, kind: RuleKind, tier: Tier) -> str | None:
    """The first failing condition of a birthday rule or promotion, or None if all hold."""
    program = ctx.program
    policy = program.model.policies
    if rule.window is not None:
        start, end = rule.window.bounds(program.zone)
        at = ctx.txn.at
        if start is not None and at < start:
            return f"window starts {start.isoformat()}, transaction at {ctx.local_at.isoformat()}"
        if end is not None and at >= end:
            return f"window ended {end.isoformat()}, transaction at {ctx.local_at.isoformat()}"
    if rule.schedule is not None and not _on_schedule(rule.schedule, ctx.today):
        return f"{ctx.today.isoformat()} is not a scheduled day ({_describe(rule.schedule)})"
    if rule.on is not None:
        bday = ctx.member.birthday
        if bday is None:
            return "member has no birthday on file"
        if not is_birthday(bday, ctx.today, rule.on, feb29=policy.birthday.feb29,
                           week=policy.birthday.week):
            return f"{ctx.today.isoformat()} is not the member's {rule.on.replace('_', ' ')} " \
                   f"(birthday {bday.isoformat()})"
    if rule.tiers and tier.id not in rule.tiers:
        return f"tier {tier.id!r} not in {list(rule.tiers)}"
    if rule.channels and ctx.txn.channel not in rule.channels:
        return f"channel {ctx.txn.channel!r} not in {list(rule.channels)}"
    if (rule.categories or rule.skus) and not any(
        _item_matches(i.category, i.sku, rule.categories, rule.skus) for i in ctx.txn.items
    ):
        return f"no item in categories {list(rule.categories)} / skus {list(rule.skus)}"
    if rule.min_amount is not None:
        amount = sum((i.amount for i in ctx.txn.items), _ZERO)
        if amount < rule.min_amount:
            return f"amount {_fmt(amount)} below min_amount {_fmt(rule.min_amount)}"
    if rule.limit is not None:
        usage = ctx.member.usage.get(rule.id)
        key = period_key(ctx.today, rule.limit.per)
        used = usage.count if usage is not None and usage.period == key else 0
        if used >= rule.limit.times:
            return f"usage limit reached: {used} of {rule.limit.times} per {rule.limit.per} ({key})"
    if rule.when is not None:
        ok, why = ctx.when(rule.id, kind, rule.when)
        if not ok:
            return why
    return None


def _describe(schedule: Schedule) -> str:
    if schedule.rrule:
        return schedule.rrule
    parts = [f"freq={schedule.freq}"]
    for name in ("interval", "bymonth", "bymonthday", "byweekday", "bysetpos"):
        value = getattr(schedule, name)
        if value not in (None, 1):
            parts.append(f"{name}={list(value) if isinstance(value, tuple) else value}")
    return ", ".join(parts)


def _item_matches(category: str, sku: str, categories: Sequence[str], skus: Sequence[str]) -> bool:
    return (not categories or category in categories) and (not skus or sku in skus) if (
        categories and skus) else (category in categories if categories else sku in skus)


def _order(ctx: _Ctx, entries: list[tuple[int, int, str, Any]]) -> list[Any]:
    """Sort (priority, declaration index, id, payload) by priority, then the tie-break policy."""
    if ctx.program.model.policies.rules.tie_break == "id":
        entries.sort(key=lambda e: (-e[0], e[2]))
    else:
        entries.sort(key=lambda e: (-e[0], e[1]))
    return [e[3] for e in entries]


# --- discounts -----------------------------------------------------------------------------


@dataclass
class _DiscountSource:
    rule: str
    kind: RuleKind
    spec: DiscountSpec
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()


def _price(
    ctx: _Ctx, sources: list[_DiscountSource]
) -> tuple[list[Decimal], list[DiscountLine], set[str]]:
    """Apply discounts to the lines; returns paid amounts, discount lines, and rules that
    dropped out (threshold not reached, or not the best under ``combine: best``)."""
    program = ctx.program
    policy = program.model.policies.discounts
    q = program.quantum
    mode = program.model.policies.rounding.money
    list_amounts = [i.amount for i in ctx.txn.items]
    excluded = set(policy.exclude_categories)
    discountable = [i.category not in excluded for i in ctx.txn.items]
    dropped: set[str] = set()

    def compute(
        src: _DiscountSource, current: list[Decimal], already: Decimal
    ) -> tuple[Decimal, list[int], str] | None:
        idx = [
            k for k, item in enumerate(ctx.txn.items)
            if discountable[k] and (
                not (src.categories or src.skus)
                or _item_matches(item.category, item.sku, src.categories, src.skus))
        ]
        base_now = sum((current[k] for k in idx), _ZERO)
        base_list = sum((list_amounts[k] for k in idx), _ZERO)
        spec = src.spec
        if spec.percent is not None:
            base = base_list if policy.stacking == "additive" else base_now
            amount = round_money(base * spec.percent, q, mode)
            why = f"{_pct(spec.percent)} of {_fmt(base)}"
        elif spec.amount is not None:
            amount = round_money(spec.amount, q, mode)
            why = f"{_fmt(spec.amount)} off"
        else:
            assert spec.threshold is not None and spec.off is not None
            basis = base_list if policy.threshold_basis == "list" else base_now
            if basis < spec.threshold:
                ctx.note(src.rule, src.kind, "not_matched",
                         f"{_fmt(basis)} is below the threshold {_fmt(spec.threshold)}")
                return None
            times = 1
            if spec.repeat:
                times = int((basis / spec.threshold).to_integral_value(rounding=ROUND_FLOOR))
                if spec.max_repeats is not None:
                    times = min(times, spec.max_repeats)
            amount = round_money(spec.off * times, q, mode)
            why = f"满{_fmt(spec.threshold)}减{_fmt(spec.off)}"
            if times > 1:
                why += f" ×{times}"
        if amount > base_now:
            why += f", limited to the remaining {_fmt(base_now)}"
            amount = base_now
        if policy.max_total is not None:
            discountable_total = sum(
                (a for a, ok in zip(list_amounts, discountable, strict=True) if ok), _ZERO)
            cap = round_money(discountable_total * policy.max_total, q, "floor")
            if already + amount > cap:
                amount = max(_ZERO, cap - already)
                why += f", limited by max_total {_pct(policy.max_total)} to {_fmt(amount)}"
        return amount, idx, why

    if policy.combine == "best" and len(sources) > 1:
        best: tuple[Decimal, int] | None = None
        for n, src in enumerate(sources):
            result = compute(src, list(list_amounts), _ZERO)
            if result is not None and (best is None or result[0] > best[0]):
                best = (result[0], n)
        chosen = [] if best is None else [sources[best[1]]]
        for src in sources:
            if src not in chosen:
                dropped.add(src.rule)
                if best is not None:
                    ctx.note(src.rule, src.kind, "skipped",
                             f"combine: best — {sources[best[1]].rule} saves more")
        sources = chosen

    current = list(list_amounts)
    lines: list[DiscountLine] = []
    total = _ZERO
    for src in sources:
        result = compute(src, current, total)
        if result is None:
            dropped.add(src.rule)
            continue
        amount, idx, why = result
        parts = allocate(amount, [current[k] for k in idx], q)
        for k, part in zip(idx, parts, strict=True):
            current[k] -= part
        total += amount
        lines.append(DiscountLine(
            rule=src.rule, kind=src.kind, type=src.spec.kind,
            scope="items" if (src.categories or src.skus) else "basket",
            amount=amount,
            allocation=tuple(DiscountAllocation(line=k, amount=p)
                             for k, p in zip(idx, parts, strict=True) if p),
        ))
        ctx.note(src.rule, src.kind, "fired", f"discount {_fmt(amount)}: {why}")
    return current, lines, dropped


# --- points --------------------------------------------------------------------------------


def _combine(factors: list[Decimal], how: str) -> Decimal:
    if not factors:
        return _ONE
    if how == "add":
        return _ONE + sum((f - _ONE for f in factors), _ZERO)
    if how == "best":
        return max(factors)
    result = _ONE
    for f in factors:
        result *= f
    return result


def _multiplier_applies(ctx: _Ctx, m: Multiplier, tier: Tier) -> str | None:
    if m.tiers and tier.id not in m.tiers:
        return f"tier {tier.id!r} not in {list(m.tiers)}"
    if m.channels and ctx.txn.channel not in m.channels:
        return f"channel {ctx.txn.channel!r} not in {list(m.channels)}"
    if m.when is not None:
        ok, why = ctx.when(m.id, "multiplier", m.when)
        if not ok:
            return why
    return None


def _earn(
    ctx: _Ctx,
    tier: Tier,
    paid: list[Decimal],
    rule_factors: list[tuple[str, Decimal]],
) -> list[PointsLine]:
    program = ctx.program
    policies = program.model.policies
    items = ctx.txn.items
    how = policies.points.combine_multipliers
    q = program.quantum

    item_weights: list[list[Decimal]] = [[] for _ in items]
    basket: list[tuple[str, Decimal]] = []
    if tier.points_multiplier != _ONE:
        basket.append((f"tier {tier.id}", tier.points_multiplier))
    for m in program.model.multipliers:
        why = _multiplier_applies(ctx, m, tier)
        if why is not None:
            ctx.note(m.id, "multiplier", "not_matched", why)
            continue
        if m.categories or m.skus:
            hit = [k for k, i in enumerate(items)
                   if _item_matches(i.category, i.sku, m.categories, m.skus)]
            for k in hit:
                item_weights[k].append(m.factor)
            if hit:
                ctx.note(m.id, "multiplier", "fired", f"×{_fmt(m.factor)} on lines {hit}")
            else:
                ctx.note(m.id, "multiplier", "not_matched", "no matching items")
        else:
            basket.append((m.id, m.factor))
            ctx.note(m.id, "multiplier", "fired", f"×{_fmt(m.factor)} on all points")
    basket.extend(rule_factors)
    multiplier = _combine([f for _, f in basket], how)
    weights = [_combine(w, how) for w in item_weights]

    points_paid_share = allocate(ctx.txn.paid_with_points, paid, q) if ctx.txn.paid_with_points \
        else [_ZERO] * len(items)

    lines: list[PointsLine] = []
    for rule in program.model.earn:
        why = _earn_conditions(ctx, rule, tier)
        if why is not None:
            ctx.note(rule.id, "earn", "not_matched", why)
            continue
        basis = _ZERO
        for k, item in enumerate(items):
            if rule.categories and item.category not in rule.categories:
                continue
            if item.category in rule.exclude_categories:
                continue
            amount = paid[k] - points_paid_share[k] if rule.basis == "paid" else item.amount
            basis += amount * weights[k]
        if rule.include_shipping:
            basis += ctx.txn.shipping
        if rule.include_tax:
            basis += ctx.txn.tax
        if rule.blocks == "full":
            blocks = (basis / rule.per).to_integral_value(rounding=ROUND_FLOOR)
            raw = blocks * rule.points
            base_text = f"{blocks} full blocks of {_fmt(rule.per)} × {_fmt(rule.points)}"
        else:
            raw = basis * rule.points / rule.per
            base_text = f"{_fmt(basis)} × {_fmt(rule.points)}/{_fmt(rule.per)}"
        points = round_points(raw * multiplier, policies.rounding.points)
        detail = f"basis {_fmt(basis)}: {base_text}"
        if multiplier != _ONE:
            names = ", ".join(f"{n} ×{_fmt(f)}" for n, f in basket)
            detail += f", multiplier ×{_fmt(multiplier.normalize())} ({names}, {how})"
        detail += f", rounded {policies.rounding.points}"
        if rule.cap is not None and points > rule.cap:
            if policies.points.cap == "truncate":
                detail += f", capped at {rule.cap} (was {points})"
                ctx.note(rule.id, "earn", "capped", f"{points} points truncated to cap {rule.cap}")
                points = rule.cap
            else:
                ctx.note(rule.id, "earn", "capped",
                         f"{points} points exceed cap {rule.cap}: rejected (cap: reject)")
                points = 0
                detail += f", rejected: over the cap of {rule.cap}"
        else:
            ctx.note(rule.id, "earn", "fired", f"{points} points — {detail}")
        lines.append(PointsLine(rule=rule.id, kind="earn", points=points,
                                basis=basis.quantize(q) if basis == basis.quantize(q) else basis,
                                multiplier=multiplier, detail=detail))
    if policies.points.combine_rules == "best" and len(lines) > 1:
        best = max(lines, key=lambda p: p.points)
        for p in lines:
            if p is not best:
                ctx.note(p.rule, "earn", "skipped", f"combine_rules: best — {best.rule} earns more")
        lines = [best]
    return lines


def _earn_conditions(ctx: _Ctx, rule: EarnRule, tier: Tier) -> str | None:
    if rule.tiers and tier.id not in rule.tiers:
        return f"tier {tier.id!r} not in {list(rule.tiers)}"
    if rule.channels and ctx.txn.channel not in rule.channels:
        return f"channel {ctx.txn.channel!r} not in {list(rule.channels)}"
    if rule.when is not None:
        ok, why = ctx.when(rule.id, "earn", rule.when)
        if not ok:
            return why
    return None


# --- tiers ---------------------------------------------------------------------------------


def _qualifies(ctx: _Ctx, tier: Tier, q: Qualify, spend: Decimal, points: int, orders: int
               ) -> tuple[bool, str]:
    checks: list[tuple[bool, str]] = []
    if q.spend is not None:
        checks.append((spend >= q.spend, f"spend {_fmt(spend)} ≥ {_fmt(q.spend)}"))
    if q.points is not None:
        checks.append((points >= q.points, f"points {points} ≥ {q.points}"))
    if q.orders is not None:
        checks.append((orders >= q.orders, f"orders {orders} ≥ {q.orders}"))
    if q.when is not None:
        ok, why = ctx.when(tier.id, "qualification", q.when)
        checks.append((ok, f"`{q.when}`" if ok else why))
    ok = all(c[0] for c in checks) if q.match == "all" else any(c[0] for c in checks)
    text = "; ".join(("✓ " if c[0] else "✗ ") + c[1] for c in checks)
    return ok, text


# --- the pipeline --------------------------------------------------------------------------


def evaluate(
    program: Program,
    member: MemberState | dict[str, Any] | str,
    transaction: Transaction | dict[str, Any] | str,
    *,
    trace: bool = True,
) -> Decision:
    """Evaluate one purchase for one member at the transaction's own time.

    Pure: the inputs are not changed, no clock or zone of the machine is read.
    Raises :class:`InputError` for malformed input and :class:`EvaluationError` when a rule
    fails (never silently "not matched").

    >>> decision = evaluate(program, member, txn)                  # doctest: +SKIP
    >>> decision.payable, decision.points_total                     # doctest: +SKIP
    (Decimal('800.00'), 80)
    """
    m = coerce(MemberState, member, "member")
    t = coerce(Transaction, transaction, "transaction")
    _check_inputs(program, m, t)
    tier_before = program.tiers[program.tier_rank(m.tier)] if m.tier else program.tiers[0]

    first = _run(program, m, t, tier_before, tier_before, trace)
    benefits_from = program.model.policies.tiers.benefits_from
    if first[1] is not tier_before and benefits_from == "this_transaction":
        new_tier = first[1]
        second = _run(program, m, t, tier_before, new_tier, trace, forced_after=new_tier)
        return second[0]
    return first[0]


def _check_inputs(program: Program, m: MemberState, t: Transaction) -> None:
    if m.tier is not None and not program.has_tier(m.tier):
        raise InputError(f"unknown tier {m.tier!r}; the program has {list(program.tier_ids)}",
                         field="tier", kind="member")
    if t.member_id is not None and t.member_id != m.id:
        raise InputError(f"transaction is for member {t.member_id!r}, not {m.id!r}",
                         field="member_id", kind="transaction")
    q = program.quantum
    for k, item in enumerate(t.items):
        if item.amount != item.amount.quantize(q):
            raise InputError(f"{_fmt(item.amount)} has more decimals than {program.currency} "
                             f"allows", field=f"items[{k}].amount", kind="transaction")
    for name in ("shipping", "tax", "paid_with_points"):
        value: Decimal = getattr(t, name)
        if value != value.quantize(q):
            raise InputError(f"{_fmt(value)} has more decimals than {program.currency} allows",
                             field=name, kind="transaction")


def _run(
    program: Program,
    m: MemberState,
    t: Transaction,
    tier_before: Tier,
    benefits: Tier,
    tracing: bool,
    *,
    forced_after: Tier | None = None,
) -> tuple[Decision, Tier]:
    local_at = t.at.astimezone(program.zone)
    today = local_at.date()
    policies = program.model.policies

    def birthday_test(kind: str) -> bool:
        return is_birthday(m.birthday, today, kind, feb29=policies.birthday.feb29,
                           week=policies.birthday.week)

    scope = Scope(
        member=_member_view(program, m),
        txn=_txn_view(t, local_at),
        items=[i.model_dump() for i in t.items],
        today=today,
        birthday_test=birthday_test,
    )
    ctx = _Ctx(program, m, t, today, local_at, tier_before, scope, tracing)

    # 1. which birthday rules and promotions fire
    fired = _select_rules(ctx, benefits)

    # 2. discounts
    sources: list[tuple[int, int, str, _DiscountSource]] = []
    if benefits.discount:
        tier_spec = DiscountSpec(percent=benefits.discount)
        sources.append((policies.discounts.tier_priority, -1, benefits.id,
                        _DiscountSource(benefits.id, "tier", tier_spec)))
    elif tracing:
        ctx.note(benefits.id, "tier", "not_matched", f"tier {benefits.id} has no discount")
    for n, (rule, kind) in enumerate(fired):
        if rule.discount is not None:
            sources.append((rule.priority, n, rule.id, _DiscountSource(
                rule.id, kind, rule.discount, rule.categories, rule.skus)))
    ordered: list[_DiscountSource] = _order(ctx, sources)
    paid, discount_lines, dropped = _price(ctx, ordered)
    fired = [(r, k) for r, k in fired if r.id not in dropped or (_has_other_effects(r)
             and r.discount is not None and r.discount.threshold is None)]
    for rule, kind in fired:
        if rule.discount is None:
            ctx.note(rule.id, kind, "fired", _effects_text(rule))

    list_amount = sum((i.amount for i in t.items), _ZERO)
    goods_paid = sum(paid, _ZERO)
    if t.paid_with_points > goods_paid + t.shipping + t.tax:
        raise InputError(f"paid_with_points {_fmt(t.paid_with_points)} exceeds the amount due "
                         f"{_fmt(goods_paid + t.shipping + t.tax)}", field="paid_with_points",
                         kind="transaction")
    payable = goods_paid + t.shipping + t.tax - t.paid_with_points

    # 3. qualifying spend
    qs = policies.qualifying_spend
    spend = sum(
        (paid[k] if qs.basis == "paid" else item.amount
         for k, item in enumerate(t.items) if item.category not in qs.exclude_categories),
        _ZERO,
    )
    if qs.include_shipping:
        spend += t.shipping
    if qs.include_tax:
        spend += t.tax
    spend = max(_ZERO, spend - t.paid_with_points)

    # 4. points
    rule_factors = [(r.id, r.points_multiplier) for r, _ in fired if r.points_multiplier]
    points_lines = _earn(ctx, benefits, paid, rule_factors)
    for rule, _kind in fired:
        if rule.bonus_points:
            points_lines.append(PointsLine(rule=rule.id, kind="bonus", points=rule.bonus_points,
                                           basis=_ZERO, multiplier=_ONE,
                                           detail=f"bonus {rule.bonus_points} points"))
    points_lines = _global_cap(ctx, points_lines)
    points_total = sum(p.points for p in points_lines)

    # 5. tier qualification (never down at a transaction)
    if forced_after is not None:
        tier_after = forced_after
    else:
        tier_after = _qualify(ctx, tier_before, m.qualifying_spend + spend,
                              m.points + points_total, m.orders + 1)

    # 6. perks and usage
    perks = [PerkGrant(perk=p, rule=benefits.id) for p in benefits.perks]
    perks += [PerkGrant(perk=r.perk, rule=r.id) for r, _ in fired if r.perk]
    usage = [UsageConsumed(rule=r.id, period=period_key(today, r.limit.per))
             for r, _ in fired if r.limit is not None]

    lines = tuple(
        LineResult(index=k, sku=i.sku, category=i.category, amount=i.amount,
                   discount=i.amount - paid[k], paid=paid[k])
        for k, i in enumerate(t.items)
    )
    decision = Decision(
        program=ProgramRef(id=program.id, version=program.version, hash=program.hash),
        member_id=m.id,
        transaction_id=t.id,
        at=t.at,
        local_date=today,
        currency=program.currency,
        tier_before=tier_before.id,
        tier_after=tier_after.id,
        tier_changed=tier_after is not tier_before,
        benefits_tier=benefits.id,
        list_amount=list_amount,
        discounts=tuple(discount_lines),
        total_discount=list_amount - goods_paid,
        lines=lines,
        goods_paid=goods_paid,
        shipping=t.shipping,
        tax=t.tax,
        paid_with_points=t.paid_with_points,
        payable=payable,
        qualifying_spend=spend,
        points=tuple(points_lines),
        points_total=points_total,
        perks=tuple(perks),
        usage=tuple(usage),
        rules_fired=tuple(ctx.fired),
        trace=tuple(ctx.trace) if tracing else None,
    )
    return decision, tier_after


def _has_other_effects(rule: Rule) -> bool:
    return any(x is not None for x in (rule.points_multiplier, rule.bonus_points, rule.perk))


def _effects_text(rule: Rule) -> str:
    parts = []
    if rule.points_multiplier is not None:
        parts.append(f"points ×{_fmt(rule.points_multiplier)}")
    if rule.bonus_points:
        parts.append(f"+{rule.bonus_points} bonus points")
    if rule.perk:
        parts.append(f"perk {rule.perk}")
    return ", ".join(parts)


def _select_rules(ctx: _Ctx, tier: Tier) -> list[tuple[Rule, RuleKind]]:
    """Conditions first, then groups (first by priority wins) and exclusivity."""
    model = ctx.program.model
    matched: list[tuple[int, int, str, tuple[Rule, RuleKind]]] = []
    n = 0
    sections: Iterable[tuple[tuple[Rule, ...], RuleKind]] = (
        (model.birthday, "birthday"), (model.promotions, "promotion"))
    for rules, kind in sections:
        for rule in rules:
            why = _rule_conditions(ctx, rule, kind, tier)
            if why is None:
                matched.append((rule.priority, n, rule.id, (rule, kind)))
            else:
                ctx.note(rule.id, kind, "not_matched", why)
            n += 1
    ordered: list[tuple[Rule, RuleKind]] = _order(ctx, matched)
    winners: list[tuple[Rule, RuleKind]] = []
    groups: dict[str, str] = {}
    exclusive = next((r for r, k in ordered if r.exclusive and k == "promotion"), None)
    for rule, kind in ordered:
        if exclusive is not None and kind == "promotion" and rule is not exclusive:
            ctx.note(rule.id, kind, "skipped", f"exclusive promotion {exclusive.id} fired")
            continue
        if rule.group is not None:
            if rule.group in groups:
                ctx.note(rule.id, kind, "skipped",
                         f"group {rule.group}: {groups[rule.group]} has priority")
                continue
            groups[rule.group] = rule.id
        winners.append((rule, kind))
    return winners


def _global_cap(ctx: _Ctx, lines: list[PointsLine]) -> list[PointsLine]:
    cap = ctx.program.model.policies.points.max_per_transaction
    total = sum(p.points for p in lines)
    if cap is None or total <= cap:
        return lines
    if ctx.program.model.policies.points.cap == "reject":
        ctx.note("max_per_transaction", "cap", "capped",
                 f"{total} points exceed max_per_transaction {cap}: all rejected")
        return [p.model_copy(update={"points": 0, "detail": p.detail + ", rejected by "
                                     "max_per_transaction"}) for p in lines]
    ctx.note("max_per_transaction", "cap", "capped", f"{total} points truncated to {cap}")
    out: list[PointsLine] = []
    room = cap
    for p in lines:
        keep = min(p.points, room)
        room -= keep
        out.append(p if keep == p.points else p.model_copy(
            update={"points": keep, "detail": p.detail + f", truncated to {keep} by "
                    "max_per_transaction"}))
    return out


def _qualify(ctx: _Ctx, before: Tier, spend: Decimal, points: int, orders: int) -> Tier:
    program = ctx.program
    rank = program.tier_rank(before.id)
    after = before
    for tier in program.tiers[rank + 1:]:
        assert tier.qualify is not None
        ok, text = _qualifies(ctx, tier, tier.qualify, spend, points, orders)
        if ok:
            after = tier
        ctx.note(tier.id, "qualification", "fired" if ok else "not_matched",
                 f"{'qualifies' if ok else 'does not qualify'} ({tier.qualify.match}): {text}")
    return after


def _member_view(program: Program, m: MemberState) -> dict[str, Any]:
    tier = m.tier or program.tiers[0].id
    return {
        "id": m.id,
        "tier": tier,
        "tier_rank": program.tier_rank(tier),
        "points": m.points,
        "qualifying_spend": m.qualifying_spend,
        "orders": m.orders,
        "birthday": m.birthday,
        "joined": m.joined,
        "last_purchase": m.last_purchase,
        "attrs": dict(m.attrs),
    }


def _txn_view(t: Transaction, local_at: datetime) -> dict[str, Any]:
    return {
        "id": t.id,
        "amount": sum((i.amount for i in t.items), _ZERO),
        "channel": t.channel,
        "store": t.store,
        "at": local_at,
        "date": local_at.date(),
        "weekday": local_at.isoweekday(),
        "hour": local_at.hour,
        "items_count": len(t.items),
        "quantity": sum(i.quantity for i in t.items),
        "shipping": t.shipping,
        "tax": t.tax,
        "paid_with_points": t.paid_with_points,
        "attrs": dict(t.attrs),
    }
