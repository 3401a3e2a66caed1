"""The trace-free evaluator: the same decision as the engine, on precomputed plan data.

:mod:`._engine` explains every step and is the reference; this module computes exactly the
same :class:`Decision` when no trace is asked for, without building any explanation and with
every program-constant choice (policies, tier discounts, rule filters, multiplier tables)
worked out at load by :mod:`._compile`. Property tests compare the two on generated programs.

It runs for ``mode="interpreted"``; compiled plans run the function :mod:`._specialise`
writes for the program, which calls this module's helpers for what it does not unroll and
is tested equal to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from . import _trace as T
from ._calendar import LATE, period_key, uses
from ._compile import FastPlan, FastRule, Plan, TierPlan
from ._decision import (
    Decision,
    DiscountLine,
    PointsLine,
    TraceEntry,
    UsageConsumed,
    build,
    builder,
)
from ._errors import InputError, show_value
from ._lifecycle import PERIOD_POINTS, redemption_value, window_spend
from ._member import MemberState, Transaction
from ._money import _MODES, allocate, round_points

__all__ = ["cap_total", "combine", "combined_multiplier", "decide", "earn_lines", "prepare",
           "spend_after_points"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_make_points_line = builder(PointsLine)


def decide(program: Any, plan: Plan, m: MemberState, t: Transaction,
           m_fields: Any = None, t_fields: Any = None) -> Decision:
    """Evaluate with the trace off. Inputs are already validated models. (Called as the
    generated decision is, given the models' field dicts, which it does not need.)"""
    fp = plan.fast
    tier_before, amounts, local_at, t = prepare(fp, plan, m, t)
    decision, after = _run(program, plan, m, t, amounts, local_at, tier_before, tier_before,
                           None)
    if after is not tier_before and fp.benefits_now:
        decision, _ = _run(program, plan, m, t, amounts, local_at, tier_before, after, after)
    return decision


def prepare(fp: FastPlan, plan: Plan, m: MemberState, t: Transaction
            ) -> tuple[TierPlan, list[Decimal], Any, Transaction]:
    """The input checks every evaluation makes: (tier before, line amounts, local time, the
    transaction). Amounts that fit the currency are written in its minor unit (100 as
    100.00), so that a decision's money is, whatever the host wrote: the line amounts
    returned, and shipping, tax and paid_with_points in the transaction returned (its items
    are left as they are: :func:`in_minor_units` writes them for code that reads them)."""
    tier_id = m.tier
    if tier_id is None:
        tier_before = plan.tiers[0]
    else:
        found = plan.tier_index.get(tier_id)
        if found is None:
            raise InputError(f"unknown tier {tier_id!r}; the program has "
                             f"{list(plan.tier_index)}", field="tier", kind="member")
        tier_before = found
    if t.member_id is not None and t.member_id != m.id:
        raise InputError(f"transaction is for member {t.member_id!r}, not {m.id!r}",
                         field="member_id", kind="transaction")
    q = fp.quantum
    amounts = []
    for k, i in enumerate(t.items):
        a = i.amount
        if not a.same_quantum(q):
            if a != a.quantize(q):
                # (shown as written, 1E-99999999, not with its hundred million zeros)
                raise InputError(f"{show_value(a)} has more decimals than {fp.currency} "
                                 "allows",
                                 field=f"items[{k}].amount", kind="transaction")
            a = a.quantize(q)
        amounts.append(a)
    update: dict[str, Any] = {}
    for name in ("shipping", "tax", "paid_with_points"):
        value = getattr(t, name)
        if not value.same_quantum(q) and (value or value.as_tuple().exponent < q_exponent(q)):
            if value != value.quantize(q):
                raise InputError(f"{show_value(value)} has more decimals than "
                                 f"{fp.currency} allows",
                                 field=name, kind="transaction")
            update[name] = value.quantize(q)
    if update:  # (rare: shipping and the like written otherwise than in the minor unit)
        t = t.model_copy(update=update)
    return tier_before, amounts, t.at.astimezone(fp.zone), t


def q_exponent(q: Decimal) -> int:
    exponent = q.as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent


def in_minor_units(t: Transaction, q: Decimal) -> Transaction:
    """The transaction with its items' amounts in the currency's minor unit (they fit: after
    :func:`prepare`), for the engine that reads them from the items."""
    if all(i.amount.same_quantum(q) for i in t.items):
        return t
    return t.model_copy(update={"items": tuple(
        i if i.amount.same_quantum(q) else i.model_copy(update={"amount": i.amount.quantize(q)})
        for i in t.items)})


def _run(program: Any, plan: Plan, m: MemberState, t: Transaction, amounts: list[Decimal],
         local_at: Any, tier_before: TierPlan, benefits: TierPlan, forced: TierPlan | None
         ) -> tuple[Decision, TierPlan]:
    fp = plan.fast
    items = t.items
    n = len(items)
    today = local_at.date()
    at = t.at
    list_total = amounts[0] if n == 1 else sum(amounts, _ZERO)
    tier_id = benefits.id
    lazy = _Lazy(program, plan, m, t, local_at)

    # 1. rules: conditions, then priority order, exclusivity and groups; 2. discounts. A
    # group's or exclusive rule's winner that drops out once priced is selected away (as in
    # the engine) so it does not keep the others out.
    dropped: set[str] = set()
    while True:
        matched: list[FastRule] = []
        for fr in fp.candidates(today, t.channel):
            if fr.id not in dropped and fr.check(at, today, m, t, tier_id, list_total, lazy):
                matched.append(fr)
        if len(matched) > 1:
            matched.sort(key=fp.rule_key)
            if fp.resolves:
                matched = _resolve(matched)

        # 2. discounts
        sources: list[tuple[Any, ...]] = []
        if benefits.source is not None:
            sources.append(benefits.source)
        for fr in matched:
            if fr.source is not None:
                sources.append(fr.source)
        void: set[str] = set()
        if not sources:
            paid = amounts
            discount_lines: list[DiscountLine] = []
        else:
            if len(sources) > 1:
                sources.sort(key=fp.source_key)
            paid, discount_lines = _price(fp, items, amounts, sources, void)
        goods_paid = list_total - sum([d.amount for d in discount_lines], _ZERO) \
            if discount_lines else list_total
        due = goods_paid + t.shipping + t.tax
        pwp, redeemed = redemption_value(plan.model, m, t, goods_paid, fp.quantum)
        if pwp > due:
            raise InputError(f"paid_with_points {pwp:f} exceeds the amount due {due:f}",
                             field="paid_with_points", kind="transaction")
        payable = due - pwp

        kept = [fr for fr in matched if fr.id not in void and (
            fr.min_paid is None or goods_paid >= fr.min_paid)] if matched else matched
        lost = {fr.id for fr in matched if fr not in kept and (
            fr.group is not None or fr.exclusive)}
        if not lost:
            break
        dropped |= lost

    # 3. qualifying spend
    none = fp.quantum * 0  # (nothing, written in the currency's unit: 0.00)
    if fp.spend_paid:
        if fp.spend_excluded:
            spend = sum([paid[k] for k in range(n) if items[k].category not in
                         fp.spend_excluded], none)
        else:
            spend = goods_paid
    else:
        spend = sum([a for k, a in enumerate(amounts) if items[k].category not in
                     fp.spend_excluded], none) if fp.spend_excluded else list_total
    if fp.spend_shipping:
        spend += t.shipping
    if fp.spend_tax:
        spend += t.tax
    if pwp:
        spend = spend_after_points(fp, spend, pwp, paid, items, t.shipping, t.tax)

    # 4. points
    fired: dict[str, None] = {}
    for d in discount_lines:
        fired[d.rule] = None
    for fr in kept:
        if (fr.source is None or fr.id not in fired) and fr.has_other_effects:
            fired[fr.id] = None
    points_lines = _earn(fp, lazy, m, t, items, amounts, paid, benefits, kept, tier_id, fired,
                         pwp if not plan.points_paid_earns else _ZERO) if fp.earn else []
    for fr in kept:
        if fr.bonus_line is not None:
            points_lines.append(fr.bonus_line)
    if fp.max_per_transaction is not None:
        points_lines = cap_total(points_lines, fp.max_per_transaction, fp.cap_truncate)
    if fp.max_per_period is not None:
        points_lines = cap_total(points_lines, period_room(fp, m, today), fp.cap_truncate,
                                 "max_per_period")
    points_total = 0
    for p in points_lines:
        points_total += p.points

    # 5. tier qualification, never down at a transaction
    if forced is not None:
        after = forced
    elif tier_before.rank + 1 < len(plan.tiers):
        after = tier_before
        spend_after = window_spend(plan.model, m, today) + spend
        # usable points only: pending ones count once released (as at a review)
        points_after = m.points - redeemed + (0 if plan.ledger.pending else points_total)
        orders_after = m.orders + 1
        for tp in plan.tiers[tier_before.rank + 1:]:
            if tp.qualifies(spend_after, points_after, orders_after, lazy):
                after = tp
    else:
        after = tier_before

    # 6. perks, usage, the decision
    perks = list(benefits.perk_grants)
    usage: list[UsageConsumed] = []
    for fr in kept:
        if fr.perk_grant is not None:
            perks.append(fr.perk_grant)
        if fr.limit_per is not None and fr.id in fired:  # (its discount not dropped)
            usage.append(build(UsageConsumed, {"rule": fr.id,
                                               "period": fp.period(today, fr.limit_per)}))
    decision = build(Decision, {
        "program": program.ref,
        "member_id": m.id,
        "transaction_id": t.id,
        "at": at,
        "local_date": today,
        "currency": fp.currency,
        "tier_before": tier_before.id,
        "tier_after": after.id,
        "tier_changed": after is not tier_before,
        "benefits_tier": tier_id,
        "list_amount": list_total,
        "discounts": tuple(discount_lines),
        "total_discount": list_total - goods_paid,
        "line_paid": tuple(paid),
        "goods_paid": goods_paid,
        "shipping": t.shipping.quantize(fp.quantum),
        "tax": t.tax.quantize(fp.quantum),
        "paid_with_points": pwp.quantize(fp.quantum),
        "payable": payable,
        "qualifying_spend": spend,
        "points": tuple(points_lines),
        "points_total": points_total,
        "perks": tuple(perks),
        "usage": tuple(usage),
        "rules_fired": tuple(fired),
        "trace": None,
        "redeemed_points": redeemed,
        "events": (),
        "outbox": (),
        "member_version": m.version,
        "member_after": None,
    })
    return decision, after


class _Lazy:
    """Builds the engine's expression scope only if a condition needs it. Given the
    decision's ``trace`` (the generated traced decision), a condition that errors notes it
    there, as the engine does, and :meth:`why` explains one that is false."""

    __slots__ = ("_args", "_ctx", "_trace")

    def __init__(self, program: Any, plan: Plan, m: MemberState, t: Transaction,
                 local_at: Any, trace: list[Any] | None = None) -> None:
        self._args = (program, plan, m, t, local_at)
        self._ctx: Any = None
        self._trace = trace

    def why(self, rule: str, kind: Any, cond: Any) -> str | None:
        """None when the condition holds, else the engine's reason (its explanation)."""
        if self._ctx is None:
            from ._engine import _Ctx

            program, plan, m, t, local_at = self._args
            # (amounts in the minor unit, as the engine's own evaluation reads them)
            self._ctx = _Ctx(program, plan, m, in_minor_units(t, plan.fast.quantum), local_at,
                             self._trace is not None)
            if self._trace is not None:
                self._ctx.trace = self._trace
        reason: str | None = self._ctx.when(rule, kind, cond)
        return reason

    def when(self, rule: str, kind: Any, cond: Any) -> bool:
        return self.why(rule, kind, cond) is None


def _resolve(matched: list[FastRule], note: Callable[[TraceEntry], None] | None = None
             ) -> list[FastRule]:
    """Exclusivity and groups, first by priority wins (:func:`._engine._select_rules`);
    with ``note`` (the generated traced decision), each rule left out is noted as the
    engine notes it."""
    exclusive = _exclusive(matched)
    out: list[FastRule] = []
    groups: dict[str, str] = {}
    for fr in matched:
        if exclusive is not None and fr.promotion and fr is not exclusive:
            if note is not None:
                note(_skipped(fr, T.exclusive_fired(exclusive.id)))
            continue
        if fr.group is not None:
            if fr.group in groups:
                if note is not None:
                    note(_skipped(fr, T.group_taken(fr.group, groups[fr.group])))
                continue
            groups[fr.group] = fr.id
        out.append(fr)
    return out


def _exclusive(matched: list[FastRule]) -> FastRule | None:
    """The exclusive promotion that fires (:func:`._engine._exclusive`)."""
    held: set[str] = set()  # groups a birthday rule ahead holds
    for fr in matched:
        if fr.exclusive and (fr.group is None or fr.group not in held):
            return fr
        if not fr.promotion and fr.group is not None:
            held.add(fr.group)
    return None


def _skipped(fr: FastRule, reason: str) -> TraceEntry:
    return T.entry({"rule": fr.id, "kind": "promotion" if fr.promotion else "birthday",
                    "status": "skipped", "reason": reason})


def _price(fp: Any, items: Sequence[Any], amounts: list[Decimal],
           sources: list[tuple[Any, ...]], void: set[str]
           ) -> tuple[list[Decimal], list[DiscountLine]]:
    """Exactly :func:`._engine._price` without the trace."""
    q = fp.quantum
    n = len(items)
    excluded = fp.discount_excluded
    discountable = [i.category not in excluded for i in items] if excluded else None
    if fp.combine_best and len(sources) > 1:
        best: tuple[Decimal, tuple[Any, ...]] | None = None
        for src in sources:
            result = _compute(fp, src, items, amounts, amounts, discountable, _ZERO)
            if result is None:
                void.add(src[0])
            elif best is None or result[0] > best[0]:
                best = (result[0], src)
        sources = [] if best is None else [best[1]]
    current = list(amounts)
    lines: list[DiscountLine] = []
    total = _ZERO
    zero = fp.zero
    for src in sources:
        result = _compute(fp, src, items, amounts, current, discountable, total)
        if result is None:
            void.add(src[0])
            continue
        amount, idx = result
        if not amount and src[1] != "tier":
            void.add(src[0])
            continue
        allocation = [zero] * n
        if len(idx) == 1:
            k = idx[0]
            allocation[k] = amount
            current[k] -= amount
        else:
            for k, part in zip(idx, allocate(amount, [current[k] for k in idx], q),
                               strict=True):
                allocation[k] = part
                current[k] -= part
        total += amount
        lines.append(build(DiscountLine, {
            "rule": src[0], "kind": src[1], "type": src[2], "scope": src[3],
            "amount": amount, "allocation": tuple(allocation)}))
    return current, lines


def _compute(fp: Any, src: tuple[Any, ...], items: Sequence[Any], amounts: list[Decimal],
             current: list[Decimal], discountable: list[bool] | None, already: Decimal
             ) -> tuple[Decimal, list[int]] | None:
    kind, scope, spec, categories, skus = src[2], src[3], src[4], src[5], src[6]
    n = len(items)
    if scope == "basket":
        idx = list(range(n)) if discountable is None else [k for k in range(n)
                                                             if discountable[k]]
    else:
        idx = [k for k in range(n) if (discountable is None or discountable[k])
               and (not categories or items[k].category in categories)
               and (not skus or items[k].sku in skus)]
    base_now = current[idx[0]] if len(idx) == 1 else sum([current[k] for k in idx], _ZERO)
    q = fp.quantum
    if kind == "percent":
        base = base_now
        if fp.additive:
            base = sum([amounts[k] for k in idx], _ZERO)
        amount = (base * spec.percent).quantize(q, rounding=_MODES[fp.money_rounding])
    elif kind == "amount":
        amount = spec.amount.quantize(q, rounding=_MODES[fp.money_rounding])
    else:
        basis = base_now
        if fp.threshold_list:
            basis = sum([amounts[k] for k in idx], _ZERO)
        if basis < spec.threshold:
            return None
        times = 1
        if spec.repeat:
            times = int((basis / spec.threshold).to_integral_value(rounding=ROUND_FLOOR))
            if spec.max_repeats is not None:
                times = min(times, spec.max_repeats)
        amount = (spec.off * times).quantize(q, rounding=_MODES[fp.money_rounding])
    if amount > base_now:
        amount = base_now
    cap = fp.discount_cap(amounts, items)
    if cap is not None and already + amount > cap:
        amount = max(fp.zero, cap - already)  # (0.00, not 0)
    return amount, idx


def combine(factors: Sequence[Decimal], how: str) -> Decimal:
    """Combine multipliers as the program says: multiply, add (1 + Σ(m − 1), never below 0:
    factors under 1 added up must not make a purchase take points away) or best."""
    if not factors:
        return _ONE
    if len(factors) == 1:
        return factors[0]
    if how == "add":
        return max(_ONE + sum([f - _ONE for f in factors], _ZERO), _ZERO)
    if how == "best":
        return max(factors)
    result = _ONE
    for f in factors:
        result *= f
    return result


def combine_named(basket: Sequence[tuple[str, Decimal]], how: str) -> Decimal:
    """:func:`combine` of a traced decision's named factors; none or one (the usual case)
    without building the list of factors."""
    if not basket:
        return _ONE
    if len(basket) == 1:
        return basket[0][1]
    return combine([f for _, f in basket], how)


def points_paid_parts(pwp: Decimal, paid: list[Decimal], shipping: Decimal, tax: Decimal,
                      quantum: Decimal) -> list[Decimal]:
    """What a points payment paid of each line (in proportion to what it costs), and then,
    in two more entries, of the shipping and of the tax: points pay the goods first, then
    shipping, then tax. None of it earns points (unless ``earns_points``)."""
    goods = min(pwp, sum(paid, _ZERO))
    parts = allocate(goods, paid, quantum)
    rest = pwp - goods
    on_shipping = min(rest, shipping)
    parts.append(on_shipping)
    parts.append(min(rest - on_shipping, tax))
    return parts


def spend_after_points(fp: Any, spend: Decimal, pwp: Decimal, paid: list[Decimal],
                       items: Sequence[Any], shipping: Decimal, tax: Decimal) -> Decimal:
    """Qualifying spend less what points paid of what counts. The points payment is spread
    as for earning (over the lines in proportion to what they cost, then shipping, then
    tax), and only its parts on the lines, shipping and tax that count are taken off: points
    that paid a fifth of a basket of rice and tobacco take a fifth off the rice's spend,
    not the whole payment. Never below 0."""
    none: Decimal = fp.quantum * 0
    on_goods = min(pwp, sum(paid, none))
    excluded = fp.spend_excluded
    if excluded and on_goods:
        parts = allocate(on_goods, paid, fp.quantum)
        counted = sum([parts[k] for k, item in enumerate(items)
                       if item.category not in excluded], none)
    else:
        counted = on_goods
    rest = pwp - on_goods
    on_shipping = min(rest, shipping)
    if fp.spend_shipping:
        counted += on_shipping
    if fp.spend_tax:
        counted += min(rest - on_shipping, tax)
    return max(none, spend - counted)


def _earn(fp: Any, lazy: _Lazy, m: MemberState, t: Transaction, items: Sequence[Any],
          amounts: list[Decimal], paid: list[Decimal], benefits: TierPlan,
          kept: list[FastRule], tier_id: str, fired: dict[str, None], pwp: Decimal
          ) -> list[PointsLine]:
    multiplier, weights = combined_multiplier(fp, lazy, t, items, benefits, kept, tier_id,
                                              fired)
    share = points_paid_parts(pwp, paid, t.shipping, t.tax, fp.quantum) if pwp else None
    lines = earn_lines(fp, lazy, t, items, amounts, paid, share, weights, multiplier,
                       tier_id, fired)
    if fp.best_rule and len(lines) > 1:
        lines = [best_earn_line(lines, fired)]
    return lines


def best_earn_line(lines: list[PointsLine], fired: dict[str, None],
                   trace: list[TraceEntry] | None = None) -> PointsLine:
    """``combine_rules: best``: the line that earns most (the first of equals). The others
    took no effect: they leave ``fired`` and, in a trace, their "fired" entry (a "skipped"
    entry saying why follows)."""
    best = max(lines, key=lambda p: p.points)
    losers = {p.rule for p in lines if p is not best}
    for rule in losers:
        fired.pop(rule, None)
    if trace is not None:
        trace[:] = [e for e in trace
                    if not (e.rule in losers and e.kind == "earn" and e.status == "fired")]
    return best


def combined_multiplier(fp: Any, lazy: _Lazy, t: Transaction, items: Sequence[Any],
                        benefits: TierPlan, kept: list[FastRule], tier_id: str,
                        fired: dict[str, None]) -> tuple[Decimal, list[Decimal] | None]:
    """The transaction's multiplier and each line's weight (None: no multiplier scoped to
    items applied), from the tier, the multipliers (each that applies is noted in ``fired``)
    and the kept rules. Also called by generated decisions with too many multipliers to
    unroll."""
    how = fp.combine_multipliers
    channel = t.channel
    factors: list[Decimal] = []
    if benefits.points_multiplier != _ONE:
        factors.append(benefits.points_multiplier)
    item_factors: list[list[Decimal]] | None = None
    for mp in fp.multipliers:
        if mp.tiers and tier_id not in mp.tiers:
            continue
        if mp.channels and channel not in mp.channels:
            continue
        if mp.when is not None and not lazy.when(mp.id, "multiplier", mp.when):
            continue
        if mp.item_scoped:
            hit = False
            for k, i in enumerate(items):
                if (not mp.categories or i.category in mp.categories) and (
                        not mp.skus or i.sku in mp.skus):
                    if item_factors is None:
                        item_factors = [[] for _ in items]
                    item_factors[k].append(mp.factor)
                    hit = True
            if hit:
                fired[mp.id] = None
        else:
            factors.append(mp.factor)
            fired[mp.id] = None
    for fr in kept:
        if fr.points_multiplier is not None:
            factors.append(fr.points_multiplier)
    multiplier = combine(factors, how)
    weights = None if item_factors is None else [combine(w, how) for w in item_factors]
    return multiplier, weights


def earn_lines(fp: Any, lazy: _Lazy, t: Transaction, items: Sequence[Any],
               amounts: list[Decimal], paid: list[Decimal], share: list[Decimal] | None,
               weights: list[Decimal] | None, multiplier: Decimal, tier_id: str,
               fired: dict[str, None]) -> list[PointsLine]:
    """Each earn rule that applies, its points line (before ``combine_rules: best``), noted
    in ``fired``; ``share`` is each line's part paid with points, then shipping's and tax's
    (:func:`points_paid_parts`), when that earns nothing.
    Also called by generated decisions with too many earn rules to unroll."""
    channel = t.channel
    # round_points inline, its mode looked up once (given positionally: a keyword costs
    # _decimal a second parse)
    mode = _MODES[fp.points_rounding]
    truncate = fp.cap_truncate
    make_line = _make_points_line
    lines: list[PointsLine] = []
    for ep in fp.earn:
        if ep.tiers and tier_id not in ep.tiers:
            continue
        if ep.channels and channel not in ep.channels:
            continue
        if ep.when is not None and not lazy.when(ep.id, "earn", ep.when):
            continue
        categories = ep.categories
        exclude = ep.exclude
        basis_paid = ep.paid
        basis = _ZERO
        for k, item in enumerate(items):
            if categories and item.category not in categories:
                continue
            if item.category in exclude:
                continue
            if basis_paid:
                amount = paid[k] if share is None else paid[k] - share[k]
            else:
                amount = amounts[k]
            basis += amount if weights is None else amount * weights[k]
        if ep.include_shipping:
            basis += t.shipping if share is None or not basis_paid else t.shipping - share[-2]
        if ep.include_tax:
            basis += t.tax if share is None or not basis_paid else t.tax - share[-1]
        if ep.full:
            raw = (basis / ep.per).to_integral_value(rounding=ROUND_FLOOR) * ep.points
        else:
            raw = basis * ep.points / ep.per
        if ep.base_rounding is not None:
            raw = Decimal(round_points(raw, ep.base_rounding))
        points = int((raw * multiplier if multiplier != _ONE else raw).to_integral_value(mode))
        cap = ep.cap
        if cap is not None and points > cap:
            points = cap if truncate else 0
        fired[ep.id] = None
        lines.append(make_line({"rule": ep.id, "kind": "earn", "points": points,
                                "basis": basis, "multiplier": multiplier, "detail": ""}))
    return lines


def cap_total(lines: list[PointsLine], cap: int, truncate: bool,
              policy: str = "max_per_transaction") -> list[PointsLine]:
    """``policies.points.max_per_transaction`` (or what ``max_per_period`` leaves): later
    lines give way first (truncate), or every line earns nothing (reject). Shared by the
    engine, this evaluator and generated decisions."""
    total = sum(p.points for p in lines)
    if total <= cap:
        return lines
    if not truncate:
        return [p.model_copy(update={"points": 0, "detail": p.detail and p.detail + ", "
                                     f"rejected by {policy}"}) for p in lines]
    out: list[PointsLine] = []
    room = cap
    for p in lines:
        keep = min(p.points, room)
        room -= keep
        out.append(p if keep == p.points else p.model_copy(
            update={"points": keep, "detail": p.detail and p.detail + f", truncated to "
                    f"{keep} by {policy}"}))
    return out


def period_room(fp: Any, m: MemberState, today: date) -> int:
    """Points a purchase on ``today`` may still earn under ``max_per_period``. A purchase of
    a period earlier than the one on record (a late one) is capped on its own: what the
    member earned in that period is no longer known."""
    cap: int = fp.max_per_period
    used = period_used(fp, m, today)
    return max(cap - (used or 0), 0)


def period_used(fp: Any, m: MemberState, today: date) -> int | None:
    """The points the member earned in ``today``'s period so far (as usage counts them: a
    referral's too), or None for a period earlier than the one on record."""
    used = uses(m.usage.get(PERIOD_POINTS), period_key(today, fp.period_per))
    return None if used == LATE else used
