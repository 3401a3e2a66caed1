"""Evaluation: one transaction, one member state → one Decision. A pure function.

The steps run in the documented order (docs/policies.md): rule conditions → discounts (priced
lines) → qualifying spend → points → tier qualification → perks and usage. Nothing here reads
a clock, a file or the machine's zone. Trace text is only built when the trace is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal, getcontext
from typing import Any

from . import _lifecycle
from . import _trace as T
from ._calendar import birthday_change_blocks, is_birthday, period_key, uses
from ._compile import Condition, EarnPlan, Mode, Plan, RulePlan, TierPlan
from ._decision import (
    Decision,
    DiscountLine,
    PerkGrant,
    PointsLine,
    RuleKind,
    Status,
    TraceEntry,
    UsageConsumed,
    build,
    trace_flag,
)
from ._errors import AlreadyApplied, EvaluationError, InputError
from ._expressions import ExpressionRuntimeError, Scope
from ._fast import (
    best_earn_line,
    cap_total,
    combine,
    in_minor_units,
    period_room,
    period_used,
    points_paid_parts,
    prepare,
    spend_after_points,
)
from ._lifecycle import (
    advance_state,
    complete_purchase,
    counts_held,
    digest,
    in_unit_state,
    is_late,
    member_view,
    on_file,
    redemption_value,
    spend_crowded,
    spend_fits,
    untracked_points,
    window_spend,
)
from ._member import (
    COUNT_LIMIT,
    RESERVED_IDS,
    RESERVED_PREFIXES,
    MemberState,
    PointsLot,
    Transaction,
    coerce,
    reserved_id,
)
from ._model import DiscountSpec
from ._money import (
    DECIMAL_CONTEXT,
    RUNNERS,
    SPEND_ROOM,
    Exact,
    allocate,
    new_runner,
    round_money,
    round_points,
)
from ._program import Program

__all__ = ["evaluate"]

_ZERO = Decimal(0)
_ONE = Decimal(1)


class _Ctx:
    """Per-evaluation state: inputs, the local day, the lazily built expression scope, trace."""

    __slots__ = (
        "_scope",
        "event",
        "fired",
        "list_total",
        "local_at",
        "member",
        "plan",
        "program",
        "pwp",
        "today",
        "trace",
        "tracing",
        "txn",
    )

    def __init__(self, program: Program, plan: Plan, member: MemberState, txn: Transaction,
                 local_at: datetime, tracing: bool) -> None:
        self.program = program
        self.plan = plan
        self.member = member
        self.txn = txn
        self.local_at = local_at
        self.today: date = local_at.date()
        self.tracing = tracing
        self.trace: list[TraceEntry] = []
        self.fired: dict[str, None] = {}
        self._scope: Scope | None = None
        self.list_total = sum([i.amount for i in txn.items], _ZERO)
        self.pwp = txn.paid_with_points
        self.event: Mapping[str, Any] | None = None

    def note(self, rule: str, kind: RuleKind, status: Status, reason: str) -> None:
        self.trace.append(T.entry({"rule": rule, "kind": kind, "status": status,
                                   "reason": reason}))

    def fire(self, rule: str, kind: RuleKind, reason: str | None = None) -> None:
        self.fired[rule] = None
        if self.tracing and reason is not None:
            self.note(rule, kind, "fired", reason)

    @property
    def scope(self) -> Scope:
        if self._scope is None:
            self._scope = _make_scope(self)
        return self._scope

    def when(self, rule: str, kind: RuleKind, cond: Condition) -> str | None:
        """None when the condition holds, else why not. Errors are raised, never "false"."""
        try:
            result = cond.run(self.scope)
        except ExpressionRuntimeError as exc:
            self.note(rule, kind, "error", str(exc))
            raise EvaluationError(rule, str(exc), trace=self.trace) from None
        if result is True:
            return None
        if result is not False:
            message = f"`{cond.expression}` gave {result!r}, not true or false"
            self.note(rule, kind, "error", message)
            raise EvaluationError(rule, message, trace=self.trace)
        if self.tracing:
            return cond.expression.explain(self.scope)
        return "condition is false"


def _make_scope(ctx: _Ctx) -> Scope:
    m, t, local_at = ctx.member, ctx.txn, ctx.local_at
    program = ctx.program
    policy = program.model.policies.birthday
    today = ctx.today

    def birthday_test(kind: str) -> bool:
        return is_birthday(m.birthday, today, kind, feb29=policy.feb29, week=policy.week)

    member = member_view(program.model, m)
    txn = {
        "id": t.id, "amount": ctx.list_total, "channel": t.channel, "store": t.store,
        "at": local_at, "date": today, "weekday": local_at.isoweekday(), "hour": local_at.hour,
        "items_count": len(t.items), "quantity": sum(i.quantity for i in t.items),
        "shipping": t.shipping, "tax": t.tax, "paid_with_points": t.paid_with_points,
        "attrs": dict(t.attrs),
    }
    items: list[Mapping[str, Any]] = [
        {"sku": i.sku, "category": i.category, "quantity": i.quantity, "amount": i.amount,
         "attrs": dict(i.attrs)}
        for i in t.items
    ]
    return Scope(member=member, txn=txn, items=items, today=today, birthday_test=birthday_test,
                 event=ctx.event)


def _matches(category: str, sku: str, categories: frozenset[str], skus: frozenset[str]) -> bool:
    """An item is in scope when it passes every filter given (categories and/or SKUs)."""
    return (not categories or category in categories) and (not skus or sku in skus)


# --- birthday rules and promotions -------------------------------------------------------------


def _rule_conditions(ctx: _Ctx, rp: RulePlan, tier: str) -> str | None:
    """The first failing condition of a birthday rule or promotion, or None if all hold.

    Without a trace the reason is just "" (any non-None means "did not match"): building
    the text costs more than checking the condition."""
    rule = rp.rule
    at = ctx.txn.at
    why = ctx.tracing
    if rp.start is not None and at < rp.start:
        return T.window_starts(rp.start, ctx.local_at) if why else ""
    if rp.end is not None and at >= rp.end:
        return T.window_ended(rp.end, ctx.local_at) if why else ""
    if rp.days is not None and ctx.today not in rp.days:
        return T.not_scheduled(ctx.today, rp.schedule_text) if why else ""
    if rule.on is not None:
        bday = ctx.member.birthday
        if bday is None:
            return T.NO_BIRTHDAY
        policy = ctx.program.model.policies.birthday
        set_on = ctx.member.birthday_set_on
        if set_on is not None and birthday_change_blocks(bday, set_on, ctx.today,
                                                         policy.change_guard_days, policy.feb29):
            return T.birthday_changed(set_on, policy.change_guard_days) if why else ""
        if not is_birthday(bday, ctx.today, rule.on, feb29=policy.feb29, week=policy.week):
            return T.not_birthday(ctx.today, rule.on, bday) if why else ""
    if rp.tiers and tier not in rp.tiers:
        return T.tier_not_in(tier, rule.tiers) if why else ""
    if rp.channels and ctx.txn.channel not in rp.channels:
        return T.channel_not_in(ctx.txn.channel, rule.channels) if why else ""
    if (rp.categories or rp.skus) and not any(
        _matches(i.category, i.sku, rp.categories, rp.skus) for i in ctx.txn.items
    ):
        return T.no_item_in_scope(rule.categories, rule.skus) if why else ""
    if rule.min_amount is not None and ctx.list_total < rule.min_amount:
        return T.below_min_amount(ctx.list_total, rule.min_amount) if why else ""
    spec = rule.discount
    if spec is not None and spec.threshold is not None:
        # discounts only lower amounts: below the threshold at list price, never reached
        excluded = ctx.plan.excluded_from_discounts
        reach = sum([i.amount for i in ctx.txn.items if i.category not in excluded and (
            not (rp.categories or rp.skus) or _matches(i.category, i.sku, rp.categories,
                                                       rp.skus))], _ZERO)
        if reach < spec.threshold:
            return T.below_threshold(reach, spec.threshold) if why else ""
    if rule.limit is not None:
        usage = ctx.member.usage.get(rule.id)
        key = period_key(ctx.today, rule.limit.per)
        used = uses(usage, key)
        if used >= rule.limit.times:
            return T.limit_reached(used, rule.limit.times, rule.limit.per, key) if why else ""
    if rp.when is not None:
        return ctx.when(rule.id, rp.kind, rp.when)
    return None


def _sort_key(ctx: _Ctx) -> Any:
    if ctx.program.model.policies.rules.tie_break == "id":
        return lambda e: (-e[0], e[2])
    return lambda e: (-e[0], e[1])


def _select_rules(ctx: _Ctx, tier: str, dropped: Mapping[str, str]) -> list[RulePlan]:
    """Conditions first, then exclusivity and groups (first by priority wins). ``dropped``
    rules were selected before and dropped out once priced: they take no part."""
    matched: list[tuple[int, int, str, RulePlan]] = []
    for rp in ctx.plan.rules:
        if dropped and rp.rule.id in dropped:
            if ctx.tracing:
                ctx.note(rp.rule.id, rp.kind, "not_matched", dropped[rp.rule.id])
            continue
        why = _rule_conditions(ctx, rp, tier)
        if why is None:
            matched.append((rp.rule.priority, rp.index, rp.rule.id, rp))
        elif ctx.tracing:
            ctx.note(rp.rule.id, rp.kind, "not_matched", why)
    if len(matched) > 1:
        matched.sort(key=_sort_key(ctx))
    ordered = [m[3] for m in matched]
    if not ctx.plan.fast.resolves:  # no exclusive or grouped rule
        return ordered
    exclusive = _exclusive(ordered)
    winners: list[RulePlan] = []
    groups: dict[str, str] = {}
    for rp in ordered:
        rule = rp.rule
        if exclusive is not None and rp.kind == "promotion" and rp is not exclusive:
            if ctx.tracing:
                ctx.note(rule.id, rp.kind, "skipped", T.exclusive_fired(exclusive.id))
            continue
        if rule.group is not None:
            if rule.group in groups:
                if ctx.tracing:
                    ctx.note(rule.id, rp.kind, "skipped",
                             T.group_taken(rule.group, groups[rule.group]))
                continue
            groups[rule.group] = rule.id
        winners.append(rp)
    return winners


def _exclusive(ordered: list[RulePlan]) -> RulePlan | None:
    """The exclusive promotion that fires: the first in priority order whose group no
    birthday rule ahead of it holds. (Promotions ahead of it in its group are shut out by
    it, so they cannot take the group from it; a birthday rule can, and an exclusive
    promotion that loses its group fires not and shuts out nothing.)"""
    held: set[str] = set()
    for rp in ordered:
        rule = rp.rule
        if rp.kind == "promotion":
            if rule.exclusive and (rule.group is None or rule.group not in held):
                return rp
        elif rule.group is not None:
            held.add(rule.group)
    return None


# --- discounts -----------------------------------------------------------------------------


class _Source:
    __slots__ = ("categories", "kind", "rule", "skus", "spec")

    def __init__(self, rule: str, kind: RuleKind, spec: DiscountSpec,
                 categories: frozenset[str], skus: frozenset[str]) -> None:
        self.rule, self.kind, self.spec = rule, kind, spec
        self.categories, self.skus = categories, skus


_NONE: frozenset[str] = frozenset()


def _price(ctx: _Ctx, sources: list[_Source]
           ) -> tuple[list[Decimal], list[DiscountLine], set[str]]:
    """Apply discounts to the lines. Returns paid amounts per line, the discount lines, and
    the rules whose threshold was not reached (those rules do not fire at all)."""
    program = ctx.program
    policy = program.model.policies.discounts
    q = program.quantum
    mode = program.model.policies.rounding.money
    items = ctx.txn.items
    list_amounts = [i.amount for i in items]
    excluded = ctx.plan.excluded_from_discounts
    discountable = [i.category not in excluded for i in items]
    void: set[str] = set()
    cap: Decimal | None = None
    if policy.max_total is not None:
        total = sum([a for a, ok in zip(list_amounts, discountable, strict=True) if ok], _ZERO)
        cap = round_money(total * policy.max_total, q, "floor")

    def compute(src: _Source, current: list[Decimal], already: Decimal, quiet: bool
                ) -> tuple[Decimal, list[int], str] | None:
        scoped = bool(src.categories or src.skus)
        idx = [k for k, item in enumerate(items) if discountable[k] and (
            not scoped or _matches(item.category, item.sku, src.categories, src.skus))]
        base_now = sum([current[k] for k in idx], _ZERO)
        spec = src.spec
        why = ""
        if spec.percent is not None:
            base = base_now
            if policy.stacking == "additive":
                base = sum([list_amounts[k] for k in idx], _ZERO)
            amount = round_money(base * spec.percent, q, mode)
            if ctx.tracing:
                why = T.percent_of(spec.percent, base)
        elif spec.amount is not None:
            amount = round_money(spec.amount, q, mode)
            if ctx.tracing:
                why = f"{amount:f} off"
        else:
            assert spec.threshold is not None and spec.off is not None
            basis = base_now
            if policy.threshold_basis == "list":
                basis = sum([list_amounts[k] for k in idx], _ZERO)
            if basis < spec.threshold:
                if ctx.tracing and not quiet:
                    ctx.note(src.rule, src.kind, "not_matched",
                             T.below_threshold(basis, spec.threshold))
                return None
            times = 1
            if spec.repeat:
                times = int((basis / spec.threshold).to_integral_value(rounding=ROUND_FLOOR))
                if spec.max_repeats is not None:
                    times = min(times, spec.max_repeats)
            amount = round_money(spec.off * times, q, mode)
            if ctx.tracing:
                why = f"满{spec.threshold:f}减{spec.off:f}"
                if times > 1:
                    why += f" ×{times}"
        if amount > base_now:
            amount = base_now
            if ctx.tracing:
                why += f", limited to the remaining {base_now:f}"
        if cap is not None and already + amount > cap:
            amount = max(q * 0, cap - already)  # (0.00, not 0)
            if ctx.tracing:
                assert policy.max_total is not None
                why += f", limited by max_total {T.pct(policy.max_total)} to {amount:f}"
        return amount, idx, why

    if policy.combine == "best" and len(sources) > 1:
        best: tuple[Decimal, _Source] | None = None
        for src in sources:
            result = compute(src, list_amounts, _ZERO, quiet=True)
            if result is None:
                void.add(src.rule)
                if ctx.tracing:
                    compute(src, list_amounts, _ZERO, quiet=False)
            elif best is None or result[0] > best[0]:
                best = (result[0], src)
        chosen = [] if best is None else [best[1]]
        if ctx.tracing and best is not None:
            for src in sources:
                if src is not best[1] and src.rule not in void:
                    ctx.note(src.rule, src.kind, "skipped",
                             f"combine: best — {best[1].rule} saves more")
        sources = chosen

    current = list(list_amounts)
    lines: list[DiscountLine] = []
    total = _ZERO
    zero = _ZERO.quantize(q)
    for src in sources:
        result = compute(src, current, total, quiet=False)
        if result is None:
            void.add(src.rule)
            continue
        amount, idx, why = result
        if not amount and src.kind != "tier":
            # nothing left to take off (excluded lines, max_total reached): the rule does
            # not fire, and a usage limit is not spent on it
            void.add(src.rule)
            if ctx.tracing:
                ctx.note(src.rule, src.kind, "not_matched", f"discount would be 0: {why}")
            continue
        allocation = [zero] * len(items)
        if len(idx) == 1:
            allocation[idx[0]] = amount
            current[idx[0]] -= amount
        else:
            for k, part in zip(idx, allocate(amount, [current[k] for k in idx], q), strict=True):
                allocation[k] = part
                current[k] -= part
        total += amount
        lines.append(build(DiscountLine, {
            "rule": src.rule, "kind": src.kind, "type": src.spec.kind,
            "scope": "items" if (src.categories or src.skus) else "basket",
            "amount": amount, "allocation": tuple(allocation),
        }))
        ctx.fire(src.rule, src.kind, T.discount(amount, why) if ctx.tracing else None)
    return current, lines, void


def price_traced(program: Program, plan: Plan, m: MemberState, t: Transaction,
                 local_at: datetime, trace: list[TraceEntry], sources: list[tuple[Any, ...]]
                 ) -> tuple[list[Decimal], list[DiscountLine], set[str]]:
    """:func:`_price` for the generated traced decision: ``sources`` are the plan's source
    tuples in priority order, the notes go to the decision's ``trace``."""
    # (this engine reads amounts from the items: written in the minor unit, as the caller's)
    ctx = _Ctx(program, plan, m, in_minor_units(t, plan.fast.quantum), local_at, True)
    ctx.trace = trace
    return _price(ctx, [_Source(src[0], src[1], src[4], src[5], src[6]) for src in sources])


