"""The generated per-program decision (compiled mode, trace off) is the plan interpreter's.

`loyaltyrules._specialise` writes one Python function per program with only the code that
program needs. These tests generate programs that use every feature the generator treats
specially — tier discounts alone or with promotions, groups and exclusive rules that can be
priced away, thresholds, item scopes, birthday rules, limits, perks, bonus points, scoped and
conditional multipliers, several earn rules, every spend policy and the common rounding
modes, redemption, the ledger's periods, referral and signals — and check that the
generated function, the plan interpreter (`mode="interpreted"`, trace off) and the compiled
traced decision make the same decision, or raise the same error. The generated traced
function (programs of up to 64 rules, earn rules and multipliers) must write the engine's
trace word for word.
"""

from __future__ import annotations

import ast
import copy
import json
import pickle
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr
from loyaltyrules import _specialise
from loyaltyrules._money import CONTEXT

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ["apparel", "beauty", "bakery", "coffee"]
SKUS = ["a", "b", "latte"]
rates = st.sampled_from(["0%", "5%", "10%", "15%", "50%", "9折", "100%"])
money = st.decimals(min_value=Decimal("0"), max_value=Decimal("3000"), places=2,
                    allow_nan=False, allow_infinity=False)


def _maybe(draw: st.DrawFn, value: Any) -> Any:
    return value if draw(st.booleans()) else None


