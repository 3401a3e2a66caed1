"""Money, rates and rounding: every rounding in the engine goes through a named policy here."""

from __future__ import annotations

import contextvars
import re
from collections import deque
from collections.abc import Callable
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    setcontext,
)
from functools import partial, wraps
from typing import Any, Literal, ParamSpec, TypeVar

from ._errors import show_value

__all__ = [
    "CONTEXT",
    "MINOR_UNITS",
    "RoundingMode",
    "allocate",
    "exact",
    "minor_units",
    "parse_money",
    "parse_rate",
    "quantum",
    "round_money",
    "round_points",
]

RoundingMode = Literal["half_up", "half_even", "floor", "ceiling", "down", "up"]

_MODES: dict[str, str] = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
}

# ISO 4217 minor units for the currencies a program is likely to use. A program may set
# `minor_units` itself for any other code.
_TWO = (
    "AED ARS AUD BDT BGN BRL CAD CHF CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR KES KZT LKR "
    "MAD MOP MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD THB TRY TWD UAH USD "
    "UZS ZAR"
)
_ZERO_DIGITS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_TWO.split(), 2),
    **dict.fromkeys(_ZERO_DIGITS.split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}

_ONE = Decimal(1)


def minor_units(currency: str) -> int | None:
    return MINOR_UNITS.get(currency)


def quantum(units: int) -> Decimal:
    """The smallest amount of a currency with ``units`` minor digits: 2 → Decimal('0.01')."""
    return _ONE.scaleb(-units)


def round_money(amount: Decimal, q: Decimal, mode: RoundingMode) -> Decimal:
    return amount.quantize(q, rounding=_MODES[mode])


def round_points(points: Decimal, mode: RoundingMode) -> int:
    return int(points.to_integral_value(rounding=_MODES[mode]))


def allocate(total: Decimal, weights: list[Decimal], q: Decimal) -> list[Decimal]:
    """Split ``total`` over ``weights`` in minor units so the parts sum to ``total`` exactly.

    Largest-remainder method: each part gets its proportional share rounded down to the
    minor unit, then the leftover units go to the largest remainders (earliest line first
    on ties), so the result is deterministic and never exceeds a weight when total ≤ sum.
    Works in integer minor units, so it is exact whatever the Decimal context.
    """
    n = len(weights)
    if n == 0:
        return []
    scale = _SCALES.get(q)
    if scale is None:
        scale = _SCALES[q] = _ONE / q
    # (loops, not comprehensions: on Python 3.11 each comprehension is a call; this runs
    # for every discounted basket of more than one line. ``__trunc__()`` is int(), which
    # truncates too, without the call through the int type: 55 against 105 ns)
    units = []
    unit_sum = 0
    for w in weights:
        u = (w * scale).__trunc__()
        units.append(u)
        unit_sum += u
    if unit_sum == 0:
        return [Decimal(0).quantize(q)] * n
    units_total = (total * scale).__trunc__() if total.same_quantum(q) else int(
        (total * scale).to_integral_value(ROUND_HALF_UP))
    parts = []
    remainders = []
    leftover = units_total
    for u in units:
        part, remainder = divmod(units_total * u, unit_sum)
        parts.append(part)
        remainders.append(remainder)
        leftover -= part
    if unit_sum > 0:  # (each remainder in [0, unit_sum): fewer than n units are left)
        if leftover:
            give_largest(parts, remainders, leftover)
    elif leftover:  # (weights adding up to less than nothing: the same order, by a sort)
        for i in sorted(range(n), key=remainders.__getitem__, reverse=True)[:leftover]:
            parts[i] += 1
    # q × a whole number of units is exact: Decimal('0.01') * 1234 == Decimal('12.34')
    shares = []
    for p in parts:
        shares.append(q * p)
    return shares


def give_largest(parts: list[int], remainders: list[int], left: int) -> None:
    """One more to each of the ``left`` parts with the largest ``remainders`` (every one at
    least 0), the earliest on ties: the largest-remainder method's last step, for
    :func:`allocate` and line points (``left`` is fewer than the parts). A few are handed out
    one ``max()`` at a time, each part given one marked below every remainder; a sort by
    remainder (stable, reversed: ties keep their order) costs about three such rounds, but
    only n log n for the many left over of a basket of 1,000 lines."""
    if left <= 0:
        return
    if left <= 3 or len(parts) <= 8:
        while True:
            k = remainders.index(max(remainders))
            parts[k] += 1
            left -= 1
            if not left:
                return
            remainders[k] = -1
    for k in sorted(range(len(parts)), key=remainders.__getitem__, reverse=True)[:left]:
        parts[k] += 1