# --- points --------------------------------------------------------------------------------


def _filters(ctx: _Ctx, tiers: frozenset[str], channels: frozenset[str], tier: str,
             ) -> str | None:
    if tiers and tier not in tiers:
        return T.tier_not_in(tier, sorted(tiers))
    if channels and ctx.txn.channel not in channels:
        return T.channel_not_in(ctx.txn.channel, sorted(channels))
    return None


def _earn(ctx: _Ctx, tier: TierPlan, paid: list[Decimal],
          rule_factors: list[tuple[str, Decimal]]) -> list[PointsLine]:
    plan = ctx.plan
    policies = plan.model.policies
    items = ctx.txn.items
    how = policies.points.combine_multipliers
    q = ctx.program.quantum
    tracing = ctx.tracing

    item_factors: list[list[Decimal]] | None = None
    basket: list[tuple[str, Decimal]] = []
    if tier.points_multiplier != _ONE:
        basket.append((f"tier {tier.id}", tier.points_multiplier))
    for mp in plan.multipliers:
        m = mp.rule
        why = _filters(ctx, mp.tiers, mp.channels, tier.id) if mp.tiers or mp.channels \
            else None
        if why is None and mp.when is not None:
            why = ctx.when(m.id, "multiplier", mp.when)
        if why is not None:
            if tracing:
                ctx.note(m.id, "multiplier", "not_matched", why)
            continue
        if mp.item_scoped:
            categories, skus = mp.categories, mp.skus
            hit = [k for k, i in enumerate(items) if (not categories or i.category in categories)
                   and (not skus or i.sku in skus)]
            if item_factors is None:
                item_factors = [[] for _ in items]
            for k in hit:
                item_factors[k].append(m.factor)
            if hit:
                ctx.fire(m.id, "multiplier", T.on_lines(m.factor, hit) if tracing else None)
            elif tracing:
                ctx.note(m.id, "multiplier", "not_matched", T.NO_MATCHING_ITEMS)
        else:
            basket.append((m.id, m.factor))
            ctx.fire(m.id, "multiplier", T.on_all_points(m.factor) if tracing else None)
    basket.extend(rule_factors)
    multiplier = combine([f for _, f in basket], how)
    # (a line's factors are mostly none or one: combined only when there are several)
    weights = None if item_factors is None else [
        (w[0] if len(w) == 1 else combine(w, how)) if w else _ONE for w in item_factors]

    share: list[Decimal] | None = None
    if ctx.pwp and not plan.points_paid_earns:
        # the points-paid part of each line, then of shipping and tax: none of it earns
        share = points_paid_parts(ctx.pwp, paid, ctx.txn.shipping, ctx.txn.tax, q)

    lines: list[PointsLine] = []
    for ep in plan.earn:
        rule = ep.rule
        why = _filters(ctx, ep.tiers, ep.channels, tier.id) if ep.tiers or ep.channels \
            else None
        if why is None and ep.when is not None:
            why = ctx.when(rule.id, "earn", ep.when)
        if why is not None:
            if tracing:
                ctx.note(rule.id, "earn", "not_matched", why)
            continue
        lines.append(_earn_rule(ctx, ep, paid, share, weights, multiplier, basket, how))
    if policies.points.combine_rules == "best" and len(lines) > 1:
        best = best_earn_line(lines, ctx.fired, ctx.trace if tracing else None)
        if tracing:
            for p in lines:
                if p is not best:
                    ctx.note(p.rule, "earn", "skipped", T.best_earns_more(best.rule))
        lines = [best]
    return lines


