"""Time and calendars: zones, local days, birthdays and usage periods.

Every calendar question is asked in the program's zone about an instant the caller passed in;
nothing here reads the clock or the machine's zone.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz as _dateutil_tz

__all__ = [
    "birthday_change_blocks",
    "birthday_in_year",
    "is_birthday",
    "load_zone",
    "period_key",
]


@lru_cache(maxsize=64)
def load_zone(name: str) -> tzinfo:
    """An IANA zone; falls back to dateutil's bundled database when the OS has no tzdata."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"not an IANA time zone name: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = _dateutil_tz.gettz(name)
        if zone is None:
            raise ValueError(
                f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)"
            ) from None
        return zone


def birthday_in_year(birthday: date, year: int, feb29: Literal["feb28", "mar1"]) -> date:
    """The day a birthday is celebrated in ``year``; 29 February falls back per policy."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28) if feb29 == "feb28" else date(year, 3, 1)
    return date(year, birthday.month, birthday.day)


def is_birthday(
    birthday: date | None,
    today: date,
    kind: str,
    *,
    feb29: Literal["feb28", "mar1"],
    week: Literal["iso", "centered"],
) -> bool:
    """Is ``today`` (a local date) within the member's birthday date, week or month?

    ``week: iso`` is the Monday–Sunday week holding this year's birthday; ``centered`` is the
    birthday ± 3 days. A week crossing New Year is checked against both years' birthdays.
    """
    if birthday is None:
        return False
    if kind in ("month", "birthday_month"):
        return today.month == birthday.month
    if kind in ("date", "birthday"):
        return today == birthday_in_year(birthday, today.year, feb29)
    for year in (today.year - 1, today.year, today.year + 1):
        day = birthday_in_year(birthday, year, feb29)
        if week == "iso":
            if day.isocalendar()[:2] == today.isocalendar()[:2]:
                return True
        elif abs((today - day).days) <= 3:
            return True
    return False


def birthday_change_blocks(birthday: date, set_on: date | None, today: date, guard_days: int,
                           feb29: Literal["feb28", "mar1"]) -> bool:
    """The birthday abuse guard: a birthday set fewer than ``guard_days`` days before this
    year's birthday — or after it — is not rewarded this year."""
    if set_on is None or guard_days <= 0:
        return False
    this_year = birthday_in_year(birthday, today.year, feb29)
    if set_on > this_year:
        return set_on.year == this_year.year
    return (this_year - set_on).days < guard_days


def period_key(today: date, per: str) -> str:
    """The usage-limit period a local date falls in: ``2026``, ``2026-03``, ``2026-W10`` …"""
    if per == "year":
        return f"{today.year:04d}"
    if per == "month":
        return f"{today.year:04d}-{today.month:02d}"
    if per == "week":
        iso = today.isocalendar()
        return f"{iso[0]:04d}-W{iso[1]:02d}"
    if per == "day":
        return today.isoformat()
    return "ever"


def local(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def next_day(day: date) -> date:
    return day + timedelta(days=1)
