"""The program model: what a designer can write in YAML, validated into frozen objects.

Data first, expressions second: thresholds, rates, categories, windows and schedules are
plain fields that tools can read; ``when:`` expressions are the escape hatch.
"""

from __future__ import annotations

import ast
import calendar
import contextlib
import functools
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from dateutil import rrule as _rrule
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ._calendar import load_zone, rrule_parts, setpos_in_period
from ._errors import show_value
from ._expressions import Expression, ExpressionError, parse_expression
from ._money import RoundingMode, minor_units, parse_money, parse_rate

__all__ = [
    "MAX_TIERS",
    "BirthdayPolicy",
    "DiscountPolicy",
    "DiscountSpec",
    "EarnRule",
    "Limit",
    "Meta",
    "Multiplier",
    "Perk",
    "PointsPolicy",
    "Policies",
    "ProgramModel",
    "Qualify",
    "QualifyingSpendPolicy",
    "Rule",
    "Schedule",
    "Tier",
    "Window",
]


def _parser(*, invariant: bool) -> Callable[[Any], Expression]:
    """Expression fields are parsed and checked at load; errors become LR301 diagnostics."""

    def parse(value: Any) -> Expression:
        if isinstance(value, Expression):
            return value
        try:
            return parse_expression(value, invariant=invariant, condition=True)
        except ExpressionError as exc:
            text = f"{exc}{' — ' + exc.hint if exc.hint else ''}"
            raise PydanticCustomError("expression", "{text}", {"text": text}) from None

    return parse


_as_text = PlainSerializer(lambda e: e.source, return_type=str)
Expr = Annotated[
    Expression, PlainValidator(_parser(invariant=False)), _as_text,
    WithJsonSchema({"type": "string", "description": "a condition (docs/expressions.md)"}),
]
InvariantExpr = Annotated[
    Expression, PlainValidator(_parser(invariant=True)), _as_text,
    WithJsonSchema({"type": "string", "description": "a property over member, txn and decision"}),
]


def _money_or_error(value: Any) -> Decimal:
    return parse_money(value)


def _non_negative_money(value: Any) -> Decimal:
    amount = parse_money(value)
    if amount < 0:
        raise ValueError(f"must not be negative (got {value})")
    return amount if amount else amount.copy_abs()  # (-0.0 is 0.0: money is never negative)


def _positive_money(value: Any) -> Decimal:
    amount = parse_money(value)
    if amount <= 0:
        raise ValueError(f"must be greater than 0 (got {value})")
    return amount


_NUMBER_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}]}
_RATE_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(%|折)$"},
    ],
    "description": "a fraction 0..1, a percentage like '20%', or Chinese notation like '8折'",
}
# program numbers are written normalised: 0.2, 0.20 and 20% are the same rate (and hash)
_money_serializer = PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str)

Money = Annotated[
    Decimal, BeforeValidator(_non_negative_money), _money_serializer, WithJsonSchema(_NUMBER_SCHEMA)
]
PositiveMoney = Annotated[
    Decimal, BeforeValidator(_positive_money), _money_serializer, WithJsonSchema(_NUMBER_SCHEMA)
]
Rate = Annotated[
    Decimal, BeforeValidator(parse_rate), _money_serializer, WithJsonSchema(_RATE_SCHEMA)
]


def _discount_rate(value: Any) -> Decimal:
    """A rate off, where a bare 8 or 9.5 most likely means 8折 / 9.5折 (or 8% off)."""
    if isinstance(value, dict):  # (a promotion's discount form, written for a tier's)
        inner = value.get("percent") if len(value) == 1 else None
        meant = ""
        if isinstance(inner, (str, int, Decimal)) and not isinstance(inner, bool):
            with contextlib.suppress(ValueError):  # (only a rate that would load)
                _discount_rate(inner)
                meant = f" — write discount: {inner}"
        raise ValueError("a tier's discount is one rate off the purchase, such as 9.5折, 5% "
                         f"or 0.05, not a mapping{meant}")
    try:
        return parse_rate(value)
    except ValueError:
        number = None
        if isinstance(value, (int, Decimal, str)) and not isinstance(value, bool) \
                and not str(value).strip().endswith(("%", "折")):
            with contextlib.suppress(ValueError):
                number = parse_money(value)
        if number is None or not Decimal(1) < number < Decimal(10):  # 10折 is nothing off
            raise

        def shown(d: Decimal) -> str:
            return format(d.normalize(), "f")

        raise ValueError(
            f"must be between 0 and 1 (got {value}) — did you mean {shown(number)}折 (pays "
            f"{shown(number * 10)}%, {shown(100 - number * 10)}% off) or {shown(number)}% off "
            f"({shown(number / 100)})?") from None


DiscountRate = Annotated[
    Decimal, BeforeValidator(_discount_rate), _money_serializer, WithJsonSchema(_RATE_SCHEMA)
]
def _factor(value: Any) -> Decimal:
    """A multiplier: 2 is double. ``200%``, ``2x`` or ``2倍`` are refused with the number
    they most likely mean."""
    try:
        return _positive_money(value)
    except ValueError:
        if not isinstance(value, str):
            raise
        text = value.strip().replace("％", "%")
        meant = None
        with contextlib.suppress(ValueError):
            if text.endswith("%"):
                meant = parse_money(text[:-1].strip()) / 100
            elif text.endswith(("x", "X", "×", "倍")):
                meant = parse_money(text[:-1].strip())
        hint = f" — did you mean {meant.normalize():f}?" if meant and meant > 0 else ""
        raise ValueError(f"expected a factor such as 2 or 1.5 (2 = double), got "
                         f"{show_value(value)}{hint}") from None


