"""One program's decision as a straight-line Python function: trace-free, and traced.

:mod:`._fast` evaluates any program from its plan, so on every purchase it re-asks questions
whose answers are fixed when the program loads: is there a tier discount, which policy rounds,
does any rule carry a discount, which multipliers look at items. This module asks them once
and writes a function with only the code this program needs — every multiplier and earn rule
unrolled, each policy branch resolved, the common case (a tier's percentage off the basket)
priced inline — and falls back to :mod:`._fast`'s helpers for the parts it does not unroll.
For a program that :func:`completes_inline`, the same source also holds ``purchase``: the
decision completed as :func:`._lifecycle.complete_purchase` completes it (events, the dates
and parts of the next state), which is what ``evaluate()`` calls.

For a :func:`traceable` program it writes a second function, the same decision with the
traced engine's full trace: every rule's reason from a function of its own, the notes that
never change built once, the sentences from :mod:`._trace` (which the engine writes with
too), and pricing with rule discounts or caps left to the engine's own, which notes it.

Safety: the source is built only from this module's own fragments. Every program value —
ids, sets, amounts, conditions, words — is bound as a constant in the function's namespace
under a generated name (``K0``, ``K1`` …) and never written into the text; :func:`specialise`
checks that the source holds no string literal before compiling it, and the namespace has no
builtins beyond the few it names. Conditions are the plan's already-compiled functions.
``tests/test_specialised.py`` proves both functions equal to :mod:`._fast` and the traced
engine, byte for byte.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any, NamedTuple

from . import _trace
from ._calendar import birthday_change_blocks, is_birthday, period_key, uses
from ._compile import EarnPlan, MultiplierPlan, Plan, TierPlan
from ._decision import (
    Decision,
    DiscountLine,
    LifecycleEvent,
    PointsLine,
    TraceEntry,
    UsageConsumed,
    builder,
    field_set,
    inline_builders,
)
from ._errors import InputError
from ._lifecycle import (
    USABLE_NOW,
    _kept_until,
    _log_oldest,
    _purchase_state,
    expires_at,
    purchase_events,
    redemption_value,
    window_spend,
)
from ._member import MemberState, Transaction
from ._money import _MODES, CONTEXT, allocate, plain, round_points

__all__ = ["completes_inline", "specialise", "traceable"]

Decide = Callable[[Any, Plan, Any, Any], Decision]
# (program, plan, member, transaction, events so far, the member's version before them)
Purchase = Callable[[Any, Plan, Any, Any, list[Any], int], Decision]
_OWN_CHECKS = 64
# earn rules, and multipliers, written out one by one up to this many of each; more are
# left to the plan interpreter's loops (a thousand unrolled took seconds to compile)
_UNROLLED = 64


def _fmt(amount: Decimal) -> str:
    return format(amount, "f")


def _over_paid(pwp: Decimal, due: Decimal) -> InputError:
    return InputError(f"paid_with_points {pwp:f} exceeds the amount due {due:f}",
                      field="paid_with_points", kind="transaction")


class _Source:
    """Lines of Python and the constants they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {}
        self._ids: dict[int, str] = {}
        self.traced = False
        # priced inline by the tier's percentage alone: the one discount line there can be
        # is the benefits tier's own
        self.only_tier_line = False
        # the lines' paid amounts add up to goods_paid, exactly (no discount, or the tier's
        # alone priced inline), and the discount lines are a tuple already
        self.paid_adds_up = False
        # the points total added up as the lines are made (see _points)
        self.running_total = False

    def k(self, value: Any) -> str:
        """The generated name of a program constant (one name per object)."""
        name = self._ids.get(id(value))
        if name is None:
            name = self._ids[id(value)] = f"K{len(self._ids)}"
            self.ns[name] = value
        return name

    def add(self, depth: int, *lines: str) -> None:
        self.lines += ["    " * depth + line for line in lines]

    def made(self, depth: int, name: str, cls: type[Any], values: str,
             private: str = "None") -> None:
        """Lines making output model ``cls`` from ``values`` (an expression of its fields'
        dict) as its builder would, in ``name``."""
        self.add(depth, f"{name} = new({self.k(cls)})", f"set_dict({name}, {values})",
                 f"set_fields({name}, {self.k(field_set(cls))})", f"set_extra({name}, None)",
                 f"set_private({name}, {private})")

    def note(self, rule: str, kind: str, status: str, reason: str) -> str:
        """The line adding a trace entry; ``rule``, ``kind`` and ``reason`` are expressions,
        ``status`` is a status, or two joined by "|": the first if ``ok``, else the second."""
        if "|" in status:
            yes, no = status.split("|")
            status = f"({self.k(yes)} if ok else {self.k(no)})"
        else:
            status = self.k(status)
        # made as a builder makes it, written out on the one line (statements joined by
        # `;`): a traced decision notes about eight entries, and the call cost 230 ns each
        return (f"te = new({self.k(TraceEntry)}); "
                f"set_dict(te, {{{self.k('rule')}: {rule}, {self.k('kind')}: {kind}, "
                f"{self.k('status')}: {status}, {self.k('reason')}: {reason}}}); "
                f"set_fields(te, {self.k(field_set(TraceEntry))}); set_extra(te, None); "
                "set_private(te, None); note(te)")

    def noted(self, rule: str, kind: str, status: str, reason: str) -> str:
        """The line adding an entry that is the same in every decision (built once)."""
        made = _trace.entry({"rule": rule, "kind": kind, "status": status, "reason": reason})
        return f"note({self.k(made)})"


def traceable(plan: Plan) -> bool:
    """Whether :func:`specialise` writes this program's traced decision too: when each of
    its rules gets a function of its own and its earn rules and multipliers are unrolled
    (the trace notes every rule, and a program with hundreds of promotions or earn rules
    would take long to load). Larger ones are traced by the engine."""
    fp = plan.fast
    return (len(fp.rules) <= _OWN_CHECKS and len(fp.earn) <= _UNROLLED
            and len(fp.multipliers) <= _UNROLLED)