def _earn_rule(ctx: _Ctx, ep: EarnPlan, paid: list[Decimal], share: list[Decimal] | None,
               weights: list[Decimal] | None, multiplier: Decimal,
               basket: list[tuple[str, Decimal]], how: str) -> PointsLine:
    rule = ep.rule
    policies = ctx.plan.model.policies
    basis = _ZERO
    on_paid = rule.basis == "paid"
    categories, exclude = ep.categories, ep.exclude
    for k, item in enumerate(ctx.txn.items):
        if (categories and item.category not in categories) or item.category in exclude:
            continue
        amount = (paid[k] if share is None else paid[k] - share[k]) if on_paid else item.amount
        basis += amount if weights is None else amount * weights[k]
    if rule.include_shipping:
        basis += ctx.txn.shipping - (share[-2] if share is not None and on_paid else _ZERO)
    if rule.include_tax:
        basis += ctx.txn.tax - (share[-1] if share is not None and on_paid else _ZERO)
    blocks: Decimal | None = None
    if rule.blocks == "full":
        blocks = (basis / rule.per).to_integral_value(rounding=ROUND_FLOOR)
        raw = blocks * rule.points
    else:
        raw = basis * rule.points / rule.per
    if rule.base_rounding is not None:
        raw = Decimal(round_points(raw, rule.base_rounding))
    points = round_points(raw * multiplier if multiplier != _ONE else raw,
                          policies.rounding.points)
    detail = T.earn_detail(ep.text, basis, blocks, raw, multiplier, basket, how,
                           policies.rounding.points) if ctx.tracing else ""
    if rule.cap is not None and points > rule.cap:
        truncate = policies.points.cap == "truncate"
        if ctx.tracing:
            note, more = (T.cap_truncated if truncate else T.cap_rejected)(points, rule.cap)
            ctx.note(rule.id, "earn", "capped", note)
            detail += more
        points = rule.cap if truncate else 0
        ctx.fired[rule.id] = None
    else:
        ctx.fire(rule.id, "earn", T.earned(points, detail) if ctx.tracing else None)
    return build(PointsLine, {"rule": rule.id, "kind": "earn", "points": points,
                              "basis": basis, "multiplier": multiplier, "detail": detail})


