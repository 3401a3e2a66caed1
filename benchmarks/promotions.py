"""A generated program with many promotions, of which only a handful can apply at a time."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import yaml

import loyaltyrules as lr

CHANNELS = ("online", "store", "app", "wechat")
CATEGORIES = ("beauty", "apparel", "food", "home", "toys", "books")


def many_promotions_program(count: int, seed: int = 7) -> lr.Program:
    """``count`` promotions spread over 2026, each on one channel, with windows sized so that
    about two can apply to any one transaction whatever ``count`` is (10 promotions run most
    of the year, 1,000 run three days each); some have a schedule, a category scope, a usage
    limit or a condition."""
    return lr.Program.from_dict(many_promotions_data(count, seed))


def many_promotions_yaml(count: int, seed: int = 7) -> str:
    """The same program as YAML text, as a designer's file would hold it."""
    return yaml.safe_dump(many_promotions_data(count, seed), allow_unicode=True,
                          sort_keys=False)


def many_promotions_data(count: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    promotions: list[dict[str, Any]] = []
    days = max(1, round(365 * 2 * len(CHANNELS) / count))
    for k in range(count):
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(max(1, 366 - days)))
        promo: dict[str, Any] = {
            "id": f"promo-{k}",
            "window": {"start": start.isoformat(),
                       "end": (start + timedelta(days=days - 1)).isoformat()},
            "channels": [rng.choice(CHANNELS)],
        }
        kind = rng.randrange(4)
        if kind == 0:
            promo["bonus_points"] = rng.randint(10, 200)
        elif kind == 1:
            promo["points_multiplier"] = rng.choice(["1.5", "2"])
        elif kind == 2:
            promo["categories"] = [rng.choice(CATEGORIES)]
            promo["discount"] = rng.choice(["5%", "10%"])
            promo["group"] = "category-deals"
        else:
            promo["discount"] = {"threshold": 300, "off": 20}
            promo["limit"] = {"times": 1, "per": "month"}
        if rng.random() < 0.2:
            promo["schedule"] = {"freq": "weekly", "byweekday": [rng.choice(
                ["MO", "TU", "WE", "TH", "FR", "SA", "SU"])]}
        if rng.random() < 0.1:
            promo["when"] = "txn.amount >= 100"
        promotions.append(promo)
    return {
        "program": {"id": f"many-{count}", "version": 1, "currency": "CNY",
                    "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}, {"id": "gold", "qualify": {"spend": 10000},
                                    "discount": "10%"}],
        "earn": [{"id": "base", "points": 1, "per": 1}],
        "promotions": promotions,
    }


def promotion_cases(count: int, seed: int = 11) -> list[tuple[lr.MemberState, lr.Transaction]]:
    rng = random.Random(seed)
    out = []
    for k in range(count):
        at = datetime(2026, 1, 1, 4, tzinfo=UTC) + timedelta(
            days=rng.randrange(365), minutes=rng.randrange(600))
        items = tuple(
            lr.LineItem(sku=f"s{rng.randrange(50)}", category=rng.choice(CATEGORIES),
                        amount=Decimal(rng.randrange(100, 50000)) / 100)
            for _ in range(rng.randint(1, 4))
        )
        out.append((
            lr.MemberState(id=f"m{k % 97}", tier=rng.choice(["basic", "gold"])),
            lr.Transaction(id=f"t{k}", at=at, channel=rng.choice(CHANNELS), items=items),
        ))
    return out


def many_earn_rules_program(count: int, seed: int = 7) -> lr.Program:
    """``count`` earn rules, each on one channel or tier, some scoped to categories, some
    proportional, capped, rounded or conditional — the same shape of program as
    :func:`many_promotions_program`, with its rules in ``earn:`` instead."""
    rng = random.Random(seed)
    rules: list[dict[str, Any]] = []
    for k in range(count):
        rule: dict[str, Any] = {"id": f"earn-{k}", "points": rng.choice(["1", "0.5", "2"]),
                                "per": rng.choice([1, 10, 100])}
        kind = rng.randrange(4)
        if kind == 0:
            rule["channels"] = [rng.choice(CHANNELS)]
        elif kind == 1:
            rule["tiers"] = [rng.choice(["basic", "gold"])]
        elif kind == 2:
            rule["categories"] = [rng.choice(CATEGORIES)]
            rule["blocks"] = "proportional"
        else:
            rule["exclude_categories"] = [rng.choice(CATEGORIES)]
            rule["basis"] = "list"
        if rng.random() < 0.2:
            rule["cap"] = rng.randint(10, 500)
        if rng.random() < 0.2:
            rule["base_rounding"] = "floor"
        if rng.random() < 0.1:
            rule["when"] = "txn.amount >= 100"
        rules.append(rule)
    return lr.Program.from_dict({
        "program": {"id": f"earn-{count}", "version": 1, "currency": "CNY",
                    "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}, {"id": "gold", "qualify": {"spend": 10000},
                                    "discount": "10%"}],
        "earn": rules,
    })