def specialise(plan: Plan, traced: bool = False) -> tuple[Decide, Purchase | None]:
    """The plan's decision as one generated function (see the module docstring): trace-free,
    or with ``traced`` (for a :func:`traceable` plan) with the engine's full trace; and, for
    a program that :func:`completes_inline`, the whole purchase too: the decision completed
    as :func:`._lifecycle.complete_purchase` would, in the same function."""
    from . import _fast

    if traced and not traceable(plan):
        raise ValueError("this program's trace is written by the engine")
    fp = plan.fast
    model = plan.model
    s = _Source()
    s.traced = traced
    s.ns.update({
        "len": len, "int": int, "sum": sum, "list": list, "tuple": tuple, "set": set,
        "enumerate": enumerate, "zip": zip, "range": range, "min": min, "max": max,
        "Decimal": Decimal,
        "ZERO": Decimal(0), "ONE": Decimal(1), "ROUND_FLOOR": ROUND_FLOOR,
        "Decision": Decision, "DiscountLine": DiscountLine, "PointsLine": PointsLine,
        "UsageConsumed": UsageConsumed, "allocate": allocate,
        "points_paid_parts": _fast.points_paid_parts, "best_line": _fast.best_earn_line,
        "spend_after_points": _fast.spend_after_points,
        # each output model's builder, resolved once (build() looks it up per call)
        **{f"make_{cls.__name__}": builder(cls)
           for cls in (Decision, DiscountLine, PointsLine, UsageConsumed,
                       LifecycleEvent)},
        "round_points": round_points,
        "combine": _fast.combine, "combine_named": _fast.combine_named,
        "combined_multiplier": _fast.combined_multiplier, "earn_lines": _fast.earn_lines,
        "cap_total": _fast.cap_total, "period_room": _fast.period_room,
        "period_used": _fast.period_used,
        "price": _fast._price,
        "resolve": _fast._resolve, "Lazy": _fast._Lazy, "prepare": _fast.prepare,
        "redemption_value": redemption_value, "window_spend": window_spend,
        "over_paid": _over_paid, "FP": fp, "PLAN": plan, "MODEL": model, "Q": fp.quantum,
        "TIER_INDEX": plan.tier_index, "TIER_ZERO": plan.tiers[0], "ZONE": fp.zone,
        "is_birthday": is_birthday, "birthday_change_blocks": birthday_change_blocks,
        "period_key": period_key,
        "uses": uses,
        # the purchase's completion (see _completion)
        **inline_builders(),
        "dict": dict, "expires_at": expires_at,
        "log_oldest": _log_oldest, "kept_until": _kept_until,
        "purchase_events": purchase_events, "purchase_state": _purchase_state,
    })
    if traced:
        s.ns.update({"entry": _trace.entry, "fmt": _fmt, "T": _trace, "plain": plain,
                     "str": str})
    rules = fp.rules
    any_source = any(fr.source is not None for fr in rules)
    any_tier_discount = any(tp.source is not None for tp in plan.tiers)
    loops = any((fr.group is not None or fr.exclusive) and (
        fr.source is not None or fr.min_paid is not None) for fr in rules)
    any_min_paid = any(fr.min_paid is not None for fr in rules)
    lazy_needed = plan.has_expressions
    # each rule's own check function, for programs of a reasonable size; a program with
    # hundreds of promotions keeps the plan's checks (its day index leaves few to run)
    own_checks = len(rules) <= _OWN_CHECKS
    if traced and not own_checks:
        _rule_reasons(s, plan)  # (a program of a reasonable size has them inline)
    elif own_checks and not traced:
        _rule_checks(s, plan)
    if completes_inline(plan) and not plan.ledger.pending:
        _own_events(s)
    s.add(0, "def run(program, m, t, amounts, local_at, tier_before, benefits, forced, "
          "complete, events, prior_version, m_fields, t_fields):")
    s.add(1, "items = t.items", "n = len(items)", "today = local_at.date()", "at = t.at",
          "list_total = amounts[0] if n == 1 else sum(amounts, ZERO)",
          "tier_id = benefits.id")
    if traced:  # (a condition that fails notes its error in the trace, then raises)
        s.add(1, "trace = []", "note = trace.append",
              "lazy = Lazy(program, PLAN, m, t, local_at, trace)" if lazy_needed
              else "lazy = None")
    else:
        s.add(1, "lazy = Lazy(program, PLAN, m, t, local_at)" if lazy_needed else "lazy = None")

    # 1. rules and 2. discounts (a loop only when a priced-away winner can be selected away)
    depth = 1
    if loops:
        # traced, a rule dropped keeps the reason it dropped with, and each pass's notes are
        # taken back before the next (as the engine does)
        s.add(1, "dropped = {}" if traced else "dropped = set()", "while True:")
        depth = 2
        if traced:
            s.add(2, "mark = len(trace)")
    if traced:
        _traced_selection(s, plan, depth, loops, own_checks)
    elif rules:
        test = "fr.id not in dropped and " if loops else ""
        check = "CHECKS[fr.index]" if own_checks else "fr.check"
        # (loops rather than comprehensions: on Python 3.11 each comprehension is a call)
        # FastPlan.candidates' own index read here first (a method call costs more)
        index = s.k(plan.fast.index)
        s.add(depth, "matched = []", "channel = t.channel")
        if any(fr.month_only for fr in rules):
            # outside the member's birthday month the birthday-month rules cannot hold (their
            # check would say so at its month test, before anything that could fail): a
            # second index leaves them out
            s.add(depth, "if (bday := m.birthday) is None or bday.month != today.month:",
                  f"    candidates = {s.k(plan.fast.outside)}.get((today, channel))",
                  "    if candidates is None:",
                  "        candidates = FP.outside_birthday_month(today, channel)",
                  "else:")
            d = depth + 1
        else:
            d = depth
        s.add(d, f"candidates = {index}.get((today, channel))", "if candidates is None:",
              "    candidates = FP.candidates(today, channel)")
        s.add(depth, "for fr in candidates:",
              f"    if {test}{check}(at, today, m, t, tier_id, list_total, lazy):",
              "        matched.append(fr)",
              "if len(matched) > 1:", "    matched.sort(key=FP.rule_key)")
        if fp.resolves:
            s.add(depth + 1, "matched = resolve(matched)")
    else:
        s.add(depth, "matched = []")
    # the rules a discount's pricing took away: only price() adds to it, and without it an
    # empty frozenset, read and never made (a set() is a call on every decision)
    priced_by_price = any_source or fp.discount_excluded or fp.max_total is not None
    s.add(depth, "void = set()" if priced_by_price else f"void = {s.k(frozenset())}")
    # traced, any pricing beyond a tier's plain percentage is the engine's (its notes say
    # how a discount was limited)
    engine_priced = traced and (any_source or fp.max_total is not None)
    if engine_priced:
        _traced_pricing(s, plan, depth)
    elif any_source:
        _generic_pricing(s, depth, any_tier_discount)
    elif any_tier_discount:
        _tier_pricing(s, depth, plan)
    else:
        s.paid_adds_up = True
        s.add(depth, "paid = amounts", "discount_lines = ()", "goods_paid = list_total")
    if traced and not engine_priced:
        _traced_tier_discount(s, plan, depth)
    # shipping, tax and money paid with points left out are each their field's own default
    # object, a zero of exponent 0 (checked here): adding or taking one away from an amount
    # in the unit (an exponent of 0 or below) gives the same amount, exponent and all, so it
    # is not done
    given = ("shipping", "tax", "paid_with_points")
    if any(Transaction.model_fields[f].default.as_tuple() != (0, (0,), 0) for f in given):
        raise RuntimeError("the transaction's amounts default to Decimal(0)")  # pragma: no cover
    defaults = {f: s.k(Transaction.model_fields[f].default) for f in given}
    s.add(depth, "shipping = t.shipping", "tax = t.tax",
          f"due = goods_paid if shipping is {defaults['shipping']} and tax is "
          f"{defaults['tax']} else goods_paid + shipping + tax",
          "pwp, redeemed = redemption_value(MODEL, m, t, goods_paid, Q) if t.redeem_points "
          "else (t.paid_with_points, 0)",
          f"if pwp is {defaults['paid_with_points']}:", "    payable = due", "else:",
          "    if pwp > due:", "        raise over_paid(pwp, due)", "    payable = due - pwp")
    if traced:
        s.add(depth, "if redeemed:",
              "    " + s.note(s.k("redemption"), s.k("redemption"), "fired",
                              "T.points_pay(redeemed, pwp)"))
        _traced_kept(s, plan, depth)
    elif any_min_paid or any_source:
        s.add(depth, "kept = matched", "if matched:", "    kept = []",
              "    for fr in matched:",
              "        if fr.id not in void and (fr.min_paid is None or "
              "goods_paid >= fr.min_paid):",
              "            kept.append(fr)")
    else:
        s.add(depth, "kept = matched")
    if loops and traced:
        s.add(depth, "lost = [fr for fr in matched if fr not in kept and (fr.group is not "
              "None or fr.exclusive)]", "if not lost:", "    break",
              f"reasons = {{e.rule: e.reason for e in trace[mark:] if e.status == "
              f"{s.k('not_matched')}}}",
              "for fr in lost:",
              "    dropped[fr.id] = reasons.get(fr.id, T.DISCOUNT_DID_NOT_APPLY)",
              "del trace[mark:]")
    elif loops:
        s.add(depth, "lost = {fr.id for fr in matched if fr not in kept and (fr.group is not "
              "None or fr.exclusive)}", "if not lost:", "    break", "dropped |= lost")

    _spend(s, plan)
    _points(s, plan)
    _qualification(s, plan)

    # 6. perks, usage, the decision
    # (the tier's perks, a tuple, added to only when a rule grants one: most purchases
    # grant none, and a list made and turned back into a tuple costs two calls)
    s.add(1, "perks = benefits.perk_grants", "usage = []")
    if any(fr.perk_grant is not None or fr.limit_per is not None for fr in rules):
        s.add(1, "for fr in kept:",
              "    if fr.perk_grant is not None:", "        perks += (fr.perk_grant,)",
              # (a rule whose only effect, its discount, was dropped did not fire)
              "    if fr.limit_per is not None and fr.id in fired:",
              f"        usage.append(make_UsageConsumed({{{s.k('rule')}: fr.id, "
              f"{s.k('period')}: FP.period(today, fr.limit_per)}}))")
    completes = completes_inline(plan)
    if completes:
        s.add(1, "changed = after is not tier_before", "line_paid = tuple(paid)",
              "points_t = tuple(points_lines)", "usage_t = tuple(usage) if usage else ()",
              f"pwp_q = {_quantized(s, 'pwp', 'paid_with_points', fp.quantum)}")
    fields = {
        "program": "program._ref", "member_id": "m.id", "transaction_id": "t.id", "at": "at",
        "local_date": "today", "currency": s.k(fp.currency),
        "tier_before": "tier_before.id", "tier_after": "after.id",
        "tier_changed": "changed" if completes else "after is not tier_before",
        "benefits_tier": "tier_id",
        "list_amount": "list_total",
        "discounts": "discount_lines" if s.paid_adds_up else "tuple(discount_lines)",
        "total_discount": "list_total - goods_paid",
        "line_paid": "line_paid" if completes else "tuple(paid)",
        "goods_paid": "goods_paid", "shipping": _quantized(s, "shipping", "shipping", fp.quantum),
        "tax": _quantized(s, "tax", "tax", fp.quantum),
        "paid_with_points": "pwp_q" if completes else _quantized(s, "pwp", "paid_with_points",
                                                                  fp.quantum),
        "payable": "payable", "qualifying_spend": "spend",
        "points": "points_t" if completes else "tuple(points_lines)",
        "points_total": "points_total", "perks": "perks",
        "usage": "usage_t" if completes else "tuple(usage)",
        "rules_fired": "tuple(fired)", "trace": "tuple(trace)" if traced else "None",
        "redeemed_points": "redeemed",
        "events": "()", "outbox": "()", "member_version": "m.version", "member_after": "None",
    }
    if set(fields) != set(Decision.model_fields):
        raise RuntimeError("the generated decision must set every Decision field")

    def decision(**changes: str) -> list[str]:
        """The lines making ``values``, the decision's fields in order (a field given as ""
        is left out): a copy of a template of the keys, each value stored into it. A display
        of thirty pairs compiles, on Python 3.11, to a dict of sixteen and a second one
        merged into it, which costs about half as much again."""
        values = {name: expr for name, expr in {**fields, **changes}.items() if expr}
        template = s.k(dict.fromkeys(values))
        return [f"values = {template}.copy()",
                *(f"values[{s.k(name)}] = {expr}" for name, expr in values.items())]

    if completes:
        s.add(1, "if not complete:", *("    " + line for line in decision()))
        s.made(2, "made", Decision, "values")
        s.add(2, "return made, after")
        _completion(s, plan)
        pending = s.k(bool(plan.ledger.pending))
        # a purchase that only earns points (and maybe moves up a tier) leaves its events
        # (and the two fields after them) to be made when first read, as its next state is
        # (Decision._settle_events): a checkout that only prices a basket never reads them.
        # The rest are made now: the events of bringing the account up to the purchase, and
        # a redemption's, are known now (and can fail)
        own = ("(own_events, (at, points_total, changed, tier_before.id, after.id)"
               if not plan.ledger.pending else
               f"(purchase_events, ((), at, 0, pwp_q, points_total, available_at, {pending}, "
               "changed, tier_before.id, after.id)")
        s.add(1, "if not (events or redeemed):",
              *("    " + line for line in decision(events="", outbox="", member_version="",
                                                    member_after="")))
        s.made(2, "made", Decision, "values",
               private=f"{{NEXT_STATE: (purchase_state, parts), EVENTS: {own}, prior_version)}}")
        s.add(2, "return made, after")
        s.add(1, "own = purchase_events(events, at, redeemed, pwp_q, points_total, "
                 f"available_at, {pending}, changed, tier_before.id, after.id)")
        events = "own"
        s.add(1, *decision(events=events, member_version="prior_version", member_after=""),
              "if redeemed:  # a redemption can fail on the lots: the state is built now",
              f"    values[{s.k('member_after')}] = purchase_state(*parts)")
        s.made(2, "made", Decision, "values")
        s.add(2, "return made, after")
        # else the next state is made when first read (as _decision.pending() leaves it)
        s.made(1, "made", Decision, "values",
               private="{NEXT_STATE: (purchase_state, parts)}")
        s.add(1, "return made, after")
    else:
        s.add(1, *decision())
        s.made(1, "made", Decision, "values")
        s.add(1, "return made, after")

    # the input checks of ._fast.prepare, inline; anything unusual goes to prepare itself,
    # which raises the error
    # shipping, tax or points paid given (an explicit 0.000 too: prepare() writes it in the
    # minor unit) go to prepare(); left out, each is its field's own default object
    extras = " or ".join(
        f"((v := t.{f}) is not {s.k(Transaction.model_fields[f].default)} "
        f"and (v or not v.same_quantum(Q)))" for f in ("shipping", "tax", "paid_with_points"))
    for name, complete in (("decide", False), ("purchase", True)):
        if complete and not completes:
            continue
        args = "events, prior_version" if complete else "None, None"
        # (the models' field dicts come from evaluate(), which reads them: see _finish)
        s.add(0, f"def {name}(program, plan, m, t, "
              f"{'events, prior_version, ' if complete else ''}m_fields, t_fields):",
              "    tier_before = TIER_INDEX.get(tier) if (tier := m.tier) is not None "
              "else TIER_ZERO",
              "    amounts = []",
              "    for i in t.items:",
              "        a = i.amount",
              # not written in the currency's minor unit? 100 is written 100.00; one finer
              # than it goes to prepare(), which refuses it
              "        if not a.same_quantum(Q):",
              "            if a != (a := a.quantize(Q)):",
              "                tier_before = None",
              "        amounts.append(a)",
              "    if tier_before is None or (t.member_id is not None and t.member_id != m.id) "
              f"or {extras}:",
              # (the transaction as prepare() writes it gets a name of its own: `t` is not
              # rebound, so its fields are still read from its __dict__)
              "        tier_before, amounts, local_at, txn = prepare(FP, PLAN, m, t)",
              "        txn_fields = txn.__dict__",
              "    else:",
              "        local_at = t.at.astimezone(ZONE)",
              "        txn = t",
              "        txn_fields = t_fields",
              "    decision, after = run(program, m, txn, amounts, local_at, tier_before, "
              f"tier_before, None, {complete}, {args}, m_fields, txn_fields)")
        if fp.benefits_now:
            s.add(1, "if after is not tier_before:",
                  "    first = decision",
                  "    decision, _ = run(program, m, txn, amounts, local_at, tier_before, after, "
                  f"after, {complete}, {args}, m_fields, txn_fields)")
            if s.traced:
                s.add(2, "decision = T.qualified_first(first, decision, tier_before.id)")
        s.add(1, "return decision")
    # every constant and helper becomes a parameter of one factory, so the generated code
    # reads them as closure cells (as fast as locals) rather than as global lookups
    # checked for literals (every line) and its field reads rewritten in one pass; the rest
    # of the source below adds no literal
    lines = _finish(s.lines, s)
    names = sorted(s.ns)
    body = "\n".join("    " + line for line in lines)
    result = "decide, purchase" if completes else "decide, None"
    source = f"def factory({', '.join(names)}):\n{body}\n    return {result}\n"
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, "<loyaltyrules: specialised decision>", "exec"), namespace)
    decide, purchase = namespace["factory"](**s.ns)
    decide.__doc__ = source  # what was generated, for the curious (and the tests)
    return decide, purchase