@st.composite
def featured_programs(draw: st.DrawFn) -> dict[str, Any]:
    n_tiers = draw(st.integers(1, 4))
    tiers: list[dict[str, Any]] = [{"id": "t0"}]
    if draw(st.booleans()):
        tiers[0]["discount"] = draw(rates)
    qualify_kind = draw(st.sampled_from(["spend", "spend", "points", "orders", "when", "any"]))
    for k in range(1, n_tiers):
        qualify: dict[str, Any] = {"spend": 800 * k}
        if qualify_kind == "points":
            qualify = {"points": 500 * k}
        elif qualify_kind == "orders":
            qualify = {"orders": 2 * k}
        elif qualify_kind == "when":
            qualify = {"spend": 800 * k, "when": "txn.channel == 'online'"}
        elif qualify_kind == "any":
            qualify = {"spend": 800 * k, "orders": 3 * k, "match": "any"}
        tier: dict[str, Any] = {"id": f"t{k}", "qualify": qualify,
                                "points_multiplier": draw(st.sampled_from(["1", "1.5", "2"]))}
        if draw(st.booleans()):
            tier["discount"] = draw(rates)
        if draw(st.booleans()):
            tier["perks"] = ["lounge"]
        tiers.append(tier)

    def rule(prefix: str, k: int) -> dict[str, Any]:
        r: dict[str, Any] = {"id": f"{prefix}{k}", "priority": draw(st.integers(0, 2))}
        effect = draw(st.sampled_from(["percent", "amount", "threshold", "bonus",
                                       "multiplier", "perk"]))
        if effect == "percent":
            r["discount"] = {"percent": draw(rates)}
        elif effect == "amount":
            r["discount"] = {"amount": str(draw(st.integers(1, 300)))}
        elif effect == "threshold":
            r["discount"] = {"threshold": "200", "off": "30", "repeat": draw(st.booleans())}
            if r["discount"]["repeat"] and draw(st.booleans()):
                r["discount"]["max_repeats"] = 2
        elif effect == "bonus":
            r["bonus_points"] = draw(st.integers(1, 500))
        elif effect == "multiplier":
            r["points_multiplier"] = draw(st.sampled_from(["2", "3"]))
        elif effect == "perk":
            r["perk"] = "gift"
        if draw(st.booleans()):
            r["bonus_points"] = draw(st.integers(1, 100))
        if draw(st.integers(0, 3)) == 0:
            r["categories"] = [draw(st.sampled_from(CATEGORIES))]
        if draw(st.integers(0, 5)) == 0:
            r["skus"] = [draw(st.sampled_from(SKUS))]
        if draw(st.integers(0, 3)) == 0:
            r["channels"] = [draw(st.sampled_from(["online", "store"]))]
        if draw(st.integers(0, 3)) == 0:
            # several, in an order of their own: the trace quotes a rule's as written
            r["tiers"] = draw(st.lists(st.sampled_from([f"t{k}" for k in range(n_tiers)]),
                                       min_size=1, max_size=3, unique=True))
        if draw(st.integers(0, 3)) == 0:
            r["min_amount"] = str(draw(st.integers(0, 800)))
        if "discount" not in r and draw(st.integers(0, 2)) == 0:
            r["min_paid"] = str(draw(st.integers(0, 800)))
        if draw(st.integers(0, 3)) == 0:
            r["limit"] = {"times": draw(st.integers(1, 2)),
                          "per": draw(st.sampled_from(["day", "month", "year", "ever"]))}
        if draw(st.integers(0, 3)) == 0:
            r["group"] = draw(st.sampled_from(["g1", "g2"]))
        if prefix == "p" and draw(st.integers(0, 4)) == 0:
            r["exclusive"] = True
        if draw(st.integers(0, 5)) == 0:
            r["when"] = draw(st.sampled_from([
                "txn.amount >= 100", "member.orders > 1", "has_category('beauty')",
                # errors at run time: a missing birthday, a one-line basket
                "member.birthday.month == 3", "month(member.birthday) == 3",
                "txn.amount / (txn.items_count - 1) > 100"]))
        return r

    promotions = []
    for k in range(draw(st.integers(0, 4))):
        p = rule("p", k)
        window = draw(st.integers(0, 3))
        if window == 1:
            p["window"] = {"start": "2025-03-01", "end": "2025-09-30"}
        elif window == 2:
            p["schedule"] = {"freq": "weekly", "byweekday": ["SA", "SU"]}
        promotions.append(p)
    birthday = []
    for k in range(draw(st.integers(0, 2))):
        b = rule("b", k)
        b["on"] = draw(st.sampled_from(["birthday", "birthday_week", "birthday_month"]))
        birthday.append(b)

    earn = []
    for k in range(draw(st.integers(0, 3))):
        e: dict[str, Any] = {
            "id": f"e{k}", "points": draw(st.sampled_from([1, 10, 3])),
            "per": draw(st.sampled_from([1, 100, 7])),
            "blocks": draw(st.sampled_from(["full", "proportional"])),
            "basis": draw(st.sampled_from(["paid", "list"])),
            "include_shipping": draw(st.booleans()), "include_tax": draw(st.booleans()),
        }
        if draw(st.booleans()):
            e["base_rounding"] = draw(st.sampled_from(["floor", "half_up", "ceiling"]))
        if draw(st.integers(0, 2)) == 0:
            e["cap"] = draw(st.integers(0, 3000))
        if draw(st.integers(0, 3)) == 0:
            e["categories"] = [draw(st.sampled_from(CATEGORIES))]
        if "categories" not in e and draw(st.integers(0, 3)) == 0:
            e["exclude_categories"] = [draw(st.sampled_from(CATEGORIES))]
        if draw(st.integers(0, 3)) == 0:
            e["channels"] = ["online"]
        if draw(st.integers(0, 3)) == 0:
            e["tiers"] = [f"t{draw(st.integers(0, n_tiers - 1))}"]
        if draw(st.integers(0, 4)) == 0:
            e["when"] = "txn.amount > 50"
        earn.append(e)
    multipliers = []
    for k in range(draw(st.integers(0, 3))):
        mp: dict[str, Any] = {"id": f"m{k}", "factor": draw(st.sampled_from(["2", "1.5", "3"]))}
        scope = draw(st.sampled_from(["none", "category", "sku", "both"]))
        if scope in ("category", "both"):
            mp["categories"] = [draw(st.sampled_from(CATEGORIES))]
        if scope in ("sku", "both"):
            mp["skus"] = [draw(st.sampled_from(SKUS))]
        if draw(st.integers(0, 3)) == 0:
            mp["channels"] = ["store"]
        if draw(st.integers(0, 3)) == 0:  # (quoted sorted)
            mp["tiers"] = draw(st.lists(st.sampled_from([f"t{k}" for k in range(n_tiers)]),
                                        min_size=1, max_size=3, unique=True))
        if draw(st.integers(0, 4)) == 0:
            mp["when"] = "txn.quantity >= 2"
        multipliers.append(mp)

    program: dict[str, Any] = {
        "program": {"id": "feat", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": tiers,
        "perks": [{"id": "lounge"}, {"id": "gift"}],
        "earn": earn,
        "multipliers": multipliers,
        "promotions": promotions,
        "birthday": birthday,
        "policies": {
            "rounding": {"money": draw(st.sampled_from(["half_up", "half_even", "floor"])),
                         "points": draw(st.sampled_from(["floor", "half_up"]))},
            "tiers": {"benefits_from": draw(st.sampled_from(["next_transaction",
                                                             "this_transaction"]))},
            "rules": {"tie_break": draw(st.sampled_from(["declaration_order", "id"]))},
            "points": {"combine_rules": draw(st.sampled_from(["sum", "best"])),
                       "combine_multipliers": draw(st.sampled_from(["multiply", "add",
                                                                    "best"])),
                       "cap": draw(st.sampled_from(["truncate", "reject"])),
                       "max_per_transaction": _maybe(draw, draw(st.integers(0, 2000))),
                       "max_per_period": _maybe(draw, {
                           "points": draw(st.integers(0, 3000)),
                           "per": draw(st.sampled_from(["day", "week", "month", "year"]))})},
            "discounts": {
                "stacking": draw(st.sampled_from(["sequential", "additive"])),
                "combine": draw(st.sampled_from(["stack", "best"])),
                "max_total": _maybe(draw, draw(st.sampled_from(["0%", "5%", "30%", "100%"]))),
                "threshold_basis": draw(st.sampled_from(["current", "list"])),
                "exclude_categories": draw(st.sampled_from([[], ["coffee"]])),
            },
            "qualifying_spend": {
                "basis": draw(st.sampled_from(["paid", "list"])),
                "exclude_categories": draw(st.sampled_from([[], ["bakery"]])),
                "include_shipping": draw(st.booleans()), "include_tax": draw(st.booleans()),
            },
            "birthday": {"week": draw(st.sampled_from(["iso", "centered"])),
                         "change_guard_days": draw(st.sampled_from([0, 30]))},
        },
    }
    if draw(st.booleans()):
        program["redemption"] = {"points": 100, "value": 1, "step": draw(st.sampled_from([1, 10])),
                                 "max_share": draw(st.sampled_from(["50%", "100%"])),
                                 "over_ask": draw(st.sampled_from(["error", "clamp"])),
                                 "earns_points": draw(st.booleans())}
    if draw(st.integers(0, 3)) == 0:
        program["reviews"] = {"window": "calendar_year"}
    elif draw(st.integers(0, 3)) == 0:  # a spend log is kept for a rolling window
        program["reviews"] = {"rolling_months": draw(st.sampled_from([3, 12]))}
    if "reviews" in program and draw(st.booleans()):
        program["reviews"]["keep"] = draw(st.sampled_from([{"until": "end_of_year"},
                                                          {"months": 6}]))
    # the ledger: when points become usable and expire, how long purchases are remembered
    if draw(st.booleans()):
        program["ledger"] = {
            "pending_days": draw(st.sampled_from([0, 7])),
            "expiry": draw(st.sampled_from([{}, {"months": 12}, {"end_of_year": 0},
                                            {"end_of_quarter": 0}])),
            "refund_days": draw(st.sampled_from([30, 365])),
            "remember_events": draw(st.sampled_from([10, 200])),
        }
    # a referral or signals: completed by complete_purchase, not by the generated function
    if draw(st.integers(0, 5)) == 0:
        program["referral"] = {"referrer_points": 50, "referee_points": 20}
    if draw(st.integers(0, 5)) == 0:
        program["signals"] = [{"id": "welcome", "on": "first_purchase"}]
    return program


@st.composite
def purchases(draw: st.DrawFn, program: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 2 * 365 * 24)))
    if draw(st.integers(0, 4)) == 0:  # exactly on a window's edge (local midnight)
        at = draw(st.sampled_from([datetime(2025, 2, 28, 16, tzinfo=UTC),
                                   datetime(2025, 9, 30, 16, tzinfo=UTC)]))
    items = draw(st.lists(st.fixed_dictionaries({
        "sku": st.sampled_from(SKUS), "category": st.sampled_from(CATEGORIES),
        "quantity": st.integers(1, 3),
        # whole amounts too ("5"): decisions must write the same decimals on every path
        "amount": st.one_of(money.map(str), st.integers(0, 3000).map(str),
                            st.just("-0.00"))}),
        min_size=1, max_size=5))
    txn: dict[str, Any] = {"id": "t1", "at": at.isoformat(),
                           "channel": draw(st.sampled_from(["online", "store"])),
                           "items": items,
                           "shipping": draw(st.sampled_from(["0", "8.00"])),
                           "tax": draw(st.sampled_from(["0", "1.30"]))}
    if "redemption" in program and draw(st.booleans()):
        txn["redeem_points"] = draw(st.sampled_from([100, 500, 2000, 123]))
    elif draw(st.integers(0, 5)) == 0:  # a points payment the host worked out itself
        txn["paid_with_points"] = draw(st.sampled_from(["5.00", "50.00"]))
    day = at.date()
    birthday = draw(st.sampled_from([day.replace(year=1990), day.replace(year=1990, day=1),
                                     day.replace(year=1988) - timedelta(days=40)]))
    member: dict[str, Any] = {
        "id": "m", "tier": f"t{draw(st.integers(0, len(program['tiers']) - 1))}",
        "points": draw(st.integers(0, 5000)), "orders": draw(st.integers(0, 6)),
        "qualifying_spend": str(draw(money)), "birthday": birthday.isoformat(),
    }
    if draw(st.integers(0, 5)) == 0:
        del member["birthday"]  # not known
    if draw(st.integers(0, 3)) == 0:  # this purchase lands exactly on a spend threshold
        total = sum(Decimal(i["amount"]) for i in items)
        member["qualifying_spend"] = str(max(Decimal(0), 800 * draw(st.integers(1, 3)) - total))
    if "birthday" in member and draw(st.booleans()):
        member["birthday_set_on"] = (day - timedelta(days=draw(st.integers(0, 60)))).isoformat()
    if draw(st.booleans()):
        rules = [r["id"] for r in program["promotions"] + program["birthday"]]
        if rules:
            member["usage"] = {draw(st.sampled_from(rules)): {
                "period": draw(st.sampled_from(["ever", f"{day.year}", f"{day:%Y-%m}",
                                                day.isoformat()])), "count": 1}}
    if draw(st.booleans()):  # points already earned in this period (or an earlier/later one)
        member.setdefault("usage", {})["points:max_per_period"] = {
            "period": draw(st.sampled_from([f"{day.year}", f"{day:%Y-%m}", day.isoformat(),
                                            f"{day.year + 1}-01", f"{day.year - 1}"])),
            "count": draw(st.integers(0, 3000))}
    return member, txn


