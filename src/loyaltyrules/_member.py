"""What a host passes in: the member's state and the transaction, as JSON-round-trippable models.

Money is ``Decimal`` and serialises as a string; a float for money is refused (it cannot be
exact), so JSON readers should parse numbers as Decimal (the CLI does).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import is_dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, is_typeddict

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticKnownError, TzInfo

from ._build import _set_fields, build, shared_keys
from ._errors import InputError, format_path, plain_words, show_value
from ._money import AMOUNT_LIMIT, CONTEXT, SPEND_LIMIT, parse_money, plain

__all__ = [
    "QUOTE_THEN_SPACE",
    "DuplicateKey",
    "HouseholdState",
    "LineItem",
    "MemberState",
    "PointsLot",
    "PointsTotals",
    "PurchaseRecord",
    "RedeemedPart",
    "Transaction",
    "Usage",
    "coerce",
    "fraction_in_attrs",
    "in_unit",
    "keys_given",
    "nested_fields",
    "no_duplicates",
    "read_member",
    "read_transaction",
    "record_in_unit",
    "spend_in_unit",
    "written_once",
]

_MONEY_SCHEMA = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}


def _amounts_below(limit: Decimal) -> Callable[[Any], Decimal]:
    """The reader of amounts below ``limit``: every amount's (10^15), and a spend's, which
    adds purchases up (10^18: a member at 999,999,999,999,999.00 who bought one more thing
    was handed a state the library refused to read back). Both keep by their text only
    amounts below 10^15, so that either reads any text it finds there."""

    def read(value: Any) -> Decimal:
        if type(value) is str:
            known = _AMOUNTS.get(value)
            if known is not None:
                return known
        amount = parse_money(value, limit)
        if amount < 0:
            raise ValueError(f"must not be negative (got {show_value(amount)})")
        if amount.is_signed():  # "-0.00" is zero: written 0.00 whichever way it is added up
            amount = amount.copy_abs()
        if type(value) is str and amount < AMOUNT_LIMIT:
            if len(_AMOUNTS) >= _KEEP:
                _AMOUNTS.clear()
            _AMOUNTS[value] = amount
        return amount

    return read


_amount = _amounts_below(AMOUNT_LIMIT)
_spend = _amounts_below(SPEND_LIMIT)


# Amounts and instants read from text, kept by their text (each read again is a dict read
# instead of a check in Python): a member's state holds the same few amounts ("0.00") and,
# in each purchase's record and lots, the same instant several times over, and a host reads
# it back at every checkout. Both kinds are immutable; the tables are emptied when full.
_KEEP = 4096
_AMOUNTS: dict[str, Decimal] = {}
_INSTANTS: dict[str, datetime] = {}


Money = Annotated[
    Decimal,
    BeforeValidator(_amount),
    PlainSerializer(plain, return_type=str),
    WithJsonSchema(_MONEY_SCHEMA),
]
# a spend that adds purchases up (a member's qualifying spend, a month of its spend log, a
# household's): read below 10^18, and kept there by the engine (docs/decisions.md)
Spend = Annotated[
    Decimal,
    BeforeValidator(_spend),
    PlainSerializer(plain, return_type=str),
    WithJsonSchema(_MONEY_SCHEMA),
]


# a lone surrogate: half of a UTF-16 pair, not a character (see Text)
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_SURROGATE = "text must not hold a lone surrogate (half of a UTF-16 pair, not a character)"


def text_of(value: str, field: str, kind: str) -> str:
    """``value``, refused when it holds a lone surrogate: text a lifecycle call takes outside
    a model (an event's id, say), held to what a model's Text field is."""
    if not value.isascii() and _SURROGATE.search(value):
        raise InputError(_LONE_SURROGATE, field=field, kind=kind)
    return value


def _attr(value: Any, info: ValidationInfo) -> Any:
    """A host's value in ``attrs``: text stays text (a JSON string "02134" is never read as
    a number), whole numbers and yes/no are themselves, and a number with a fraction is a
    Decimal — given as one (``json.loads(text, parse_float=Decimal)``), or in JSON text read
    by pydantic (``model_validate_json``, which hands over floats) the float's shortest
    decimal: the number written, unless it has more digits than a float keeps
    (``0.10000000000000001`` gives 0.1), which evaluate() and ``run`` find and read again
    exactly (:func:`fraction_in_attrs`), and a host's own ``model_validate_json`` does not.
    A Python float is refused, as money's is; only a number JSON keeps exactly is taken.
    Each kind is written to JSON as itself, a Decimal as a JSON number, so a state read back
    from its JSON, by either reader, decides alike."""
    kind = type(value)
    if kind is bool or (kind is str and (value.isascii() or not _SURROGATE.search(value))):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not -COUNT_LIMIT < value < COUNT_LIMIT:  # (read back from JSON, and written)
            raise ValueError(f"a whole number in attrs is below 10^24 (got "
                             f"{show_value(value)})")
        return value if kind is int else int.__index__(value)  # (an IntEnum: its number)
    if isinstance(value, float) and info.mode == "json" and math.isfinite(value):
        value = Decimal(repr(value))
    elif isinstance(value, float):
        raise ValueError(f"numbers must be exact: give {value!r} as a Decimal (read JSON "
                         "with parse_float=Decimal), not a float")
    elif isinstance(value, str) and _SURROGATE.search(value):
        raise ValueError(f"{_LONE_SURROGATE} (got {value!r})")
    elif isinstance(value, (str, bool)):  # (subclasses: a (str, Enum)'s text, not its name)
        return str.__str__(value) if isinstance(value, str) else bool(value)
    if not isinstance(value, Decimal):
        raise ValueError("expected text, a whole number, a number, true or false (got "
                         f"{show_value(value)})")
    if not value.is_finite() or (kept := Decimal(repr(float(value)))) != value:
        raise ValueError(f"{value} cannot be kept exactly as a JSON number (read back, it "
                         "would not be the same number): send it as text")
    return kept  # (as JSON will give it back: 1.10 is 1.1, so a trace reads alike after)


def _attr_json(value: Any) -> Any:
    return float(value) if type(value) is Decimal else value


Attr = Annotated[
    Any, PlainValidator(_attr), PlainSerializer(_attr_json, when_used="json"),
    WithJsonSchema({"type": ["string", "integer", "number", "boolean"]}),
]


_ZONES: dict[int, TzInfo] = {}


def _one_zone_object(value: datetime) -> datetime:
    """Every instant gets one shared tzinfo object per UTC offset. The instant, its offset and
    its JSON are unchanged; but two datetimes compare fast only when their tzinfo is the same
    object, a member's lots and purchase records are compared with each new event's time many
    times, and parsing gives every value a tzinfo of its own. A host's own zone (a ZoneInfo)
    becomes the offset it has at that instant too: Python adds a timedelta to a ZoneInfo time
    on the wall clock, so ``pending_days`` after a purchase given as a ZoneInfo time would
    otherwise end an hour away, across a daylight-saving change, from the same purchase given
    as text, or stored and read back."""
    tz = value.tzinfo
    zone = _offset_zone(value)
    # (astimezone to the same offset: the same wall time, in two thirds of replace's time)
    return value if zone is tz else value.astimezone(zone)


def _offset_zone(value: datetime) -> TzInfo:
    """The shared fixed offset an instant is kept at: its own UTC offset, or UTC where that
    offset has seconds (Monrovia until 1972, -00:44:30): JSON writes an offset in whole
    minutes, so such an instant would read back 30 s away. Convert with ``astimezone``."""
    offset = value.utcoffset()
    assert offset is not None
    zone = _OFFSETS.get(offset)  # (a timedelta's own key: no arithmetic on the way)
    if zone is not None:
        return zone
    seconds = offset.days * 86_400 + offset.seconds
    if seconds % 60 or offset.microseconds:
        seconds = 0
    zone = _ZONES.get(seconds)
    if zone is None:
        zone = TzInfo(seconds)
        if len(_ZONES) < 2_000:  # offsets are whole seconds within a day: few in practice
            _ZONES[seconds] = zone
    if len(_OFFSETS) < 2_000:
        _OFFSETS[offset] = zone
    return zone


_OFFSETS: dict[timedelta, TzInfo] = {}


def fixed_offset(value: datetime) -> datetime:
    """The same instant with the fixed UTC offset it has (see :func:`_offset_zone`), as a
    validated instant holds it. A local time the library makes in the program's zone (a
    midnight) is kept this way: it is what its JSON reads back as, and equal to it (a
    ZoneInfo time in a gap or a fold is never equal to a time in another zone, even at the
    same instant)."""
    return value.astimezone(_offset_zone(value))


# Instants the engine accepts: dates it derives from one (expiry, reviews, kept tiers, the
# refund window) stay inside Python's calendar, so an absurd date is refused as input
# rather than failing deep inside an evaluation.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def instant_text(at: datetime, zone: tzinfo, utc: bool = False) -> str:
    """``at`` as a host writes it: in the program's zone (or UTC). Where that zone's offset
    had seconds (Shanghai's +08:05:43 before 1928), which a date-time's text cannot carry,
    in UTC."""
    local = at.astimezone(zone)
    offset = local.utcoffset()
    if utc or offset is None or offset.seconds % 60 or offset.microseconds:
        return at.astimezone(UTC).isoformat()
    return local.isoformat()


def instant_problem(value: datetime) -> str | None:
    """Why an aware instant is refused, or None."""
    if not EARLIEST <= value < LATEST:
        return "must be from 1900-01-01 to 8999-12-31 (UTC)"
    return None


def _in_calendar(value: datetime) -> datetime:
    if 1900 < value.year < 8999:  # (a UTC offset is under a day: inside, whatever it is)
        return value
    problem = instant_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _day_in_calendar(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError("must be from 1900-01-01 to 8999-12-31")
    return value


def _written_date(value: Any) -> Any:
    """A date is written as one (2026-11-11), never a number: pydantic reads 0 and "0" as
    Unix seconds, so a host sending 0 for "unknown" gave members a 1 January 1970 birthday
    (and its perks). Nor as a date-time: pydantic takes one at midnight as its date (and
    refuses one at 08:00), so "1990-03-10T00:00:00" — midnight where? — was a birthday."""
    if isinstance(value, (int, float, Decimal)) or (
            isinstance(value, str) and value.strip() and _is_number(value.strip())):
        raise ValueError(f"expected a date such as 2026-11-11 (got {show_value(value)})")
    if isinstance(value, datetime) or (isinstance(value, str) and _TIME_PART.search(value)):
        raise ValueError(f"expected a date such as 2026-11-11, not a date-time (got "
                         f"{show_value(value)})")
    return value


# a date-time's time of day, after its date: "T00:00", " 00:00:00"
_TIME_PART = re.compile(r"\d[T ]\d{1,2}:")


_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _month_key(value: str) -> str:
    """A month of a spend log is written as the library writes it (2026-03): a review window
    looks its months up by that text, so "2026-3" or "2026/03" would be left out of the
    window without a word, and a member reviewed down on spend they have."""
    if not _MONTH.fullmatch(value):
        raise ValueError(f"expected a month such as 2026-03 (got {show_value(value)})")
    return value


Month = Annotated[str, AfterValidator(_month_key),
                  WithJsonSchema({"type": "string", "pattern": f"^{_MONTH.pattern}$"})]

# a date as the member's own (a birthday: any year)
WrittenDate = Annotated[date, BeforeValidator(_written_date)]
# a date the engine derives others from (expiry after inactivity, reviews, kept tiers)
Day = Annotated[date, BeforeValidator(_written_date), AfterValidator(_day_in_calendar)]


def _is_number(text: str) -> bool:
    try:
        float(text)  # (any spelling of a number: "1.7e9", ".5", " 17 ", "1_000")
    except ValueError:
        return False
    return True


def _not_a_timestamp(value: Any) -> Any:
    """A number is not an instant: pydantic would read 1772503200 (or "1772503200") as Unix
    seconds in UTC, which every other entry point refuses and no host should rely on."""
    text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value
    if isinstance(value, (int, float, Decimal)) or (
            isinstance(text, str) and not text[4:8:3] == "--" and _is_number(text)):
        raise ValueError(f"expected a date-time such as 2026-03-03T10:00:00+08:00, got {value!r}")
    return value


def _instant(value: datetime) -> datetime:
    # (one call for both checks: each validator pydantic calls back costs as much as the check)
    return _one_zone_object(_in_calendar(value))


def _read_instant(value: Any, read: ValidatorFunctionWrapHandler, info: ValidationInfo
                  ) -> datetime:
    if type(value) is not str or info.mode == "python":
        # (a value from Python: a strict model_validate refuses text, and still does; JSON
        # and model_validate_strings give text, read alike in every mode)
        return _instant(read(_not_a_timestamp(value)))
    known = _INSTANTS.get(value)
    if known is not None:
        return known
    # Text from JSON is read as a lax read reads it, whatever the mode: pydantic's handler
    # gets the text as a Python str, which a strict read refuses, so a strict JSON read
    # would pass or fail by whether the same text had been kept from an earlier read. A
    # strict read's refusal is asked again of pydantic's own lax reader (as pydantic reads
    # a plain datetime's text in strict JSON); text that reader refuses too is refused with
    # that reader's error (why: "month value is outside expected range", where a strict
    # read says only "should be a valid datetime"), at the field's place.
    # (_not_a_timestamp and _instant written out: this runs for every transaction read)
    if value[4:8:3] != "--":  # not a date's dashes: maybe a number
        _not_a_timestamp(value)
    try:
        parsed: datetime = read(value)
    except ValidationError:
        try:
            parsed = _READ_INSTANT.validate_python(value)
        except ValidationError as refused:
            raise _as_field_error(refused) from None
    if not 1900 < parsed.year < 8999:
        _in_calendar(parsed)
    zone = _offset_zone(parsed)
    made = parsed if zone is parsed.tzinfo else parsed.astimezone(zone)
    if len(_INSTANTS) >= _KEEP:
        _INSTANTS.clear()
    _INSTANTS[value] = made
    return made


_READ_INSTANT: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def _as_field_error(refused: ValidationError) -> Exception:
    """A refusal by another reader, raised again at the field being read (raised as it is,
    it would be an error of its own, not the field's)."""
    why = refused.errors()[0]
    try:
        return PydanticKnownError(why["type"], why.get("ctx"))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):  # (not one of pydantic's known kinds)
        return ValueError(why["msg"])


Instant = Annotated[AwareDatetime, WrapValidator(_read_instant)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Counts of points, orders and versions are below 10^24: a 5,000-digit number made
# Python's own int-to-text limit fail inside the library, and a state holding one could not
# be read back from its own JSON. (Not 10^15, as amounts: 10^15 of money at 1,000 points a
# unit earns 10^18 points, and the engine must read back every state it writes.)
COUNT_LIMIT = 10**24


def _whole_number(value: Any, info: ValidationInfo) -> Any:
    """``true`` is no count (lax int reading would take it as 1), nor is text: lax reading
    would take ``"1_000"`` and ``" 7 "``, where the lifecycle calls refuse ``"50"`` points
    (a count is a number, in JSON as in Python). Nor is a number with a
    fraction or an exponent in JSON text: pydantic reads it as a float, and as a float
    ``100.0000000000000000000000000001`` is 100 and ``1e-1000`` is 0, so it is refused here
    and :func:`coerce` (and the command) read the text again exactly, with Decimal numbers
    (where ``100.0`` is a whole number and the others are not)."""
    if isinstance(value, (bool, str, bytes, bytearray)):
        raise ValueError(f"expected a whole number (got {show_value(value)})")
    if type(value) is float and info.mode == "json":
        raise PydanticCustomError(FLOAT_COUNT, "expected a whole number (got {got})",
                                  {"got": repr(value)})
    return value


# the kind of error of a whole number written with a fraction or an exponent in JSON text
FLOAT_COUNT = "whole_number_read_as_float"


Count = Annotated[int, BeforeValidator(_whole_number), Field(lt=COUNT_LIMIT)]
Points = Annotated[int, BeforeValidator(_whole_number), Field(gt=-COUNT_LIMIT, lt=COUNT_LIMIT)]
# the ledger's own counts (lots, totals, records, usage), written by the library: strict
# (a JSON whole number or a Python int; never true) without a Python call each — a state
# holds thousands of them, read on every event
LedgerCount = Annotated[int, Field(strict=True, lt=COUNT_LIMIT)]


# How long a purchase's id and channel may be; a lifecycle event's ids and channel are held
# to the same (a behaviour's condition reads its event as a purchase)
ID_LENGTH = 128
CHANNEL_LENGTH = 64
# Text of a state or a transaction that the library writes back out. A lone surrogate
# ("\ud800", half of a UTF-16 pair: not a character) is refused as it is read: no JSON writer
# can write it, so a decision or next state holding one could not be stored. Pydantic refuses
# it in a field whose length is bounded (it reads the text as UTF-8 to measure it), so every
# such field has a bound: an id's, or for text the library composes of ids (a lot's
# "behaviour:R1:review") one no real value comes near.
TEXT_LENGTH = 4096
Name = Annotated[str, Field(max_length=ID_LENGTH)]
Text = Annotated[str, Field(max_length=TEXT_LENGTH)]


class Usage(_Input):
    """How often a member used a limited rule in its current period (older periods are dropped)."""

    period: Text
    count: LedgerCount = Field(ge=0)


class PointsLot(_Input):
    """Points from one event: every point can be traced to the event and rule that made it."""

    id: Text
    points: LedgerCount = Field(ge=0)
    earned: LedgerCount = Field(ge=0)
    earned_at: Instant
    available_at: Instant
    expires_at: Instant | None = None
    source: Text
    rule: Text


class PointsTotals(_Input):
    """Running totals: earned − redeemed − expired − reversed = points + pending_points."""

    earned: LedgerCount = Field(default=0, ge=0)
    redeemed: LedgerCount = Field(default=0, ge=0)
    expired: LedgerCount = Field(default=0, ge=0)
    reversed: LedgerCount = Field(default=0, ge=0)
    shortfall: LedgerCount = Field(default=0, ge=0)


class RedeemedPart(_Input):
    """Points taken from lots of one expiry (None: never) and source — by a purchase that
    redeemed them, or by a refund in place of points already spent — kept so that they are
    given back as they were: a buy-and-return does not renew their life, and refunds undo
    the same whatever their order."""

    expires_at: Instant | None
    points: LedgerCount = Field(ge=1)
    # the source of the lot they came from (a purchase id, "opening-balance", ...): None in
    # a record stored by an earlier version
    source: Text | None = None
    # when they were (or will be) usable, for points a refund took from a pending lot
    available_at: Instant | None = None


class PurchaseRecord(_Input):
    """What a purchase did, remembered (for ``ledger.refund_days``) so it can be refunded."""

    id: Text
    at: Instant
    line_paid: tuple[Money, ...]
    goods_paid: Money
    qualifying_spend: Money
    points: LedgerCount = Field(ge=0)
    redeemed_points: LedgerCount = Field(default=0, ge=0)
    paid_with_points: Money = Decimal(0)
    refunded: Money = Decimal(0)
    refunded_lines: tuple[Money, ...] = ()
    points_reversed: LedgerCount = Field(default=0, ge=0)
    points_returned: LedgerCount = Field(default=0, ge=0)
    points_expired: LedgerCount = Field(default=0, ge=0)
    expiry_absorbed: LedgerCount = Field(default=0, ge=0)
    spend_reversed: Money = Decimal(0)
    # what each line earned and counted towards the tier (the rest: the whole purchase's,
    # such as a bonus or shipping); a record without them (stored by an earlier version) is
    # refunded by money share
    line_points: tuple[LedgerCount, ...] = ()
    line_spend: tuple[Money, ...] = ()
    # the redeemed points by expiry, in the order they were used (none in a record stored by
    # an earlier version: its points come back with a fresh expiry)
    redeemed_from: tuple[RedeemedPart, ...] = ()
    # what refunds of this purchase took from other lots because its own points had been
    # spent, not yet given back: when the purchase they were spent on is refunded, its
    # points come back as these lots, not as new ones
    reversed_from: tuple[RedeemedPart, ...] = ()
    # points its refunds could not take back (spent, with nothing left to take in their
    # place: a shortfall, or a debt under ``allow``) and not yet made good: when the points
    # spent come back (the purchase they paid for refunded), they settle this first, as if
    # that purchase had been refunded first
    points_unpaid: LedgerCount = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _refunded_line_per_line(self) -> PurchaseRecord:
        # (a state edited by hand or stored by other code: a refund would stop mid-way)
        n = len(self.line_paid)
        for name, per_line in (("refunded_lines", self.refunded_lines),
                               ("line_points", self.line_points),
                               ("line_spend", self.line_spend)):
            if per_line and len(per_line) != n:
                raise ValueError(f"{name} has {len(per_line)} amounts for {n} lines (one per "
                                 "line, or none)")
        if sum(self.line_points) > self.points:
            raise ValueError(f"line_points add up to {sum(self.line_points)}, more than the "
                             f"{self.points} points of the purchase")
        if self.redeemed_from and sum(p.points for p in self.redeemed_from) \
                != self.redeemed_points:
            raise ValueError(f"redeemed_from adds up to "
                             f"{sum(p.points for p in self.redeemed_from)} points, not the "
                             f"{self.redeemed_points} redeemed")
        if sum(p.points for p in self.reversed_from) > self.points_reversed:
            raise ValueError(f"reversed_from adds up to "
                             f"{sum(p.points for p in self.reversed_from)} points, more than "
                             f"the {self.points_reversed} reversed")
        if self.points_unpaid > self.points_reversed:
            raise ValueError(f"points_unpaid {self.points_unpaid} is more than the "
                             f"{self.points_reversed} reversed")
        for k, done in enumerate(self.refunded_lines):
            if done > self.line_paid[k]:
                raise ValueError(f"refunded_lines[{k}] {show_value(done)} is more than the "
                                 f"line's paid {show_value(self.line_paid[k])}")
        for taken, name, whole, of in (
                (self.refunded, "refunded", self.goods_paid, "goods_paid"),
                (self.points_reversed, "points_reversed", self.points, "points"),
                (self.points_returned, "points_returned", self.redeemed_points,
                 "redeemed_points"),
                (self.spend_reversed, "spend_reversed", self.qualifying_spend,
                 "qualifying_spend")):
            if taken > whole:  # (refunds take back at most what the purchase brought)
                raise ValueError(f"{name} {show_value(taken)} is more than the purchase's "
                                 f"{of} {show_value(whole)}")
        if self.line_spend and sum(self.line_spend) > self.qualifying_spend:
            raise ValueError(f"line_spend adds up to {show_value(sum(self.line_spend))}, more "
                             f"than the qualifying spend {show_value(self.qualifying_spend)}")
        return self


class HouseholdState(_Input):
    """A household's pool (家庭共享): points lots of its own, who contributed what, and the
    group's qualifying spend. The host stores it next to the members' states.

    As a member's: ``points`` are usable, ``pending_points`` not yet (both as of the last
    change); earned − redeemed − expired − reversed = points + pending_points.
    ``member_versions`` is the version of the member state it last returned for each member
    (current members, and the last former ones), so an older state is refused as stale.
    ``owner`` is None once the last member has left: the next to join owns it.
    """

    id: str = Field(min_length=1, max_length=128)
    owner: Name | None
    members: tuple[Name, ...]
    lots: tuple[PointsLot, ...] = ()
    totals: PointsTotals = PointsTotals()
    contributions: dict[Text, int] = Field(default_factory=dict)
    spend: Spend = Decimal(0)
    points: Points = 0
    pending_points: LedgerCount = Field(default=0, ge=0)
    recent_events: tuple[Text, ...] = ()
    member_versions: dict[Text, int] = Field(default_factory=dict)
    version: LedgerCount = Field(default=0, ge=0)


class MemberState(_Input):
    """Everything the engine needs to know about a member; the host stores it between events.

    ``points`` is the usable balance (negative only when a refund reversed points already
    spent and the program allows it); ``pending_points`` are earned but not usable yet.
    """

    id: str = Field(min_length=1, max_length=128)
    tier: Name | None = None
    points: Points = 0
    pending_points: Count = Field(default=0, ge=0)
    qualifying_spend: Spend = Decimal(0)
    orders: Count = Field(default=0, ge=0)
    birthday: WrittenDate | None = None
    birthday_set_on: Day | None = None
    joined: Day | None = None
    last_purchase: Day | None = None
    usage: dict[Text, Usage] = Field(default_factory=dict)
    recent_transactions: tuple[Text, ...] = ()
    lots: tuple[PointsLot, ...] = ()
    totals: PointsTotals = PointsTotals()
    purchases: tuple[PurchaseRecord, ...] = ()
    spend_log: dict[Month, Spend] = Field(default_factory=dict, json_schema_extra={
        "propertyNames": {"pattern": f"^{_MONTH.pattern}$"}})
    tier_since: Day | None = None
    tier_kept_until: Day | None = None
    advanced_to: Instant | None = None
    signals: dict[Text, Text] = Field(default_factory=dict)
    # the reviews in a row, up to the last, that moved the member down (a tier_falls signal)
    tier_falls: Count = Field(default=0, ge=0)
    referred_by: Name | None = None
    household: Name | None = None
    household_spend: Spend | None = None
    points_debt: Count = Field(default=0, ge=0)
    version: Count = Field(default=0, ge=0)
    attrs: dict[Text, Attr] = Field(default_factory=dict)


# the tables of shared keys of the models a run keeps many of, made before they are (see
# _build.shared_keys)
for _kept in (MemberState, PurchaseRecord, PointsLot, PointsTotals, Usage, RedeemedPart):
    shared_keys(_kept)


class LineItem(_Input):
    """One basket line; ``amount`` is the line's list total (unit price × quantity)."""

    sku: str = Field(min_length=1, max_length=128)
    category: str = Field(default="general", min_length=1, max_length=64)
    quantity: Annotated[int, BeforeValidator(_whole_number)] = Field(default=1, ge=1, le=1_000_000)
    amount: Money
    attrs: dict[Text, Attr] = Field(default_factory=dict)


# What the ledger names other events' points by (a lot's ``source``, a remembered event):
# a purchase may not take such an id, or a refund of it would take those points back.
RESERVED_PREFIXES = ("refund:", "behaviour:", "reward:", "gift:", "credit:", "withdraw:",
                     "leave:")
RESERVED_IDS = frozenset({"opening-balance", "merged"})


def reserved_id(value: str) -> InputError:
    """The error for a purchase id the ledger keeps for other events (checked as a purchase
    is evaluated: one test of the id, rather than a validator on every transaction read)."""
    return InputError(f"{value!r} is reserved: purchase ids may not be "
                      f"{' or '.join(sorted(RESERVED_IDS))}, nor start with "
                      f"{', '.join(RESERVED_PREFIXES)}", field="id", kind="transaction")



class Transaction(_Input):
    """A purchase. ``at`` must carry a UTC offset: the engine never guesses a zone."""

    id: str = Field(min_length=1, max_length=ID_LENGTH)
    member_id: Name | None = None
    at: Instant
    channel: str = Field(default="store", min_length=1, max_length=CHANNEL_LENGTH)
    store: Text | None = None
    items: tuple[LineItem, ...] = Field(min_length=1, max_length=1000)
    shipping: Money = Decimal(0)
    tax: Money = Decimal(0)
    paid_with_points: Money = Decimal(0)
    redeem_points: Count = Field(default=0, ge=0)
    attrs: dict[Text, Attr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _total_below_the_limit(self) -> Transaction:
        # Each amount is below 10^15, but 1,000 lines of them are not: two lines of
        # 999999999999999 made a decision, and a next state, the library could not read back
        # (every amount it reads is below 10^15). Added up only when an amount reaches 10^11
        # (1,002 amounts below it cannot reach 10^15; counting digits, adjusted(), costs far
        # less than adding), and in the library's context (a host's, at 6 digits, could
        # round the total under the limit).
        fields = self.__dict__
        items = fields["items"]
        if fields["shipping"].adjusted() < 11 and fields["tax"].adjusted() < 11:
            for item in items:
                if item.__dict__["amount"].adjusted() >= 11:
                    break
            else:
                return self
        add = _OWN.add
        total = add(fields["shipping"], fields["tax"])
        for item in items:
            total = add(total, item.__dict__["amount"])
        if total >= AMOUNT_LIMIT:
            raise ValueError(f"a purchase must total below 10^15 (its items, shipping and tax "
                             f"come to {show_value(total)})")
        return self


def spend_in_unit(m: MemberState, q: Decimal, currency: str, kind: str = "member"
                  ) -> MemberState:
    """``m`` with its spend (qualifying spend, each month of its spend log, its household's)
    written in the currency's unit, as the library writes it: one written otherwise by other
    code that fits (``5.010``, ``100``, ``Decimal("1E+2")``, ``1000.00`` yen) is written anew
    (``5.01``, ``100.00``, ``1000``), so whatever a decision adds to it or says of it reads
    as money: not ``95.010``, nor "window spend 0" where every other amount says ``0.00``.
    One finer than the unit (``0.001``) is refused: it would be added to and handed back as
    the host's next state. The same state comes back when it is in the unit already (every
    state the library wrote but a new one's ``0``): the common case is a few comparisons.
    Purchase records are seen to when refunded or contributed (:func:`record_in_unit`)."""
    fields = m.__dict__
    update: dict[str, Any] = {}
    spend = fields["qualifying_spend"]
    if not spend.same_quantum(q):
        update["qualifying_spend"] = in_unit(spend, q, currency, ("qualifying_spend",), kind)
    log = fields["spend_log"]
    for value in log.values():
        if not value.same_quantum(q):
            update["spend_log"] = {k: in_unit(v, q, currency, ("spend_log", k), kind)
                                   for k, v in log.items()}
            break
    group = fields["household_spend"]
    if group is not None and not group.same_quantum(q):
        update["household_spend"] = in_unit(group, q, currency, ("household_spend",), kind)
    if not update:
        return m
    # as model_copy would for a MemberState, at a fraction of its cost (22,600 instructions)
    values = fields.copy()  # (keys shared stay shared: see shared_keys)
    values.update(update)
    state = build(MemberState, values)
    had = m.__pydantic_fields_set__  # (a frozen model's set is never changed: shared)
    _set_fields(state, had if had.issuperset(update) else had.union(update))
    return state


_RECORD_AMOUNTS = ("line_paid", "goods_paid", "qualifying_spend", "paid_with_points",
                   "refunded", "refunded_lines", "spend_reversed", "line_spend")


def record_in_unit(record: PurchaseRecord, index: int, q: Decimal, currency: str,
                   kind: str = "member") -> PurchaseRecord:
    """A purchase record about to be refunded (or contributed to a household), its amounts
    written in the currency's unit, or refused when they do not fit, as a member's spend
    (:func:`spend_in_unit`): a refund hands parts of a record back as they are (a full
    refund of a record written ``90`` was ``90``, not ``90.00``). A record the library wrote
    comes back as it is."""
    fields = record.__dict__
    update: dict[str, Any] = {}
    for name in _RECORD_AMOUNTS:
        value = fields[name]
        if isinstance(value, tuple):
            if any(not v.same_quantum(q) for v in value):
                update[name] = tuple(in_unit(v, q, currency, ("purchases", index, name, k),
                                             kind) for k, v in enumerate(value))
        elif not value.same_quantum(q):
            update[name] = in_unit(value, q, currency, ("purchases", index, name), kind)
    return record.model_copy(update=update) if update else record


# the library's context, for the few sums and roundings made of input as it is read (its flags
# its own: CONTEXT itself is copied by others)
_OWN = CONTEXT.copy()


def in_unit(value: Decimal, q: Decimal, currency: str, path: tuple[str | int, ...],
            kind: str) -> Decimal:
    """``value`` written in the unit ``q``, or an InputError naming ``path`` when it is finer
    (run in the library's Decimal context: a host's traps or precision cannot change it)."""
    written = _OWN.quantize(value, q)  # (a context's method: no keywords to parse)
    if written != value:
        raise InputError(f"{show_value(value)} has more decimals than {currency} allows",
                         field=format_path(path), kind=kind)
    return written


M = TypeVar("M", bound=BaseModel)


class DuplicateKey(Exception):  # (not a ValueError: json.loads lets it through as it is)
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice: JSON readers keep the last one
    silently (`{"amount": "100.00", "amount": "0.01"}` charged 0.01); YAML refuses it."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def keys_given(value: Any) -> int:
    """How many keys the JSON read into ``value`` held, each counted once: its models'
    fields given, and its mappings' keys, all the way down. Never more than the text held:
    no validator of these models adds a field or a key the text did not give. So text
    whose every key is written ``"key":`` (no space before the colon) holding no more
    ``":`` than this gave no key twice; one holding more is read again to find out
    (:func:`_given_once`; tests/test_json_reading.py holds the models to this)."""
    # (each model class is known by its entry in _NESTED: pydantic's isinstance check of a
    # model is a Python function, and this runs for every line a run reads)
    nested = _NESTED.get(type(value))
    if nested is None:
        if isinstance(value, dict):
            n = len(value)
            for item in value.values():
                if not isinstance(item, _FLAT):
                    n += keys_given(item)
            return n
        if isinstance(value, (tuple, list)):
            n = 0
            for item in value:
                if not isinstance(item, _FLAT):
                    n += keys_given(item)
            return n
        if not isinstance(value, BaseModel):
            return 0
        nested = nested_fields(type(value))
    given = value.__pydantic_fields_set__
    n = len(given)
    if nested:
        fields = value.__dict__
        for name in nested:  # (an empty mapping or list holds none: not walked)
            if name in given and (inner := fields[name]):
                n += keys_given(inner)
    return n


_FLAT = (str, int, Decimal, date, type(None))  # (a datetime is a date)
_NESTED: dict[type[BaseModel], tuple[str, ...]] = {}


def nested_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls`` whose values can hold keys of their own (models, mappings, or
    anything not known to be flat), found once from the annotations."""
    nested = _NESTED.get(cls)
    if nested is not None:
        return nested

    def may_hold_keys(tp: Any) -> bool:
        if tp is Any or tp is object:
            return True
        if isinstance(tp, type):  # a scalar's class (str, Decimal, AwareDatetime) holds none
            return is_typeddict(tp) or is_dataclass(tp) or issubclass(
                tp, (BaseModel, dict, list, tuple, set, frozenset))
        origin = get_origin(tp)
        if origin is Annotated:
            return may_hold_keys(get_args(tp)[0])
        if origin is Literal:
            return False
        args = get_args(tp)
        if origin is None or not args:  # a TypeVar, a NewType: not known to be flat
            return True
        return (isinstance(origin, type) and issubclass(origin, dict)) or any(
            may_hold_keys(arg) for arg in args if arg is not Ellipsis)

    nested = tuple(name for name, field in cls.model_fields.items()
                   if may_hold_keys(field.annotation))
    _NESTED[cls] = nested
    return nested


def written_once(text: str | bytes, read: BaseModel) -> bool:
    """True when ``text``, read into ``read``, surely gave no key twice (see
    :func:`keys_given`): each key's closing quote right before its colon, and no more
    ``":`` than keys read. False says only: read it again to find out."""
    if isinstance(text, str):
        return QUOTE_THEN_SPACE(text) is None and text.count('":') == keys_given(read)
    return _QUOTE_THEN_SPACE_BYTES(text) is None and text.count(b'":') == keys_given(read)


# a quote followed by JSON whitespace: one search, a third of the time of four `in` tests
# (each stops at every quote), on a transaction's line as on a year of a member's purchases
QUOTE_THEN_SPACE = re.compile(r'"[ \t\r\n]').search
_QUOTE_THEN_SPACE_BYTES = re.compile(rb'"[ \t\r\n]').search


def fraction_in_attrs(read: BaseModel) -> bool:
    """Whether a member or transaction pydantic read from JSON text holds a number with a
    fraction in its ``attrs`` (or its items'). pydantic's reader hands such a number to the
    validator as a float, and the float's shortest decimal may not be the number written
    (``0.10000000000000001`` reads as 0.1): the text is then read again exactly, which
    takes the number as written or refuses one JSON cannot keep, as Python's reader with
    ``parse_float=Decimal`` always did. (Rare: a host's attrs are text, whole numbers and
    yes/no far more often.)"""
    fields = read.__dict__
    attrs = fields.get("attrs")
    if attrs:
        for value in attrs.values():
            if type(value) is Decimal:
                return True
    for item in fields.get("items", ()):
        attrs = item.__dict__["attrs"]
        if attrs:
            for value in attrs.values():
                if type(value) is Decimal:
                    return True
    return False


def event_from_text(value: Any, kind: str) -> Any:
    """An event given as JSON text (as a purchase may be), read as `loyaltyrules run` reads
    a line: numbers exactly (Decimal), a key given twice refused; anything else as it is."""
    if not isinstance(value, (str, bytes)):
        return value
    value = _without_bom(value)
    try:
        return json.loads(value, parse_float=Decimal, object_pairs_hook=no_duplicates)
    except DuplicateKey as exc:
        raise InputError(f"the key {show_value(exc.key)} is given twice in one object "
                         "(JSON readers keep only the last)", kind=kind) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}", kind=kind) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 (byte {exc.start})", kind=kind) from None
    except (ValueError, RecursionError):  # (nested too deep, a number too long to read)
        raise InputError("not valid JSON that can be read: nested too deeply, or a number "
                         "too long", kind=kind) from None


def _given_once(text: str | bytes, kind: str) -> None:
    """Refuse JSON text that gives a key twice in one object, as `loyaltyrules run` does:
    pydantic's reader, like every JSON reader, keeps the last one (a host forwarding a
    till's `{"amount": "100.00", "amount": "0.01"}` would charge 0.01). It reads the text a
    second time (Python's reader, in C): about 60% more than reading a member state alone,
    which a host that parses its JSON itself, or passes models, does not pay."""
    try:
        json.loads(text, object_pairs_hook=no_duplicates)
    except DuplicateKey as exc:
        raise InputError(f"the key {show_value(exc.key)} is given twice in one object "
                         "(JSON readers keep only the last)", kind=kind) from None
    except (ValueError, RecursionError):  # (read by pydantic, so JSON: not expected)
        pass


def coerce(model: type[M], value: Any, kind: str) -> M:
    """Validate host input into ``model``; the first problem becomes an InputError naming it."""
    if isinstance(value, model):
        return value
    try:
        if isinstance(value, (str, bytes)):
            value = _without_bom(value)  # (as `run` reads a file that has one)
            try:
                read = model.model_validate_json(value)
            except ValidationError as exc:
                exact = _read_exactly(value, exc)
                if exact is None:
                    raise
                read = model.model_validate(exact)
            else:
                if fraction_in_attrs(read):  # (read again exactly: see fraction_in_attrs)
                    read = model.model_validate(json.loads(value, parse_float=Decimal))
            if not written_once(value, read):  # (after: text pydantic cannot read is
                _given_once(value, kind)       # said so)
            return read
        return model.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if isinstance(p, (int, str)))
        if loc[-1:] == ("[key]",):  # (a mapping's key refused: the message quotes it)
            loc = loc[:-2]
        message = _said(err)
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif not loc and err["type"] in ("model_type", "dict_type", "model_attributes_type"):
            message = f"expected a mapping (a JSON object), got {kind_of(value)}"
        raise InputError(message, field=format_path(loc) if loc else None, kind=kind) from None