# the models whose fields the generated functions read, by the parameter name they go by
_MODELS: dict[str, frozenset[str]] = {"m": frozenset(MemberState.model_fields),
                                      "t": frozenset(Transaction.model_fields)}


def _finish(lines: list[str], s: _Source) -> list[str]:
    """The generated ``lines``, checked, where each function that reads three or more fields
    of the member ``m`` or the transaction ``t`` reads them from the model's ``__dict__``
    (where pydantic keeps them), fetched once — or given, as ``m_fields``/``t_fields``, by
    a caller that read it already: then every field is read from it. On Python 3.11 a
    pydantic model's attribute read is not specialised (BaseModel defines ``__getattr__``)
    and costs about three dict reads. The reads are found in the parsed lines and rewritten
    in the text (it is all ASCII: columns are characters).

    The same pass checks that no line holds a literal but an integer or None: every value of
    the program is a named constant, never source text. (Checked always: not an assert,
    which python -O would drop.)"""
    module = ast.parse("\n".join(lines))
    edits: list[tuple[int, int, int, str]] = []  # (line, start, end, new text)
    inserts: list[tuple[int, str]] = []  # (line, new line before it)
    for stmt in module.body:
        own = stmt.args.args if isinstance(stmt, ast.FunctionDef) else []
        models = {a.arg for a in own} & _MODELS.keys()
        # each read of a field, and whether the name is bound again inside (a lambda's or a
        # comprehension's own, an assignment): then its reads are not all the model's
        reads: dict[str, list[ast.Attribute]] = {name: [] for name in models}
        rebound: set[str] = set()
        for node in ast.walk(stmt):
            if isinstance(node, ast.Constant):
                if not isinstance(node.value, int | type(None)):
                    raise RuntimeError(
                        "generated code must hold no literal but integers and None")
            elif not models:
                continue
            elif isinstance(node, ast.Attribute):
                base = node.value
                if (isinstance(base, ast.Name) and base.id in models
                        and node.attr in _MODELS[base.id] and isinstance(node.ctx, ast.Load)):
                    reads[base.id].append(node)
            elif isinstance(node, ast.Name):
                if node.id in models and not isinstance(node.ctx, ast.Load):
                    rebound.add(node.id)
            elif isinstance(node, ast.arg) and node.arg in models and node not in own:
                rebound.add(node.arg)
        if not models:
            continue
        first = stmt.body[0]  # type: ignore[attr-defined]  # (a function: it has models)
        given = {a.arg for a in own}
        for name, found in reads.items():
            held = f"{name}_fields"
            # (a function given the dict, by its caller that read it already, reads every
            # field from it; another fetches it itself when it reads three or more)
            if name in rebound or (held not in given and len(found) < 3):
                continue
            edits += [(n.lineno - 1, n.col_offset, n.end_col_offset or 0,
                       f"{held}[{s.k(n.attr)}]") for n in found]
            if held not in given:
                inserts.append((first.lineno - 1,
                                " " * first.col_offset + f"{held} = {name}.__dict__"))
    out = list(lines)
    for line, start, end, text in sorted(edits, reverse=True):  # right to left on a line
        out[line] = out[line][:start] + text + out[line][end:]
    for line, text in sorted(inserts, reverse=True):
        out.insert(line, text)
    return out