def _outcome(program: lr.Program, member: Any, txn: Any, mode: Any, trace: bool) -> Any:
    try:
        d = lr.evaluate(program, member, txn, mode=mode, trace=trace)
    except (lr.InputError, lr.EvaluationError) as exc:
        return ("error", type(exc).__name__, str(exc))
    # JSON, so a Decimal written with other decimals (5 against 5.00) is a difference
    data = d.model_dump(mode="json", exclude={"trace"})
    for line in data["points"]:
        line.pop("detail")
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(featured_programs(), st.data())
def test_generated_decision_equals_the_plan_interpreter_and_the_engine(
        spec: dict[str, Any], data: st.DataObject) -> None:
    program = lr.Program.from_dict(spec)
    member, txn = data.draw(purchases(spec))
    generated = _outcome(program, member, txn, "compiled", trace=False)
    assert generated == _outcome(program, member, txn, "interpreted", trace=False)
    assert generated == _outcome(program, member, txn, "compiled", trace=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(featured_programs(), st.data())
def test_a_members_next_purchase_is_the_same_on_every_path(
        spec: dict[str, Any], data: st.DataObject) -> None:
    """A member with history buys again — points pending or expiring, purchase records, a
    spend log, an account brought up to the purchase first: the generated function that
    completes the purchase itself and complete_purchase give the same decision, events and
    next state."""
    program = lr.Program.from_dict(spec)
    member, first = data.draw(purchases(spec))
    try:
        state = lr.evaluate(program, member, first, mode="interpreted", trace=False).member_after
    except (lr.InputError, lr.EvaluationError):
        return  # (the same error on every path is the first test's business)
    _, second = data.draw(purchases(spec))
    second["id"] = "t2"
    later = timedelta(hours=data.draw(st.sampled_from([0, 1, 24 * 8, 24 * 100, 24 * 400])))
    second["at"] = (datetime.fromisoformat(first["at"]) + later).isoformat()
    generated = _outcome(program, state, second, "compiled", trace=False)
    assert generated == _outcome(program, state, second, "interpreted", trace=False)
    assert generated == _outcome(program, state, second, "compiled", trace=True)


@pytest.mark.parametrize(("extra", "inline"), [
    ({}, True),
    ({"referral": {"referee_points": 20}}, False),
    ({"signals": [{"id": "welcome", "on": "first_purchase"}]}, False),
    ({"policies": {"tiers": {"benefits_from": "this_transaction"}}}, False),
])
def test_which_programs_complete_their_purchases_in_the_generated_function(
        extra: dict[str, Any], inline: bool) -> None:
    """Referral and signals are added by complete_purchase alone; with `this_transaction` an
    upgrading purchase is decided twice, and only the second decision may be completed."""
    program = lr.Program.from_dict({
        "program": {"id": "x", "version": 1, "currency": "CNY", "timezone": "UTC"},
        "tiers": [{"id": "t0"}, {"id": "t1", "qualify": {"spend": 1}}],
        "earn": [{"id": "e", "points": 1, "per": 1}], **extra})
    compiled, interpreted = program.plan("compiled"), program.plan("interpreted")
    assert (compiled.purchase is not None) is inline
    assert (compiled.purchase_traced is not None) is inline  # (the traced function's twin)
    assert interpreted.purchase is None and interpreted.purchase_traced is None


def _upgrading(**extra: Any) -> lr.Program:
    return lr.Program.from_dict({
        "program": {"id": "x", "version": 1, "currency": "CNY", "timezone": "UTC"},
        "tiers": [{"id": "t0"}, {"id": "t1", "qualify": {"spend": 1}, "discount": "50%"}],
        "earn": [{"id": "e", "points": 1, "per": 1}],
        "policies": {"tiers": {"benefits_from": "this_transaction"}}, **extra})


def test_an_upgrade_that_applies_at_once_redeems_what_the_new_tier_allows() -> None:
    """Found in review: with `this_transaction` the first decision (old tier, no discount)
    must not be completed. Here it would redeem 500 points where only 300 are usable; the
    upgraded decision, half price, redeems 250. A member whose balance is more than its
    usable lots is a state edited by hand, which the ledger accepts."""
    program = _upgrading(redemption={"points": 100, "value": 1, "step": 1, "max_share": "50%",
                                     "over_ask": "clamp"})

    def lot(id_: str, points: int, usable: str) -> dict[str, Any]:
        return {"id": id_, "points": points, "earned": points,
                "earned_at": "2025-01-01T00:00:00Z", "available_at": usable, "source": "x",
                "rule": "e"}

    member = {"id": "m", "tier": "t0", "points": 1000,
              "lots": [lot("a", 300, "2025-01-01T00:00:00Z"),
                       lot("b", 700, "2026-01-01T00:00:00Z")]}
    txn = {"id": "T", "at": "2025-06-01T00:00:00Z", "items": [{"sku": "a", "amount": "10.00"}],
           "redeem_points": 1000}
    decision = lr.evaluate(program, member, txn, trace=False)
    assert (decision.tier_after, decision.redeemed_points, decision.member_after.points) == (
        "t1", 250, 52)
    assert _whole(program, member, txn, "compiled") == _whole(program, member, txn,
                                                              "interpreted")
    assert decision.model_dump_json() == lr.evaluate(
        program, member, txn, trace=False, mode="interpreted").model_dump_json()


def test_an_upgrade_that_applies_at_once_fails_as_the_upgraded_decision_fails() -> None:
    """Found in review: the error is the second decision's (a condition of the new tier's
    promotion), not one from completing the first."""
    program = _upgrading(promotions=[{
        "id": "p", "tiers": ["t1"], "bonus_points": 5,
        "when": "txn.amount / (txn.items_count - 1) > 100"}])
    txn = {"id": "T", "at": "2025-06-01T00:00:00Z", "items": [{"sku": "a", "amount": "10.00"}]}
    for mode in ("compiled", "interpreted"):
        with pytest.raises(lr.EvaluationError, match="rule 'p' failed"):
            lr.evaluate(program, {"id": "m", "tier": "t0"}, txn, trace=False, mode=mode)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(featured_programs(), st.data())
def test_programs_with_many_rules_keep_the_plans_checks_and_agree(
        spec: dict[str, Any], data: st.DataObject) -> None:
    """Past a size the generated function calls each rule's compiled check instead of
    writing its own (load time stays flat for a thousand promotions): same decisions."""
    saved = _specialise._OWN_CHECKS
    _specialise._OWN_CHECKS = 0
    try:
        program = lr.Program.from_dict(spec)
    finally:
        _specialise._OWN_CHECKS = saved
    plan = program.plan("compiled")
    assert "CHECKS[" not in (plan.decide.__doc__ or "")
    # traced, each rule's reasons are a function of their own, not written inline
    assert plan.decide_traced is None or not plan.rules or "def reason" in (
        plan.decide_traced.__doc__ or "")
    member, txn = data.draw(purchases(spec))
    for trace in (False, True):
        assert _outcome(program, member, txn, "compiled", trace=trace) == _outcome(
            program, member, txn, "interpreted", trace=trace)


@pytest.mark.parametrize("path", sorted((ROOT / "programs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_generated_source_holds_no_program_text(path: Path) -> None:
    """Every id, category and amount of the program is a named constant, never source text:
    the only literals are small integers, True, False and None. So is every word of a
    generated trace."""
    program = lr.load_program(path)
    plan = program.plan("compiled")
    sources = [plan.decide.__doc__]
    if plan.decide_traced is not None:
        sources.append(plan.decide_traced.__doc__)
    for source in sources:
        assert source is not None
        literals = {type(n.value) for n in ast.walk(ast.parse(source))
                    if isinstance(n, ast.Constant)}
        assert literals <= {int, bool, type(None)}
        for rule in (*program.model.promotions, *program.model.birthday, *program.model.earn):
            assert rule.id not in source


@pytest.mark.parametrize("amount", [Decimal("1E-1000027"), Decimal("12.345"), Decimal("5")])
def test_the_generated_input_checks_are_the_engines_for_any_amount(amount: Decimal) -> None:
    """An amount too fine for the currency is refused the same way on every path, however
    small (a remainder that small would underflow to zero: the check quantizes)."""
    program = lr.load_program(ROOT / "programs" / "retail-4tier.yaml")
    txn = {"id": "t", "at": "2026-03-01T12:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": amount}]}
    outcomes = {repr(_outcome(program, {"id": "m"}, txn, mode, trace))
                for mode in ("compiled", "interpreted") for trace in (False, True)}
    assert len(outcomes) == 1
    if amount != 5:
        assert "more decimals than CNY allows" in outcomes.pop()


def test_an_earn_rate_of_many_digits_rounds_as_the_engine_does() -> None:
    """Points and per of many digits: basis × points / per, in that order, on every path
    (a precomputed rate would round once where the engine rounds twice)."""
    program = lr.Program.from_dict({
        "program": {"id": "x", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "t0"}],
        "earn": [{"id": "e", "points": "113463415.743216", "per": "28365853.935804",
                  "blocks": "proportional"}]})
    txn = {"id": "t", "at": "2026-03-01T12:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "x", "amount": "228317944655140.75"}]}
    totals = {lr.evaluate(program, {"id": "m"}, txn, mode=mode, trace=trace).points_total
              for mode in ("compiled", "interpreted") for trace in (False, True)}
    assert totals == {913271778620562}


@pytest.mark.parametrize("per", ["1", "100", "1000.0", "10.00"])
def test_an_earn_rate_per_a_power_of_ten_is_one_product_and_rounds_as_the_engine_does(
        per: str) -> None:
    """Per 10^k, the generated decision multiplies by points × 10^-k (a division by 10^k
    only moves the point), where the engine computes basis × points / per: the same digits
    rounded alike, even where the product has more digits than the context keeps."""
    program = lr.Program.from_dict({
        "program": {"id": "x", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "t0"}],
        "earn": [{"id": "e", "points": "113463415.743216", "per": per,
                  "blocks": "proportional"}]})
    source = program.plan("compiled").decide.__doc__
    assert "raw = basis * K" in source and "/" not in source.split("raw = basis")[1].split(
        "\n")[0]
    txn = {"id": "t", "at": "2026-03-01T12:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "x", "amount": "228317944655140.75"}]}
    totals = {lr.evaluate(program, {"id": "m"}, txn, mode=mode, trace=trace).points_total
              for mode in ("compiled", "interpreted") for trace in (False, True)}
    with localcontext(CONTEXT):
        expected = int((Decimal("228317944655140.75") * Decimal("113463415.743216")
                        / Decimal(per)).to_integral_value(ROUND_FLOOR))
    assert totals == {expected}


@given(basis=st.decimals(min_value=0, max_value=Decimal(10) ** 18, places=4,
                         allow_nan=False, allow_infinity=False),
       points=st.decimals(min_value=0, max_value=Decimal(10) ** 12, places=6,
                          allow_nan=False, allow_infinity=False),
       k=st.integers(0, 6))
def test_dividing_by_a_power_of_ten_is_multiplying_by_its_inverse(
        basis: Decimal, points: Decimal, k: int) -> None:
    """What the generated rate per 10^k rests on, with products of up to 35 digits (rounded
    to the library's 28): basis × points / 10^k == basis × (points × 10^-k)."""
    with localcontext(CONTEXT):
        assert basis * points / Decimal(10) ** k == basis * points.scaleb(-k)
    assert _specialise._power_of_ten(Decimal(10) ** k) == k
    assert _specialise._power_of_ten(Decimal(10) ** k * 3) is None


def test_a_rate_per_other_than_a_power_of_ten_is_not_a_power() -> None:
    for per in ("7", "0.1", "0.01", "25", "-100", "1.5", "100.00000000000000000000000001",
                "1000000000000000000000000000001"):
        assert _specialise._power_of_ten(Decimal(per)) is None, per
    assert _specialise._power_of_ten(Decimal("100.000000000000000000000000000")) == 2


@pytest.mark.parametrize(("earn", "amount", "rounding"), [
    # points of more digits than the context keeps: the rate is not rounded at load
    ({"points": "0.3333333333333333333333333333333"}, "3.00", "floor"),
    # a per of 29 digits that would round to 100
    ({"points": 1, "per": "100.00000000000000000000000001"}, "100.00", "floor"),
    # points so small the rate would fall below the context's range: the division is kept
    ({"points": Decimal("1E-1000020"), "per": 10**14}, "999999999999.00", "ceiling"),
    # a product rounded to 28 digits, then to the context's smallest exponent by the
    # division: half a unit there, rounded to even (0), where rounding once gives 1
    ({"points": Decimal("50000000000000000000000000001E-1000053"), "per": 100}, "1.00",
     "ceiling"),
], ids=["long-points", "long-per", "tiny-points", "rounded-twice"])
def test_an_earn_rate_the_context_cannot_hold_is_not_rounded_at_load(
        earn: dict[str, Any], amount: str, rounding: str) -> None:
    """Found by review: the rate per a power of ten was once made in the 28-digit context
    (``scaleb``) and ``per`` tested after ``normalize()``, both rounding; the generated
    decision then earned 0 points where the engine earned 1, and 1 where it earned 0."""
    program = lr.Program.from_dict({
        "program": {"id": "x", "version": 1, "currency": "USD", "timezone": "UTC"},
        "tiers": [{"id": "t0"}],
        "policies": {"rounding": {"points": rounding}},
        "earn": [{"id": "e", "blocks": "proportional", **earn}]})
    txn = {"id": "t", "at": "2026-03-01T12:00:00+00:00",
           "items": [{"sku": "a", "amount": amount}]}
    outcomes = {_whole(program, {"id": "m"}, txn, mode) for mode in ("compiled", "interpreted")}
    assert len(outcomes) == 1


def test_repeated_field_reads_go_to_the_models_dict_and_only_where_safe() -> None:
    """A generated function reading three or more of the member's or transaction's fields
    reads them from its ``__dict__``, fetched once; not when the name is bound again inside,
    and never with fewer reads."""
    source = _specialise._Source()
    lines = [
        "def run(program, m, t):",
        "    total = t.shipping + t.tax",
        "    return (total, t.id, m.id, t.shipping.quantize(Q))",
        "def check(m, t):",
        "    return t.channel == m.tier",
        "def sort(m, t, rows):",
        "    rows.sort(key=lambda t: t.id)",
        "    return t.id, t.at, t.channel",
    ]
    out = _specialise._finish(lines, source)
    names = {value: name for name, value in source.ns.items()}
    assert out[:4] == [
        "def run(program, m, t):",
        "    t_fields = t.__dict__",
        f"    total = t_fields[{names['shipping']}] + t_fields[{names['tax']}]",
        f"    return (total, t_fields[{names['id']}], m.id, "
        f"t_fields[{names['shipping']}].quantize(Q))",
    ]
    assert out[4:] == lines[3:]  # two reads; a lambda's own ``t``


def test_outside_the_birthday_month_its_rules_are_not_checked() -> None:
    """A birthday-month rule cannot hold outside the member's birthday month (its check
    fails at the month, before anything that could fail): the generated decision takes the
    day's candidates from a second index without it, and decides the same."""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    plan = program.plan("compiled")
    fast = plan.fast
    month_only = {fr.id for fr in fast.rules if fr.month_only}
    assert month_only == {"birthday-month-double", "birthday-gift"}
    assert "outside_birthday_month" in (plan.decide.__doc__ or "")
    txn = {"id": "t", "at": "2026-06-10T12:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "beauty", "amount": "100.00"}]}
    for born, outside in (("1990-03-15", True), ("1990-06-01", False), (None, True)):
        fast.outside.clear()
        member = {"id": "m", "tier": "gold", **({"birthday": born} if born else {})}
        decided = lr.evaluate(program, member, txn, trace=False)
        assert decided.model_dump_json() == lr.evaluate(
            program, member, txn, trace=False, mode="interpreted").model_dump_json()
        kept = fast.outside.get((date(2026, 6, 10), "store"))
        assert (kept is not None) == outside
        if kept is not None:
            assert {fr.id for fr in kept} == {fr.id for fr in fast.candidates(
                date(2026, 6, 10), "store")} - month_only
        assert ("birthday-gift" in decided.rules_fired) == (born == "1990-06-01")


def test_a_month_only_rules_first_failing_test_is_its_month() -> None:
    """What leaving a ``month_only`` rule out rests on (found worth pinning by review): in
    its conditions, only its window, schedule and a missing birthday come before the month
    test, none of which can fail or have effects; a test that can (a guard, an expression,
    a limit read) put before it would make leaving the rule out wrong."""
    program = lr.Program.from_dict({
        "program": {"id": "b", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "t0"}, {"id": "t1", "qualify": {"spend": 100}}],
        "perks": [{"id": "cake"}],
        "birthday": [
            {"id": "plain", "on": "birthday_month", "perk": "cake"},
            {"id": "full", "on": "birthday_month", "perk": "cake", "tiers": ["t1"],
             "channels": ["store"], "categories": ["bakery"], "min_amount": 10,
             "limit": {"times": 1, "per": "year"}, "when": "txn.channel == 'store'",
             "window": {"start": "2026-01-01", "end": "2027-01-01"}},
            {"id": "week", "on": "birthday_week", "perk": "cake"}],
        "earn": [{"id": "e", "points": 1, "per": 1}]})
    plan = program.plan("compiled")
    month_only = {fr.index for fr in plan.fast.rules if fr.month_only}
    assert len(month_only) == 2  # (the week's rule can span two months)
    harmless = ("at < ", "at >= ", "today not in ", "r_birthday is None")
    for rp in plan.rules:
        if rp.index not in month_only:
            continue
        tests = [c.fails for c in _specialise._conditions(
            _specialise._Source(), plan, rp, "tier", "total", quoted=False)]
        month = tests.index("today.month != r_birthday.month")
        assert all(t.startswith(harmless) for t in tests[:month]), tests[:month]


def test_a_birthday_rule_with_a_change_guard_is_checked_every_month() -> None:
    """With a change guard, the guard is worked out before the month is tested (it can fail
    on a date out of range): such a rule stays among every month's candidates."""
    program = lr.Program.from_dict({
        "program": {"id": "g", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "policies": {"birthday": {"change_guard_days": 30}},
        "tiers": [{"id": "t0"}], "perks": [{"id": "cake"}],
        "birthday": [{"id": "gift", "on": "birthday_month", "perk": "cake"}],
        "earn": [{"id": "e", "points": 1, "per": 1}]})
    assert not any(fr.month_only for fr in program.plan("compiled").fast.rules)


def test_the_generated_lines_are_refused_with_a_literal() -> None:
    with pytest.raises(RuntimeError, match="no literal but integers and None"):
        _specialise._finish(["def run(m, t):", "    return t.id == 'x'"],
                            _specialise._Source())


def test_the_reference_decision_reads_its_inputs_fields_from_their_dicts() -> None:
    """Given them by evaluate(), which read them already: no field of the member or the
    transaction is read as an attribute (each such read costs about 400 instructions), and
    no function but those given the dicts fetches them."""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    source = program.plan("compiled").decide.__doc__ or ""
    assert "t_fields = t.__dict__" not in source and "m_fields = m.__dict__" not in source
    assert "m_fields, t_fields):" in source  # (decide, purchase and run are given both)
    assert "m.tier" not in source and "m.id" not in source and "t.items" not in source


def test_a_function_given_the_fields_reads_each_field_from_them() -> None:
    """One read is enough when the dict is given; a function that is not given it fetches
    it only for three or more reads."""
    given = _specialise._finish(["def run(m, t, m_fields, t_fields):", "    return m.tier"],
                                _specialise._Source())
    assert given[1].startswith("    return m_fields[K") and len(given) == 2
    fetched = _specialise._finish(["def check(m, t):", "    return m.tier"],
                                  _specialise._Source())
    assert fetched[1] == "    return m.tier"


# --- the generated traced decision -----------------------------------------------------------


def _whole(program: lr.Program, member: Any, txn: Any, mode: Any) -> Any:
    """The whole traced decision as JSON (trace, earn details and next state included)."""
    try:
        return lr.evaluate(program, member, txn, mode=mode).model_dump_json()
    except lr.EvaluationError as exc:  # with the trace up to the failure
        return ("error", str(exc), [e.model_dump_json() for e in exc.trace])
    except lr.InputError as exc:
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(featured_programs(), st.data())
def test_the_generated_trace_is_the_engines_word_for_word(
        spec: dict[str, Any], data: st.DataObject) -> None:
    program = lr.Program.from_dict(spec)
    assert program.plan("compiled").decide_traced is not None
    assert program.plan("interpreted").decide_traced is None  # the engine: the reference
    member, txn = data.draw(purchases(spec))
    assert _whole(program, member, txn, "compiled") == _whole(program, member, txn,
                                                               "interpreted")


@pytest.mark.parametrize("name", ["reference-4tier", "rfm-3tier", "retail-4tier",
                                  "coffee-club"])
def test_every_bundled_program_gets_a_generated_trace(name: str) -> None:
    program = lr.load_program(ROOT / "programs" / f"{name}.yaml")
    traced = program.plan("compiled").decide_traced
    assert traced is not None and "note(" in (traced.__doc__ or "")


def test_a_program_of_many_rules_is_traced_by_the_engine() -> None:
    """Past the size where each rule gets its own function, the engine writes the trace
    (a generated one would take long to load): the same trace either way."""
    spec = {"program": {"id": "many", "version": 1, "currency": "CNY",
                        "timezone": "Asia/Shanghai"},
            "tiers": [{"id": "basic"}], "earn": [{"id": "base", "points": 1, "per": 1}],
            "promotions": [{"id": f"p{k}", "channels": ["online" if k % 2 else "store"],
                            "bonus_points": k + 1} for k in range(_specialise._OWN_CHECKS + 1)]}
    program = lr.Program.from_dict(spec)
    assert program.plan("compiled").decide_traced is None
    member = {"id": "m"}
    txn = {"id": "t", "at": "2026-03-04T10:00:00+08:00", "channel": "online",
           "items": [{"sku": "a", "amount": "30.00"}]}
    decision = lr.evaluate(program, member, txn)
    assert decision.model_dump_json() == _whole(program, member, txn, "interpreted")
    assert len(decision.trace or ()) == 65 + 2  # every promotion, the tier, the earn rule
    assert decision.points_total == 30 + sum(k + 1 for k in range(1, 65, 2))


def test_a_program_of_many_earn_rules_and_multipliers_runs_the_plans_loops() -> None:
    """Past 64 earn rules or multipliers the generated decision runs the plan interpreter's
    loops over them rather than writing each out (a thousand took seconds to compile), and
    the engine writes the trace: the points are the same."""
    spec = {"program": {"id": "many-earn", "version": 1, "currency": "CNY",
                        "timezone": "Asia/Shanghai"},
            "tiers": [{"id": "basic"}],
            "earn": [{"id": f"e{k}", "points": 1, "per": 100,
                      "channels": ["online" if k % 2 == 0 else "store"]} for k in range(70)]
            + [{"id": "beauty", "points": 5, "per": 100, "categories": ["beauty"],
                "blocks": "proportional", "cap": 7},
               {"id": "big", "points": 10, "when": "txn.amount >= 100"}],
            "multipliers": [{"id": f"m{k}", "factor": 2, "categories": [f"c{k}"]}
                            for k in range(_specialise._UNROLLED + 1)]}
    program = lr.Program.from_dict(spec)
    plan = program.plan("compiled")
    assert "earn_lines(" in (plan.decide.__doc__ or "")
    assert "combined_multiplier(" in (plan.decide.__doc__ or "")
    assert plan.decide_traced is None
    member = {"id": "m"}
    online = {"id": "t", "at": "2026-05-08T10:00:00+08:00", "channel": "online",
              "items": [{"sku": "a", "category": "beauty", "amount": "250.00"},
                        {"sku": "b", "category": "c3", "amount": "150.00"}]}
    store = {**online, "channel": "store",
             "items": [{"sku": "b", "category": "c3", "amount": "50.00"}]}
    for trace in (False, True):
        # online: 35 rules × 5 blocks of the basis 250 + 2 × 150; beauty 12.5 → 12, capped
        # at 7; big 10 × 550
        decision = lr.evaluate(program, member, online, trace=trace)
        assert decision.points_total == 35 * 5 + 7 + 5500
        assert [(p.rule, p.points) for p in decision.points[-2:]] == [("beauty", 7),
                                                                       ("big", 5500)]
        assert decision.rules_fired[:2] == ("m3", "e0")
        # store: 35 rules × 1 block of 2 × 50; beauty's basis is 0; big's condition is false
        assert lr.evaluate(program, member, store, trace=trace).points_total == 35
        for txn in (online, store):
            assert _whole(program, member, txn, "compiled") == _whole(program, member, txn,
                                                                       "interpreted")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(featured_programs(), st.data())
def test_programs_with_many_earn_rules_run_the_plans_loops_and_agree(
        spec: dict[str, Any], data: st.DataObject) -> None:
    """Past a size the generated decision runs the plan interpreter's loops over the earn
    rules and multipliers instead of writing each out: same decisions, same errors."""
    saved = _specialise._UNROLLED
    _specialise._UNROLLED = 0
    try:
        program = lr.Program.from_dict(spec)
    finally:
        _specialise._UNROLLED = saved
    plan = program.plan("compiled")
    if plan.earn:
        assert "earn_lines(" in (plan.decide.__doc__ or "")
        assert plan.decide_traced is None
    member, txn = data.draw(purchases(spec))
    assert _outcome(program, member, txn, "compiled", trace=False) == _outcome(
        program, member, txn, "interpreted", trace=False)
    assert _whole(program, member, txn, "compiled") == _whole(program, member, txn,
                                                               "interpreted")


def test_the_next_state_is_built_when_read_and_is_the_same_whichever_way() -> None:
    program = lr.load_program(ROOT / "programs" / "retail-4tier.yaml")
    member = {"id": "m1", "tier": "silver", "points": 120, "qualifying_spend": "4000"}
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "1500.00"}]}
    lazy = lr.evaluate(program, member, txn, trace=False)
    assert "member_after" not in lazy.__dict__           # not built yet
    copied, pickled = copy.deepcopy(lazy), pickle.loads(pickle.dumps(lazy))
    state = lr.apply(lr.MemberState.model_validate(member), lazy)
    assert lazy.member_after is state                     # built once, then kept
    assert copied == lazy and pickled == lazy
    assert lr.evaluate(program, member, txn, trace=True).member_after == state
    assert state.points == lazy.member_after.points == 120 + lazy.points_total
    dumped = lr.evaluate(program, member, txn, trace=False).model_dump(mode="json")
    assert dumped["member_after"] == state.model_dump(mode="json")


