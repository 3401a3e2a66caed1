"""Invariants that hold for every program, member and transaction (hypothesis)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = [lr.load_program(p) for p in sorted((ROOT / "programs").glob("*.yaml"))]
CATEGORIES = ["apparel", "beauty", "bakery", "coffee", "gift_card", "food"]

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("20000"), places=2,
                    allow_nan=False, allow_infinity=False)
rate = st.sampled_from(["0%", "5%", "10%", "12.5%", "20%", "33%", "50%", "8折", "9.5折", "100%"])


@st.composite
def transactions(draw: st.DrawFn) -> dict[str, Any]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    at = start + timedelta(minutes=draw(st.integers(0, 4 * 365 * 24 * 60)))
    offset = draw(st.sampled_from(["+08:00", "-05:00", "+00:00", "+05:45"]))
    items = draw(st.lists(st.fixed_dictionaries({
        "sku": st.sampled_from(["a", "b", "c", "latte", "croissant"]),
        "category": st.sampled_from(CATEGORIES),
        "quantity": st.integers(1, 5),
        "amount": money.map(str),
    }), min_size=1, max_size=6))
    return {
        "id": draw(st.text("abcdef0123456789", min_size=1, max_size=8)),
        "at": at.isoformat().replace("+00:00", "") + offset,
        "channel": draw(st.sampled_from(["store", "online", "app"])),
        "items": items,
        "shipping": str(draw(st.sampled_from([Decimal("0"), Decimal("8.00")]))),
    }


@st.composite
def members(draw: st.DrawFn, program: lr.Program) -> dict[str, Any]:
    return {
        "id": "m",
        "tier": draw(st.sampled_from(program.tier_ids)),
        "points": draw(st.integers(0, 100_000)),
        "qualifying_spend": str(draw(money)),
        "orders": draw(st.integers(0, 50)),
        "birthday": draw(st.dates(min_value=datetime(1940, 1, 1).date(),
                                  max_value=datetime(2010, 12, 31).date())).isoformat(),
    }


@st.composite
def generated_programs(draw: st.DrawFn) -> lr.Program:
    """Random but valid programs: tiers, stacked discounts, caps, multipliers, policies."""
    n_tiers = draw(st.integers(1, 4))
    tiers: list[dict[str, Any]] = [{"id": "t0", "discount": draw(rate)}]
    for k in range(1, n_tiers):
        tiers.append({"id": f"t{k}", "qualify": {"spend": 1000 * k}, "discount": draw(rate),
                      "points_multiplier": draw(st.sampled_from(["1", "1.2", "1.5", "2"]))})
    promotions = []
    for k in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["percent", "amount", "threshold"]))
        discount: Any = {"percent": draw(rate)} if kind == "percent" else (
            {"amount": str(draw(st.integers(1, 500)))} if kind == "amount"
            else {"threshold": "300", "off": "50", "repeat": draw(st.booleans())})
        promo: dict[str, Any] = {"id": f"p{k}", "discount": discount,
                                 "priority": draw(st.integers(0, 3))}
        if draw(st.booleans()):
            promo["categories"] = [draw(st.sampled_from(CATEGORIES))]
        if draw(st.booleans()):
            promo["points_multiplier"] = draw(st.sampled_from(["2", "3"]))
        promotions.append(promo)
    return lr.Program.from_dict({
        "program": {"id": "gen", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": tiers,
        "earn": [{"id": "e", "points": draw(st.sampled_from([1, 10])),
                  "per": draw(st.sampled_from([1, 100])),
                  "blocks": draw(st.sampled_from(["full", "proportional"])),
                  "cap": draw(st.sampled_from([None, 100, 5000]))}],
        "promotions": promotions,
        "policies": {
            "discounts": {
                "stacking": draw(st.sampled_from(["sequential", "additive"])),
                "combine": draw(st.sampled_from(["stack", "best"])),
                "max_total": draw(st.sampled_from([None, "30%", "100%"])),
            },
            "points": {"combine_multipliers": draw(st.sampled_from(["multiply", "add", "best"])),
                       "cap": draw(st.sampled_from(["truncate", "reject"]))},
            "rounding": {"money": draw(st.sampled_from(["half_up", "half_even", "floor"]))},
        },
    })


@st.composite
def cases(draw: st.DrawFn) -> tuple[lr.Program, dict[str, Any], dict[str, Any]]:
    program = draw(st.one_of(st.sampled_from(BUNDLED), generated_programs()))
    return program, draw(members(program)), draw(transactions())


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cases())
def test_money_and_points_stay_within_bounds(case: tuple[lr.Program, Any, Any]) -> None:
    """Points never negative; each discount within its line; payable never negative."""
    program, member, txn = case
    d = lr.evaluate(program, member, txn)
    assert d.points_total >= 0 and all(p.points >= 0 for p in d.points)
    assert Decimal(0) <= d.total_discount <= d.list_amount
    assert d.payable >= 0
    for paid, item in zip(d.line_paid, txn["items"], strict=True):
        assert Decimal(0) <= paid <= Decimal(item["amount"])
    for disc in d.discounts:
        assert sum(disc.allocation) == disc.amount
        assert len(disc.allocation) == len(d.line_paid)
    assert sum(x.amount for x in d.discounts) == d.total_discount
    assert d.goods_paid == d.list_amount - d.total_discount


@SETTINGS
@given(cases())
def test_evaluation_is_deterministic_and_does_not_mutate(case: tuple[lr.Program, Any, Any]
                                                         ) -> None:
    """The same inputs give the same decision, and the inputs are left untouched."""
    program, member, txn = case
    before = copy.deepcopy((member, txn))
    first = lr.evaluate(program, member, txn)
    second = lr.evaluate(program, member, txn)
    assert first == second
    lr.apply(member, first)
    assert (member, txn) == before


@SETTINGS
@given(cases())
def test_decisions_and_states_round_trip_through_json(case: tuple[lr.Program, Any, Any]
                                                      ) -> None:
    """A decision and the next member state read back from JSON are equal to the originals."""
    program, member, txn = case
    d = lr.evaluate(program, member, txn)
    assert lr.Decision.model_validate_json(d.model_dump_json()) == d
    state = lr.apply(member, d)
    assert lr.MemberState.model_validate(json.loads(state.model_dump_json())) == state


@SETTINGS
@given(cases())
def test_trace_off_gives_the_same_numbers(case: tuple[lr.Program, Any, Any]) -> None:
    """Switching the trace off changes nothing but the trace and the points' detail text."""
    program, member, txn = case
    with_trace = lr.evaluate(program, member, txn)
    without = lr.evaluate(program, member, txn, trace=False)
    assert without.trace is None

    def numbers(d: lr.Decision) -> dict[str, Any]:
        data = d.model_dump(exclude={"trace"})
        for line in data["points"]:
            line.pop("detail")
        return data

    assert numbers(with_trace) == numbers(without)