def _quantized(s: _Source, value: str, field: str, quantum: Decimal) -> str:
    """``value`` quantized to the currency's unit, where it may be the transaction field's
    own default object (a transaction that leaves the field out): that is quantized once,
    here, not on every decision."""
    default = Transaction.model_fields[field].default
    with localcontext(CONTEXT):
        made = default.quantize(quantum)
    return f"({s.k(made)} if {value} is {s.k(default)} else {value}.quantize({s.k(quantum)}))"


def _own_events(s: _Source) -> None:
    """``own_events``: the events of a purchase that only earns points and maybe moves up a
    tier, for a program whose points are usable at once, made as purchase_events makes them
    (in the model's field order, which JSON keeps) when its decision's events are first read
    (Decision._settle_events) — in fewer steps than that general function."""
    earned = {"at": "at", "type": s.k("points_earned"), "rule": "None",
              "points": "points_total", "tier_from": "None", "tier_to": "None",
              "detail": s.k(USABLE_NOW)}
    upgraded = {"at": "at", "type": s.k("tier_upgraded"), "rule": "None", "points": s.k(0),
                "tier_from": "tier_from", "tier_to": "tier_to", "detail": s.k("qualified")}
    for fields_of in (earned, upgraded):
        if list(fields_of) != list(LifecycleEvent.model_fields):
            raise RuntimeError("a generated event must set every LifecycleEvent field in order")

    def pairs(values: dict[str, str]) -> str:
        return "{" + ", ".join(f"{s.k(name)}: {expr}" for name, expr in values.items()) + "}"

    s.add(0, "def own_events(at, points_total, changed, tier_from, tier_to):",
          "    if points_total:")
    s.made(2, "earned", LifecycleEvent, pairs(earned))
    s.add(2, "if not changed:", "    return (earned,)")
    s.add(1, "elif not changed:", "    return ()")
    s.made(1, "upgraded", LifecycleEvent, pairs(upgraded))
    s.add(1, "return (earned, upgraded) if points_total else (upgraded,)")


def completes_inline(plan: Plan) -> bool:
    """Whether the trace-free function also completes the purchase (events, the pending next
    state) as :func:`._lifecycle.complete_purchase` does, rather than leaving it to that
    function: for programs without a referral or signals, which only that function adds, and
    whose tier benefits apply from the next transaction (with ``this_transaction`` a purchase
    that upgrades is decided twice, and only the second decision may be completed: a
    completion can fail, and the first one's failure must not stand for the second's)."""
    model = plan.model
    return model.referral is None and not model.signals and not plan.fast.benefits_now


def _completion(s: _Source, plan: Plan) -> None:
    """:func:`._lifecycle.complete_purchase` with this program's ledger settings resolved:
    the dates the next state needs (computed now, so a date out of range fails the
    evaluation) and the parts it is built from, in ``_purchase_state``'s order."""
    lp = plan.ledger
    ledger = plan.model.ledger
    # (a program that keeps no tier for a while after an upgrade has no date to work out)
    kept = "None" if plan.model.reviews.keep is None else \
        "kept_until(MODEL, today) if changed else None"
    s.add(1, f"available_at = at + {s.k(lp.pending)}" if lp.pending else "available_at = at",
          f"expiry = expires_at({s.k(ledger.expiry)}, at, ZONE)" if lp.expires
          else "expiry = None",
          "oldest = log_oldest(MODEL, today)" if lp.keeps_log else "oldest = None",
          f"parts = (m, dict(m.usage), dict(m.spend_log), t, {s.k(ledger.remember_events)}, "
          f"available_at, expiry, at - {s.k(lp.refund)}, oldest, "
          f"{kept}, today, points_t, points_total, "
          f"redeemed, usage_t, spend, line_paid, goods_paid, pwp_q, after.id, changed, "
          f"{s.k(plan)}, fired)")


def _generic_pricing(s: _Source, depth: int, any_tier_discount: bool) -> None:
    s.add(depth, "sources = []")
    if any_tier_discount:
        s.add(depth, "if benefits.source is not None:", "    sources.append(benefits.source)")
    s.add(depth, "for fr in matched:", "    if fr.source is not None:",
          "        sources.append(fr.source)",
          "if not sources:", "    paid = amounts", "    discount_lines = []",
          "    goods_paid = list_total", "else:", "    if len(sources) > 1:",
          "        sources.sort(key=FP.source_key)",
          "    paid, discount_lines = price(FP, items, amounts, sources, void)",
          "    goods_paid = list_total - sum([d.amount for d in discount_lines], ZERO) "
          "if discount_lines else list_total")


def _tier_pricing(s: _Source, depth: int, plan: Plan) -> None:
    """Only a tier's percentage can discount: priced inline when no policy complicates it
    (excluded categories, a total cap), else by the generic pricing."""
    fp = plan.fast
    inline = not (fp.discount_excluded or fp.max_total is not None)
    s.add(depth, "src = benefits.source", "if src is None:", "    paid = amounts",
          f"    discount_lines = {'()' if inline else '[]'}", "    goods_paid = list_total",
          "else:")
    if not inline:
        s.add(depth + 1, "paid, discount_lines = price(FP, items, amounts, [src], void)",
              "goods_paid = list_total - sum([d.amount for d in discount_lines], ZERO)")
        return
    mode = s.k(_MODES[fp.money_rounding])
    d = depth + 1
    s.only_tier_line = s.paid_adds_up = True
    s.add(d, f"amount = (list_total * benefits.percent).quantize(Q, {mode})",  # (positional:
          # a keyword costs _decimal a second parse)
          "if n == 1:", "    allocation = (amount,)", "    paid = [amounts[0] - amount]",
          "else:", "    parts = allocate(amount, amounts, Q)",
          "    allocation = tuple(parts)",
          "    paid = []", "    for k in range(n):",
          "        paid.append(amounts[k] - parts[k])")
    keys = {name: s.k(name) for name in ("rule", "kind", "type", "scope", "amount",
                                         "allocation")}
    s.made(d, "line", DiscountLine,
           f"{{{keys['rule']}: src[0], {keys['kind']}: src[1], {keys['type']}: src[2], "
           f"{keys['scope']}: src[3], {keys['amount']}: amount, "
           f"{keys['allocation']}: allocation}}")
    s.add(d, "discount_lines = (line,)", "goods_paid = list_total - amount")


def _spend(s: _Source, plan: Plan) -> None:
    fp = plan.fast
    excluded = s.k(fp.spend_excluded)
    none = s.k(fp.quantum * 0)  # (nothing, written in the currency's unit: 0.00)
    if fp.spend_paid:
        if fp.spend_excluded:
            s.add(1, f"spend = sum([paid[k] for k in range(n) if items[k].category not in "
                  f"{excluded}], {none})")
        else:
            s.add(1, "spend = goods_paid")
    elif fp.spend_excluded:
        s.add(1, f"spend = sum([a for k, a in enumerate(amounts) if items[k].category not "
              f"in {excluded}], {none})")
    else:
        s.add(1, "spend = list_total")
    if fp.spend_shipping:
        s.add(1, "spend += shipping")
    if fp.spend_tax:
        s.add(1, "spend += tax")
    s.add(1, "if pwp:",
          "    spend = spend_after_points(FP, spend, pwp, paid, items, shipping, tax)")