def _without_bom(text: str | bytes) -> str | bytes:
    """``text`` without the byte-order mark some editors write at the start of a UTF-8 file
    (any str or bytes: a subclass, numpy's str_, is text too)."""
    if isinstance(text, str):
        return text[1:] if text.startswith("\ufeff") else text
    return text[3:] if text.startswith(b"\xef\xbb\xbf") else text

# what a JSON value that is not an object is, in words
_JSON_KINDS = {list: "a JSON array", str: "a JSON string", bool: "true or false",
               int: "a number", Decimal: "a number", type(None): "null"}


def kind_of(value: Any) -> str:
    """What a host passed where a mapping goes: for JSON text, the kind of JSON value it
    holds (``[1]`` is an array, not text)."""
    if not isinstance(value, (str, bytes)):
        return type(value).__name__
    try:
        read = json.loads(value, parse_float=Decimal)
    except (ValueError, RecursionError):
        return "text that is not JSON"
    return _JSON_KINDS.get(type(read), type(read).__name__)


def read_member(text: str | bytes) -> MemberState:
    """A member state from its JSON text, read as :func:`loyaltyrules.evaluate` reads one:
    a key given twice is refused (pydantic's own ``model_validate_json`` keeps the last), a
    number with a fraction in ``attrs`` is taken as written (see :func:`fraction_in_attrs`),
    and a problem is an :class:`InputError` naming the field. For a host that keeps the
    states it reads."""
    return coerce(MemberState, _text(text, "member"), "member")