@pytest.mark.parametrize("ledger", [{}, {"pending_days": 7}])
def test_a_purchases_own_events_are_made_when_read_in_their_place(ledger: dict[str, Any]
                                                                   ) -> None:
    """A purchase that only earns points (and here moves up a tier) leaves its events, as
    its next state, to be made when first read: the same events as the traced decision's
    (which makes them at once), whichever is read first; the decision's fields stay in
    their order (iterating it, its repr), and its JSON is the traced one's but the trace
    (and the points lines' details, which only the trace spells out)."""
    spec = {"program": {"id": "p", "version": 1, "currency": "CNY",
                        "timezone": "Asia/Shanghai"},
            "tiers": [{"id": "basic"}, {"id": "gold", "qualify": {"spend": 1000}}],
            "earn": [{"id": "base", "points": 1, "per": 1}], "ledger": ledger,
            "redemption": {"points": 100, "value": 1}}
    program = lr.Program.from_dict(spec)
    member = {"id": "m1", "qualifying_spend": "900.00"}
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00",
           "items": [{"sku": "a", "amount": "150.00"}]}
    traced = lr.evaluate(program, member, txn)
    detail = "usable from 2026-05-09T10:00:00+08:00" if ledger else "usable now"
    assert [(e.type, e.points, e.tier_from, e.tier_to, e.detail) for e in traced.events] == [
        ("points_earned", 150, None, None, detail), ("tier_upgraded", 0, "basic", "gold",
                                                     "qualified")]
    order = list(lr.Decision.model_fields)
    for first in ("events", "member_version", "member_after", "dump", "iterate"):
        lazy = lr.evaluate(program, member, txn, trace=False)
        assert "events" not in lazy.__dict__ and "member_after" not in lazy.__dict__
        if first in ("events", "member_version"):
            assert getattr(lazy, first) == getattr(traced, first)
            assert "member_after" not in lazy.__dict__  # (the events alone were made)
            assert (lazy.events, lazy.outbox, lazy.member_version) == (
                traced.events, (), traced.member_version)
        elif first == "member_after":
            assert lazy.member_after == traced.member_after
        elif first == "dump":
            assert lazy.model_dump_json(exclude={"trace", "points"}) == \
                traced.model_dump_json(exclude={"trace", "points"})
        else:
            assert [name for name, _ in lazy] == order
        assert list(lazy.__dict__) == (order if first not in ("events", "member_version") else
                                       [name for name in order if name != "member_after"])
        assert lazy.model_copy(update={"trace": traced.trace, "points": traced.points}) == traced
        assert repr(lazy).index("events=") < repr(lazy).index("member_after=")
    # a purchase that redeems points makes its events at once
    paying = lr.evaluate(program, {**member, "points": 100}, {**txn, "redeem_points": 100},
                         trace=False)
    assert "events" in paying.__dict__
    assert [e.type for e in paying.events] == ["points_redeemed", "points_earned",
                                               "tier_upgraded"]


