"""Time and calendars: zones, local days, birthdays and usage periods.

Every calendar question is asked in the program's zone about an instant the caller passed in;
nothing here reads the clock or the machine's zone.
"""

from __future__ import annotations

import calendar
import difflib
import os
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Final, Literal
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.zoneinfo import get_zonefile_instance

__all__ = [
    "birthday_change_blocks",
    "birthday_in_year",
    "is_birthday",
    "load_zone",
    "period_key",
    "uses",
]


# Names in the tz database that are not a place: ``localtime`` is whatever the server's
# /etc/localtime says (so results would change with the machine), the others are artefacts.
_NOT_PLACES: Final = frozenset({"localtime", "posixrules", "Factory"})
_ZONE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")
# "UTC+8", "GMT-08:00", "+08:00", "UTC+0800": a fixed offset, not a zone
_OFFSET: Final = re.compile(r"(?:UTC|GMT|Z)?\s*([+\-\u2212])\s*(\d{1,2})(?::?(\d{2}))?",
                            re.IGNORECASE)
# "CST-8", "CST+8", "EST5", "<+08>-8": a POSIX TZ string, whose sign is the reverse of ISO's
_POSIX: Final = re.compile(
    r"(?:[A-Za-z]{3,}|<[^>]*>)([+\-]?)(\d{1,2})(?::(\d{2}))?(?:[A-Za-z]{3,}.*)?")
# a place for a designer's UTC offset (whole hours), to suggest instead of the offset
_CITIES: Final = {
    -10: "Pacific/Honolulu", -9: "America/Anchorage", -8: "America/Los_Angeles",
    -7: "America/Denver", -6: "America/Chicago", -5: "America/New_York",
    -4: "America/Halifax", -3: "America/Sao_Paulo", 0: "Europe/London", 1: "Europe/Berlin",
    2: "Africa/Cairo", 3: "Europe/Moscow", 4: "Asia/Dubai", 5: "Asia/Karachi",
    6: "Asia/Dhaka", 7: "Asia/Bangkok", 8: "Asia/Shanghai", 9: "Asia/Tokyo",
    10: "Australia/Brisbane", 12: "Pacific/Auckland",
}
# abbreviations and names people write for a zone, with the zone(s) they usually mean
_SAID: Final = {
    "CST": "Asia/Shanghai (China) or America/Chicago (US Central)",
    "BJT": "Asia/Shanghai", "BEIJING": "Asia/Shanghai", "CHINA": "Asia/Shanghai",
    "JST": "Asia/Tokyo", "KST": "Asia/Seoul", "HKT": "Asia/Hong_Kong",
    "SGT": "Asia/Singapore", "IST": "Asia/Kolkata (India) or Europe/Dublin (Ireland)",
    "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "CDT": "America/Chicago", "EDT": "America/New_York", "BST": "Europe/London",
    "CEST": "Europe/Berlin", "AEST": "Australia/Sydney",
}


@lru_cache(maxsize=1)
def _system_zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_PLACES


@lru_cache(maxsize=1)
def _bundled_zones() -> Mapping[str, tzinfo]:
    """dateutil's own copy of the tz database, for machines without one."""
    zones: Mapping[str, tzinfo] = get_zonefile_instance().zones
    return zones


def _is_zone_name(name: str) -> bool:
    """Exactly a tz database name (case included: a case-insensitive disk would otherwise
    accept ``asia/shanghai`` on one machine and refuse it on another)."""
    if name in _NOT_PLACES or name.startswith(("posix/", "right/")):
        return False
    # (the file itself, its name's case checked directory by directory, before listing the
    # whole database: that costs about 30 ms, once a process)
    return _zone_file(name) or name in _system_zone_names() or name in _bundled_zones()


def _zone_file(name: str) -> bool:
    for root in TZPATH:
        path = root
        for part in name.split("/"):
            if part not in _entries(path):
                break
            path = os.path.join(path, part)
        else:
            try:
                with open(path, "rb") as handle:
                    return handle.read(4) == b"TZif"
            except OSError:
                return False
    return False