Factor = Annotated[
    Decimal, BeforeValidator(_factor), _money_serializer, WithJsonSchema(_NUMBER_SCHEMA)
]

def _text_id(value: Any) -> Any:
    """Plain YAML integers (a SKU 1001, a tier id 1) are ids too; booleans are not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Id = Annotated[str, BeforeValidator(_text_id),
               Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", max_length=64)]
def _one_or_many(value: Any) -> Any:
    """`categories: wine` means `categories: [wine]`; `categories: bakery, pastry` is not
    `[bakery, pastry]` to YAML but one name, which no line would match: refused, with the
    list it meant (a name that holds a comma is written as a list of one, `["a, b"]`)."""
    if isinstance(value, str) and value.startswith("\u3010") and value.endswith("\u3011"):
        inner = re.sub("\\s*[,\uff0c\u3001]\\s*", ", ", value[1:-1])
        raise ValueError(f"{value!r} is one name to YAML, brackets and all; a list is written "
                         f"in ASCII brackets: [{inner}]")
    if isinstance(value, str) and any(c in value for c in ",\uff0c\u3001"):
        names = ", ".join(part.strip() for part in re.split("[,\uff0c\u3001]", value))
        raise ValueError(f"{value!r} is one name to YAML, commas and all; a list is written "
                         f"[{names}] (and a name that holds a comma as [\"{value}\"])")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    return value


Ids = Annotated[
    tuple[Annotated[str, BeforeValidator(_text_id), Field(min_length=1, max_length=64)], ...],
    BeforeValidator(_one_or_many),
]


def _strict_int(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, (float, Decimal)) and (
            not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value))
            or value != int(value))):
        raise ValueError(f"expected a whole number (got {show_value(value)})")
    magnitude: Any = abs(value) if isinstance(value, (int, float, Decimal)) else 0
    if magnitude >= _WHOLE_LIMIT:
        # (as amounts are: 1e400 bonus points reached balances, and lint quoted 400 digits)
        raise ValueError(f"expected a whole number below 10^15 (got {show_value(value)})")
    if isinstance(value, Decimal):
        return int(value)
    return value


_WHOLE_LIMIT: Final[int] = 10**15


WholeNumber = Annotated[int, BeforeValidator(_strict_int)]


class FrozenDict(dict[str, str]):
    """A dict that refuses changes, so a loaded program cannot drift from its hash."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("program data is immutable")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def _names(value: Any) -> Any:
    if isinstance(value, str):
        return {"default": value}
    return value


Name = Annotated[
    dict[str, str],
    BeforeValidator(_names),
    AfterValidator(FrozenDict),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": {"type": "string"}},
            ],
            "description": "a display name, or names by language: {zh: 金卡, en: Gold}",
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# three-letter names written for a currency where its ISO 4217 code goes (the code's
# pattern refuses the rest: ¥, 元, HK$)
_CURRENCY_NAMES = {"RMB": "CNY", "NTD": "TWD", "YEN": "JPY", "WON": "KRW"}


class Meta(_Strict):
    """``program:`` — who the program is and the currency and time zone it counts in."""

    id: Id
    name: Name | None = None
    version: str
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    minor_units: Annotated[int, Field(ge=0, le=4)] | None = None
    timezone: str
    description: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        load_zone(value)
        return value

    @model_validator(mode="after")
    def _currency_known(self) -> Meta:
        if self.minor_units is None and minor_units(self.currency) is None:
            meant = _CURRENCY_NAMES.get(self.currency)
            if meant is not None:  # (a name people write for a currency, not its code)
                raise ValueError(f"currency {self.currency!r} is not an ISO 4217 code — did "
                                 f"you mean {meant}?")
            raise ValueError(
                f"currency {self.currency!r} is not in the built-in ISO 4217 table; "
                "set minor_units explicitly"
            )
        return self

    @property
    def units(self) -> int:
        units = self.minor_units if self.minor_units is not None else minor_units(self.currency)
        assert units is not None
        return units

    @property
    def zone(self) -> tzinfo:
        return load_zone(self.timezone)


class RoundingPolicy(_Strict):
    money: RoundingMode = "half_up"
    points: RoundingMode = "floor"


class TierPolicy(_Strict):
    benefits_from: Literal["next_transaction", "this_transaction"] = "next_transaction"


class RulePolicy(_Strict):
    tie_break: Literal["declaration_order", "id"] = "declaration_order"


class PeriodCap(_Strict):
    """``max_per_period: {points: 5000, per: month}`` — the most points a member earns from
    purchases in one calendar period (local day, ISO week, month or year)."""

    points: WholeNumber = Field(ge=0)
    per: Literal["day", "week", "month", "year"]


class PointsPolicy(_Strict):
    combine_rules: Literal["sum", "best"] = "sum"
    combine_multipliers: Literal["multiply", "add", "best"] = "multiply"
    cap: Literal["truncate", "reject"] = "truncate"
    max_per_transaction: WholeNumber | None = Field(default=None, ge=0)
    max_per_period: PeriodCap | None = None