def test_a_decisions_events_and_next_state_read_first_by_many_threads_are_made_once() -> None:
    """Eight threads reading one decision's events and next state at once all get the same
    objects, and the decision's fields end in their order."""
    import threading

    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "6000.00"}]}
    for _ in range(20):
        lazy = lr.evaluate(program, {"id": "m"}, txn, trace=False)
        start = threading.Barrier(8)
        seen: list[tuple[int, int]] = []

        def read(events_first: bool, lazy: lr.Decision = lazy,
                 start: threading.Barrier = start, seen: list[tuple[int, int]] = seen
                 ) -> None:
            start.wait()
            if events_first:
                events = lazy.events
                seen.append((id(events), id(lazy.member_after)))
            else:
                state = lazy.member_after
                seen.append((id(lazy.events), id(state)))

        threads = [threading.Thread(target=read, args=(k % 2 == 0,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(seen)) == 1
        assert list(lazy.__dict__) == list(lr.Decision.model_fields)
        assert [e.type for e in lazy.events] == ["points_earned", "tier_upgraded"]


def test_a_decision_copied_while_another_thread_stores_its_next_state_is_whole() -> None:
    """Another thread stores the next state, then lets go of what it was made from; a copy
    or comparison made between the two carried that along (unequal, and unpicklable: it
    holds the generated functions). Whoever finds the state stored lets go of it too. (The
    moment between the two is made here by hand, as the thread would leave it.)"""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "6000.00"}]}
    whole = lr.evaluate(program, {"id": "m"}, txn, trace=False)
    state = whole.member_after
    caught = lr.evaluate(program, {"id": "m"}, txn, trace=False)
    caught._settle_events()
    caught.__dict__["member_after"] = state  # (stored, not yet let go of)
    assert caught.__pydantic_private__ is not None
    copied = copy.copy(caught)
    assert copied.__pydantic_private__ is None and caught.__pydantic_private__ is None
    assert copied == caught == whole
    assert pickle.loads(pickle.dumps(copied)) == whole