def _global_cap(ctx: _Ctx, lines: list[PointsLine]) -> list[PointsLine]:
    cap = ctx.plan.model.policies.points.max_per_transaction
    if cap is None:
        return lines
    total = sum(p.points for p in lines)
    truncate = ctx.plan.model.policies.points.cap == "truncate"
    if total > cap and ctx.tracing:
        ctx.note("max_per_transaction", "cap", "capped",
                 T.over_transaction_cap(total, cap, truncate))
    return cap_total(lines, cap, truncate)


def _period_cap(ctx: _Ctx, lines: list[PointsLine]) -> list[PointsLine]:
    fp = ctx.plan.fast
    assert fp.max_per_period is not None
    room = period_room(fp, ctx.member, ctx.today)
    total = sum(p.points for p in lines)
    if total > room and ctx.tracing:
        ctx.note("max_per_period", "cap", "capped",
                 T.over_period_cap(total, fp.max_per_period, room, fp.period_per,
                                   fp.cap_truncate, period_used(fp, ctx.member, ctx.today)))
    return cap_total(lines, room, fp.cap_truncate, "max_per_period")


# --- tiers ---------------------------------------------------------------------------------


def _qualify(ctx: _Ctx, before: TierPlan, spend: Decimal, points: int, orders: int) -> TierPlan:
    after = before
    spend_text = format(spend, "f")  # the same in every tier's reason
    for tp in ctx.plan.tiers[before.rank + 1:]:
        assert tp.qualify is not None
        checks = T.criteria(tp.thresholds, spend, points, orders, spend_text)
        if tp.qualify_when is not None:
            why = ctx.when(tp.id, "qualification", tp.qualify_when)
            checks.append((why is None, T.condition_holds(tp.qualify_when.expression)
                           if why is None else why))
        ok, reason = T.judged(tp.match, checks)
        if ok:
            after = tp
        if ctx.tracing:
            ctx.note(tp.id, "qualification", "fired" if ok else "not_matched", reason)
    return after


