"""The bundled programs: they load, and coffee-club's schedules and deals behave as written.

Expected numbers are worked out by hand from programs/coffee-club.yaml:
green has no discount, stars earn 1 point per $1 paid (proportional, floored), multipliers
combine by adding (1 + Σ(factor − 1)), money rounds half-even to cents.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import loyaltyrules as lr

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "programs").glob("*.yaml"))
COFFEE = lr.load_program(ROOT / "programs" / "coffee-club.yaml")

# An existing green member (orders > 0, so the welcome bonus is out of the way).
GREEN: dict[str, Any] = {"id": "m1", "tier": "green", "orders": 3}
GOLD: dict[str, Any] = {"id": "g1", "tier": "gold", "orders": 20, "qualifying_spend": "400.00"}


def coffee(amount: str) -> dict[str, str]:
    return {"sku": "LATTE", "category": "coffee", "amount": amount}


def bakery(amount: str) -> dict[str, str]:
    return {"sku": "CROISSANT", "category": "bakery", "amount": amount}


def gift_card(amount: str) -> dict[str, str]:
    return {"sku": "GC", "category": "gift_card", "amount": amount}


def buy(member: Any, at: str, *items: dict[str, str], channel: str = "store",
        txn_id: str | None = None) -> lr.Decision:
    txn = {"id": txn_id or f"T-{at}-{channel}", "at": at, "channel": channel,
           "items": list(items)}
    return lr.evaluate(COFFEE, member, txn)


def status(decision: lr.Decision, rule: str) -> str:
    assert decision.trace is not None
    return next(e.status for e in decision.trace if e.rule == rule)


# -- every bundled program -------------------------------------------------------------------


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_every_bundled_program_loads(path: Path) -> None:
    """Each file in programs/ loads, and its program id is its file name."""
    program = lr.load_program(path)
    assert program.id == path.stem
    assert program.hash.startswith("sha256:")


def test_the_three_bundled_programs() -> None:
    """programs/ holds the four programs the README names."""
    assert [p.name for p in PROGRAMS] == ["coffee-club.yaml", "reference-4tier.yaml",
                                          "retail-4tier.yaml", "rfm-3tier.yaml"]


def test_retail_4tier_tiers_and_names() -> None:
    """retail-4tier has basic/silver/gold/diamond with Chinese and English names."""
    program = lr.load_program(ROOT / "programs" / "retail-4tier.yaml")
    assert program.tier_ids == ("basic", "silver", "gold", "diamond")
    assert [t.name for t in program.tiers] == [
        {"zh": "普通会员", "en": "Basic"},
        {"zh": "银卡", "en": "Silver"},
        {"zh": "金卡", "en": "Gold"},
        {"zh": "钻石会员", "en": "Diamond"},
    ]


def test_retail_4tier_thresholds_and_benefits() -> None:
    """retail-4tier: ¥10k/20k/30k thresholds, 9.5折/8折/8折 and ×1.5 points for diamond."""
    program = lr.load_program(ROOT / "programs" / "retail-4tier.yaml")
    tiers = program.tiers
    assert tiers[0].qualify is None
    assert [t.qualify.spend for t in tiers[1:] if t.qualify] == [10000, 20000, 30000]
    assert [t.discount for t in tiers] == [None, Decimal("0.05"), Decimal("0.20"),
                                           Decimal("0.20")]
    assert [t.points_multiplier for t in tiers] == [1, 1, 1, Decimal("1.5")]


def test_coffee_club_basics() -> None:
    """coffee-club counts in USD cents in America/New_York with green/gold/reserve tiers."""
    assert COFFEE.tier_ids == ("green", "gold", "reserve")
    assert COFFEE.currency == "USD"
    assert COFFEE.quantum == Decimal("0.01")
    assert str(COFFEE.zone) == "America/New_York"


# -- Double-Star Wednesday --------------------------------------------------------------------


def test_double_star_wednesday_doubles_points() -> None:
    """$20.00 on Wednesday 2026-03-04 earns 20 × 2 = 40 stars."""
    d = buy(GREEN, "2026-03-04T09:00:00-05:00", coffee("20.00"))
    assert (d.local_date, d.payable, d.points_total) == (date(2026, 3, 4), Decimal("20.00"), 40)
    assert "double-star-wednesday" in d.rules_fired


def test_no_double_stars_on_thursday() -> None:
    """$20.00 on Thursday 2026-03-05 earns the plain 20 stars."""
    d = buy(GREEN, "2026-03-05T09:00:00-05:00", coffee("20.00"))
    assert (d.local_date, d.points_total) == (date(2026, 3, 5), 20)
    assert "double-star-wednesday" not in d.rules_fired
    assert status(d, "double-star-wednesday") == "not_matched"


def test_wednesday_is_the_local_day_not_utc() -> None:
    """02:00 UTC on Thursday is 21:00 Wednesday in New York, so stars double."""
    d = buy(GREEN, "2026-03-05T02:00:00+00:00", coffee("20.00"))
    assert (d.local_date, d.points_total) == (date(2026, 3, 4), 40)


def test_wednesday_in_the_app_adds_multipliers() -> None:
    """In the app on Wednesday, ×2 and ×1.25 combine by adding: 20 × 2.25 = 45 stars."""
    d = buy(GREEN, "2026-03-04T09:00:00-05:00", coffee("20.00"), channel="app")
    assert d.points_total == 45


@pytest.mark.parametrize(
    ("at", "points"),
    [
        ("2025-12-31T09:00:00-05:00", 20),  # a Wednesday before the window starts
        ("2026-12-30T09:00:00-05:00", 40),  # the last Wednesday of the window
        ("2027-01-06T09:00:00-05:00", 20),  # a Wednesday after the window ended
    ],
)
def test_double_star_wednesday_window(at: str, points: int) -> None:
    """Double stars only on Wednesdays inside the 2026 window."""
    assert buy(GREEN, at, coffee("20.00")).points_total == points


# -- first-Friday bonus -----------------------------------------------------------------------


def test_first_friday_bonus_once_per_month() -> None:
    """+50 on the first Friday of a month, once: not again that day, nor on the second Friday,
    but again on April's first Friday."""
    member = lr.MemberState.model_validate(GREEN)
    expected = [
        ("2026-03-06T09:00:00-05:00", 62, True),   # first Friday of March: 12 + 50
        ("2026-03-06T15:00:00-05:00", 12, False),  # same day: limit reached
        ("2026-03-13T09:00:00-04:00", 12, False),  # second Friday: not scheduled
        ("2026-04-03T09:00:00-04:00", 62, True),   # first Friday of April: new month
    ]
    for n, (at, points, bonus) in enumerate(expected):
        d = buy(member, at, coffee("12.00"), txn_id=f"F{n}")
        assert (d.points_total, "first-friday" in d.rules_fired) == (points, bonus), at
        member = lr.apply(member, d)
    assert member.points == 62 + 12 + 12 + 62
    assert member.usage["first-friday"] == lr.Usage(period="2026-04", count=1)


