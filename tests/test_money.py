"""How amounts are read: Decimal, int or a plain decimal string, nothing inexact or absurd;
and the Decimal context the library computes in, whatever the host's.

Strings (how JSON, YAML and forms write amounts) are read without the pattern ``NUMBER``, for
speed; these tests hold that fast path to exactly the pattern."""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import decimal
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import loyaltyrules as lr
from loyaltyrules._money import NUMBER, RUNNERS, Exact, exact, parse_money, plain


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


def test_a_refused_amount_is_shown_as_written() -> None:
    """The value in the message is the designer's, not Python's (was Decimal('1E+30'))."""
    with pytest.raises(ValueError) as info:
        parse_money(Decimal("1E+30"))
    assert str(info.value) == "expected an amount below 10^15, got 1000000000000000000000000000000"
    with pytest.raises(ValueError) as info:
        parse_money(Decimal("1E+400"))
    assert str(info.value) == "expected an amount below 10^15, got 1E+400"


@pytest.mark.parametrize(("value", "message"), [
    (True, "expected an amount, got true"), (1.5, "must be exact"),
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


# -- the library's own Decimal context -----------------------------------------------------

REFERENCE = Path(__file__).resolve().parent.parent / "programs" / "reference-4tier.yaml"
MEMBER = {"id": "m1", "tier": "gold", "qualifying_spend": "12345678.91"}
PURCHASE = {"id": "t1", "at": "2026-05-02T10:00:00+08:00", "channel": "store",
            "items": [{"sku": "a", "category": "beauty", "amount": "1000.07"},
                      {"sku": "b", "category": "apparel", "amount": "333.33"}]}


def _decision_json(trace: bool) -> str:
    program = lr.load_program(REFERENCE)
    return lr.evaluate(program, MEMBER, PURCHASE, trace=trace).model_dump_json()


@pytest.mark.parametrize("trace", [False, True])
def test_a_hosts_decimal_context_changes_no_result_and_is_left_as_it_was(trace: bool) -> None:
    """Gold's 10% of 1,333.40 is 133.34, 450 points (basis 3,000.18 × 1.5), and the next
    state's spend has ten digits: a host working at four digits, rounding down, with no traps,
    still gets the exact decision, and its own context object comes back untouched (no flag
    raised, nothing swapped)."""
    expected = _decision_json(trace)
    assert '"total_discount":"133.34"' in expected and '"points_total":450' in expected
    assert '"qualifying_spend":"12347012.31"' in expected
    with decimal.localcontext(decimal.Context(prec=4, rounding=decimal.ROUND_DOWN,
                                              traps=[])) as host:
        assert _decision_json(trace) == expected
        assert decimal.getcontext() is host
        assert host.prec == 4 and not any(host.flags.values())


def test_a_program_loaded_in_a_hosts_narrow_context_is_the_same_program() -> None:
    """Loading computes too (rates, the canonical form that is hashed): a host working at
    one digit gets the same program, hash and decisions."""
    program = lr.load_program(REFERENCE)
    with decimal.localcontext(decimal.Context(prec=1, traps=[])) as host:
        narrow = lr.load_program(REFERENCE)
        assert not any(host.flags.values())
    assert narrow.hash == program.hash
    assert (lr.evaluate(narrow, MEMBER, PURCHASE).model_dump_json()
            == lr.evaluate(program, MEMBER, PURCHASE).model_dump_json())


def test_a_failing_evaluation_leaves_the_host_context_and_frees_its_context() -> None:
    """An error inside the library's context reaches the host in the host's own context, and
    the library's context is free for the next call."""
    program = lr.load_program(REFERENCE)
    member = {**MEMBER, "recent_transactions": ["t1"]}
    lr.evaluate(program, MEMBER, PURCHASE)  # one context made and freed
    free = len(RUNNERS)
    host = decimal.getcontext()
    with pytest.raises(lr.AlreadyApplied):
        lr.evaluate(program, member, PURCHASE)
    assert decimal.getcontext() is host
    assert type(host) is not Exact
    assert len(RUNNERS) == free


def test_library_calls_made_inside_the_library_stay_in_its_context() -> None:
    """A library function called from another (evaluate inside an exact function) runs
    directly in the caller's context instead of entering a second one."""
    program = lr.load_program(REFERENCE)
    seen: list[type] = []

    def inside(p: lr.Program) -> lr.Decision:
        seen.append(type(decimal.getcontext()))
        free = len(RUNNERS)
        decision = lr.evaluate(p, MEMBER, PURCHASE, trace=False)
        assert len(RUNNERS) == free  # none taken
        return decision

    decision = exact(inside)(p=program)  # keyword arguments reach the function too
    assert seen == [Exact]
    assert decision.model_dump_json() == _decision_json(False)


def test_nothing_set_inside_one_call_reaches_the_next() -> None:
    """Host code can run inside an evaluation (here a tzinfo of the host's own): a context
    variable or a Decimal context it sets there stays in that call."""
    program = lr.load_program(REFERENCE)
    expected = lr.evaluate(program, MEMBER, PURCHASE, trace=False).model_dump_json()
    seen = contextvars.ContextVar("seen", default="<unset>")

    class Meddling(datetime.tzinfo):
        def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
            seen.set("set inside")
            decimal.setcontext(decimal.Context(prec=3))
            return datetime.timedelta(hours=8)

        def dst(self, dt: datetime.datetime | None) -> datetime.timedelta:
            return datetime.timedelta(0)

    # (validating it runs the tzinfo too: in a context of its own, not this test's)
    meddling = contextvars.copy_context().run(lr.Transaction.model_validate, {
        **PURCHASE, "at": datetime.datetime(2026, 5, 2, 10, tzinfo=Meddling())})
    with contextlib.suppress(decimal.InvalidOperation):  # that call computes at 3 digits
        lr.evaluate(program, MEMBER, meddling, trace=False)
    for _ in range(3):
        assert lr.evaluate(program, MEMBER, PURCHASE, trace=False).model_dump_json() == expected
        assert lr.evaluate(program, MEMBER, PURCHASE, trace=False,
                           mode="interpreted").model_dump_json() == expected
    inside: list[str] = []
    exact(lambda: inside.append(seen.get()))()
    assert inside == ["<unset>"] and seen.get() == "<unset>"


def test_threads_evaluate_side_by_side_each_in_a_context_of_its_own() -> None:
    """Threads running at once (some started with a copy of the caller's context, as
    asyncio.to_thread starts them) never share a context: no 'already entered' error, and
    every result equals the serial one."""
    program = lr.load_program(REFERENCE)
    expected = lr.evaluate(program, MEMBER, PURCHASE, trace=False).model_dump_json()

    def work(k: int) -> list[str]:
        call = (contextvars.copy_context().run if k % 2 else
                lambda fn, *a, **kw: fn(*a, **kw))
        return [call(lr.evaluate, program, MEMBER, PURCHASE, trace=False).model_dump_json()
                for _ in range(40)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [line for lines in pool.map(work, range(8)) for line in lines]
    assert results == [expected] * 320


@given(st.integers(0, 1), st.lists(st.integers(0, 9), min_size=1, max_size=30),
       st.integers(-40, 40), st.integers(0, 1))
def test_amounts_are_written_as_format_f_writes_them(sign: int, digits: list[int],
                                                     exponent: int, capitals: int) -> None:
    """``plain`` takes ``str``'s shortcut only where it writes what ``format(d, "f")`` does:
    never an exponent, whatever the letter case the host's context asks for."""
    amount = Decimal((sign, tuple(digits), exponent))
    with decimal.localcontext() as host:
        host.capitals = capitals
        assert plain(amount) == format(amount, "f")
    assert plain(Decimal("1E+2")) == "100" and plain(Decimal("0E-7")) == "0.0000000"


# --- amounts and instants read from JSON are kept by their text ----------------------------

def _member_json() -> tuple[lr.MemberState, str]:
    program = lr.load_program(Path(__file__).resolve().parent.parent / "programs"
                              / "rfm-3tier.yaml")
    member = lr.MemberState(id="m1")
    for n, amount in enumerate(["12.50", "99.00", "12.50"]):
        txn = lr.Transaction(id=f"t{n}", member_id="m1",
                             at=f"2026-03-0{n + 1}T10:00:00+08:00", channel="store",
                             items=[{"sku": "s1", "category": "food", "amount": amount}])
        member = lr.evaluate(program, member, txn, trace=False).member_after
    return member, member.model_dump_json()


def test_a_state_read_again_from_its_json_is_the_same_state() -> None:
    from loyaltyrules import _member

    member, text = _member_json()
    _member._AMOUNTS.clear()
    _member._INSTANTS.clear()
    first = lr.MemberState.model_validate_json(text)     # every value checked
    assert _member._AMOUNTS and _member._INSTANTS
    again = lr.MemberState.model_validate_json(text)     # every value known
    assert again == first == member
    assert again.model_dump_json() == first.model_dump_json() == text
    assert again.lots[0].earned_at is again.purchases[0].at  # one object, as read


@pytest.mark.parametrize("amount", ["-1.00", "1e5", "12.5.0", "1000000000000000"])
def test_a_refused_amount_is_refused_every_time(amount: str) -> None:
    text = json.dumps({"sku": "s1", "amount": amount})
    for _ in range(2):
        with pytest.raises(ValueError, match=r"amount|negative"):
            lr.LineItem.model_validate_json(text)


def test_a_strict_read_of_an_instant_does_not_depend_on_what_was_read_before() -> None:
    """From Python a strict read refuses an instant's text; from JSON it accepts it (as
    pydantic does for a plain datetime) — whether or not the same text was read before."""
    from loyaltyrules import _member

    data = {"id": "t", "at": "2026-03-03T10:00:00+08:00", "items": [{"sku": "a",
                                                                      "amount": "1.00"}]}
    text = json.dumps(data)
    for known in (False, True):
        if not known:
            _member._INSTANTS.clear()
        assert lr.Transaction.model_validate_json(text, strict=True).at == datetime.datetime(
            2026, 3, 3, 2, tzinfo=datetime.UTC)
        with pytest.raises(ValueError, match="valid datetime"):
            lr.Transaction.model_validate(data, strict=True)
    with pytest.raises(ValueError, match="date-time such as"):
        lr.Transaction.model_validate_json(json.dumps({**data, "at": "1772503200"}))


@pytest.mark.parametrize(("at", "error"), [
    ("2026-13-01T00:00:00Z", "month value is outside expected range"),
    ("2026-03-03", "should have timezone info"),
    ("1899-12-31T00:00:00Z", "must be from 1900-01-01 to 8999-12-31"),
])
@pytest.mark.parametrize("strict", [False, True])
def test_a_refused_instant_is_refused_every_time_at_its_place(
        at: str, error: str, strict: bool) -> None:
    """A strict JSON read says why, as a lax one does (it said only "should be a valid
    datetime")."""
    text = json.dumps({"id": "t", "at": at, "items": [{"sku": "a", "amount": "1.00"}]})
    for _ in range(2):
        with pytest.raises(ValueError, match=error) as refused:
            lr.Transaction.model_validate_json(text, strict=strict)
        assert [e["loc"] for e in refused.value.errors()] == [("at",)]  # type: ignore[attr-defined]


def test_the_tables_of_known_amounts_and_instants_stay_bounded() -> None:
    from loyaltyrules import _member

    for n in range(_member._KEEP + 10):
        lr.Transaction.model_validate_json(json.dumps({
            "id": "t", "at": f"2026-03-03T10:00:{n % 60:02d}.{n:06d}+08:00",
            "items": [{"sku": "a", "amount": f"{n}.01"}]}))
    assert 0 < len(_member._AMOUNTS) <= _member._KEEP
    assert 0 < len(_member._INSTANTS) <= _member._KEEP


@given(st.datetimes(min_value=datetime.datetime(1899, 12, 30),
                    max_value=datetime.datetime(9000, 1, 2)),
       st.integers(-1_439, 1_439))
def test_an_instant_is_read_inside_the_calendar_at_one_shared_offset(
        wall: datetime.datetime, minutes: int) -> None:
    """The quick year test and the shared offset object give what the full checks give:
    refused outside 1900-01-01 … 8999-12-31 UTC, else the same instant and offset, with one
    tzinfo object per offset."""
    from loyaltyrules._member import EARLIEST, LATEST

    value = wall.replace(tzinfo=datetime.timezone(datetime.timedelta(minutes=minutes)))
    text = json.dumps({"id": "t", "at": value.isoformat(), "items": [{"sku": "a",
                                                                       "amount": "1.00"}]})
    inside = EARLIEST <= value < LATEST
    for _ in range(2):  # read, then known
        try:
            at = lr.Transaction.model_validate_json(text).at
        except ValueError as refused:
            assert not inside and "1900-01-01 to 8999-12-31" in str(refused)
            continue
        assert inside
        assert at == value and at.utcoffset() == value.utcoffset()
        assert at.tzinfo is lr.Transaction.model_validate_json(
            text.replace(value.isoformat(), value.replace(microsecond=1).isoformat())).at.tzinfo


@given(st.datetimes(min_value=datetime.datetime(1901, 1, 1),
                    max_value=datetime.datetime(8998, 12, 31)),
       st.integers(-86_399, 86_399))
def test_an_instant_from_python_reads_back_from_its_json_whatever_its_offset(
        wall: datetime.datetime, seconds: int) -> None:
    """An offset of whole minutes is kept; one with seconds (Monrovia's −00:44:30, which JSON
    cannot write) becomes UTC. Either way the instant is the same and its JSON reads back
    equal."""
    offset = datetime.timedelta(seconds=seconds)
    value = wall.replace(tzinfo=datetime.timezone(offset))
    at = lr.Transaction.model_validate({"id": "t", "at": value,
                                        "items": [{"sku": "a", "amount": "1.00"}]}).at
    assert at == value
    assert at.utcoffset() == (offset if seconds % 60 == 0 else datetime.timedelta(0))
    again = lr.Transaction.model_validate_json(json.dumps({
        "id": "t", "at": at.isoformat(), "items": [{"sku": "a", "amount": "1.00"}]})).at
    assert again == at and again.utcoffset() == at.utcoffset()


@pytest.mark.parametrize(("at", "inside"), [
    ("1900-01-01T00:00:00+00:01", False),   # 1899-12-31T23:59Z
    ("1899-12-31T23:00:00-01:00", True),    # 1900-01-01T00:00Z
    ("8999-12-31T23:30:00-05:00", False),   # 9000-01-01T04:30Z
    ("9000-01-01T00:30:00+01:00", True),    # 8999-12-31T23:30Z
])
def test_the_calendar_ends_at_utc_midnights_whatever_the_offset(at: str, inside: bool) -> None:
    data = {"id": "t", "at": at, "items": [{"sku": "a", "amount": "1.00"}]}
    value = datetime.datetime.fromisoformat(at)
    for read in (lambda: lr.Transaction.model_validate_json(json.dumps(data)),
                 lambda: lr.Transaction.model_validate_json(json.dumps(data)),  # known
                 lambda: lr.Transaction.model_validate({**data, "at": value})):
        if inside:
            assert read().at == value
        else:
            with pytest.raises(ValueError, match="1900-01-01 to 8999-12-31"):
                read()


def test_unix_seconds_as_bytes_are_not_an_instant_either() -> None:
    data = {"id": "t", "items": [{"sku": "a", "amount": "1.00"}]}
    with pytest.raises(ValueError, match="date-time such as"):
        lr.Transaction.model_validate({**data, "at": b"1772503200"})
    assert lr.Transaction.model_validate({**data, "at": b"2026-03-03T10:00:00+08:00"}).at == \
        datetime.datetime(2026, 3, 3, 2, tzinfo=datetime.UTC)


def test_instants_given_as_strings_are_read_as_from_json_in_every_mode() -> None:
    """model_validate_strings gives text, as JSON does: a strict read accepts an instant's
    text (it had refused it, as a strict read from Python does) and refuses what JSON does."""
    data = {"id": "m", "advanced_to": "2026-03-03T10:00:00+08:00"}
    for strict in (False, True):
        assert lr.MemberState.model_validate_strings(data, strict=strict).advanced_to == \
            datetime.datetime(2026, 3, 3, 2, tzinfo=datetime.UTC)
        with pytest.raises(ValueError, match="date-time such as"):
            lr.MemberState.model_validate_strings({**data, "advanced_to": "1772503200"},
                                                  strict=strict)
    with pytest.raises(ValueError, match="valid datetime"):
        lr.MemberState.model_validate(data, strict=True)


def _split_by_largest_remainder(total: Decimal, weights: list[Decimal], q: Decimal
                                ) -> list[Decimal]:
    """A discount split over lines as the method is usually written: in minor units, each
    line's proportional share rounded down, the units left over one each to the largest
    remainders, the earliest line first on ties."""
    from fractions import Fraction

    units = [int(Fraction(w) / Fraction(q)) for w in weights]
    whole = sum(units)
    if whole == 0:
        return [Decimal(0).quantize(q)] * len(weights)
    to_split = int((total / q).to_integral_value(decimal.ROUND_HALF_UP))
    parts = [to_split * u // whole for u in units]
    order = sorted(range(len(units)), key=lambda k: (-(to_split * units[k] % whole), k))
    for k in order[:to_split - sum(parts)]:
        parts[k] += 1
    return [q * p for p in parts]


amounts = st.integers(0, 10**8).map(lambda cents: Decimal(cents) / 100)


@given(total=st.integers(0, 10**7).map(lambda mills: Decimal(mills) / 1000),
       weights=st.lists(amounts.map(lambda a: a.quantize(Decimal("0.01"))), min_size=1,
                        max_size=8))
def test_a_discount_is_split_over_lines_by_largest_remainder(
        total: Decimal, weights: list[Decimal]) -> None:
    """A tier discount's split over a basket's lines (``allocate``): the textbook method,
    exactly, for totals in the unit or finer (rounded half up to the unit first), and the
    parts add up to the total so rounded, each written in the unit."""
    from loyaltyrules._money import allocate, in_exact

    q = Decimal("0.01")
    parts = in_exact(allocate, total, weights, q)  # (as the engine calls it)
    assert parts == _split_by_largest_remainder(total, weights, q)
    assert all(p.same_quantum(q) for p in parts)
    if sum(weights) > 0:
        assert sum(parts) == total.quantize(q, rounding=decimal.ROUND_HALF_UP)


def test_a_split_over_many_lines_hands_out_what_is_left_by_one_sort() -> None:
    """1,000 lines of 1.00 and 9.99 to split: 999 cents left over after every line's share
    is rounded down, each to the earliest lines (ties); a handful left over over a few lines
    one at a time, the same way."""
    from loyaltyrules._money import allocate, give_largest, in_exact

    q = Decimal("0.01")
    parts = in_exact(allocate, Decimal("9.99"), [Decimal("1.00")] * 1000, q)
    assert parts == [q] * 999 + [Decimal("0.00")]
    parts_few = [0, 0, 0, 0]
    give_largest(parts_few, [5, 9, 9, 1], 3)
    assert parts_few == [1, 1, 1, 0]  # 9 (the first), 9, then 5
    many = [0] * 20
    give_largest(many, [3, 7] * 10, 12)  # (over 8 parts and 3 left: by the sort)
    assert many == [1, 1, 1, 1] + [0, 1] * 8  # every 7, then the first two 3s