def _points(s: _Source, plan: Plan) -> None:
    fp = plan.fast
    rules = fp.rules
    if s.only_tier_line:
        s.add(1, "fired = {tier_id: None} if discount_lines else {}")
    else:
        s.add(1, "fired = {}", "for d in discount_lines:", "    fired[d.rule] = None")
    if any(fr.has_other_effects for fr in rules):
        s.add(1, "for fr in kept:",
              "    if (fr.source is None or fr.id not in fired) and fr.has_other_effects:",
              "        fired[fr.id] = None")
    # the points added up as each line is made, when every line made is kept as it is (no
    # best line chosen, no cap): not read back from the lines (a model's attribute read
    # costs about 400 instructions)
    s.running_total = len(fp.earn) <= _UNROLLED and not (fp.best_rule and len(fp.earn) > 1) \
        and fp.max_per_transaction is None and fp.max_per_period is None
    if fp.earn:
        _earn(s, plan)
    else:
        s.add(1, "points_lines = []")
        if s.running_total:
            s.add(1, "points_total = 0")
    if any(fr.bonus_line is not None for fr in rules):
        line = "fr.bonus_line_traced" if s.traced else "fr.bonus_line"  # (detail: trace only)
        s.add(1, "for fr in kept:", "    if fr.bonus_line is not None:",
              f"        points_lines.append({line})",
              *(["        points_total += fr.bonus"] if s.running_total else []))
    if fp.max_per_transaction is not None:
        cap, truncate = s.k(fp.max_per_transaction), s.k(fp.cap_truncate)
        if s.traced:
            s.add(1, "total = 0", "for p in points_lines:", "    total += p.points",
                  f"if total > {cap}:",
                  "    " + s.note(s.k("max_per_transaction"), s.k("cap"), "capped",
                                  f"T.over_transaction_cap(total, {cap}, {truncate})"))
        s.add(1, f"points_lines = cap_total(points_lines, {cap}, {truncate})")
    if fp.max_per_period is not None:
        truncate = s.k(fp.cap_truncate)
        s.add(1, "room = period_room(FP, m, today)")
        if s.traced:
            s.add(1, "total = 0", "for p in points_lines:", "    total += p.points",
                  "if total > room:",
                  "    " + s.note(s.k("max_per_period"), s.k("cap"), "capped",
                                  f"T.over_period_cap(total, {s.k(fp.max_per_period)}, room, "
                                  f"{s.k(fp.period_per)}, {truncate}, period_used(FP, m, today))"))
        s.add(1, f"points_lines = cap_total(points_lines, room, {truncate}, "
              f"{s.k('max_per_period')})")
    if not s.running_total:
        s.add(1, "points_total = 0", "for p in points_lines:", "    points_total += p.points")


def _earn(s: _Source, plan: Plan) -> None:
    """:func:`._fast._earn` unrolled: one block per multiplier and per earn rule. Traced, the
    factors keep their names (the earn lines quote them) and every step is noted. A program
    with more than ``_UNROLLED`` multipliers or earn rules calls the plan interpreter's loop
    for them instead (such a program is traced by the engine)."""
    fp = plan.fast
    traced = s.traced
    scoped = [mp for mp in fp.multipliers if mp.item_scoped]
    item_scoped = bool(scoped)
    if len(fp.multipliers) > _UNROLLED:  # (never traced: see traceable)
        s.add(1, "multiplier, weights = combined_multiplier(FP, lazy, t, items, benefits, "
              "kept, tier_id, fired)")
    else:
        _multipliers(s, plan, scoped)
    if plan.points_paid_earns:
        s.add(1, "share = None")
    else:
        s.add(1, "share = points_paid_parts(pwp, paid, shipping, tax, Q) if pwp else None")
    if len(fp.earn) > _UNROLLED:
        s.add(1, "points_lines = earn_lines(FP, lazy, t, items, amounts, paid, share, "
              f"{'weights' if item_scoped else 'None'}, multiplier, tier_id, fired)")
    else:
        _earn_rules(s, plan, item_scoped)
    if fp.best_rule and len(fp.earn) > 1:
        s.add(1, "if len(points_lines) > 1:")
        if traced:
            s.add(2, "best = best_line(points_lines, fired, trace)", "for p in points_lines:",
                  "    if p is not best:",
                  "        " + s.note("p.rule", s.k("earn"), "skipped",
                                      "T.best_earns_more(best.rule)"),
                  "points_lines = [best]")
        else:
            s.add(2, "points_lines = [best_line(points_lines, fired)]")


def _multipliers(s: _Source, plan: Plan, scoped: list[MultiplierPlan]) -> None:
    """The multiplier and the lines' weights, each multiplier unrolled."""
    fp = plan.fast
    traced = s.traced
    how = s.k(fp.combine_multipliers)

    def factor(name: str, value: str) -> str:
        return f"basket.append(({name}, {value}))" if traced else f"factors.append({value})"

    s.add(1, "basket = []" if traced else "factors = []")
    if any(tp.points_multiplier != 1 for tp in plan.tiers):
        names = s.k({tp.id: f"tier {tp.id}" for tp in plan.tiers})
        s.add(1, "if benefits.points_multiplier != ONE:",
              "    " + factor(f"{names}[tier_id]", "benefits.points_multiplier"))
    item_scoped = bool(scoped)
    # one unconditional item-scoped multiplier (the common "beauty counts 3×"): each line's
    # weight is the factor or one, no per-line factor lists to combine
    single = scoped[0] if len(scoped) == 1 and not (
        scoped[0].tiers or scoped[0].channels or scoped[0].when) else None
    if item_scoped:
        s.add(1, "weights = None" if single is not None else "item_factors = None")
    for mp in fp.multipliers:
        mid = s.k(mp.id)
        hits: list[str] = []  # the traced lines noting which lines a scoped factor hit
        if traced:
            hits = ["    " + s.note(mid, s.k("multiplier"), "fired",
                                    # T.on_lines(factor, hit), its words written once
                                    f"{s.k(_trace.on_lines(mp.factor, []).removesuffix('[]'))}"
                                    " + str(hit)"),
                    "else:", "    " + s.noted(mp.id, "multiplier", "not_matched",
                                              _trace.NO_MATCHING_ITEMS)]
        if mp is single:
            if traced:
                s.add(1, "hit = []")
            s.add(1, "for k, i in enumerate(items):",
                  "    if " + _item_match(s, mp.categories, mp.skus) + ":",
                  *(["        hit.append(k)"] if traced else []),
                  "        if weights is None:", "            weights = [ONE] * n",
                  f"        weights[k] = {s.k(mp.factor)}",
                  "if weights is not None:", f"    fired[{mid}] = None", *hits)
            continue
        d = _guard(s, mp.tiers, mp.channels, mp.when, mp.id, "multiplier")
        if mp.item_scoped:
            s.add(d, "hit = []" if traced else "hit = False", "for k, i in enumerate(items):",
                  "    if " + _item_match(s, mp.categories, mp.skus) + ":",
                  "        if item_factors is None:",
                  "            item_factors = [[] for _ in items]",
                  f"        item_factors[k].append({s.k(mp.factor)})",
                  "        hit.append(k)" if traced else "        hit = True",
                  "if hit:", f"    fired[{mid}] = None", *hits)
        else:
            s.add(d, factor(mid, s.k(mp.factor)), f"fired[{mid}] = None")
            if traced:
                s.add(d, s.noted(mp.id, "multiplier", "fired", _trace.on_all_points(mp.factor)))
        if traced:
            _filtered(s, d, mid, "multiplier")
    if any(fr.points_multiplier is not None for fr in fp.rules):
        s.add(1, "for fr in kept:", "    if fr.points_multiplier is not None:",
              "        " + factor("fr.id", "fr.points_multiplier"))
    if traced:
        s.add(1, f"multiplier = combine_named(basket, {how})")
    else:  # (combine's own first two cases, written out: a call costs more than they do)
        s.add(1, "multiplier = ONE if not factors else factors[0] if len(factors) == 1 else "
              f"combine(factors, {how})")
    if item_scoped and single is None:
        s.add(1, f"weights = None if item_factors is None else [combine(w, {how}) for w in "
              "item_factors]")