def read_transaction(text: str | bytes) -> Transaction:
    """A transaction from its JSON text, read as :func:`read_member` reads a member."""
    return coerce(Transaction, _text(text, "transaction"), "transaction")


def _text(text: Any, kind: str) -> str | bytes:
    if not isinstance(text, (str, bytes)):  # (a dict or a model: not text to read)
        raise InputError(f"expected JSON text, got {type(text).__name__}", kind=kind)
    return text


def _read_exactly(text: str | bytes, refused: ValidationError) -> Any:
    """JSON text pydantic refused for a whole number it read as a float, read again with its
    numbers as Decimal (rare: a count written ``100.0``); None for any other refusal."""
    if not any(e["type"] == FLOAT_COUNT for e in refused.errors()):
        return None
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):  # (pydantic read it: not expected)
        return None


_ATTRS: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[Text, Attr])


def coerce_attrs(value: Any, kind: str) -> dict[str, Any]:
    """An event's ``attrs``, read as a member's or a transaction's are (no floats)."""
    try:
        return _ATTRS.validate_python(value)
    except ValidationError as exc:
        errors = exc.errors()  # (of a union's branches, the one that says why: a float's)
        err = next((e for e in errors if e["type"] == "value_error"), errors[0])
        loc = tuple(p for p in err["loc"] if isinstance(p, (int, str)))[:1]
        message = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(message, field=format_path(("attrs", *loc)), kind=kind) from None


