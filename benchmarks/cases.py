"""Seeded random cases of the reference decision, in each engine's input shape."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import loyaltyrules as lr

from .handwritten import Item

TIERS = ("basic", "silver", "gold", "diamond")
CATEGORIES = ("beauty", "apparel", "food", "home")
SHANGHAI = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Case:
    tier: str
    birth_month: int
    spend: Decimal
    gift_year: int | None
    day: date
    channel: str
    items: list[Item]

    def member(self) -> lr.MemberState:
        usage = {}
        if self.gift_year is not None:
            usage["birthday-gift"] = lr.Usage(period=str(self.gift_year), count=1)
        return lr.MemberState(id="m", tier=self.tier, qualifying_spend=self.spend,
                              birthday=date(1990, self.birth_month, 15), usage=usage)

    def transaction(self) -> lr.Transaction:
        at = datetime(self.day.year, self.day.month, self.day.day, 12, 0, tzinfo=SHANGHAI)
        return lr.Transaction(
            id="t", at=at, channel=self.channel,
            items=tuple(lr.LineItem(sku=s, category=c, amount=a) for s, c, a in self.items),
        )


def make_cases(n: int, seed: int = 20261123) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        day = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
        if rng.random() < 0.1:
            day = date(2026, 11, 11)
        items = [
            (f"sku{rng.randrange(100)}", rng.choice(CATEGORIES),
             Decimal(rng.randrange(1, 200_000)) / 100)
            for _ in range(rng.randint(1, 5))
        ]
        out.append(Case(
            tier=rng.choice(TIERS),
            birth_month=rng.randint(1, 12),
            spend=Decimal(rng.randrange(0, 6_000_000)) / 100,
            gift_year=rng.choice([None, 2025, 2026]),
            day=day,
            channel=rng.choice(["online", "store"]),
            items=items,
        ))
    return out