def _earn_rules(s: _Source, plan: Plan, item_scoped: bool) -> None:
    """The points lines, each earn rule unrolled."""
    fp = plan.fast
    traced = s.traced
    how = s.k(fp.combine_multipliers)
    s.add(1, "points_lines = []", *(["points_total = 0"] if s.running_total else []))
    for ep in fp.earn:
        rule = ep.rule
        d = _guard(s, ep.tiers, ep.channels, ep.when, rule.id, "earn")
        if not ep.categories and not ep.exclude and (rule.basis != "paid" or s.paid_adds_up):
            # every line counts, each weighted one, none paid with points: the lines add up
            # to the basket's own total, paid or listed (the same Decimal: in the unit, from
            # ZERO), so the basis is that total, not a sum made again
            whole = "goods_paid" if rule.basis == "paid" else "list_total"
            tests = (["share is None"] if rule.basis == "paid" else []) + (
                ["weights is None"] if item_scoped else [])
            if not tests:  # (the list's own total, whatever the lines: no sum at all)
                s.add(d, f"basis = {whole}")
            else:
                s.add(d, f"if {' and '.join(tests)}:", f"    basis = {whole}", "else:")
                _basis_sum(s, d + 1, ep, item_scoped)
        else:
            _basis_sum(s, d, ep, item_scoped)
        on_paid = rule.basis == "paid"  # (what points paid of these earns nothing either)
        if rule.include_shipping:
            s.add(d, "basis += shipping if share is None else shipping - share[-2]"
                  if on_paid else "basis += shipping")
        if rule.include_tax:
            s.add(d, "basis += tax if share is None else tax - share[-1]"
                  if on_paid else "basis += tax")
        per, pts = s.k(rule.per), s.k(rule.points)
        if rule.blocks == "full":
            s.add(d, f"blocks = (basis / {per}).to_integral_value(ROUND_FLOOR)",
                  f"raw = blocks * {pts}")
        elif (rate := _rate_per_power_of_ten(rule.points, rule.per, fp.multipliers)) \
                is not None:
            # dividing by 10^k only moves the point: basis × (points × 10^-k) has the same
            # digits as basis × points / per, rounded alike, and only its value is read next
            s.add(d, f"raw = basis * {s.k(rate)}")
        else:
            s.add(d, f"raw = basis * {pts} / {per}")
        # round_points inline; only the rounded base's value is used next
        if rule.base_rounding is not None:  # an int from here
            s.add(d, f"raw = {_to_int(s, 'raw', rule.base_rounding)}",
                  "points = raw if multiplier == ONE else "
                  + _to_int(s, "(raw * multiplier)", fp.points_rounding))
        else:
            s.add(d, "points = " + _to_int(
                s, "(raw * multiplier if multiplier != ONE else raw)", fp.points_rounding))
        rid = s.k(rule.id)
        detail = s.k("")
        if traced and rule.blocks == "full":
            detail = "detail"
            s.add(d, f"detail = T.earn_detail({s.k(ep.text)}, basis, blocks, "
                  f"{'None' if rule.base_rounding is None else 'int(raw)'}, multiplier, basket, "
                  f"{how}, {s.k(fp.points_rounding)})")
        elif traced:  # T.earn_detail, its unchanging words written once
            detail = "detail"
            text = ep.text
            s.add(d, "basis_text = plain(basis)",
                  f"detail = {s.k('basis ')} + basis_text + {s.k(': ')} + basis_text + "
                  f"{s.k(text.rate)}")
            if rule.base_rounding is not None:
                s.add(d, f"detail += {s.k(' = ')} + str(raw) + {s.k(text.base)}")
            s.add(d, "if multiplier != ONE:",
                  f"    detail += T.multiplied(multiplier, basket, {how})",
                  f"detail += {s.k(', rounded ' + fp.points_rounding)}")
        earned = s.note(rid, s.k("earn"), "fired",  # T.earned(points, detail)
                        f"str(points) + {s.k(' points — ')} + detail")
        if rule.cap is not None:
            cap = s.k(rule.cap)
            s.add(d, f"if points > {cap}:")
            if traced:
                said = "T.cap_truncated" if fp.cap_truncate else "T.cap_rejected"
                s.add(d + 1, f"capped, more = {said}(points, {cap})",
                      s.note(rid, s.k("earn"), "capped", "capped"), "detail += more")
            s.add(d + 1, f"points = {cap if fp.cap_truncate else '0'}")
            if traced:
                s.add(d, "else:", "    " + earned)
        elif traced:
            s.add(d, earned)
        s.add(d, f"fired[{rid}] = None")
        s.made(d, "line", PointsLine,
               f"{{{s.k('rule')}: {rid}, {s.k('kind')}: {s.k('earn')}, "
               f"{s.k('points')}: points, {s.k('basis')}: basis, "
               f"{s.k('multiplier')}: multiplier, {s.k('detail')}: {detail}}}")
        s.add(d, "points_lines.append(line)",
              *(["points_total += points"] if s.running_total else []))
        if traced:
            _filtered(s, d, rid, "earn")


def _basis_sum(s: _Source, depth: int, ep: EarnPlan, item_scoped: bool) -> None:
    """An earn rule's basis added up line by line: the lines it counts, each weighted."""
    s.add(depth, "basis = ZERO", "for k, item in enumerate(items):")
    if ep.categories:
        s.add(depth + 1, f"if item.category not in {s.k(ep.categories)}:", "    continue")
    if ep.exclude:
        s.add(depth + 1, f"if item.category in {s.k(ep.exclude)}:", "    continue")
    amount = "(paid[k] if share is None else paid[k] - share[k])" if ep.rule.basis == "paid" \
        else "amounts[k]"
    if item_scoped:
        # (a line weighted one is added as it is: the same Decimal, without a product)
        s.add(depth + 1, "if weights is None or (w := weights[k]) is ONE:",
              f"    basis += {amount}", "else:", f"    basis += {amount} * w")
    else:
        s.add(depth + 1, f"basis += {amount}")


def _power_of_ten(per: Decimal) -> int | None:
    """k when ``per`` is exactly 10^k (k ≥ 0): 100 and 100.00 alike, not a number of more
    digits than the context keeps that rounds to one; else None."""
    sign, digits, exponent = per.as_tuple()
    if sign or digits[0] != 1 or any(digits[1:]) or not isinstance(exponent, int):
        return None
    k = len(digits) - 1 + exponent
    return k if k >= 0 else None


# a number of the earn rate, or a multiplier's factor, within 10^±100: their products stay
# far from the context's limits, where a result is rounded to fit (see _rate_per_power_of_ten)
_ORDINARY = 100


def _rate_per_power_of_ten(points: Decimal, per: Decimal, multipliers: Any) -> Decimal | None:
    """``points / per`` made exactly (its digits, the point moved: no rounding at all), when
    ``per`` is 10^k and the earn's numbers are ordinary, else None. Then basis × rate is
    basis × points / per: the product's digits are the same and are rounded once alike (to the
    context's 28; the division by 10^k after it is exact). A number that is not ordinary
    (``points`` of 0.000…1 with a million zeros, a line weighted so) could make a product
    fall below the context's smallest exponent, where it would be rounded a second time by
    the division but once here: the division is kept for those."""
    k = _power_of_ten(per)
    if k is None:
        return None
    if not all(-_ORDINARY <= n.adjusted() <= _ORDINARY
               for n in (points, *(mp.factor for mp in multipliers))):
        return None
    sign, digits, exponent = points.as_tuple()
    assert isinstance(exponent, int)  # (points are finite: validated)
    return Decimal((sign, digits, exponent - k))


def _to_int(s: _Source, value: str, rounding: str) -> str:
    """``value`` (a Decimal) rounded to an int by the policy ``rounding``:
    ``round_points`` inline. Floor and ceiling go straight to an int (``__floor__``), the
    others through ``to_integral_value`` (given positionally: a keyword argument costs
    _decimal a second parse)."""
    if rounding == "floor":
        return f"{value}.__floor__()"
    if rounding == "ceiling":
        return f"{value}.__ceil__()"
    return f"int({value}.to_integral_value({s.k(_MODES[rounding])}))"


def _filtered(s: _Source, depth: int, rule: str, kind: str) -> None:
    """After a guarded multiplier's or earn rule's block (traced): the note saying why its
    filters or condition left it out."""
    if depth > 1:
        s.add(1, "else:", "    " + s.note(rule, s.k(kind), "not_matched", "why"))


def _guard(s: _Source, tiers: frozenset[str], channels: frozenset[str], when: Any,
           rule_id: str, kind: str) -> int:
    """Open the ``if`` of a multiplier's or earn rule's own filters; the depth of its body.
    Traced, ``why`` first holds the reason it is left out, as :func:`._engine._filters` and
    the condition give it (tiers, then channels, then the condition)."""
    if s.traced:
        if not (tiers or channels or when is not None):
            return 1
        s.add(1, "why = None")
        if tiers:
            s.add(1, f"if tier_id not in {s.k(tiers)}:",
                  f"    why = T.tier_not_in(tier_id, {s.k(sorted(tiers))})")
        if channels:
            s.add(1, f"if why is None and t.channel not in {s.k(channels)}:",
                  f"    why = T.channel_not_in(t.channel, {s.k(sorted(channels))})")
        if when is not None:
            s.add(1, "if why is None:",
                  f"    why = lazy.why({s.k(rule_id)}, {s.k(kind)}, {s.k(when)})")
        s.add(1, "if why is None:")
        return 2
    tests = []
    if tiers:
        tests.append(f"tier_id in {s.k(tiers)}")
    if channels:
        tests.append(f"t.channel in {s.k(channels)}")
    if when is not None:
        tests.append(f"lazy.when({s.k(rule_id)}, {s.k(kind)}, {s.k(when)})")
    if not tests:
        return 1
    s.add(1, "if " + " and ".join(tests) + ":")
    return 2