def test_a_next_state_read_later_is_exact_whatever_the_hosts_decimal_context() -> None:
    """The next state is built when read, perhaps in the host's own Decimal context: its
    sums still run in the library's exact context."""
    from decimal import localcontext

    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    member = {"id": "m1", "tier": "gold", "qualifying_spend": "12345678.91"}
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "1000.07"}]}
    decision = lr.evaluate(program, member, txn, trace=False)
    with localcontext() as ctx:
        ctx.prec = 4
        state = decision.member_after
    assert state is not None
    assert state.qualifying_spend == Decimal("12346678.98")  # qualifying spend: list amounts
    assert state.purchases[-1].goods_paid == Decimal("900.06")


def test_every_way_of_serialising_a_decision_includes_its_next_state() -> None:
    """A pending next state is built by any serialisation: model_dump, a TypeAdapter, or a
    decision nested in the host's own model — never silently left out."""
    from pydantic import BaseModel, TypeAdapter

    class Receipt(BaseModel):
        decision: lr.Decision

    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    member = {"id": "m1", "tier": "gold", "qualifying_spend": "100"}
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "1000.07"}]}

    def fresh() -> lr.Decision:
        return lr.evaluate(program, member, txn, trace=False)

    expected = lr.evaluate(program, member, txn).member_after
    assert expected is not None
    dumped = expected.model_dump(mode="json")
    assert fresh().model_dump(mode="json")["member_after"] == dumped
    assert TypeAdapter(list[lr.Decision]).dump_python([fresh()], mode="json")[0][
        "member_after"] == dumped
    nested = Receipt(decision=fresh()).model_dump(mode="json")
    assert nested["decision"]["member_after"] == dumped
    assert dict(fresh())["member_after"] == expected
    assert "properties" in lr.Decision.model_json_schema(mode="serialization")


