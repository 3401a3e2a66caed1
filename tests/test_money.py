"""How amounts are read: Decimal, int or a plain decimal string, nothing inexact or absurd.

Strings (how JSON, YAML and forms write amounts) are read without the pattern ``NUMBER``, for
speed; these tests hold that fast path to exactly the pattern."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltyrules._money import NUMBER, parse_money


@pytest.mark.parametrize(("text", "amount"), [
    ("12.50", Decimal("12.50")), (" 12.50 ", Decimal("12.50")), ("+3", Decimal(3)),
    ("-0.5", Decimal("-0.5")), (".5", Decimal("0.5")), ("7.", Decimal(7)),
    ("٣.٥", Decimal("3.5")),  # Arabic-Indic digits are digits, to Decimal and to the pattern
    ("999999999999999.99", Decimal("999999999999999.99")),
])
def test_plain_decimal_strings_are_amounts(text: str, amount: Decimal) -> None:
    assert parse_money(text) == amount
    assert str(parse_money(text)) == str(amount)


@pytest.mark.parametrize("text", [
    "", " ", ".", "+", "1e5", "1E5", "1_000", "NaN", "-Infinity", "inf", "sNaN", "1,000",
    "12.5.0", "¥12", "12 50", "0x10", "1e-2",
])
def test_other_strings_are_refused_with_one_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected an amount such as 12\.50"):
        parse_money(text)


def test_ten_to_the_fifteen_is_too_large() -> None:
    with pytest.raises(ValueError, match="below 10\\^15"):
        parse_money("1000000000000000")


@pytest.mark.parametrize(("value", "message"), [
    (True, "expected an amount, got True"), (1.5, "must be exact"),
    (Decimal("NaN"), "below 10\\^15"), ([1], r"such as 12\.50"), (None, r"such as 12\.50"),
])
def test_values_that_are_not_amounts(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_money(value)


def test_a_host_context_without_traps_refuses_the_same_strings() -> None:
    with decimal.localcontext(decimal.Context(traps=[])):
        with pytest.raises(ValueError, match=r"such as 12\.50"):
            parse_money("twelve")
        assert parse_money("12.50") == Decimal("12.50")


class _Text(str):
    pass


def test_a_str_subclass_is_read_by_the_pattern() -> None:
    assert parse_money(_Text("4.20")) == Decimal("4.20")
    with pytest.raises(ValueError, match=r"such as 12\.50"):
        parse_money(_Text("1e3"))


@given(st.text(alphabet="0123456789٣.+-eE_ nNaIifsx", max_size=12))
def test_strings_are_read_exactly_as_the_pattern_says(text: str) -> None:
    expected: Decimal | None = None
    if NUMBER.match(text.strip()):
        expected = Decimal(text.strip())
        if abs(expected) >= Decimal(10) ** 15:
            expected = None
    try:
        got: Decimal | None = parse_money(text)
    except ValueError:
        got = None
    assert got == expected
    if got is not None and expected is not None:
        assert got.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize("text", ["12,50", "twelve", "1_000", "NaN", "1e5", "1" * 40])
def test_reading_an_amount_leaves_the_hosts_decimal_flags_alone(text: str) -> None:
    """Amounts are validated in the host's code (pydantic validators run wherever a model is
    made): a refused string must not raise a flag in the host's own Decimal context."""
    with decimal.localcontext() as host:
        host.clear_flags()
        with pytest.raises(ValueError):
            parse_money(text)
        assert not any(host.flags.values())
        parse_money("12.50")
        assert not any(host.flags.values())