def _item_match(s: _Source, categories: frozenset[str], skus: frozenset[str],
                line: str = "i") -> str:
    """The test that ``line`` is in a scope of categories and/or SKUs ("" for none)."""
    match = []
    if categories:
        match.append(f"{line}.category in {s.k(categories)}")
    if skus:
        match.append(f"{line}.sku in {s.k(skus)}")
    return " and ".join(match)


def _qualification(s: _Source, plan: Plan) -> None:
    """5. tier qualification, never down at a transaction. Spend-only thresholds become one
    comparison per tier above the member's; anything else asks each tier's plan."""
    tiers = plan.tiers
    s.add(1, "if forced is not None:", "    after = forced")
    if len(tiers) == 1:
        s.add(1, "else:", "    after = tier_before")
        return
    spend_only = all(tp.qualify is not None and tp.qualify_when is None
                     and tp.qualify.spend is not None and tp.qualify.points is None
                     and tp.qualify.orders is None for tp in tiers[1:])
    s.add(1, f"elif tier_before.rank + 1 < {s.k(len(tiers))}:", "    after = tier_before",
          "    spend_after = " + ("m.qualifying_spend" if _lifetime(plan)
                                  else "window_spend(MODEL, m, today)") + " + spend")
    if s.traced and spend_only and all(len(tp.thresholds) == 1 for tp in tiers[1:]):
        # each tier above judged on its one spend threshold and noted as T.judged words it,
        # from the words that do not change: "qualifies (all): ✓ spend " + spend + " ≥ 5000"
        def words(tp: TierPlan) -> tuple[Any, ...]:
            (_, minimum, written), = tp.thresholds
            return (tp, minimum, f"qualifies ({tp.match}): ✓ spend ",
                    f"does not qualify ({tp.match}): ✗ spend ", f" ≥ {written}")

        above = {tp.rank: tuple(words(t) for t in tiers[tp.rank + 1:]) for tp in tiers}
        s.add(2, "spend_text = fmt(spend_after)",
              f"for tp, threshold, yes, no, tail in {s.k(above)}[tier_before.rank]:",
              "    if spend_after >= threshold:", "        after = tp",
              "        " + s.note("tp.id", s.k("qualification"), "fired",
                                  "yes + spend_text + tail"),
              "    else:",
              "        " + s.note("tp.id", s.k("qualification"), "not_matched",
                                  "no + spend_text + tail"))
    elif s.traced:
        # each tier above judged and noted with the engine's words, its condition (if any)
        # run and explained through the engine's scope
        s.add(2, _points_after(plan),
              "orders_after = m.orders + 1", "spend_text = fmt(spend_after)",
              f"for tp in {s.k(tiers)}[tier_before.rank + 1:]:",
              "    checks = T.criteria(tp.thresholds, spend_after, points_after, orders_after, "
              "spend_text)")
        if any(tp.qualify_when is not None for tp in tiers):
            s.add(3, "if tp.qualify_when is not None:",
                  f"    why = lazy.why(tp.id, {s.k('qualification')}, tp.qualify_when)",
                  "    checks.append((why is None, T.condition_holds(tp.qualify_when.expression)"
                  " if why is None else why))")
        s.add(2, "    ok, why = T.judged(tp.match, checks)",
              "    if ok:", "        after = tp",
              "    " + s.note("tp.id", s.k("qualification"), "fired|not_matched", "why"))
    elif spend_only:
        above = {tp.rank: tuple((t, _spend_of(t)) for t in tiers[tp.rank + 1:])
                 for tp in tiers}
        s.add(2, f"for tp, threshold in {s.k(above)}[tier_before.rank]:",
              "    if spend_after >= threshold:", "        after = tp")
    else:
        s.add(2, _points_after(plan),
              "orders_after = m.orders + 1",
              f"for tp in {s.k(tiers)}[tier_before.rank + 1:]:",
              "    if tp.qualifies(spend_after, points_after, orders_after, lazy):",
              "        after = tp")
    s.add(1, "else:", "    after = tier_before")


def _points_after(plan: Plan) -> str:
    """The points a tier counts: usable ones only, so this purchase's only if they are
    usable at once (pending points count once released, as at a review)."""
    if plan.ledger.pending:
        return "points_after = m.points - redeemed"
    return "points_after = m.points - redeemed + points_total"


def _spend_of(tp: TierPlan) -> Decimal:
    assert tp.qualify is not None and tp.qualify.spend is not None
    return tp.qualify.spend


class _Condition(NamedTuple):
    """One of a rule's conditions, as generated code: after ``setup`` (lines binding what the
    test and the reason both read), ``fails`` is true when it does not hold, and ``reason``
    is the trace's words for that. With ``per_line``, the condition is that some line ``r_i``
    of the basket passes ``fails`` read as a test of the line (written as a loop)."""

    fails: str
    reason: str
    setup: tuple[str, ...] = ()
    per_line: bool = False


def _conditions(s: _Source, plan: Plan, rp: Any, tier: str, total: str, *, quoted: bool
                ) -> list[_Condition]:
    """A rule's conditions but its expression (``when``), in the order and words of
    :func:`._engine._rule_conditions`: the trace-free checks (:func:`_rule_checks`) and the
    traced reasons (:func:`_reason_body`) are both written from this one list. ``quoted``:
    the threshold's reach is summed in minor units, as the reason quotes it (the same
    amount, compared, either way)."""
    model = plan.model
    bp = model.policies.birthday
    rule = rp.rule
    out: list[_Condition] = []
    if rp.start is not None:
        start = s.k(rp.start)
        out.append(_Condition(f"at < {start}", f"T.window_starts({start}, local_at)"))
    if rp.end is not None:
        end = s.k(rp.end)
        out.append(_Condition(f"at >= {end}", f"T.window_ended({end}, local_at)"))
    if rp.days is not None:
        out.append(_Condition(f"today not in {s.k(rp.days)}",
                              f"T.not_scheduled(today, {s.k(rp.schedule_text)})"))
    if rule.on is not None:
        # (read once: a model's field read costs several of a local)
        out.append(_Condition("r_birthday is None", "T.NO_BIRTHDAY", ("r_birthday = m.birthday",)))
        if bp.change_guard_days > 0:
            guard = s.k(bp.change_guard_days)
            out.append(_Condition(
                "m.birthday_set_on is not None and birthday_change_blocks(r_birthday, "
                f"m.birthday_set_on, today, {guard}, {s.k(bp.feb29)})",
                f"T.birthday_changed(m.birthday_set_on, {guard})"))
        if rule.on == "birthday_month" and bp.feb29 == "feb28":
            # (29 February is then celebrated in February too: the month of birth)
            test = "today.month != r_birthday.month"
        else:
            test = (f"not is_birthday(r_birthday, today, {s.k(rule.on)}, "
                    f"feb29={s.k(bp.feb29)}, week={s.k(bp.week)})")
        out.append(_Condition(test, f"T.not_birthday(today, {s.k(rule.on)}, r_birthday)"))
    if rp.tiers:
        out.append(_Condition(f"{tier} not in {s.k(rp.tiers)}",
                              f"T.tier_not_in({tier}, {s.k(rule.tiers)})"))
    if rp.channels:
        out.append(_Condition(f"t.channel not in {s.k(rp.channels)}",
                              f"T.channel_not_in(t.channel, {s.k(rule.channels)})"))
    scope = _item_match(s, rp.categories, rp.skus, "r_i")
    if scope:
        out.append(_Condition(scope, s.k(_trace.no_item_in_scope(rule.categories, rule.skus)),
                              per_line=True))
    if rule.min_amount is not None:
        least = s.k(rule.min_amount)
        out.append(_Condition(f"{total} < {least}", f"T.below_min_amount({total}, {least})"))
    spec = rule.discount
    if spec is not None and spec.threshold is not None:
        excluded = frozenset(model.policies.discounts.exclude_categories)
        reach = [f"r_i.category not in {s.k(excluded)}"] if excluded else []
        if scope:
            reach.append(scope)
        amount = ("r_i.amount if r_i.amount.same_quantum(Q) else r_i.amount.quantize(Q)"
                  if quoted else "r_i.amount")
        threshold = s.k(spec.threshold)
        out.append(_Condition(
            f"r_reach < {threshold}", f"T.below_threshold(r_reach, {threshold})",
            (f"r_reach = sum([{amount} for r_i in t.items"
             + (" if " + " and ".join(reach) if reach else "") + "], ZERO)",)))
    if rule.limit is not None:
        times, per = s.k(rule.limit.times), s.k(rule.limit.per)
        out.append(_Condition(
            f"r_used >= {times}", f"T.limit_reached(r_used, {times}, {per}, r_key)",
            (f"r_usage = m.usage.get({s.k(rule.id)})", f"r_key = period_key(today, {per})",
             "r_used = uses(r_usage, r_key)")))
    return out