class DiscountPolicy(_Strict):
    stacking: Literal["sequential", "additive"] = "sequential"
    combine: Literal["stack", "best"] = "stack"
    max_total: Rate | None = None
    threshold_basis: Literal["current", "list"] = "current"
    tier_priority: WholeNumber = 100
    exclude_categories: Ids = ()


class QualifyingSpendPolicy(_Strict):
    basis: Literal["paid", "list"] = "paid"
    exclude_categories: Ids = ()
    include_shipping: bool = False
    include_tax: bool = False


class BirthdayPolicy(_Strict):
    feb29: Literal["feb28", "mar1"] = "feb28"
    week: Literal["iso", "centered"] = "iso"
    change_guard_days: WholeNumber = Field(default=0, ge=0, le=3650)


class Policies(_Strict):
    """``policies:`` — every choice on which real platforms disagree, with its default."""

    rounding: RoundingPolicy = RoundingPolicy()
    tiers: TierPolicy = TierPolicy()
    rules: RulePolicy = RulePolicy()
    points: PointsPolicy = PointsPolicy()
    discounts: DiscountPolicy = DiscountPolicy()
    qualifying_spend: QualifyingSpendPolicy = QualifyingSpendPolicy()
    birthday: BirthdayPolicy = BirthdayPolicy()


class Perk(_Strict):
    id: Id
    name: Name | None = None
    description: str | None = None


class Qualify(_Strict):
    """Criteria that move a member into a tier; ``match`` says whether all or any must hold."""

    spend: Money | None = None
    points: WholeNumber | None = Field(default=None, ge=0)
    orders: WholeNumber | None = Field(default=None, ge=0)
    when: Expr | None = None
    match: Literal["all", "any"] = "all"

    @model_validator(mode="after")
    def _something(self) -> Qualify:
        if self.spend is None and self.points is None and self.orders is None and self.when is None:
            raise ValueError("give at least one of spend, points, orders or when")
        return self

    def met(self, spend: Decimal, points: int, orders: int, when: bool | None = None) -> bool:
        """Whether the criteria hold, ``when`` being the condition's result (already run:
        every check runs, so an erroring condition errors whatever the others say)."""
        checks = []
        if self.spend is not None:
            checks.append(spend >= self.spend)
        if self.points is not None:
            checks.append(points >= self.points)
        if self.orders is not None:
            checks.append(orders >= self.orders)
        if when is not None:
            checks.append(when)
        return all(checks) if self.match == "all" else any(checks)


class Tier(_Strict):
    id: Id
    name: Name | None = None
    qualify: Qualify | None = None
    discount: DiscountRate | None = None
    points_multiplier: Factor = Decimal(1)
    perks: Ids = ()
    retain: Qualify | None = None


class EarnRule(_Strict):
    """``earn:`` — "10 points per full ¥100" is ``points: 10, per: 100, blocks: full``."""

    id: Id
    name: Name | None = None
    points: PositiveMoney
    per: PositiveMoney = Decimal(1)
    blocks: Literal["full", "proportional"] = "full"
    basis: Literal["paid", "list"] = "paid"
    include_shipping: bool = False
    include_tax: bool = False
    categories: Ids = ()
    exclude_categories: Ids = ()
    channels: Ids = ()
    tiers: Ids = ()
    when: Expr | None = None
    base_rounding: RoundingMode | None = None
    cap: WholeNumber | None = Field(default=None, ge=0)


class Multiplier(_Strict):
    """``multipliers:`` — scoped to categories/SKUs it weights those items' earning basis;
    otherwise it multiplies the points of the whole transaction."""

    id: Id
    name: Name | None = None
    factor: Factor
    categories: Ids = ()
    skus: Ids = ()
    channels: Ids = ()
    tiers: Ids = ()
    when: Expr | None = None