_SCALES: dict[Decimal, Decimal] = {}


def plain(amount: Decimal) -> str:
    """How amounts are written (JSON, model_dump, traces): ``format(amount, "f")``,
    fixed-point, never exponent notation ("100", not "1E+2"). ``str`` writes the same text in
    a third of the time whenever it writes no exponent, which for amounts is always (it
    writes one for a positive exponent or below 1E-6, in either case as the context says);
    pydantic calls this for every amount it serialises, about twenty a decision."""
    text = str(amount)
    return text if "E" not in text and "e" not in text else format(amount, "f")

AMOUNT_LIMIT = Decimal(10) ** 15  # every amount read is below it
# A member's (and a household's) spend adds up purchases, each below AMOUNT_LIMIT: it is read
# below SPEND_LIMIT, and a purchase or contribution that would bring it there is refused, so
# every state the library writes reads back. Only a spend of SPEND_ROOM or more can get there
# with one purchase: the check on the hot path is one comparison.
SPEND_LIMIT = Decimal(10) ** 18
SPEND_ROOM = SPEND_LIMIT - AMOUNT_LIMIT
# The decimal strings amounts may be written as: digits with an optional sign and fraction —
# no exponent, no digit separators, no infinities (tests/test_money.py holds the fast check
# below to exactly this pattern).
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_SHORT = 28  # characters (so at most CONTEXT's 28 digits)


def parse_money(value: object, limit: Decimal = AMOUNT_LIMIT) -> Decimal:
    """Accept Decimal, int or a decimal string; refuse floats and booleans (inexact or absurd),
    and amounts whose size reaches ``limit`` (a power of ten)."""
    kind = type(value)
    if kind is str and len(value) <= _SHORT:  # type: ignore[arg-type]
        # The common case (JSON, YAML, forms), read without the pattern: the context's
        # reader accepts a superset of NUMBER, and what it accepts beyond it is an exponent
        # or a non-finite value (digit separators it refuses itself). Read in the library's
        # own context, not the host's (a bad string signals there; the host's flags stay as
        # they were), which is exact for strings this short (at most 28 digits). This runs
        # for every amount of every input.
        text = value.strip()  # type: ignore[attr-defined]
        try:
            result = _READ(text)
        except ArithmeticError:  # InvalidOperation: not a number at all
            raise ValueError("expected an amount such as 12.50, got "
                             f"{show_value(value)}") from None
        if not result.is_finite() or "e" in text or "E" in text:
            raise ValueError(f"expected an amount such as 12.50, got {show_value(value)}")
    elif kind is Decimal:
        result = value  # type: ignore[assignment]
    elif isinstance(value, bool):
        raise ValueError(f"expected an amount, got {show_value(value)}")
    elif isinstance(value, float):
        raise ValueError(
            f"amounts must be exact: write {value!r} as a string or decimal, not a float"
        )
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str) and NUMBER.match(value.strip()):
        result = Decimal(value.strip())
    else:
        raise ValueError(f"expected an amount such as 12.50, got {show_value(value)}")
    if not result.is_finite() or result.copy_abs() >= limit:  # (copy_abs: exact, no flags)
        raise ValueError(f"expected an amount below 10^{limit.adjusted()}, got "
                         f"{show_value(value)}")
    return result


_ZHE = re.compile(r"^(\d+(?:\.\d+)?)\s*折$")