# --- the pipeline --------------------------------------------------------------------------


def evaluate(
    program: Program,
    member: MemberState | dict[str, Any] | str,
    transaction: Transaction | dict[str, Any] | str,
    *,
    trace: bool = True,
    mode: Mode = "compiled",
) -> Decision:
    """Evaluate one purchase for one member at the transaction's own time.

    Pure: the inputs are not changed and no clock or zone of the machine is read. Raises
    :class:`InputError` for malformed input and :class:`EvaluationError` when a rule fails
    (never silently "not matched"). ``mode="interpreted"`` runs conditions through simpleeval
    and the trace through this module's engine: the reference that the compiled default (a
    function generated for the program, with or without the trace) is tested against.

    >>> decision = evaluate(program, member, txn)                  # doctest: +SKIP
    >>> decision.payable, decision.points_total                     # doctest: +SKIP
    (Decimal('800.00'), 80)
    """
    # in_exact, written out: this is the call a host makes per checkout, and the general
    # form's extra frame and argument tuple cost about 2,000 instructions (1%) a decision
    if type(getcontext()) is Exact:
        return _evaluate(program, member, transaction, trace, mode)
    try:
        entry = RUNNERS.pop()
    except IndexError:
        entry = new_runner()
    runner = entry[0]
    # (given back after the call, on success and on failure alike: an except clause, not a
    # finally, which on Python 3.11 costs about 50 ns more on the way out; and the entry
    # itself, not a new tuple of its parts)
    try:
        made = runner.run(_evaluate, program, member, transaction, trace, mode)
    except BaseException:
        if len(runner) == 1 and runner.get(DECIMAL_CONTEXT) is entry[1]:  # unchanged()
            RUNNERS.append(entry)
        raise
    if len(runner) == 1 and runner.get(DECIMAL_CONTEXT) is entry[1]:
        RUNNERS.append(entry)
    return made


