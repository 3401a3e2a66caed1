"""Time and calendars: zones, local days, birthdays and usage periods.

Every calendar question is asked in the program's zone about an instant the caller passed in;
nothing here reads the clock or the machine's zone.
"""

from __future__ import annotations

import calendar
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Final, Literal
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil import rrule as _rrule
from dateutil.zoneinfo import get_zonefile_instance

__all__ = [
    "birthday_change_blocks",
    "birthday_in_year",
    "is_birthday",
    "load_zone",
    "period_key",
    "rrule_parts",
    "setpos_in_period",
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


# Names in the tz database that are an abbreviation with no daylight saving time, though
# most of the places that say them have it: a US program written EST ran an hour off from
# March to November (EST5EDT and the like follow the US rules, and load)
_ABBREVIATIONS: Final = {
    "EST": "America/New_York (Eastern, with daylight saving time) or America/Panama "
           "(UTC-5 all year)",
    "MST": "America/Denver (Mountain, with daylight saving time) or America/Phoenix "
           "(UTC-7 all year)",
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
    said = name.strip().upper() if isinstance(name, str) else ""
    if said.removeprefix("POSIX/") in _ABBREVIATIONS:  # (est, 'EST ', posix/EST: the same)
        raise ValueError(f"{name!r} is an abbreviation, not a place's time zone — did you "
                         f"mean {_ABBREVIATIONS[said.removeprefix('POSIX/')]}?")
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
    """Is ``today`` (a local date) within the member's birthday date, week or month (the
    month of this year's birthday)?

    ``week: iso`` is the Monday–Sunday week holding this year's birthday; ``centered`` is the
    birthday ± 3 days. A week crossing New Year is checked against both years' birthdays.
    """
    if birthday is None:
        return False
    if kind in ("month", "birthday_month"):
        # the month of this year's birthday: for 29 February celebrated on 1 March in a
        # common year, March, so the birthday itself is always in the birthday month
        if birthday.month == 2 and birthday.day == 29:
            return today.month == birthday_in_year(birthday, today.year, feb29).month
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
    """The birthday abuse guard: a birthday set fewer than ``guard_days`` days before the
    birthday being celebrated — or after it — is not rewarded. The one celebrated is the
    birthday nearest ``today``: a birthday week around 31 December reaches into January, and
    on 1 January it is still last year's birthday (every birthday window is well under half
    a year)."""
    if set_on is None or guard_days <= 0:
        return False
    celebrated = min((birthday_in_year(birthday, year, feb29)
                      for year in (today.year - 1, today.year, today.year + 1)),
                     key=lambda day: abs((day - today).days))
    if set_on > celebrated:
        return True
    return (celebrated - set_on).days < guard_days


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


# --- RRULE strings ---------------------------------------------------------------------------
# A schedule's RRULE text is read here, part by part, instead of by dateutil's rrulestr: that
# let an ordinal it cannot handle (BYDAY=9MO) escape as an IndexError, ignored ordinals in a
# weekly rule (BYDAY=2MO was every Monday), took INTERVAL=0 (which never advances, so working
# out a year's days never ended) and said "not enough values to unpack" for a part without
# "=". Each part is checked with the words a designer needs, then dateutil gets plain values.

Freq = Literal[0, 1, 2, 3, 4, 5, 6]  # dateutil's YEARLY … SECONDLY
_FREQ_NAMES: Final[dict[str, Freq]] = {"YEARLY": _rrule.YEARLY, "MONTHLY": _rrule.MONTHLY,
                      "WEEKLY": _rrule.WEEKLY, "DAILY": _rrule.DAILY}
_DAY_NAMES: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_WORDS: Final = dict(zip(_DAY_NAMES, ("Monday", "Tuesday", "Wednesday", "Thursday",
                                          "Friday", "Saturday", "Sunday"), strict=True))
_PERIOD: Final = {"YEARLY": "year", "MONTHLY": "month", "WEEKLY": "week", "DAILY": "day"}
# the parts a schedule may have: RFC 5545's (BYWEEKDAY is dateutil's other name for BYDAY,
# BYEASTER its days-from-Easter extension, both read before and kept)
_PARTS: Final = ("FREQ", "INTERVAL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYWEEKDAY", "BYSETPOS",
                 "BYYEARDAY", "BYWEEKNO", "WKST", "BYEASTER")
_TIMED: Final = ("BYHOUR", "BYMINUTE", "BYSECOND")
_WINDOW_PARTS: Final = frozenset({"DTSTART", "UNTIL", "COUNT"})
# whole numbers: the range each part allows, and what it counts (0 only for Easter Sunday)
_NUMBERS: Final = {
    "BYMONTH": (1, 12, "months are 1 to 12"),
    "BYMONTHDAY": (-31, 31, "days of the month count 1 to 31 from the start of the month or "
                   "-1 to -31 from its end; 0 is not a day"),
    "BYYEARDAY": (-366, 366, "days of the year count 1 to 366 from the start of the year or "
                  "-1 to -366 from its end; 0 is not a day"),
    "BYWEEKNO": (-53, 53, "weeks of the year count 1 to 53 from the start of the year or "
                 "-1 to -53 from its end; 0 is not a week"),
    "BYSETPOS": (-366, 366, "BYSETPOS picks the n-th of the days the other parts give: 1 to "
                 "366 from the first or -1 to -366 from the last; 0 is not a position"),
    # dateutil finds Easter's offsets in a table of the year's days: an offset that leaves
    # Easter's year read another part of the table (before -87, silently a December day) or
    # failed (past about 290). Easter Sunday falls from 22 March to 25 April, so -80…250
    # is in its year every year: one day a year, the right one
    "BYEASTER": (-80, 250, "BYEASTER counts days from Easter Sunday, -80 to 250 (so that "
                 "the day is in Easter's own year)"),
}
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_WEEKDAY: Final = re.compile(r"(?:([+-]?[0-9]+)?([A-Z]{2})|([A-Z]{2})\(([+-]?[0-9]+)\))")


def _shown(text: str) -> str:
    """A part as the designer wrote it, cut short when long."""
    return text if len(text) <= 40 else text[:39] + "…"


def _whole(name: str, item: str) -> int:
    if not _INTEGER.fullmatch(item):
        raise ValueError(f"{_shown(name + '=' + item)}: {_shown(item)!r} is not a whole number")
    if len(item.lstrip("+-")) > 18:
        # beyond every range and every calendar: not worth converting (a long enough number
        # would not even convert)
        return -(10**18) if item.startswith("-") else 10**18
    return int(item)


def _numbers(name: str, value: str) -> list[int]:
    low, high, meaning = _NUMBERS[name]
    out = []
    for item in value.split(","):
        number = _whole(name, item.strip())
        if (number == 0 and name != "BYEASTER") or not low <= number <= high:
            raise ValueError(f"{_shown(name + '=' + value)}: {meaning}")
        out.append(number)
    # a number given again means nothing more, but dateutil works BYSETPOS out once for each
    # (20,000 repeats: two seconds a year of days)
    return list(dict.fromkeys(out))


def _weekdays(name: str, value: str, freq: str, by_month: bool) -> list[_rrule.weekday]:
    out = []
    for item in value.split(","):
        item = item.strip()
        match = _WEEKDAY.fullmatch(item)
        day = match and (match[2] or match[3])
        if not match or day not in _DAY_NAMES:
            raise ValueError(f"{_shown(name + '=' + value)}: {_shown(item)!r} is not a weekday "
                             "— write MO, TU, WE, TH, FR, SA or SU, or 2MO for the second "
                             "Monday of a month")
        assert day is not None
        written = match[1] or match[4]
        if written is None:
            out.append(getattr(_rrule, day))
            continue
        number = _whole(name, written)
        word = _DAY_WORDS[day]
        if freq not in ("MONTHLY", "YEARLY"):
            raise ValueError(
                f"{_shown(name + '=' + value)}: a number before a weekday ({written}{day}) "
                f"counts {word}s within a month or a year, so it needs FREQ=MONTHLY or "
                f"FREQ=YEARLY — with FREQ={freq}, write {day} for every {word}")
        # with BYMONTH, a yearly rule counts the weekday within each of those months
        within, most = ("month", 5) if freq == "MONTHLY" or by_month else ("year", 53)
        if number == 0 or abs(number) > most:
            raise ValueError(
                f"{_shown(name + '=' + value)}: a {within} has at most {most} {word}s, so the "
                f"number before {day} is 1 to {most} (the first to the {_nth(most)}) or -1 to "
                f"-{most} (counting from the {within}'s end: -1 is the last)")
        out.append(getattr(_rrule, day)(number))
    return out


def _nth(number: int) -> str:
    return {5: "fifth", 53: "53rd"}[number]


# the most days one period of each frequency holds: BYSETPOS beyond them picks nothing, and
# dateutil, finding nothing, would search every period up to the year 9999 (seconds, for
# FREQ=DAILY) before saying so
_PERIOD_DAYS: Final = {"yearly": 366, "monthly": 31, "weekly": 7, "daily": 1}


def setpos_in_period(positions: Sequence[int], freq: str, written: str,
                     said: str = "") -> None:
    """Refuse a BYSETPOS (``bysetpos:``) position that no period of ``freq`` holds;
    ``said`` is the frequency as the designer wrote it."""
    most = _PERIOD_DAYS[freq]
    if most < 366 and any(abs(p) > most for p in positions):
        period = {"monthly": "a month has at most 31 days", "weekly": "a week has 7 days",
                  "daily": "each day is a set of its own"}[freq]
        which = f"the position is 1 to {most} (or -1 to -{most} counting from the last)" \
            if most > 1 else "the only position is 1 (or -1)"
        raise ValueError(f"{_shown(written)}: with {said or 'freq ' + freq}, {period}, so "
                         f"{which}")


def rrule_parts(text: str) -> tuple[Freq, dict[str, Any]]:
    """The frequency and the other arguments of ``dateutil.rrule.rrule`` that an RRULE
    string of a schedule stands for: ``"FREQ=MONTHLY;BYDAY=-1FR"`` (the last Friday of each
    month). Raises ValueError, saying in plain words which part is wrong and why."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if "\n" in body or "\r" in body:
        raise ValueError("give one RRULE, on one line, not a set")
    parts = [part.strip() for part in body.split(";")]
    if any(part.partition("=")[0].strip().upper() in _WINDOW_PARTS
           or part.upper().startswith("DTSTART:") for part in parts):
        raise ValueError("write the window with `window:`, not UNTIL/COUNT/DTSTART")
    given: dict[str, str] = {}
    for part in parts:
        if not part:
            continue  # "FREQ=WEEKLY;" — nothing was meant by the empty part
        name, equals, value = part.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not equals or not name:
            raise ValueError(f"the part {_shown(part)!r} is not NAME=VALUE — an RRULE is parts "
                             "such as FREQ=WEEKLY and BYDAY=MO, separated by ;")
        if name in given:
            raise ValueError(f"{_shown(name)} is given twice; give each part once")
        given[name] = value
    timed = [name for name in _TIMED if name in given]
    unknown = [name for name in given if name not in _PARTS and name not in _TIMED]
    if unknown:
        close = difflib.get_close_matches(unknown[0], _PARTS, n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown part {_shown(unknown[0])!r}: a schedule's RRULE may have "
                         f"{', '.join(_PARTS[:-1])} and {_PARTS[-1]}{hint}")
    freq = given.get("FREQ")
    if freq in ("HOURLY", "MINUTELY", "SECONDLY"):
        raise ValueError("a schedule selects days: FREQ is YEARLY, MONTHLY, WEEKLY or "
                         "DAILY (use a window for times of day)")
    if freq not in _FREQ_NAMES:
        got = "it is missing" if freq is None else f"got {_shown(freq)!r}"
        # (WEEKLY,BYDAY=WE or WEEKLY；BYDAY=WE: the parts run together into FREQ's value)
        split = "" if freq is None or not re.search("[,，；]", freq) else (
            " — an RRULE separates its parts with ';': FREQ=WEEKLY;BYDAY=WE")
        raise ValueError(f"an RRULE needs FREQ=YEARLY, MONTHLY, WEEKLY or DAILY ({got})"
                         f"{split}")
    if timed:
        raise ValueError(
            f"a schedule selects whole days, so {' and '.join(timed)} cannot be used "
            "(use a window for times of day) — for hours of every scheduled day, add "
            "a condition such as when: 10 <= txn.hour < 12")
    if "BYDAY" in given and "BYWEEKDAY" in given:
        raise ValueError("BYDAY and BYWEEKDAY are two names for one part; give it once")
    out: dict[str, Any] = {}
    if "INTERVAL" in given:
        interval = _whole("INTERVAL", given["INTERVAL"])
        if interval < 1:
            period = _PERIOD[freq]
            raise ValueError(
                f"{_shown('INTERVAL=' + given['INTERVAL'])}: INTERVAL is how many {period}s "
                f"apart the days repeat (1 = every {period}, 2 = every other {period}), a whole "
                "number of at least 1")
        out["interval"] = interval
    for name in _NUMBERS:
        if name in given:
            out[name.lower()] = _numbers(name, given[name])
    if "bysetpos" in out:
        setpos_in_period(out["bysetpos"], freq.lower(), f"BYSETPOS={given['BYSETPOS']}",
                         f"FREQ={freq}")
    for name in ("BYDAY", "BYWEEKDAY"):
        if name in given:
            out["byweekday"] = _weekdays(name, given[name], freq, "BYMONTH" in given)
    if "WKST" in given:
        if given["WKST"] not in _DAY_NAMES:
            raise ValueError(f"{_shown('WKST=' + given['WKST'])}: WKST is the day weeks start "
                             "on: MO, TU, WE, TH, FR, SA or SU")
        out["wkst"] = _DAY_NAMES.index(given["WKST"])
    return _FREQ_NAMES[freq], out