def parse_rate(value: object) -> Decimal:
    """A fraction in [0, 1]: ``0.2``, ``"20%"``, or Chinese discount notation ``"8折"`` (= 20% off).

    "8折" states what the customer pays (80%), so it means a rate of 0.20 off; "9.5折" means 0.05.
    """
    if isinstance(value, str):
        text = value.strip().replace("％", "%")  # (a full-width %, as Chinese input writes it)
        zhe = _ZHE.match(text)
        if zhe:
            pays = Decimal(zhe.group(1))
            if not Decimal(0) < pays <= Decimal(10):
                # 95折 and 88折, as shops write them, are 9.5折 and 8.8折
                meant = f" — did you mean {pays / 10}折?" if Decimal(10) < pays < Decimal(
                    100) and "." not in zhe.group(1) else ""
                raise ValueError(f"{value!r}: a 折 discount is more than 0 and at most 10 "
                                 f"(what the customer pays, in tenths){meant}")
            return (Decimal(10) - pays) / Decimal(10)
        if text.endswith("%"):
            try:  # (a plain decimal number: not NaN, an exponent or 1e999999999)
                pct = parse_money(text[:-1].strip())
            except ValueError:
                raise ValueError("expected a percentage such as 20%, got "
                                 f"{show_value(value)}") from None
            rate = pct / Decimal(100)
        else:
            try:
                rate = parse_money(text)
            except ValueError:
                raise ValueError("expected a rate such as 20%, 0.2 or 8折, got "
                                 f"{show_value(value)}") from None
    else:
        rate = parse_money(value)
    if not Decimal(0) <= rate <= Decimal(1):
        hint = ""
        written_as_percent = isinstance(value, str) and value.strip().endswith("%")
        if Decimal(1) < rate <= Decimal(100) and not written_as_percent:
            hint = f" — did you mean {rate.normalize():f}% ({(rate / 100).normalize():f})?"
        raise ValueError(f"must be between 0 and 1 (got {value}){hint}")
    return rate if rate else rate.copy_abs()  # (-0% is 0%: one rate, one program hash)


# The arithmetic context every entry point runs in, whatever the host's global context:
# 28 significant digits (amounts are below 10^15, so products and shares stay exact to far
# below a cent), and errors instead of silent infinities.
CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
                  traps=[InvalidOperation, DivisionByZero, Overflow])

# what parse_money reads decimal strings with: signals land here, never in a host's context
_READ = CONTEXT.copy().create_decimal

class Exact(Context):
    """The library's own Decimal context, a copy of :data:`CONTEXT`: finding one current tells
    a call that it is already inside the library."""


def new_runner() -> tuple[contextvars.Context, Exact]:
    mine = Exact(prec=CONTEXT.prec, rounding=CONTEXT.rounding, Emin=CONTEXT.Emin,
                 Emax=CONTEXT.Emax, capitals=CONTEXT.capitals, clamp=CONTEXT.clamp, flags=[],
                 traps=[signal for signal, on in CONTEXT.traps.items() if on])
    runner = contextvars.Context()
    runner.run(setcontext, mine)
    return runner, mine


# Calls run inside a contextvars.Context of the library's own whose Decimal context is an
# Exact, set once when it was made: entering one costs far less than setting the Decimal
# context on the way in and back on the way out, and the host's context is never touched. A
# contextvars.Context can be entered by one thread at a time, so each call takes one from
# this deque of free ones (pop and append are atomic, and unlike a list's they do not
# reallocate when it empties) and gives it back — unless anything run inside (a host's
# tzinfo, say) set a context variable or another Decimal context in it: then it is dropped,
# so nothing set in one call reaches another.
RUNNERS: deque[tuple[contextvars.Context, Exact]] = deque()
DECIMAL_CONTEXT = next(iter(new_runner()[0]))  # the variable the decimal module keeps it in

_R = TypeVar("_R")


def unchanged(runner: contextvars.Context, mine: Exact) -> bool:
    """Whether ``runner`` holds exactly what it was made with (see :data:`RUNNERS`)."""
    return len(runner) == 1 and runner.get(DECIMAL_CONTEXT) is mine


def in_exact(fn: Callable[..., _R], /, *args: Any) -> _R:
    """``fn(*args)`` in :data:`CONTEXT`: a host's ``getcontext().prec = 6`` cannot change a
    result."""
    if type(getcontext()) is Exact:  # called from inside the library
        return fn(*args)
    try:
        runner, mine = RUNNERS.pop()
    except IndexError:
        runner, mine = new_runner()
    try:
        return runner.run(fn, *args)
    finally:
        if unchanged(runner, mine):
            RUNNERS.append((runner, mine))


_P = ParamSpec("_P")


def exact(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """:func:`in_exact` as a decorator."""

    @wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return in_exact(partial(fn, **kwargs) if kwargs else fn, *args)

    return wrapper
