"""The reference decision written by hand: the lower bound every engine is compared with.

Same decision as programs/reference-4tier.yaml, as a plain Decimal function: what a team
would write instead of a rules engine. tests/test_reference.py checks both agree exactly.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ONE = Decimal(1)
TWO = Decimal(2)
TEN = Decimal(10)
HUNDRED = Decimal(100)
THRESHOLD_1111 = Decimal(300)
RATE = {"basic": Decimal(0), "silver": Decimal("0.05"), "gold": Decimal("0.10"),
        "diamond": Decimal("0.15")}
MULTIPLIER = {"basic": ONE, "silver": Decimal("1.2"), "gold": Decimal("1.5"), "diamond": TWO}
UPGRADES = ((Decimal(50000), "diamond"), (Decimal(20000), "gold"), (Decimal(5000), "silver"))
RANK = {"basic": 0, "silver": 1, "gold": 2, "diamond": 3}

Item = tuple[str, str, Decimal]  # sku, category, amount


def decide(
    tier: str,
    birth_month: int,
    spend: Decimal,
    gift_year: int | None,
    day: date,
    channel: str,
    items: list[Item],
) -> tuple[Decimal, int, str, bool]:
    """(payable, points, tier after, birthday gift granted) for one purchase."""
    amount = sum([i[2] for i in items], Decimal(0))
    rate = RATE[tier]
    discount = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    paid = amount - discount
    beauty_paid = Decimal(0)
    if discount and len(items) > 1:
        # split the discount over the lines in cents, largest remainder first
        cents = [int(i[2] * 100) for i in items]
        total = sum(cents)
        d = int(discount * 100)
        parts = [d * c // total for c in cents]
        left = d - sum(parts)
        if left:
            order = sorted(range(len(items)), key=lambda k: (-(d * cents[k] % total), k))
            for k in order[:left]:
                parts[k] += 1
        for k, item in enumerate(items):
            if item[1] == "beauty":
                beauty_paid += item[2] - Decimal(parts[k]) / 100
    else:
        for item in items:
            if item[1] == "beauty":
                beauty_paid += item[2] - discount
    basis = paid + 2 * beauty_paid
    base = (basis * TEN / HUNDRED).to_integral_value(rounding=ROUND_FLOOR)
    multiplier = MULTIPLIER[tier]
    birthday_month = day.month == birth_month
    if birthday_month:
        multiplier *= TWO
    points = int((base * multiplier).to_integral_value(rounding=ROUND_FLOOR))
    if day.month == 11 and day.day == 11 and channel == "online" and paid >= THRESHOLD_1111:
        points += 500
    gift = birthday_month and gift_year != day.year
    after = tier
    new_spend = spend + amount
    for threshold, name in UPGRADES:
        if new_spend >= threshold:
            if RANK[name] > RANK[tier]:
                after = name
            break
    return paid, points, after, gift