def test_first_friday_reason_when_limit_reached() -> None:
    """The second first-Friday purchase is traced as not matched because of the usage limit."""
    member = lr.MemberState.model_validate(GREEN)
    member = lr.apply(member, buy(member, "2026-03-06T09:00:00-05:00", coffee("12.00"),
                                  txn_id="F1"))
    d = buy(member, "2026-03-06T15:00:00-05:00", coffee("12.00"), txn_id="F2")
    assert d.trace is not None
    entry = next(e for e in d.trace if e.rule == "first-friday")
    assert entry.status == "not_matched"
    assert entry.reason == "usage limit reached: 1 of 1 per month (2026-03)"


def test_first_friday_needs_ten_dollars() -> None:
    """Under $10 (9.99) on the first Friday earns no bonus: 9 stars only."""
    d = buy(GREEN, "2026-03-06T09:00:00-05:00", coffee("9.99"))
    assert d.points_total == 9
    assert "first-friday" not in d.rules_fired


# -- 满减: spend $30, save $5, up to 3 times ------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "payable", "points"),
    [
        ("29.99", "29.99", 29),    # below the threshold
        ("30.00", "25.00", 25),    # once
        ("65.00", "55.00", 55),    # twice
        ("100.00", "85.00", 85),   # three times
        ("150.00", "135.00", 135),  # five thresholds, but at most three times
    ],
)
def test_spend_30_save_5_repeats_up_to_three_times(amount: str, payable: str, points: int
                                                   ) -> None:
    """满30减5 applies once per full $30, at most 3 times; stars are earned on what is paid."""
    d = buy(GREEN, "2026-03-05T09:00:00-05:00", coffee(amount))
    assert (d.payable, d.points_total) == (Decimal(payable), points)


def test_basket_deal_group_takes_one_deal() -> None:
    """With $10 bakery + $25 coffee, 满减 (priority 10) wins the group over bakery 20% off:
    pay 30.00; stars 8.57 × 2 + 21.43 = 38.57 → 38."""
    d = buy(GREEN, "2026-03-05T09:00:00-05:00", bakery("10.00"), coffee("25.00"))
    assert d.payable == Decimal("30.00")
    assert list(d.line_paid) == [Decimal("8.57"), Decimal("21.43")]
    assert d.points_total == 38
    assert "bakery-20" not in d.rules_fired
    assert status(d, "bakery-20") == "skipped"


def test_bakery_deal_applies_when_spend_30_is_not_reached() -> None:
    """$10 of bakery alone doesn't reach 满30, so the group's other deal (20% off bakery) applies:
    pay 8.00, stars 8 × 2 = 16."""
    d = buy(GREEN, "2026-03-05T09:00:00-05:00", bakery("10.00"))
    assert (d.payable, d.points_total) == (Decimal("8.00"), 16)
    assert "bakery-20" in d.rules_fired


# -- Black Friday -------------------------------------------------------------------------------


def test_black_friday_is_exclusive() -> None:
    """On Black Friday $100 gets 25% off only: pay 75.00 (not 65.00 with 满减), 75 stars."""
    d = buy(GREEN, "2026-11-27T12:00:00-05:00", coffee("100.00"))
    assert (d.payable, d.points_total) == (Decimal("75.00"), 75)
    assert d.rules_fired == ("black-friday", "stars")
    assert status(d, "spend-30-save-5") == "skipped"


