"""Households (家庭共享): a share of each purchase's points pooled, used and left behind."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import loyaltyrules as lr


def program(**households: Any) -> lr.Program:
    return lr.Program.from_dict({
        "program": {"id": "fam", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}, {"id": "silver", "qualify": {"spend": 1000}}],
        "earn": [{"id": "base", "points": 1, "per": 1}],
        "households": {"share": "50%", **households},
    })


def buy(p: lr.Program, m: lr.MemberState, txn_id: str, day: int, amount: str
        ) -> tuple[lr.MemberState, lr.Decision]:
    d = lr.evaluate(p, m, {"id": txn_id, "at": f"2026-01-{day:02d}T10:00:00+08:00",
                           "items": [{"sku": "x", "amount": amount}]})
    return lr.apply(m, d), d


def pool_identity(h: lr.HouseholdState) -> bool:
    t = h.totals
    return t.earned - t.redeemed - t.expired - t.reversed == h.points == sum(
        lot.points for lot in h.lots)


def family(p: lr.Program) -> tuple[lr.HouseholdState, lr.MemberState, lr.MemberState]:
    c = lr.household_join(p, None, lr.MemberState(id="mum"), household_id="chen")
    h, mum = c.household, c.member
    c = lr.household_join(p, h, lr.MemberState(id="son"))
    return c.household, mum, c.member


def test_half_of_each_purchase_goes_to_the_pool() -> None:
    """share 50%: ¥600 earns 600 points, 300 stay with mum and 300 go to the pool."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    assert (c.member.points, c.household.points, c.points) == (300, 300, 300)
    assert c.household.contributions == {"mum": 300}
    assert lr.check_identity(c.member) and pool_identity(c.household)
    again = lr.household_contribute(p, c.household, c.member, d)
    assert (again.household, again.member, again.points) == (c.household, c.member, 0)


def test_tiers_on_group_spend() -> None:
    """tiers_on: group — mum's ¥600 and the son's ¥500 make ¥1,100: the son becomes silver."""
    p = program(tiers_on="group")
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    son, d2 = buy(p, lr.with_household(son, h), "t2", 2, "500.00")
    assert d2.tier_after == "silver"
    alone = program(tiers_on="individual")
    assert lr.evaluate(alone, lr.MemberState(id="son"), {
        "id": "t2", "at": "2026-01-02T10:00:00+08:00",
        "items": [{"sku": "x", "amount": "500.00"}]}).tier_after == "basic"


def test_only_the_owner_uses_the_pool_when_the_program_says_so() -> None:
    """redeem: owner — the son cannot draw from the pool; mum can, expiring lots first."""
    p = program(redeem="owner")
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    h, mum = c.household, c.member
    with pytest.raises(lr.InputError, match="owner"):
        lr.household_withdraw(p, h, son, 100, "2026-01-03T10:00:00+08:00", event_id="w1")
    c = lr.household_withdraw(p, h, mum, 100, "2026-01-03T10:00:00+08:00", event_id="w1")
    assert (c.member.points, c.household.points) == (400, 200)
    assert lr.check_identity(c.member) and pool_identity(c.household)
    with pytest.raises(lr.InputError, match="in the pool"):
        lr.household_withdraw(p, c.household, c.member, 201, "2026-01-03T11:00:00+08:00",
                              event_id="w2")


@pytest.mark.parametrize(("policy", "son_points", "pool_points", "pool_expired"),
                         [("stay", 250, 550, 0), ("take_share", 500, 300, 0),
                          ("forfeit", 250, 300, 250)])
def test_what_happens_to_pooled_points_when_a_member_leaves(
        policy: str, son_points: int, pool_points: int, pool_expired: int) -> None:
    """The son pooled 250 of 500 points: on leaving they stay, follow him, or lapse."""
    p = program(on_leave=policy)
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    son, d2 = buy(p, son, "t2", 2, "500.00")
    c = lr.household_contribute(p, h, son, d2)
    c = lr.household_leave(p, c.household, c.member, "2026-01-04T10:00:00+08:00")
    assert (c.member.points, c.household.points) == (son_points, pool_points)
    assert c.household.totals.expired == pool_expired
    assert c.household.members == ("mum",)
    assert c.member.household is None
    assert lr.check_identity(c.member) and pool_identity(c.household)


def test_household_size_is_limited() -> None:
    """max_members 2: a third member is refused and nothing changes."""
    p = program(max_members=2)
    h, _, _ = family(p)
    with pytest.raises(lr.InputError, match="at most 2"):
        lr.household_join(p, h, lr.MemberState(id="dad"))


def test_group_spend_accumulates() -> None:
    """The household's spend is the sum of its members' qualifying spend."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    assert (c.household.spend, c.member.household_spend) == (Decimal("600.00"),
                                                             Decimal("600.00"))