def test_a_pending_next_state_does_not_see_later_changes_to_the_members_dicts() -> None:
    """The next state is made from the member as it was at evaluation, even if the host
    changes the member's (mutable) dicts before reading it."""
    spec = {"program": {"id": "cal", "version": 1, "currency": "CNY",
                        "timezone": "Asia/Shanghai"},
            "tiers": [{"id": "t0"}, {"id": "t1", "qualify": {"spend": 1000}}],
            "reviews": {"window": "calendar_year"}}
    program = lr.Program.from_dict(spec)
    member = lr.MemberState(id="m", spend_log={"2026-05": Decimal("10.00")},
                            usage={"x": lr.Usage(period="2026", count=1)})
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00",
           "items": [{"sku": "a", "amount": "100.00"}]}
    decision = lr.evaluate(program, member, txn, trace=False)
    member.spend_log["2026-05"] = Decimal("5000.00")
    member.usage.clear()
    state = decision.member_after
    assert state is not None
    assert state.spend_log == {"2026-05": Decimal("110.00")}
    assert set(state.usage) == {"x"}


def test_next_states_and_events_keep_their_field_order_and_set_fields() -> None:
    """JSON is written in field order (each event starts with "at"), and the next state
    counts as set what the member had set plus what the purchase changed (as model_copy)."""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    member = lr.MemberState(id="m1", tier="basic", qualifying_spend=Decimal("4900"))
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "200.00"}]}
    decision = lr.evaluate(program, member, txn, trace=False)
    for event in json.loads(decision.model_dump_json())["events"]:
        assert list(event)[:2] == ["at", "type"]
    state = decision.member_after
    assert state is not None
    record = json.loads(state.model_dump_json())["purchases"][0]
    assert list(record) == list(lr.PurchaseRecord.model_fields)
    assert "household" not in state.model_fields_set
    assert {"id", "tier", "qualifying_spend", "lots", "purchases", "version"} <= \
        state.model_fields_set