def _on_file(purchases: tuple[Any, ...], txn_id: str) -> bool:
    """A purchase of this id is still kept for refunds, though its id may have dropped out of
    ``recent_transactions`` (the last ``remember_events`` ids): the same purchase again, or
    its id reused — either way a second record of one id, which a refund could not tell
    apart."""
    # (a loop, not any() over a generator: half the cost for a year of records)
    for record in purchases:  # noqa: SIM110
        if record.id == txn_id:
            return True
    return False


def _evaluate(program: Program, member: MemberState | dict[str, Any] | str,
              transaction: Transaction | dict[str, Any] | str, trace: bool, mode: Mode
              ) -> Decision:
    if trace is not False and trace is not True:  # ("no" is a true string: see trace_flag)
        trace = trace_flag(trace)
    m = member if type(member) is MemberState else coerce(MemberState, member, "member")
    t = transaction if type(transaction) is Transaction else coerce(
        Transaction, transaction, "transaction")
    t_fields = t.__dict__  # (read once: the generated decision is given it, as the member's)
    txn_id = t_fields["id"]
    if (":" in txn_id and txn_id.startswith(RESERVED_PREFIXES)) or txn_id in RESERVED_IDS:
        raise reserved_id(txn_id)  # (first: `refund:R1` is remembered, but not as a purchase)
    try:
        plan = program._plans.get(mode) or program.plan(mode)
    except AttributeError:  # (a path, a dict, None: a call made wrong)
        raise TypeError(f"expected a Program (from lr.load_program), got "
                        f"{type(program).__name__}") from None
    # the member's fields read from its __dict__, where pydantic keeps them: a model's
    # attribute read costs about three dict reads (BaseModel.__getattr__ keeps Python 3.11
    # from specialising it), and this runs on every purchase
    fields = m.__dict__
    # the spend a purchase adds to, in the currency's unit (the common case written out: a
    # spend in the unit, no spend log, no household; a spend log is read month by month)
    # and far enough below SPEND_LIMIT that a purchase cannot take it there (one comparison;
    # a spend that near is checked against the purchase by _countable)
    fast = plan.fast
    crowded = False
    if not (spend := fields["qualifying_spend"]).same_quantum(fast.quantum) \
            or fields["spend_log"] or fields["household_spend"] is not None \
            or spend >= SPEND_ROOM:
        m = in_unit_state(m, fast.quantum, fast.currency)
        fields = m.__dict__
        crowded = spend_crowded(fields)
    # (a short history is read directly; the test written out, as a call costs more)
    made = digest(m, fields) if len(fields["lots"]) >= (at_least := _lifecycle.DIGEST_FROM) \
        or len(fields["purchases"]) >= at_least else None
    if txn_id in fields["recent_transactions"] or (
            on_file(made, txn_id) if made is not None else
            (records := fields["purchases"]) and _on_file(records, txn_id)):
        raise AlreadyApplied(txn_id)
    events: list[Any] = []
    base_version = fields["version"]
    if plan.lifecycle or fields["pending_points"] or (
            made.expiring if made is not None else (lots := fields["lots"]) and _expiring(lots)):
        # the account is brought to the purchase's instant first: expired points cannot pay
        m, events = advance_state(plan.model, m, t.at, program.zone)
        fields = m.__dict__  # (the state the purchase adds to: one version on, say)
        if events:  # (a review on the way counts a fall, say: readable, as advance())
            counts_held(m, "purchase")
    # (a late purchase whose points may have become usable, or expired, already is
    # completed by complete_purchase, which says so: the generated completion never needs to)
    inline = not (plan.ledger.dated and is_late(m, t.at))
    if not trace:
        if plan.purchase is not None and inline:  # decided and completed by one function
            completed: Decision = plan.purchase(program, plan, m, t, events, base_version,
                                                fields, t_fields)
            # (_cheap_bound written out: a call costs a frame; the totals' fields from their
            # __dict__, as each attribute read of a model costs about 400 instructions)
            totals = fields["totals"].__dict__
            if totals["earned"] + totals["reversed"] + abs(fields["points"]) \
                    + fields["pending_points"] + fields["points_debt"] + fields["orders"] \
                    + fields["version"] < plan.count_room and not crowded:
                return completed
            return _countable(completed, m, plan, crowded)
        return _countable(complete_purchase(program, plan, m, t, plan.decide(
            program, plan, m, t, fields, t_fields), events, base_version), m, plan, crowded)
    if plan.purchase_traced is not None and inline:  # generated for this program: the
        traced: Decision = plan.purchase_traced(program, plan, m, t, events, base_version,
                                                fields, t_fields)
        return _countable(traced, m, plan, crowded)  # engine's trace, completed in one
    if plan.decide_traced is not None:  # generated for this program, the engine's trace
        return _countable(complete_purchase(program, plan, m, t, plan.decide_traced(
            program, plan, m, t, fields, t_fields), events, base_version), m, plan, crowded)
    tier_before, _, local_at, t = prepare(plan.fast, plan, m, t)  # the input checks
    t = in_minor_units(t, plan.fast.quantum)  # (this engine reads amounts from the items)

    decision, tier_after = _run(program, plan, m, t, local_at, tier_before, tier_before, trace)
    if tier_after is not tier_before and plan.model.policies.tiers.benefits_from == \
            "this_transaction":
        first = decision
        decision, _ = _run(program, plan, m, t, local_at, tier_before, tier_after, trace,
                           forced_after=tier_after)
        if trace:
            decision = T.qualified_first(first, decision, tier_before.id)
    return _countable(complete_purchase(program, plan, m, t, decision, events, base_version), m,
                      plan, crowded)