_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def parse_instant(value: Any, field: str, kind: str) -> datetime:
    """An instant given to a lifecycle call, read as a transaction's ``at`` is."""
    try:
        return _INSTANT.validate_python(value)
    except ValidationError as exc:
        raise InputError(_said(exc.errors()[0]), field=field, kind=kind) from None


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _said(err: Any) -> str:
    """A validation error in the library's words where pydantic's are its own jargon."""
    kind = err["type"]
    if kind == "missing":
        return "required"
    if kind == "timezone_aware":
        given = err.get("input")
        if isinstance(given, str) and _DATE_ONLY.fullmatch(given.strip()):
            return ("expected a date-time such as 2026-03-03T10:00:00+08:00, got "
                    f"{show_value(given)}: a date alone is no moment (give its time and UTC "
                    "offset)")
        return "needs a UTC offset (the engine never guesses a zone)"
    if kind == "string_unicode":  # (a lone surrogate in a Name or Text: pydantic's words)
        return _LONE_SURROGATE
    if kind.startswith("datetime"):
        return ("expected a date-time such as 2026-03-03T10:00:00+08:00, got "
                f"{show_value(err['input'])}")
    if kind == "json_invalid":  # (serde's words for where the text goes wrong)
        detail = str((err.get("ctx") or {}).get("error", "")).replace(
            "recursion limit exceeded", "nested too deeply").replace(
            "number out of range", "a number too large to read")
        return f"not valid JSON: {detail}" if detail else "not valid JSON"
    plain = plain_words(err)  # as a program's diagnostics say it
    if plain is not None:
        message, hint = plain
        return f"{message}; {hint}" if hint else message
    message = str(err["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be "):  # (any other of pydantic's own sentences)
        return f"expected {message.removeprefix('Input should be ')} " \
               f"(got {show_value(err.get('input'))})"
    return message


def _is_aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None