def test_members_alike_share_their_next_states_set_fields_and_a_copy_does_not_touch_it(
        ) -> None:
    """A next state's set fields are one set shared by every state alike (a stream keeps a
    state per member, and a set of 27 names takes 1–2 KB); what model_copy updates is its
    own copy, and a state read from JSON keeps its own."""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    states = []
    for k in range(3):
        member = lr.MemberState(id=f"m{k}", tier="basic")
        for n in range(2):
            txn = {"id": f"t{n}", "at": f"2026-05-0{n + 2}T10:00:00+08:00", "channel": "store",
                   "items": [{"sku": "a", "category": "apparel", "amount": "200.00"}]}
            member = lr.apply(member, lr.evaluate(program, member, txn, trace=False))
        states.append(member)
    first, second, third = states
    assert first.model_fields_set is second.model_fields_set is third.model_fields_set
    assert first.model_fields_set == {
        "id", "tier", "qualifying_spend", "orders", "last_purchase", "usage",
        "recent_transactions", "purchases", "spend_log", "advanced_to", "lots", "totals",
        "points", "pending_points", "points_debt", "version"}
    copied = first.model_copy(update={"birthday": date(1990, 5, 1)})
    assert "birthday" in copied.model_fields_set
    assert "birthday" not in first.model_fields_set | second.model_fields_set
    again = lr.MemberState.model_validate_json(first.model_dump_json(exclude_unset=True))
    assert again == first and again.model_fields_set is not first.model_fields_set
    assert again.model_fields_set == first.model_fields_set



def test_members_read_alike_share_their_next_states_set_fields_by_what_they_hold() -> None:
    """States a host validates each hold a set of their own; next states of members read
    with the same fields share one set, and a member read with one field more gets its own
    (the sets are found by what they hold, not mixed up)."""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "200.00"}]}
    plain = [lr.MemberState.model_validate({"id": f"m{k}", "tier": "basic"}) for k in range(2)]
    born = lr.MemberState.model_validate({"id": "m9", "tier": "basic", "birthday": "1990-01-02"})
    # (as many fields as the one born, other ones: not found by how many it holds)
    joined = lr.MemberState.model_validate({"id": "m8", "tier": "basic",
                                            "joined": "2025-01-02"})
    assert plain[0].model_fields_set is not plain[1].model_fields_set
    after = [lr.apply(m, lr.evaluate(program, m, txn, trace=False))
             for m in (*plain, born, joined)]
    assert after[0].model_fields_set is after[1].model_fields_set
    assert "birthday" not in after[0].model_fields_set
    assert after[2].model_fields_set == after[0].model_fields_set | {"birthday"}
    assert after[3].model_fields_set == after[0].model_fields_set | {"joined"}
    for state in after:  # (written as set, and read back the same)
        again = lr.MemberState.model_validate_json(state.model_dump_json(exclude_unset=True))
        assert again == state

def test_threads_reading_a_next_state_at_once_all_get_the_same_one() -> None:
    import threading

    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    txn = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
           "items": [{"sku": "a", "category": "apparel", "amount": "200.00"}]}
    decisions = [lr.evaluate(program, {"id": f"m{k}"}, txn, trace=False) for k in range(300)]
    seen: list[list[Any]] = [[], [], [], []]
    start = threading.Barrier(4)

    def read(out: list[Any]) -> None:
        start.wait()
        out.extend(d.member_after for d in decisions)

    threads = [threading.Thread(target=read, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k, decision in enumerate(decisions):
        assert all(out[k] is decision.member_after for out in seen)
        assert decision.member_after.usage == {}


def test_a_used_up_limit_is_traced_as_the_engine_says() -> None:
    """The limit sentence, which random purchases reach only now and then."""
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    member = {"id": "m", "tier": "gold", "birthday": "1990-11-02",
              "usage": {"birthday-gift": {"period": "2026", "count": 1}}}
    txn = {"id": "t", "at": "2026-11-11T10:00:00+08:00", "channel": "online",
           "items": [{"sku": "a", "category": "beauty", "amount": "400.00"}]}
    compiled = lr.evaluate(program, member, txn)
    assert compiled.model_dump_json() == _whole(program, member, txn, "interpreted")
    reasons = {e.rule: (e.status, e.reason) for e in compiled.trace or ()}
    assert reasons["birthday-gift"] == ("not_matched",
                                        "usage limit reached: 1 of 1 per year (2026)")
    assert reasons["birthday-month-double"][0] == "fired"
    assert reasons["double-eleven"] == ("fired", "+500 bonus points")
    # 400 less gold's 10% = 360 paid, beauty 3× = 1080 → 108 base; × 1.5 (gold) × 2 (birthday
    # month) = 324; + 500 on 11.11 online
    assert compiled.points_total == 824 and not compiled.perks


def test_a_condition_that_fails_stops_both_traces_at_the_same_entry() -> None:
    """An expression error is noted in the trace, then raised, by the generated function as
    by the engine: the same message and the same trace up to the failure."""
    spec = {
        "program": {"id": "err", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}, {"id": "vip", "qualify": {"spend": 100}}],
        "earn": [{"id": "base", "points": 1, "per": 1}],
        "promotions": [
            {"id": "weekend", "schedule": {"freq": "weekly", "byweekday": ["SA"]},
             "bonus_points": 5},
            {"id": "odd", "when": "txn.amount / (txn.items_count - 1) > 1", "bonus_points": 9},
        ],
    }
    program = lr.Program.from_dict(spec)
    assert program.plan("compiled").decide_traced is not None
    member = {"id": "m"}
    txn = {"id": "t", "at": "2026-03-04T10:00:00+08:00",
           "items": [{"sku": "a", "amount": "30.00"}]}
    failed = _whole(program, member, txn, "compiled")
    assert failed == _whole(program, member, txn, "interpreted")
    assert failed[0] == "error" and "odd" in failed[1]
    assert [json.loads(e)["status"] for e in failed[2]] == ["not_matched", "error"]
    txn["items"].append({"sku": "b", "amount": "20.00"})  # two lines: it holds
    decision = lr.evaluate(program, member, txn)
    assert decision.model_dump_json() == _whole(program, member, txn, "interpreted")
    assert decision.points_total == 59 and "odd" in decision.rules_fired


def test_a_negative_zero_amount_is_zero_on_every_path() -> None:
    """A single "-0.00" line: no "-0.00" in any total, discount or trace, compiled or not."""
    program = lr.Program.from_dict({
        "program": {"id": "z", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "t0", "discount": "10%"}],
        "earn": [{"id": "e0", "points": 1, "per": 1}]})
    member = {"id": "m"}
    txn = {"id": "t", "at": "2026-03-04T10:00:00+08:00", "shipping": "-0",
           "items": [{"sku": "a", "amount": "-0.00"}]}
    compiled = _whole(program, member, txn, "compiled")
    assert compiled == _whole(program, member, txn, "interpreted")
    assert '"-0' not in compiled and " -0" not in compiled  # no amount written as -0…
    assert _outcome(program, member, txn, "compiled", trace=False) == _outcome(
        program, member, txn, "interpreted", trace=False)
    assert lr.Transaction.model_validate(txn).items[0].amount.is_signed() is False