def _countable(decision: Decision, member: MemberState, plan: Plan, crowded: bool
               ) -> Decision:
    """A purchase whose points a member's counts cannot hold (10^24: see COUNT_LIMIT) is an
    error, not a next state the library could not read back. Only earn rates and
    multipliers far beyond any real program's reach it: a member who will have earned less
    than the plan's ``count_room`` before this purchase is not checked. So is a spend a
    purchase would bring to 10^18 (``crowded``: see spend_crowded)."""
    if crowded:
        spend_fits(plan.model, member, decision)
    room = plan.count_room
    fields = member.__dict__
    if _cheap_bound(fields) < room:
        return decision
    # the purchase counts one more order and one more version of the state; the rest is
    # about points
    for name in ("orders", "version"):
        if fields[name] + 1 >= COUNT_LIMIT:
            raise EvaluationError(name, f"the purchase brings the member's {name} to "
                                  f"{fields[name] + 1}, more than a member's counts can hold "
                                  "(below 10^24)")
    # a balance that no lot accounts for becomes an opening lot, counted as earned, when the
    # next state is built: it counts here too (points held in lots are earned already); and
    # the balance itself grows by the purchase's points, whatever the totals say
    held = max(fields["totals"].earned + max(untracked_points(member), 0),
               fields["points"] + fields["pending_points"])
    if held < room:
        return decision
    points = decision.__dict__["points_total"]
    if held + points >= COUNT_LIMIT:
        raise EvaluationError("points", f"the purchase earns {points} points, more than a "
                              "member's points can count (below 10^24): check the earn "
                              "rates and multipliers")
    return decision


def _cheap_bound(fields: dict[str, Any]) -> int:
    """At least every count a purchase adds to (see _countable), in a few additions: the
    counts it adds its points to (earned + reversed + |points| + pending + debt), its
    orders and its version."""
    totals = fields["totals"]
    bound: int = totals.earned + totals.reversed + abs(fields["points"]) \
        + fields["pending_points"] + fields["points_debt"] + fields["orders"] \
        + fields["version"]
    return bound


def _expiring(lots: tuple[PointsLot, ...]) -> bool:
    # (a loop: a generator expression costs a frame, and this runs on every purchase of a
    # member with lots)
    for lot in lots:  # noqa: SIM110
        if lot.expires_at is not None:
            return True
    return False