class DiscountSpec(_Strict):
    """Exactly one of ``percent``, ``amount`` or ``threshold`` + ``off`` (满减)."""

    percent: DiscountRate | None = None
    amount: PositiveMoney | None = None
    threshold: PositiveMoney | None = None
    off: PositiveMoney | None = None
    repeat: bool = False
    max_repeats: WholeNumber | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # (a float too, so that it is refused as inexact rather than as not a mapping)
        if isinstance(value, (str, Decimal, int, float)) and not isinstance(value, bool):
            return {"percent": value}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> DiscountSpec:
        kinds = [self.percent is not None, self.amount is not None, self.threshold is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of percent, amount, or threshold with off")
        if (self.threshold is None) != (self.off is None):
            raise ValueError("a threshold reduction needs both threshold and off (满300减50)")
        if self.threshold is not None and self.off is not None and self.off > self.threshold:
            raise ValueError(f"off ({self.off}) is larger than the threshold ({self.threshold})")
        if (self.repeat or self.max_repeats) and self.threshold is None:
            raise ValueError("repeat and max_repeats only apply to threshold reductions")
        if self.max_repeats is not None and not self.repeat:
            raise ValueError("max_repeats limits repeat: true, and this reduction does not "
                             "repeat — add repeat: true, or remove max_repeats")
        return self

    @property
    def kind(self) -> Literal["percent", "amount", "threshold"]:
        if self.percent is not None:
            return "percent"
        return "amount" if self.amount is not None else "threshold"


MAX_TIERS: Final = 100
"""More tiers are refused: real programs have fewer than ten, and every tier adds work to
each evaluation (and to loading, for every tier above it)."""

_WINDOW_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_WINDOW_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")  # (the form)
_SHORT_OFFSET = re.compile(r"[+-][0-9]{1,2}$")  # +8, -5: an offset is written +08:00
_EARLIEST_DAY = date(1900, 1, 1).toordinal()
_LATEST_DAY = date(8999, 12, 31).toordinal()


def _window_point(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date or date-time such as 2026-11-11T00:00, "
                         f"got {show_value(value)}")
    text = value.strip()
    try:
        if _WINDOW_TIME.match(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a valid date or date-time: {value!r} "
                         f"({_why_no_date(text)})") from None


def _why_no_date(text: str) -> str:
    """Why ``text`` is no date, in words (Python's say "Invalid isoformat string")."""
    if not text.isascii():  # (２０２６-01-01: digits of a Chinese input method)
        plain = unicodedata.normalize("NFKC", text)
        if plain.isascii():
            return f"write it in ASCII: {plain}"
    if _WINDOW_TIME.match(text) or _WINDOW_DATETIME.match(text):
        year, month, day = int(text[:4]), int(text[5:7]), int(text[8:10])
        if year < 1:
            return "there is no year 0"
        if not 1 <= month <= 12:
            return f"there is no month {month}"
        if day < 1:
            return f"there is no day {day}"
        if not 1 <= day <= calendar.monthrange(year, month)[1]:
            return f"{year}-{month:02d} has {calendar.monthrange(year, month)[1]} days"
        if _WINDOW_DATETIME.match(text) and int(text[11:13]) > 23:
            return f"there is no hour {int(text[11:13])}: a day's hours are 00 to 23"
        if _SHORT_OFFSET.search(text):
            return "a UTC offset is written with hours and minutes, such as +08:00"
        return "write a time as 10:00 or 10:00:00, and an offset as +08:00"
    return "write it as 2026-03-01, or 2026-03-01T10:00 with a time"


WindowPoint = Annotated[
    date | datetime,
    BeforeValidator(_window_point),
    PlainSerializer(lambda v: v.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "description": "2026-11-11 or 2026-11-11T10:00[+08:00]"}),
]


class Window(_Strict):
    """Validity window. Naive times are in the program's zone; a date-only ``end`` includes
    that whole day; ``end`` is exclusive otherwise."""

    start: WindowPoint | None = None
    end: WindowPoint | None = None

    @field_validator("start", "end")
    @classmethod
    def _in_calendar(cls, value: date | datetime | None, info: ValidationInfo) -> Any:
        # transactions are accepted from 1900 to 8999, and every instant the engine derives
        # from a window must stay in Python's calendar
        if value is None or _EARLIEST_DAY <= value.toordinal() <= _LATEST_DAY:
            return value
        if info.field_name == "end" and value == date.max:
            return value  # "until 9999-12-31" means no end
        written = value.isoformat()
        open_end = ", or 9999-12-31 for no end" if info.field_name == "end" else ""
        raise ValueError(f"must be from 1900-01-01 to 8999-12-31{open_end} (got {written})")

    def bounds(self, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
        return _instant(self.start, zone, end=False), _instant(self.end, zone, end=True)


def _instant(value: date | datetime | None, zone: tzinfo, *, end: bool) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        if end and value == date.max:
            return None  # "until 9999-12-31" means no end
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(0), tzinfo=zone)
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value


# 400 years (146,097 days) in each frequency's periods
_PERIODS_IN_400_YEARS: Final = {_rrule.YEARLY: 400, _rrule.MONTHLY: 4800, _rrule.WEEKLY: 20871,
                                _rrule.DAILY: 146097}
_FREQS: dict[str, Literal[0, 1, 2, 3, 4, 5, 6]] = {
    "yearly": _rrule.YEARLY,
    "monthly": _rrule.MONTHLY,
    "weekly": _rrule.WEEKLY,
    "daily": _rrule.DAILY,
}
_WEEKDAYS = {
    name: getattr(_rrule, name.upper()) for name in ("mo", "tu", "we", "th", "fr", "sa", "su")
}


