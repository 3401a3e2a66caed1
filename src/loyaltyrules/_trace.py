"""The sentences of a decision's trace, one function each.

The traced engine (:mod:`._engine`) and the generated traced decision (:mod:`._specialise`)
both write their reasons with these, so a reason reads the same whichever path made it and
its wording lives in one place. ``tests/test_specialised.py`` compares the two paths' traces
byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ._calendar import LATE
from ._decision import TraceEntry, builder
from ._model import EarnRule
from ._money import plain

# a trace entry from its four values, unchecked (made by the dozen per traced decision)
entry = builder(TraceEntry)

NO_BIRTHDAY = "member has no birthday on file"
NO_MATCHING_ITEMS = "no matching items"

_ONE = Decimal(1)
_ON_TEXT = {on: on.replace("_", " ") for on in ("birthday", "birthday_week", "birthday_month")}


_ISO: dict[date, str] = {}


def iso(day: date) -> str:
    """``day.isoformat()``, kept: a traced decision quotes its day and the member's birthday
    several times, and ``isoformat`` costs about ten dict reads."""
    if type(day) is not date:  # (a subclass may write itself otherwise: never kept)
        return day.isoformat()
    text = _ISO.get(day)
    if text is None:
        if len(_ISO) >= 4096:  # (a bound: days are few, birthdays many)
            _ISO.clear()
        text = _ISO[day] = day.isoformat()
    return text


@lru_cache(maxsize=256)  # a program's few rates, quoted in every traced decision
def pct(rate: Decimal) -> str:
    return f"{plain((rate * 100).normalize())}%"


# --- a birthday rule's or promotion's conditions ------------------------------------------


def window_starts(start: datetime, local_at: datetime) -> str:
    return f"window starts {start.isoformat()}, transaction at {local_at.isoformat()}"


def window_ended(end: datetime, local_at: datetime) -> str:
    return f"window ended {end.isoformat()}, transaction at {local_at.isoformat()}"


def not_scheduled(today: date, schedule_text: str) -> str:
    return f"{iso(today)} is not a scheduled day ({schedule_text})"


def birthday_changed(set_on: date, guard_days: int) -> str:
    return (f"birthday set on {set_on}: within {guard_days} days before the birthday it is for, "
            "or after it")


def not_birthday(today: date, on: str, birthday: date) -> str:
    return (f"{iso(today)} is not the member's {_ON_TEXT[on]} "
            f"(birthday {iso(birthday)})")


def tier_not_in(tier: str, tiers: Sequence[str]) -> str:
    """``tiers`` as the trace lists them: a rule's in its own order, a multiplier's sorted."""
    return f"tier {tier!r} not in {list(tiers)}"


def channel_not_in(channel: str, channels: Sequence[str]) -> str:
    return f"channel {channel!r} not in {list(channels)}"


def no_item_in_scope(categories: Sequence[str], skus: Sequence[str]) -> str:
    return f"no item in categories {list(categories)} / skus {list(skus)}"


def below_min_amount(total: Decimal, min_amount: Decimal) -> str:
    return f"amount {plain(total)} below min_amount {plain(min_amount)}"


def below_threshold(reach: Decimal, threshold: Decimal) -> str:
    return f"{plain(reach)} is below the threshold {plain(threshold)}"


def limit_reached(used: int, times: int, per: str, key: str) -> str:
    if used >= LATE:
        return (f"usage limit: {key} is before the last use on record, and its uses are not "
                f"kept (a late event gets no limited benefit)")
    return f"usage limit reached: {used} of {times} per {per} ({key})"


def exclusive_fired(exclusive: str) -> str:
    return f"exclusive promotion {exclusive} fired"


def group_taken(group: str, winner: str) -> str:
    return f"group {group}: {winner} has priority"


DISCOUNT_DID_NOT_APPLY = "its discount did not apply"


def below_min_paid(goods_paid: Decimal, min_paid: Decimal) -> str:
    return f"amount paid {plain(goods_paid)} below min_paid {plain(min_paid)}"


# --- discounts and redemption --------------------------------------------------------------


def no_tier_discount(tier: str) -> str:
    return f"tier {tier} has no discount"


def percent_of(percent: Decimal, base: Decimal) -> str:
    return f"{pct(percent)} of {plain(base)}"


def discount(amount: Decimal, why: str) -> str:
    return f"discount {plain(amount)}: {why}"


def points_pay(redeemed: int, paid_with_points: Decimal) -> str:
    return f"{redeemed} points pay {plain(paid_with_points)} (积分抵现)"


# --- points --------------------------------------------------------------------------------


def on_lines(factor: Decimal, lines: list[int]) -> str:
    return f"×{plain(factor)} on lines {lines}"


def on_all_points(factor: Decimal) -> str:
    return f"×{plain(factor)} on all points"


@dataclass(frozen=True, slots=True)
class EarnText:
    """An earn rule's constant words in its earn lines, written once when the program loads
    (``EarnPlan.text``)."""

    full_blocks: bool
    per: str
    points: str
    base_rounding: str | None
    rate: str = ""  # " × 10/100": after the basis, when blocks are proportional
    base: str = ""  # " base (floor)": after the rounded base, when there is one

    @classmethod
    def of(cls, rule: EarnRule) -> EarnText:
        per, points = plain(rule.per), plain(rule.points)
        return cls(rule.blocks == "full", per, points, rule.base_rounding,
                   f" × {points}/{per}", f" base ({rule.base_rounding})")


def earn_detail(text: EarnText, basis: Decimal, blocks: Decimal | None, raw: object,
                multiplier: Decimal, basket: Sequence[tuple[str, Decimal]], how: str,
                rounding: str) -> str:
    """An earn line's arithmetic: ``blocks`` for whole blocks, ``raw`` the rounded base (as
    its digits: an int or an integral Decimal), ``basket`` the named factors."""
    if text.full_blocks:
        detail = f"basis {plain(basis)}: {blocks} full blocks of {text.per} × {text.points}"
    else:
        amount = plain(basis)
        detail = "basis " + amount + ": " + amount + text.rate
    if text.base_rounding is not None:
        detail += f" = {raw}{text.base}"
    if multiplier != _ONE:
        detail += multiplied(multiplier, basket, how)
    return detail + ", rounded " + rounding


def multiplied(multiplier: Decimal, basket: Sequence[tuple[str, Decimal]], how: str) -> str:
    """An earn line's multiplier other than 1, with its named factors."""
    if len(basket) == 1:  # (the usual one factor: no list of names to join)
        name, factor = basket[0]
        names = f"{name} ×{plain(factor)}"
    else:
        names = ", ".join([f"{n} ×{plain(f)}" for n, f in basket])
    return f", multiplier ×{plain(multiplier.normalize())} ({names}, {how})"


