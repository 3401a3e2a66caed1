"""Mechanism A of docs/domain.md: every worked number of the four-tier retail program."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import loyaltyrules as lr

PROGRAM = lr.load_program(Path(__file__).resolve().parent.parent / "programs" / "retail-4tier.yaml")
ORDINARY_DAY = "2026-03-03T12:00:00+08:00"


def buy(tier: str, amount: str, *, at: str = ORDINARY_DAY, spend: str = "0",
        birthday: str | None = None, member: lr.MemberState | None = None) -> lr.Decision:
    state = member or lr.MemberState(id="m", tier=tier, qualifying_spend=Decimal(spend),
                                     birthday=birthday)
    txn = {"id": f"t-{amount}-{at}", "at": at, "items": [{"sku": "x", "amount": amount}]}
    return lr.evaluate(PROGRAM, state, txn)


@pytest.mark.parametrize(
    ("amount", "points"),
    [("950.00", 90), ("99.99", 0), ("100.00", 10), ("199.99", 10), ("1000.00", 100)],
)
def test_ten_points_per_full_hundred(amount: str, points: int) -> None:
    """A basic member earns 10 points per *full* ¥100 paid: ¥950 → 90, ¥99.99 → 0."""
    assert buy("basic", amount).points_total == points


def test_silver_member_pays_95_percent_and_earns_90() -> None:
    """Silver, ¥1,000 on an ordinary day → pays ¥950, earns 90 points."""
    d = buy("silver", "1000.00")
    assert (d.payable, d.points_total) == (Decimal("950.00"), 90)


def test_gold_member_pays_80_percent_and_earns_80() -> None:
    """Gold, ¥1,000 → ¥800, 80 points (8折)."""
    d = buy("gold", "1000.00")
    assert (d.payable, d.points_total) == (Decimal("800.00"), 80)
    assert [(x.rule, x.amount) for x in d.discounts] == [("gold", Decimal("200.00"))]


def test_diamond_member_earns_one_and_a_half_times() -> None:
    """Diamond, ¥1,000 → ¥800, 120 points (80 × 1.5)."""
    d = buy("diamond", "1000.00")
    assert (d.payable, d.points_total) == (Decimal("800.00"), 120)


def test_basic_member_crossing_10000_is_upgraded_with_silver_from_next_purchase() -> None:
    """Basic with ¥9,500 buys ¥800 → pays ¥800, 80 points, ¥10,300 → silver next time."""
    d = buy("basic", "800.00", spend="9500")
    assert (d.payable, d.points_total) == (Decimal("800.00"), 80)
    assert (d.tier_before, d.tier_after, d.tier_changed) == ("basic", "silver", True)
    assert d.benefits_tier == "basic"
    state = lr.apply(lr.MemberState(id="m", tier="basic", qualifying_spend=Decimal("9500")), d)
    assert state.qualifying_spend == Decimal("10300.00")
    assert state.tier == "silver"
    nxt = buy("silver", "800.00", member=state, at="2026-03-04T12:00:00+08:00")
    assert nxt.payable == Decimal("760.00")


def test_gold_member_on_her_birthday_gets_gift_and_ten_percent_after_tier() -> None:
    """Gold on her birthday, ¥1,000 → ¥800 → ¥720, 70 points, gift granted."""
    d = buy("gold", "1000.00", birthday="1990-03-03")
    assert (d.payable, d.points_total) == (Decimal("720.00"), 70)
    assert [(x.rule, x.amount) for x in d.discounts] == [
        ("gold", Decimal("200.00")),
        ("birthday-discount", Decimal("80.00")),
    ]
    assert [g.perk for g in d.perks] == ["birthday_gift"]


def test_second_birthday_purchase_gets_discount_but_no_second_gift() -> None:
    """A second purchase that birthday gets the 10% again but no second gift."""
    member = lr.MemberState(id="m", tier="gold", qualifying_spend=Decimal("25000"),
                            birthday="1990-03-03")
    first = buy("gold", "1000.00", member=member)
    member = lr.apply(member, first)
    second = lr.evaluate(PROGRAM, member, {
        "id": "t2", "at": "2026-03-03T19:00:00+08:00", "items": [{"sku": "y", "amount": "1000.00"}]
    })
    assert (second.payable, second.points_total, second.perks) == (Decimal("720.00"), 70, ())
    assert second.trace is not None
    gift = [e for e in second.trace if e.rule == "birthday-gift"]
    assert gift[0].status == "not_matched"
    assert "usage limit reached: 1 of 1 per year (2026)" in gift[0].reason


def test_gift_comes_back_the_next_year() -> None:
    """The once-per-year gift is granted again on next year's birthday."""
    member = lr.MemberState(id="m", tier="gold", qualifying_spend=Decimal("25000"),
                            birthday="1990-03-03")
    member = lr.apply(member, buy("gold", "100.00", member=member))
    later = buy("gold", "100.00", member=member, at="2027-03-03T09:00:00+08:00")
    assert [g.perk for g in later.perks] == ["birthday_gift"]


def test_member_day_doubles_points_on_the_eighth() -> None:
    """Member day 会员尊享日, the 8th of every month: points ×2 (diamond: 80 × 1.5 × 2)."""
    assert buy("silver", "1000.00", at="2026-04-08T10:00:00+08:00").points_total == 180
    assert buy("diamond", "1000.00", at="2026-04-08T10:00:00+08:00").points_total == 240
    assert buy("silver", "1000.00", at="2026-04-09T10:00:00+08:00").points_total == 90


def test_member_day_is_the_eighth_in_shanghai_not_in_utc() -> None:
    """23:30 UTC on the 7th is already the 8th in Asia/Shanghai: member day applies."""
    assert buy("silver", "1000.00", at="2026-04-07T23:30:00+00:00").points_total == 180
    assert buy("silver", "1000.00", at="2026-04-08T16:30:00+00:00").points_total == 90


def test_birthday_is_the_calendar_date_in_the_program_zone() -> None:
    """A purchase at 17:00 UTC on 2 March is 01:00 on 3 March in Shanghai: her birthday."""
    d = buy("gold", "1000.00", at="2026-03-02T17:00:00+00:00", birthday="1990-03-03")
    assert d.payable == Decimal("720.00")


def test_qualifying_spend_excludes_the_part_paid_with_points() -> None:
    """Qualifying spend is the money actually paid: the points-paid part does not count."""
    txn = {"id": "t", "at": ORDINARY_DAY, "paid_with_points": "50.00",
           "items": [{"sku": "x", "amount": "1000.00"}]}
    d = lr.evaluate(PROGRAM, {"id": "m", "tier": "gold"}, txn)
    assert (d.payable, d.qualifying_spend, d.points_total) == (
        Decimal("750.00"), Decimal("750.00"), 70)