class Schedule(_Strict):
    """Recurring days, as a dateutil ``rrule``: ``{freq: monthly, bymonthday: 8}`` or an
    RFC 5545 string ``"FREQ=WEEKLY;BYDAY=WE"``. The rule selects whole local days."""

    rrule: str | None = None
    freq: Literal["yearly", "monthly", "weekly", "daily"] | None = None
    interval: WholeNumber = Field(default=1, ge=1)
    bymonth: tuple[Annotated[int, Field(ge=1, le=12)], ...] | None = None
    bymonthday: tuple[Annotated[int, Field(ge=-31, le=31)], ...] | None = None
    byweekday: tuple[Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"], ...] | None = None
    bysetpos: tuple[int, ...] | None = None
    start: date = date(2000, 1, 1)

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"rrule": value}
        if isinstance(value, dict):
            out = dict(value)
            for key in ("bymonth", "bymonthday", "bysetpos", "byweekday"):
                if key in out and not isinstance(out[key], (list, tuple)):
                    out[key] = [out[key]]
            if "byweekday" in out and isinstance(out["byweekday"], list):
                out["byweekday"] = [str(d).upper() for d in out["byweekday"]]
            if "start" in out and isinstance(out["start"], str):
                out["start"] = out["start"].strip()
            return out
        return value

    @field_validator("start")
    @classmethod
    def _start_in_calendar(cls, value: date) -> date:
        if not _EARLIEST_DAY <= value.toordinal() <= _LATEST_DAY:
            raise ValueError(f"must be from 1900-01-01 to 8999-12-31 (got {value})")
        return value

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        if self.rrule is not None and self.freq is not None:
            raise ValueError("give either an rrule string or freq (with by… fields), not both")
        if self.rrule is None and self.freq is None:
            raise ValueError("a schedule needs freq: yearly, monthly, weekly or daily "
                             "(or one rrule string)")
        given = [k for k in ("bymonth", "bymonthday", "byweekday", "bysetpos")
                 if getattr(self, k) is not None] + (["interval"] if self.interval != 1 else [])
        if self.rrule is not None and given:
            verb, them = ("goes", "it") if len(given) == 1 else ("go", "them")
            raise ValueError(f"{' and '.join(given)} {verb} with freq; with an rrule string, "
                             f"write {them} inside the string")
        if self.bymonthday is not None and 0 in self.bymonthday:
            raise ValueError("bymonthday counts 1…31 from the start of the month or -1…-31 "
                             "from its end; 0 is not a day")
        if self.bysetpos is not None and any(p == 0 or abs(p) > 366 for p in self.bysetpos):
            raise ValueError("bysetpos picks the n-th of the days the other keys give: 1…366 "
                             "from the first or -1…-366 from the last; 0 is not a position")
        if self.bysetpos is not None and self.freq is not None:
            written = ", ".join(str(p) for p in self.bysetpos)
            setpos_in_period(self.bysetpos, self.freq, f"bysetpos {written}")
        start = datetime.combine(self.start, time(0))
        rule = self.build()
        if self.repeats_every_400_years:
            # dateutil looks for a first day until the year 9999 whatever the until, so a
            # schedule that selects none (30 February) took seconds to refuse. The calendar
            # repeats every 400 years (weekdays, leap days, week numbers), so the same
            # question is asked of the same schedule started 400·k years later (its
            # intervals counted from that start, as they were from its own), as
            # close to 9999 as leaves ten years: at most about 410 years to search, not 8,000
            # (Easter does not repeat so; its daily and weekly rules are built yearly)
            start = start.replace(year=start.year + (9988 - start.year) // 400 * 400)
            rule = rule.replace(dtstart=start)
        horizon = start + timedelta(days=3653)  # ten years
        try:
            first = rule.replace(until=horizon).after(start, inc=True)
        except (ValueError, TypeError, IndexError, OverflowError) as exc:
            # every part was checked above; should dateutil still fail, say so at the
            # schedule rather than let its error out of load_program
            raise ValueError(f"this schedule's days cannot be worked out ({exc})") from None
        if first is None:
            raise ValueError("this schedule selects no day in ten years (e.g. 30 February)")
        return self

    @property
    def repeats_every_400_years(self) -> bool:
        """Every schedule but Easter's selects the same days 400 years on (146,097 days,
        a whole number of weeks), counted from the same start."""
        return "BYEASTER" not in (self.rrule or "").upper()

    def start_before(self, year: int) -> date:
        """The latest start, moved on from ``start`` by whole repeats of the schedule, that
        is before the year before ``year``: from it, the schedule selects the same days of
        ``year`` as from its own start, and dateutil, which walks every period from the start,
        walks at most about 146,000 of them (400 years of days) instead of up to 2.6 million.
        The calendar repeats every 400 years; the schedule does once that is also a whole
        number of its intervals (every other week: 800 years, as 400 years are 20,871
        weeks)."""
        if not self.repeats_every_400_years:
            return self.start
        if self.rrule is not None:
            freq, parts = rrule_parts(self.rrule)
            interval = parts.get("interval", 1)
        else:
            assert self.freq is not None
            freq, interval = _FREQS[self.freq], self.interval
        periods = _PERIODS_IN_400_YEARS[freq]
        step = 400 * (interval // math.gcd(interval, periods))
        # at least a year before: dateutil's first week runs from the start, not the week's
        # first day, and a weekly BYSETPOS counts only the days from there, so a start in
        # late December would count the next January's days apart from their week
        repeats = (year - self.start.year - 2) // step
        if repeats <= 0:
            return self.start
        return self.start.replace(year=self.start.year + repeats * step)

    def days_in(self, year: int) -> tuple[date, ...]:
        """The local days this schedule selects in ``year``, in order (kept: a review
        schedule is asked on every purchase of a member, and dateutil walks every period from
        the start, 1.6 ms for a monthly schedule from 2000 in 2026)."""
        return _days_in(self, year)

    def days_between(self, first: date, last: date) -> list[date]:
        """The local days this schedule selects from ``first`` to ``last``, in order: one
        walk from the latest start that selects the same days (:meth:`start_before`)."""
        begin = datetime.combine(self.start_before(first.year), time(0))
        end = datetime.combine(last, time(23, 59, 59))
        rule = self.build().replace(dtstart=begin, until=end)
        return [d.date() for d in rule.between(datetime.combine(first, time(0)), end, inc=True)]

    def build(self) -> _rrule.rrule:
        dtstart = datetime.combine(self.start, time(0))
        if self.rrule is not None:
            freq, parts = rrule_parts(self.rrule)
            if "byeaster" in parts and freq in (_rrule.DAILY, _rrule.WEEKLY):
                # its parts only filter the days of each year, so the yearly rule selects
                # the same days: dateutil walks 8,000 periods to the year 9999, not 2.9
                # million (INTERVAL or a weekly BYSETPOS, which would differ, are refused)
                name = "DAILY" if freq == _rrule.DAILY else "WEEKLY"
                if parts.get("interval", 1) != 1 or (name == "WEEKLY" and "bysetpos" in parts):
                    raise ValueError(
                        f"BYEASTER picks a day of each year, so with FREQ={name} it takes no "
                        f"INTERVAL{' or BYSETPOS' if name == 'WEEKLY' else ''} — write "
                        "FREQ=YEARLY;BYEASTER=… for the same days every year")
                parts = {k: v for k, v in parts.items() if k not in ("interval", "bysetpos")}
                freq = _rrule.YEARLY
            return _rrule.rrule(freq, dtstart=dtstart, cache=False, **parts)
        assert self.freq is not None
        return _rrule.rrule(
            _FREQS[self.freq],
            dtstart=dtstart,
            interval=self.interval,
            bymonth=self.bymonth,
            bymonthday=self.bymonthday,
            byweekday=[_WEEKDAYS[d.lower()] for d in self.byweekday] if self.byweekday else None,
            bysetpos=list(dict.fromkeys(self.bysetpos)) if self.bysetpos else None,
            cache=False,
        )


@functools.lru_cache(maxsize=4096)
def _days_in(schedule: Schedule, year: int) -> tuple[date, ...]:
    # from the latest start before the year that selects the same days (Schedule.start_before)
    begin = datetime.combine(schedule.start_before(year), time(0))
    end = datetime(year, 12, 31, 23, 59, 59)
    # bounded by the year's end, so even a sparse rule stops searching there
    rule = schedule.build().replace(dtstart=begin, until=end)
    return tuple(d.date() for d in rule.between(datetime(year, 1, 1), end, inc=True))


class Limit(_Strict):
    """Per-member usage limit: ``{times: 1, per: year}`` is "once per year"."""

    times: WholeNumber = Field(default=1, ge=1)
    per: Literal["day", "week", "month", "year", "ever"] = "ever"


class Rule(_Strict):
    """A birthday rule or promotion: conditions (all must hold) and effects."""

    id: Id
    name: Name | None = None
    on: Literal["birthday", "birthday_week", "birthday_month"] | None = None
    window: Window | None = None
    schedule: Schedule | None = None
    tiers: Ids = ()
    channels: Ids = ()
    categories: Ids = ()
    skus: Ids = ()
    min_amount: Money | None = None
    min_paid: Money | None = None
    when: Expr | None = None
    discount: DiscountSpec | None = None
    points_multiplier: Factor | None = None
    bonus_points: WholeNumber | None = Field(default=None, ge=1)
    perk: Id | None = None
    limit: Limit | None = None
    priority: WholeNumber = 0
    exclusive: bool = False
    group: Id | None = None

    @model_validator(mode="after")
    def _has_effect(self) -> Rule:
        effects = (self.discount, self.points_multiplier, self.bonus_points, self.perk)
        if all(e is None for e in effects):
            raise ValueError("a rule needs an effect: discount, points_multiplier, "
                             "bonus_points or perk")
        if self.min_paid is not None and self.discount is not None:
            raise ValueError("min_paid is checked after discounts, so a rule with min_paid "
                             "cannot itself give a discount; use min_amount")
        return self


class Expiry(_Strict):
    """When earned points expire (at local midnight, in the program's zone).

    ``months: 24`` — 24 months after the day earned (usable through that date);
    ``end_of_year: 1`` — at the end of the calendar year after the one earned (0: same year);
    ``end_of_quarter: 0`` — at the end of the quarter earned; ``inactive_months: 12`` — all
    points expire after 12 months without a purchase. No key: points never expire.
    """

    # (bounded so that every date derived from an accepted instant stays in the calendar)
    months: WholeNumber | None = Field(default=None, ge=1, le=1200)
    end_of_year: WholeNumber | None = Field(default=None, ge=0, le=100)
    end_of_quarter: WholeNumber | None = Field(default=None, ge=0, le=400)
    inactive_months: WholeNumber | None = Field(default=None, ge=1, le=1200)

    @model_validator(mode="before")
    @classmethod
    def _never(cls, value: Any) -> Any:
        return {} if value == "never" else value

    @model_validator(mode="after")
    def _one(self) -> Expiry:
        given = [k for k in ("months", "end_of_year", "end_of_quarter", "inactive_months")
                 if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"choose one expiry policy, not {' and '.join(given)}")
        return self


class Ledger(_Strict):
    """``ledger:`` — points as lots: when they become usable, when they expire, refunds."""

    pending_days: WholeNumber = Field(default=0, ge=0, le=3650)
    expiry: Expiry = Expiry()
    negative_balance: Literal["allow", "shortfall"] = "shortfall"
    refund_days: WholeNumber = Field(default=365, ge=1, le=3650)
    remember_events: WholeNumber = Field(default=200, ge=10, le=100_000)


class Redemption(_Strict):
    """``redemption:`` — 积分抵现: ``points`` points pay ``value`` of an order."""

    points: PositiveMoney
    value: PositiveMoney
    minimum: WholeNumber = Field(default=0, ge=0)
    step: WholeNumber = Field(default=1, ge=1)
    max_share: Rate = Decimal(1)
    over_ask: Literal["error", "clamp"] = "error"
    earns_points: bool = False


class Reward(_Strict):
    """``rewards:`` — 积分商城: something bought with points."""

    id: Id
    name: Name | None = None
    points: WholeNumber = Field(ge=1)
    value: Money | None = None
    perk: Id | None = None
    tiers: Ids = ()
    window: Window | None = None
    limit: Limit | None = None


class Keep(_Strict):
    """A guaranteed stay in a tier once earned."""

    until: Literal["end_of_year", "end_of_next_year"] | None = None
    months: WholeNumber | None = Field(default=None, ge=1, le=120)

    @model_validator(mode="after")
    def _one(self) -> Keep:
        if self.until is not None and self.months is not None:
            raise ValueError("give either until or months: with both, months would be ignored")
        return self


class Reviews(_Strict):
    """``reviews:`` — which spend counts for tiers, and when members may move down."""

    window: Literal["lifetime", "calendar_year", "membership_year"] = "lifetime"
    rolling_months: WholeNumber | None = Field(default=None, ge=1, le=60)
    schedule: Schedule | None = None
    anniversary: bool = False
    max_drop: WholeNumber | None = Field(default=None, ge=1)
    keep: Keep | None = None

    @model_validator(mode="after")
    def _valid(self) -> Reviews:
        if self.rolling_months is not None and self.window != "lifetime":
            raise ValueError("give either window or rolling_months")
        if self.schedule is not None and self.anniversary:
            raise ValueError("reviews run on a schedule or on the anniversary, not both")
        return self


# what a behaviour event has none of: a purchase's transaction, basket and basket functions
# (has_category too: the event's one basket line has its type as category, so in a
# behaviour, which runs for one type only, it is the same every time — event.type says it)
_PURCHASE_FUNCTIONS = frozenset({"amount_in", "quantity_in", "has_category", "has_sku"})
# (what a behaviour event fills in when it is read as a transaction: its id, channel and
# moment)
_EVENT_TXN_FIELDS = frozenset({"id", "channel", "at", "date", "weekday", "hour"})


# (what a tier review fills in when it reads its conditions: the review's moment; the
# purchase itself is empty, its amount 0, its channel "")
REVIEW_TXN_FIELDS = frozenset({"at", "date", "weekday"})


def purchase_read(expr: Expression | ast.AST, allowed: frozenset[str]) -> str | None:
    """The first thing ``expr`` (or a part of its tree) reads of a purchase
    (``txn.amount``, ``items``, ``has_sku(…)``), as written, but for the ``txn`` fields
    ``allowed``; None if nothing."""
    tree = expr.tree if isinstance(expr, Expression) else expr
    parents = {id(child): node for node in ast.walk(tree)
               for child in ast.iter_child_nodes(node)}
    read: list[tuple[int, int, str]] = []  # (where, to name the first written)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "items":
            read.append((node.lineno, node.col_offset, "items"))
        elif isinstance(node, ast.Name) and node.id == "txn":
            parent = parents.get(id(node))
            if not (isinstance(parent, ast.Attribute) and parent.attr in allowed):
                read.append((node.lineno, node.col_offset, f"txn.{parent.attr}"
                             if isinstance(parent, ast.Attribute) else "txn"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in _PURCHASE_FUNCTIONS):
            read.append((node.lineno, node.col_offset, f"{node.func.id}(…)"))
    return min(read)[2] if read else None


def needs_a_purchase(expr: Expression, allowed: frozenset[str]) -> str | None:
    """What ``expr`` reads of a purchase where it cannot hold without one — every way for
    it to be true reads the purchase (``txn.amount > 5``, ``items and …``; not
    ``txn.amount >= 5000 or member.qualifying_spend >= 20000``, which a member alone can
    meet) — else None."""
    def needs(node: ast.AST) -> str | None:
        if isinstance(node, ast.BoolOp):
            found = [needs(value) for value in node.values]
            if isinstance(node.op, ast.Or):
                return found[0] if all(found) else None
            return next((f for f in found if f), None)
        return purchase_read(node, allowed)
    return needs(expr.tree.body)


def _not_of_a_purchase(expr: Expression) -> Expression:
    """A behaviour's condition reads the member, the event, the tier and today: a check-in
    has no basket and no amount, so ``txn.amount >= 100`` or ``has_sku('X')`` would load and
    never be true. ``txn.channel``, ``txn.at`` and ``txn.id`` are the event's own."""
    first = purchase_read(expr, _EVENT_TXN_FIELDS)
    if first is not None:
        raise PydanticCustomError("expression", "{text}", {"text": (
            f"{first} reads a purchase, and a behaviour event is not one — a behaviour's "
            "when reads member, tier, today, event (event.attrs for what the host sends) "
            "and the event's txn.id, txn.channel, txn.at, txn.date, txn.weekday and "
            "txn.hour")})
    return expr


class Behaviour(_Strict):
    """``behaviours:`` — 行为积分: points for actions that are not purchases."""

    id: Id
    name: Name | None = None
    event: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    points: WholeNumber = Field(ge=1)
    when: Annotated[Expr, AfterValidator(_not_of_a_purchase)] | None = None
    limit: Limit | None = None
    tiers: Ids = ()


class Referral(_Strict):
    """Both members are rewarded when the referred member makes a first purchase."""

    referrer_points: WholeNumber = Field(default=0, ge=0)
    referee_points: WholeNumber = Field(default=0, ge=0)


class Households(_Strict):
    """``households:`` — 家庭共享: members pool points into a household."""

    share: Rate
    redeem: Literal["all", "owner"] = "all"
    tiers_on: Literal["individual", "group"] = "individual"
    on_leave: Literal["stay", "take_share", "forfeit"] = "stay"
    max_members: WholeNumber = Field(default=6, ge=2, le=100)


class Gifting(_Strict):
    """``gifting:`` — 权益共享: members may give points to each other, within limits."""

    minimum: WholeNumber = Field(default=1, ge=1)
    maximum: WholeNumber | None = Field(default=None, ge=1)
    monthly_limit: WholeNumber | None = Field(default=None, ge=1)
    tiers: Ids = ()

    @model_validator(mode="after")
    def _some_gift_possible(self) -> Gifting:
        for name in ("maximum", "monthly_limit"):
            bound = getattr(self, name)
            if bound is not None and bound < self.minimum:
                raise ValueError(f"{name} ({bound}) is smaller than minimum ({self.minimum}): "
                                 "every gift would be refused")
        return self


class Signal(_Strict):
    """``signals:`` — lifecycle moments a host can act on; each fires once per occurrence."""

    id: Id
    on: Literal["birthday_in", "points_expiring", "tier_gap", "no_purchase",
                "first_purchase", "new_member_idle", "tier_falls"]
    days: WholeNumber | None = Field(default=None, ge=0, le=3650)
    points: WholeNumber | None = Field(default=None, ge=1)
    spend: Money | None = None
    times: WholeNumber | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _params(self) -> Signal:
        needs_days = ("birthday_in", "points_expiring", "no_purchase", "new_member_idle")
        if self.on in needs_days and self.days is None:
            raise ValueError(f"signal {self.on} needs days")
        if self.on == "tier_falls" and self.times is None:
            raise ValueError("signal tier_falls needs times (at how many reviews in a row)")
        if self.times is not None and self.on != "tier_falls":
            raise ValueError(f"signal {self.on} does not use times; only tier_falls does")
        if self.on == "tier_gap" and self.points is None and self.spend is None:
            raise ValueError("signal tier_gap needs points or spend (how close is close)")
        # (what a signal does not read would be silently ignored)
        if self.days is not None and self.on not in needs_days:
            raise ValueError(f"signal {self.on} does not use days; only {', '.join(needs_days)} "
                             "do")
        for name in ("points", "spend"):
            if getattr(self, name) is not None and self.on != "tier_gap":
                raise ValueError(f"signal {self.on} does not use {name}; only tier_gap does")
        return self


class Invariant(_Strict):
    """A property the designer promises, checked by ``loyaltyrules check`` on generated
    purchases: an expression over ``member``, ``txn``, ``items`` and ``decision``."""

    id: Id
    name: Name | None = None
    expect: InvariantExpr


class LintSettings(_Strict):
    """``lint:`` — lint findings the designer has looked at and accepts."""

    ignore: tuple[Annotated[str, Field(pattern=r"^LR[0-9]{3}$")], ...] = ()


# the sections that are lists of items: written with nothing under them (every item
# commented out), as none
LIST_SECTIONS = ("perks", "earn", "multipliers", "birthday", "promotions", "rewards",
                  "behaviours", "signals", "invariants")


class ProgramModel(_Strict):
    """The whole program, top to bottom in the order a designer explains it."""

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """``promotions:`` with every item commented out is no promotions (YAML reads the
        empty value as null): the same program, and hash, as one without the section."""
        if isinstance(data, dict) and any(data.get(k, ()) is None for k in LIST_SECTIONS):
            return {k: v for k, v in data.items() if not (k in LIST_SECTIONS and v is None)}
        return data

    program: Meta
    tiers: tuple[Tier, ...] = Field(min_length=1, max_length=MAX_TIERS)
    perks: tuple[Perk, ...] = ()
    earn: tuple[EarnRule, ...] = ()
    multipliers: tuple[Multiplier, ...] = ()
    birthday: tuple[Rule, ...] = ()
    promotions: tuple[Rule, ...] = ()
    ledger: Ledger = Ledger()
    redemption: Redemption | None = None
    rewards: tuple[Reward, ...] = ()
    reviews: Reviews = Reviews()
    behaviours: tuple[Behaviour, ...] = ()
    referral: Referral | None = None
    gifting: Gifting | None = None
    households: Households | None = None
    signals: tuple[Signal, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    lint: LintSettings = LintSettings()
    policies: Policies = Policies()

    @field_validator("tiers", mode="before")
    @classmethod
    def _few_tiers(cls, value: Any) -> Any:
        # checked before the tiers themselves, so a huge list is refused at once
        if isinstance(value, (list, tuple)) and len(value) > MAX_TIERS:
            raise ValueError(f"a program has at most {MAX_TIERS} tiers (got {len(value):,}) — "
                             "real programs have fewer than ten")
        return value