EXPRESSIONS = [
    "txn.amount >= 300",
    "txn.channel == 'online' and member.orders > 2",
    "amount_in('beauty', 'food') * 2 > txn.amount",
    "has_category('gift_card') or has_sku('latte')",
    "quantity_in('bakery') >= 2",
    "member.points // 7 % 3 == 1",
    "days_since(member.birthday) > 9000",
    "is_birthday('month') or is_birthday('week')",
    "month(today) in [11, 12] and weekday(txn.date) <= 5",
    "max(txn.amount, 100) - min(txn.amount, 100) > 50.5",
    "txn.amount * 0.1 + 1 > 20 if txn.channel != 'store' else tier == 't0'",
    "len(items) > 2 and items[0].amount > 10",
    "-txn.amount < -100 and not member.orders == 0",
    "txn.hour >= 12 and txn.at.minute < 30",
    "member.qualifying_spend / 3 > 1000",
    "abs(member.points - 500) < 200 or txn.quantity ** 2 > 9",
    "items[1].category == 'beauty'",
    "member.attrs.level > 5",
]


@st.composite
def expression_programs(draw: st.DrawFn) -> lr.Program:
    """Programs whose rules carry `when:` conditions, for compiled-vs-interpreted checks."""
    promotions = [
        {"id": f"p{k}", "when": expr, "bonus_points": 10 + k,
         "points_multiplier": draw(st.sampled_from(["1", "2"]))}
        for k, expr in enumerate(draw(st.lists(st.sampled_from(EXPRESSIONS), min_size=1,
                                               max_size=4)))
    ]
    return lr.Program.from_dict({
        "program": {"id": "x", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "t0"}, {"id": "t1", "qualify": {"when": draw(st.sampled_from(
            EXPRESSIONS[:6]))}}],
        "earn": [{"id": "e", "points": 1, "per": 1, "when": draw(st.sampled_from(
            EXPRESSIONS[:12]))}],
        "multipliers": [{"id": "m", "factor": 2, "when": draw(st.sampled_from(EXPRESSIONS))}],
        "promotions": promotions,
    })


def _outcome(program: lr.Program, member: Any, txn: Any, mode: Any, trace: bool = True) -> Any:
    try:
        data = lr.evaluate(program, member, txn, mode=mode, trace=trace).model_dump(
            exclude={"trace"})
    except lr.EvaluationError as exc:
        return ("error", exc.rule, str(exc))
    for line in data["points"]:
        line.pop("detail")
    return data


@SETTINGS
@given(expression_programs(), transactions(), st.data())
def test_compiled_and_interpreted_evaluation_agree(program: lr.Program, txn: dict[str, Any],
                                                  data: st.DataObject) -> None:
    """Compiled conditions, traced or on the trace-free fast path, give exactly the
    interpreted (simpleeval) decision, or the same error."""
    member = data.draw(members(program))
    interpreted = _outcome(program, member, txn, "interpreted")
    assert _outcome(program, member, txn, "compiled") == interpreted
    assert _outcome(program, member, txn, "compiled", trace=False) == interpreted