def earned(points: int, detail: str) -> str:
    return f"{points} points — {detail}"


def best_earns_more(best: str) -> str:
    return f"combine_rules: best — {best} earns more"


def over_transaction_cap(total: int, cap: int, truncate: bool) -> str:
    return (f"{total} points truncated to {cap}" if truncate
            else f"{total} points exceed max_per_transaction {cap}: all rejected")


def over_period_cap(total: int, cap: int, room: int, per: str, truncate: bool,
                    used: int | None) -> str:
    earned = (f"an earlier {per} than the one on record, capped on its own at {cap}"
              if used is None else f"{used} of max_per_period {cap} already earned this {per}")
    return (f"{total} points truncated to {room} ({earned})" if truncate
            else f"{total} points exceed the {room} left ({earned}): all rejected")


def cap_truncated(points: int, cap: int) -> tuple[str, str]:
    """The capped note and what the line's detail adds."""
    return f"{points} points truncated to cap {cap}", f", capped at {cap} (was {points})"


def cap_rejected(points: int, cap: int) -> tuple[str, str]:
    return (f"{points} points exceed cap {cap}: rejected (cap: reject)",
            f", rejected: over the cap of {cap}")


# --- tier qualification --------------------------------------------------------------------


def criteria(thresholds: Sequence[tuple[str, Decimal | int, str]], spend: Decimal,
             points: int, orders: int, spend_text: str) -> list[tuple[bool, str]]:
    """Each of a tier's thresholds (``TierPlan.thresholds``), met or not, as the trace quotes
    it (a ``when`` condition is the caller's)."""
    checks: list[tuple[bool, str]] = []
    for what, minimum, text in thresholds:
        if what == "spend":
            checks.append((spend >= minimum, f"spend {spend_text} ≥ {text}"))
        elif what == "points":
            checks.append((points >= minimum, f"points {points} ≥ {text}"))
        else:
            checks.append((orders >= minimum, f"orders {orders} ≥ {text}"))
    return checks


def condition_holds(expression: object) -> str:
    """A tier's ``when:`` that holds, quoted."""
    return f"`{expression}`"


def judged(match: str, checks: list[tuple[bool, str]]) -> tuple[bool, str]:
    """Whether the tier qualifies (``match``: all or any), and the sentence saying so."""
    if len(checks) == 1:  # the usual single threshold
        ok = checks[0][0]
        text = ("✓ " if ok else "✗ ") + checks[0][1]
    else:
        ok = all([c[0] for c in checks]) if match == "all" else any([c[0] for c in checks])
        text = "; ".join([("✓ " if c[0] else "✗ ") + c[1] for c in checks])
    return ok, f"{'qualifies' if ok else 'does not qualify'} ({match}): {text}"


def qualified_first(first: Any, second: Any, tier_before: str) -> Any:
    """``second`` (a purchase decided again at the tier it reached, ``benefits_from:
    this_transaction``) with the qualification entries of ``first`` (the same purchase
    decided at the member's tier, which judged the tiers above), so its trace still says why
    the tier changed: the second decision does not judge them again."""
    carried = tuple(
        entry({"rule": e.rule, "kind": e.kind, "status": e.status,
               "reason": f"{e.reason} (judged on this purchase at {tier_before}'s benefits; "
                         "benefits_from: this_transaction)"})
        for e in first.trace if e.kind == "qualification")
    return second.model_copy(update={"trace": (*second.trace, *carried)})