@lru_cache(maxsize=256)
def _entries(directory: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return frozenset()


@lru_cache(maxsize=64)
def load_zone(name: str) -> tzinfo:
    """The tz database (IANA) zone of that name, such as ``Asia/Shanghai`` or ``UTC``.

    Only names of the tz database are accepted — not ``localtime`` (the server's own zone),
    offsets (``UTC+8``) or POSIX TZ strings (``CST-8``), whose meaning depends on the reader.
    Falls back to dateutil's bundled database when the machine has no tz data.
    """
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"not an IANA time zone name: {name!r}")
    if _ZONE_NAME.fullmatch(name) and _is_zone_name(name):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return _bundled_zones()[name]
    raise ValueError(_not_a_zone(name))


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _offset_hint(minutes: int) -> str:
    """Where to go for a fixed UTC offset: the Etc/GMT zone (sign reversed) or a city."""
    city = _CITIES.get(minutes // 60) if minutes % 60 == 0 else None
    if minutes == 0:
        return "did you mean UTC or a city zone such as Europe/London?"
    if minutes % 60 == 0 and -12 * 60 <= minutes <= 14 * 60:
        etc = f"Etc/GMT{'-' if minutes > 0 else '+'}{abs(minutes) // 60}"
        such = f" such as {city}" if city else ""
        return f"did you mean {etc} (IANA writes {_offset_text(minutes)} with the sign " \
               f"reversed) or a city zone{such}?"
    if minutes == 330:
        return "did you mean Asia/Kolkata?"
    return "name the zone, e.g. Asia/Shanghai"


def _not_a_zone(name: str) -> str:
    """Why ``name`` is refused, with a suggestion after " — " where one can be made."""
    text = name.strip()
    if text == "localtime":
        return ("'localtime' is the server's own time zone, so results would change from "
                "machine to machine — name the zone, e.g. Asia/Shanghai")
    if text in _NOT_PLACES:
        return f"{text!r} is not a place's time zone — name the zone, e.g. Asia/Shanghai"
    offset = _OFFSET.fullmatch(text)
    if offset:
        sign = -1 if offset[1] in "-\u2212" else 1
        minutes = sign * (int(offset[2]) * 60 + int(offset[3] or 0))
        return (f"{name!r} is a UTC offset, not an IANA time zone name — "
                + _offset_hint(minutes))
    posix = _POSIX.fullmatch(text)
    if posix and text.upper() not in _SAID:
        # POSIX counts hours *west* of Greenwich: CST-8 is UTC+8
        hours = int(posix[2])
        minutes = (1 if posix[1] == "-" else -1) * (hours * 60 + int(posix[3] or 0))
        east, west = _CITIES.get(hours, "Asia/Shanghai"), _CITIES.get(-hours)
        both = f"{east} for UTC+{hours}" + (f" or {west} for UTC-{hours}" if west else "")
        return (f"{name!r} is a POSIX TZ string, not an IANA time zone name; it means "
                f"{_offset_text(minutes)} (POSIX reverses the sign) — name the zone, e.g. {both}")
    message = f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)"
    said = _SAID.get(text.upper()) or _SAID.get(text.rsplit("/", 1)[-1].upper())
    if said:
        return f"{message} — did you mean {said}?"
    close = _close_zone(text)
    return f"{message} — did you mean {close!r}?" if close else message


def _close_zone(text: str) -> str | None:
    """A tz database name the designer probably meant: another case, a city, or a typo."""
    names = sorted(_system_zone_names() | set(_bundled_zones()))
    wanted = text.removeprefix("posix/").removeprefix("right/").replace(" ", "_")
    by_lower = {n.lower(): n for n in names}
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    cities = {n.rsplit("/", 1)[-1].lower(): n for n in names if "/" in n}
    if wanted.lower() in cities:
        return cities[wanted.lower()]
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.8)
    return close[0] if close else None


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


# A member's usage keeps one period per limited rule: the latest one used. An event dated in
# an earlier period (uploaded late) finds no count of its own period on record, so it is
# counted as having used the limit up: a late event never gets a limited benefit that may
# already have been given (never twice; at worst not at all).
LATE = 1 << 62


def uses(entry: Any, key: str) -> int:
    """The uses of a limited rule that count in period ``key``, from the member's usage
    entry for the rule (or None): its count in that period, none in another, LATE in a period
    earlier than the one on record."""
    if entry is None:
        return 0
    recorded: str = entry.period
    if recorded == key:
        return int(entry.count)
    return LATE if earlier_period(key, recorded) else 0


def earlier_period(key: str, recorded: str) -> bool:
    """Whether period ``key`` comes before ``recorded``, both of one ``per`` (keys of one
    kind have one length and sort by time: 2026, 2026-03, 2026-W10, 2026-03-08; `ever`
    compares with nothing)."""
    return len(key) == len(recorded) and key < recorded and key[:1].isdigit() \
        and recorded[:1].isdigit()


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