def test_black_friday_still_stacks_the_tier_discount() -> None:
    """A gold member on Black Friday: 25% off 100 = 75, then gold 5% of 75 = 3.75 → 71.25."""
    d = buy(GOLD, "2026-11-27T12:00:00-05:00", coffee("100.00"))
    assert [(x.rule, x.amount) for x in d.discounts] == [
        ("black-friday", Decimal("25.00")), ("gold", Decimal("3.75"))]
    assert (d.payable, d.points_total) == (Decimal("71.25"), 71)


@pytest.mark.parametrize("at", ["2026-11-26T23:59:59-05:00", "2026-11-28T00:00:00-05:00"])
def test_black_friday_window_is_the_local_day(at: str) -> None:
    """Just outside Black Friday (local time) the usual 满减 applies: $100 → 85.00."""
    d = buy(GREEN, at, coffee("100.00"))
    assert d.payable == Decimal("85.00")
    assert "black-friday" not in d.rules_fired


# -- gift cards -------------------------------------------------------------------------------


def test_gift_cards_are_not_discounted_earning_or_qualifying() -> None:
    """Gold, $40 coffee + $50 gift card: 5% and 满减 hit only the coffee (40 → 38 → 33), the
    card is paid in full; stars and qualifying spend count only the coffee's 33.00."""
    d = buy(GOLD, "2026-03-05T09:00:00-05:00", coffee("40.00"), gift_card("50.00"))
    assert [(x.rule, x.amount) for x in d.discounts] == [
        ("gold", Decimal("2.00")), ("spend-30-save-5", Decimal("5.00"))]
    assert list(d.line_paid) == [Decimal("33.00"), Decimal("50.00")]
    assert d.payable == Decimal("83.00")
    assert d.qualifying_spend == Decimal("33.00")
    assert d.points_total == 33


def test_gift_cards_do_not_count_toward_the_spend_threshold() -> None:
    """$25 coffee + $50 gift card doesn't reach 满30: pay 75.00, 25 stars."""
    d = buy(GREEN, "2026-03-05T09:00:00-05:00", coffee("25.00"), gift_card("50.00"))
    assert (d.payable, d.points_total, d.qualifying_spend) == (
        Decimal("75.00"), 25, Decimal("25.00"))
    assert "spend-30-save-5" not in d.rules_fired


def test_gift_cards_do_not_move_a_member_up() -> None:
    """A green member at $290 buying a $50 gift card stays green; $20 of coffee makes gold."""
    member = {"id": "m2", "tier": "green", "orders": 3, "qualifying_spend": "290.00"}
    card = buy(member, "2026-03-05T09:00:00-05:00", gift_card("50.00"))
    assert (card.payable, card.points_total, card.qualifying_spend) == (
        Decimal("50.00"), 0, Decimal("0"))
    assert card.tier_after == "green"
    drink = buy(member, "2026-03-05T09:00:00-05:00", coffee("20.00"))
    assert drink.tier_after == "gold"


# -- other coffee-club rules --------------------------------------------------------------------


def test_welcome_bonus_once_ever() -> None:
    """A new member's first order gets +100 stars, the second does not."""
    first = buy({"id": "new"}, "2026-03-05T09:00:00-05:00", coffee("20.00"), txn_id="W1")
    assert (first.tier_before, first.points_total) == ("green", 120)
    member = lr.apply({"id": "new"}, first)
    second = buy(member, "2026-03-05T10:00:00-05:00", coffee("20.00"), txn_id="W2")
    assert second.points_total == 20


def test_stars_rule_cap() -> None:
    """$600 of coffee: 满减 ×3 → 585.00 paid, 585 stars capped at the rule's 500."""
    d = buy(GREEN, "2026-03-05T09:00:00-05:00", coffee("600.00"))
    assert (d.payable, d.points_total) == (Decimal("585.00"), 500)


# -- daylight saving time -------------------------------------------------------------------


def test_dst_change_keeps_the_local_date() -> None:
    """On 2026-03-08 (DST starts), 01:30 EST and 03:30 EDT are the same local date."""
    before = buy(GREEN, "2026-03-08T01:30:00-05:00", coffee("20.00"))
    after = buy(GREEN, "2026-03-08T03:30:00-04:00", coffee("20.00"))
    assert before.local_date == after.local_date == date(2026, 3, 8)
    assert (before.points_total, after.points_total) == (20, 20)


@pytest.mark.parametrize(
    ("at", "local"),
    [
        ("2026-03-08T04:30:00+00:00", date(2026, 3, 7)),  # 23:30 EST, UTC−5
        ("2026-03-09T04:30:00+00:00", date(2026, 3, 9)),  # 00:30 EDT, UTC−4
    ],
)
def test_utc_instants_use_the_offset_in_force(at: str, local: date) -> None:
    """The same UTC clock time falls on different local dates either side of the DST change."""
    assert buy(GREEN, at, coffee("20.00")).local_date == local