def _condition_lines(conditions: list[_Condition], give: Callable[[str], list[str]]
                     ) -> list[str]:
    """The conditions in turn, each that fails ending in ``give(its reason)``."""
    out: list[str] = []
    for c in conditions:
        out.extend(c.setup)
        if c.per_line:
            out.extend(["for r_i in t.items:", f"    if {c.fails}:", "        break", "else:"])
        else:
            out.append(f"if {c.fails}:")
        out.extend("    " + line for line in give(c.reason))
    return out


def _rule_checks(s: _Source, plan: Plan) -> None:
    """Each birthday rule and promotion's conditions as its own function, with only the
    tests the rule has (their reasons unwritten)."""
    names = []
    for rp in plan.rules:
        name = f"check{rp.index}"
        names.append(name)
        s.add(0, f"def {name}(at, today, m, t, tier, total, lazy):")
        s.add(1, *_condition_lines(_conditions(s, plan, rp, "tier", "total", quoted=False),
                                   lambda why: ["return False"]))
        if rp.when is not None:
            s.add(1, f"return lazy.when({s.k(rp.rule.id)}, {s.k(rp.kind)}, {s.k(rp.when)})")
        else:
            s.add(1, "return True")
    s.add(0, f"CHECKS = ({''.join(n + ', ' for n in names)})")


def _lifetime(plan: Plan) -> bool:
    """Tiers count the member's lifetime spend (what :func:`window_spend` returns then)."""
    model = plan.model
    reviews = model.reviews
    return reviews.rolling_months is None and reviews.window == "lifetime" and (
        model.households is None or model.households.tiers_on != "group")


# --- the traced decision (traceable programs): the engine's trace, step by step ----------


def _rule_reasons(s: _Source, plan: Plan) -> None:
    """Each rule's conditions as a function giving the first failing one's reason (None when
    all hold), for a program with more rules than are written inline in the decision."""
    for rp in plan.rules:
        s.add(0, f"def reason{rp.index}(at, today, local_at, m, t, tier, total, lazy):")
        s.add(1, *_reason_body(s, plan, rp, "tier", "total", lambda why: [f"return {why}"]))


def _reason_body(s: _Source, plan: Plan, rp: Any, tier: str, total: str,
                 give: Callable[[str], list[str]]) -> list[str]:
    """The lines finding a rule's first failing condition's reason (:func:`_conditions`,
    then its expression's); ``give(reason)`` is how a reason (or None when all hold) is
    given: returned by a function, or set inline."""
    out = _condition_lines(_conditions(s, plan, rp, tier, total, quoted=True), give)
    if rp.when is not None:
        out.extend(give(f"lazy.why({s.k(rp.rule.id)}, {s.k(rp.kind)}, {s.k(rp.when)})"))
    else:
        out.extend(give("None"))
    return out


def _traced_selection(s: _Source, plan: Plan, d: int, loops: bool, inline: bool) -> None:
    """Every rule's conditions in declaration order, each that fails noted with its reason
    (a rule dropped by an earlier pass with the reason it dropped with); those that hold in
    priority order, then exclusivity and groups, each rule left out noted."""
    fast = {fr.index: fr for fr in plan.fast.rules}
    s.add(d, "matched = []")
    for rp in plan.rules:
        rid, kind = s.k(rp.rule.id), s.k(rp.kind)
        e = d
        if loops:
            s.add(d, f"if {rid} in dropped:",
                  "    " + s.note(rid, kind, "not_matched", f"dropped[{rid}]"), "else:")
            e = d + 1
        if inline:  # the rule's conditions here, the first failing one's reason in `why`
            s.add(e, "while True:", *("    " + line for line in _reason_body(
                s, plan, rp, "tier_id", "list_total", lambda why: [f"why = {why}", "break"])))
        else:
            s.add(e, f"why = reason{rp.index}(at, today, local_at, m, t, tier_id, "
                  "list_total, lazy)")
        s.add(e, "if why is None:", f"    matched.append({s.k(fast[rp.index])})",
              "else:", "    " + s.note(rid, kind, "not_matched", "why"))
    if len(plan.rules) > 1:
        s.add(d, "if len(matched) > 1:", "    matched.sort(key=FP.rule_key)")
    if plan.fast.resolves:
        s.add(d, "matched = resolve(matched, note)")


def _no_tier_discount(s: _Source, plan: Plan) -> str:
    """The name of the notes "tier … has no discount", by tier (built once)."""
    return s.k({tp.id: _trace.entry({"rule": tp.id, "kind": "tier",
                                          "status": "not_matched",
                                          "reason": _trace.no_tier_discount(tp.id)})
                for tp in plan.tiers if tp.source is None})


def _traced_pricing(s: _Source, plan: Plan, d: int) -> None:
    """Rules with discounts: the tier's missing discount noted, then the engine's own pricing
    (:func:`._engine.price_traced`), which notes each discount, threshold and cap."""
    s.ns["price_traced"] = _price_traced()
    if any(tp.source is None for tp in plan.tiers):
        s.add(d, "if benefits.source is None:",
              f"    note({_no_tier_discount(s, plan)}[tier_id])")
    s.add(d, "sources = []", "if benefits.source is not None:",
          "    sources.append(benefits.source)",
          "for fr in matched:", "    if fr.source is not None:",
          "        sources.append(fr.source)",
          "if not sources:", "    paid = amounts", "    discount_lines = []",
          "    goods_paid = list_total", "else:", "    if len(sources) > 1:",
          "        sources.sort(key=FP.source_key)",
          "    paid, discount_lines, void = price_traced(program, PLAN, m, t, local_at, trace, "
          "sources)",
          "    goods_paid = list_total - sum([d.amount for d in discount_lines], ZERO) "
          "if discount_lines else list_total")


def _price_traced() -> Any:
    from ._engine import price_traced  # the engine imports this module's plan users

    return price_traced


def _traced_tier_discount(s: _Source, plan: Plan, d: int) -> None:
    """The tier's discount noted: a percentage of the discountable lines, or none."""
    fp = plan.fast
    none = _no_tier_discount(s, plan)
    if not any(tp.source is not None for tp in plan.tiers):
        s.add(d, f"note({none}[tier_id])")
        return
    base = "(list_total if n > 1 else ZERO + list_total)"  # sum(amounts, ZERO), kept
    amount = "amount" if s.only_tier_line else "discount_lines[0].amount"
    if fp.discount_excluded:
        base = (f"sum([a for a, i in zip(amounts, items) if i.category not in "
                f"{s.k(fp.discount_excluded)}], ZERO)")
    # T.discount(amount, T.percent_of(percent, base)), its unchanging words written once
    words = {tp.id: f": {_trace.pct(tp.percent)} of " for tp in plan.tiers
             if tp.source is not None and tp.percent is not None}
    s.add(d, "if src is None:", f"    note({none}[tier_id])", "else:",
          "    " + s.note("tier_id", s.k("tier"), "fired",
                          f"{s.k('discount ')} + plain({amount}) + {s.k(words)}[tier_id] + "
                          f"plain({base})"))


def _traced_kept(s: _Source, plan: Plan, d: int) -> None:
    """Rules whose min_paid the amount paid does not reach drop out, noted; the others'
    effects (points, bonus, perk) are noted as fired."""
    effects = {rp.index: _trace.entry({"rule": rp.rule.id, "kind": rp.kind, "status": "fired",
                                       "reason": rp.effects_text})
               for rp in plan.rules if rp.effects_text}
    kinds = {rp.index: rp.kind for rp in plan.rules}
    if not plan.rules:
        s.add(d, "kept = matched")
        return
    priced = any(rp.rule.discount is not None for rp in plan.rules)  # void can be filled
    s.add(d, "kept = []")
    if priced:  # a rule whose discount did not apply takes no part; one that did is noted
        s.add(d, "priced = {d.rule for d in discount_lines}")
    s.add(d, "for fr in matched:")
    if priced:
        s.add(d + 1, "if fr.id in void:", "    continue")
    if any(rp.rule.min_paid is not None for rp in plan.rules):
        s.add(d + 1, "if fr.min_paid is not None and goods_paid < fr.min_paid:",
              "    " + s.note("fr.id", f"{s.k(kinds)}[fr.index]", "not_matched",
                              "T.below_min_paid(goods_paid, fr.min_paid)"),
              "    continue")
    s.add(d + 1, "kept.append(fr)")
    if effects:
        s.add(d + 1, f"done = {s.k(effects)}.get(fr.index)",
              "if done is not None" + (" and (fr.source is None or fr.id not in priced)"
                                       if priced else "") + ":",
              "    note(done)")