def _run(
    program: Program,
    plan: Plan,
    m: MemberState,
    t: Transaction,
    local_at: datetime,
    tier_before: TierPlan,
    benefits: TierPlan,
    tracing: bool,
    *,
    forced_after: TierPlan | None = None,
) -> tuple[Decision, TierPlan]:
    ctx = _Ctx(program, plan, m, t, local_at, tracing)
    policies = plan.model.policies
    today = ctx.today

    # 1. which birthday rules and promotions fire (conditions, exclusivity, groups), then
    # 2. the discounts in priority order. A group's or an exclusive rule's winner that drops
    # out once priced (threshold or min_paid not reached) must not keep the others out: the
    # selection is made again without it.
    dropped: dict[str, str] = {}
    while True:
        trace_mark, fired_mark = len(ctx.trace), dict(ctx.fired)
        fired = _select_rules(ctx, benefits.id, dropped)

        # 2. discounts, in priority order
        entries: list[tuple[int, int, str, _Source]] = []
        if benefits.discount is not None:
            entries.append((policies.discounts.tier_priority, -1, benefits.id,
                            _Source(benefits.id, "tier", benefits.discount, _NONE, _NONE)))
        elif tracing:
            ctx.note(benefits.id, "tier", "not_matched",
                     T.no_tier_discount(benefits.id))
        for rp in fired:
            if rp.rule.discount is not None:
                entries.append((rp.rule.priority, rp.index, rp.rule.id,
                                _Source(rp.rule.id, rp.kind, rp.rule.discount, rp.categories,
                                        rp.skus)))
        if len(entries) > 1:
            entries.sort(key=_sort_key(ctx))
        paid, discount_lines, void = _price(ctx, [e[3] for e in entries])

        # the list amount less the discounts: equal to the sum of what the lines cost, and
        # written with the same decimals whatever path made the decision
        goods_paid = ctx.list_total - sum([d.amount for d in discount_lines], _ZERO) \
            if discount_lines else ctx.list_total
        due = goods_paid + t.shipping + t.tax
        pwp, redeemed = redemption_value(plan.model, m, t, goods_paid, program.quantum)
        if pwp > due:
            raise InputError(f"paid_with_points {pwp:f} exceeds the amount due "
                             f"{due:f}", field="paid_with_points", kind="transaction")
        payable = due - pwp
        ctx.pwp = pwp
        if redeemed and tracing:
            ctx.note("redemption", "redemption", "fired", T.points_pay(redeemed, pwp))

        # rules that need the paid amount, and rules whose threshold was not reached, drop out
        kept: list[RulePlan] = []
        for rp in fired:
            rule = rp.rule
            if rule.id in void:
                continue
            if rule.min_paid is not None and goods_paid < rule.min_paid:
                if tracing:
                    ctx.note(rule.id, rp.kind, "not_matched",
                             T.below_min_paid(goods_paid, rule.min_paid))
                continue
            kept.append(rp)
            # a rule whose discount was not the best still gives its other effects
            if (rule.discount is None or rule.id not in ctx.fired) and rp.effects_text:
                ctx.fire(rule.id, rp.kind, rp.effects_text if tracing else None)
        if not plan.fast.resolves:  # no group or exclusive rule: nothing to select again
            break
        lost = [rp for rp in fired if rp not in kept and (
            rp.rule.group is not None or (rp.rule.exclusive and rp.kind == "promotion"))]
        if not lost:
            break
        reasons = {e.rule: e.reason for e in ctx.trace[trace_mark:]
                   if e.status == "not_matched"}
        for rp in lost:
            dropped[rp.rule.id] = reasons.get(rp.rule.id, T.DISCOUNT_DID_NOT_APPLY)
        del ctx.trace[trace_mark:]
        ctx.fired = fired_mark

    # 3. qualifying spend
    qs = policies.qualifying_spend
    excluded = plan.excluded_from_spend
    none = program.quantum * 0  # (nothing, written in the currency's unit: 0.00)
    if qs.basis == "paid":
        spend = sum([paid[k] for k, i in enumerate(t.items) if i.category not in excluded],
                    none) if excluded else goods_paid
    else:
        spend = sum([i.amount for i in t.items if i.category not in excluded], none)
    if qs.include_shipping:
        spend += t.shipping
    if qs.include_tax:
        spend += t.tax
    if pwp:
        spend = spend_after_points(plan.fast, spend, pwp, paid, t.items, t.shipping, t.tax)

    # 4. points
    rule_factors = [(rp.rule.id, rp.rule.points_multiplier) for rp in kept
                    if rp.rule.points_multiplier is not None]
    points_lines = _earn(ctx, benefits, paid, rule_factors) if plan.earn else []
    for rp in kept:
        if rp.rule.bonus_points:
            points_lines.append(build(PointsLine, {
                "rule": rp.rule.id, "kind": "bonus", "points": rp.rule.bonus_points,
                "basis": _ZERO, "multiplier": _ONE,
                "detail": f"bonus {rp.rule.bonus_points} points" if ctx.tracing else ""}))
    if policies.points.max_per_transaction is not None:
        points_lines = _global_cap(ctx, points_lines)
    if policies.points.max_per_period is not None:
        points_lines = _period_cap(ctx, points_lines)
    points_total = 0
    for line in points_lines:
        points_total += line.points

    # 5. tier qualification (never down at a transaction), on usable points only: this
    # purchase's count only if they are usable at once, as a review would count them
    if forced_after is not None:
        tier_after = forced_after
    elif benefits.rank + 1 < len(plan.tiers) or tier_before.rank + 1 < len(plan.tiers):
        usable = m.points - redeemed + (0 if plan.ledger.pending else points_total)
        tier_after = _qualify(ctx, tier_before, window_spend(plan.model, m, today) + spend,
                              usable, m.orders + 1)
    else:
        tier_after = tier_before

    # 6. perks and usage
    perks = list(benefits.perk_grants)
    perks += [build(PerkGrant, {"perk": rp.rule.perk, "rule": rp.rule.id})
              for rp in kept if rp.rule.perk]
    usage = [build(UsageConsumed, {"rule": rp.rule.id,
                                   "period": period_key(today, rp.rule.limit.per)})
             for rp in kept if rp.rule.limit is not None and rp.rule.id in ctx.fired]

    decision = build(Decision, {
        "program": program.ref,
        "member_id": m.id,
        "transaction_id": t.id,
        "at": t.at,
        "local_date": today,
        "currency": program.currency,
        "tier_before": tier_before.id,
        "tier_after": tier_after.id,
        "tier_changed": tier_after is not tier_before,
        "benefits_tier": benefits.id,
        "list_amount": ctx.list_total,
        "discounts": tuple(discount_lines),
        "total_discount": ctx.list_total - goods_paid,
        "line_paid": tuple(paid),
        "goods_paid": goods_paid,
        "shipping": t.shipping.quantize(program.quantum),
        "tax": t.tax.quantize(program.quantum),
        "paid_with_points": pwp.quantize(program.quantum),
        "payable": payable,
        "qualifying_spend": spend,
        "points": tuple(points_lines),
        "points_total": points_total,
        "perks": tuple(perks),
        "usage": tuple(usage),
        "rules_fired": tuple(ctx.fired),
        "trace": tuple(ctx.trace) if tracing else None,
        "redeemed_points": redeemed,
        "events": (),
        "outbox": (),
        "member_version": m.version,
        "member_after": None,
    })
    return decision, tier_after
