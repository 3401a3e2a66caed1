"""Reading member states and transactions from JSON text: pydantic reads the text, and a key
given twice is still refused (pydantic, like every JSON reader, keeps the last one); states a
run reads in are kept as lean as the states the library builds."""

from __future__ import annotations

import gc
import json
import re
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr
from loyaltyrules._cli import _BadJSON, _keys_given, _load_members, _member_line
from loyaltyrules._lifecycle import keep_lean
from loyaltyrules._member import fraction_in_attrs, keys_given, written_once
from loyaltyrules.testing import events, members, run_step, transactions

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = lr.load_program(ROOT / "programs" / "rfm-3tier.yaml")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its pairs, in order, a key given twice kept twice."""


def _pairs(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_Pairs)


def _write(node: Any, colon: str = ":", comma: str = ",") -> str:
    if isinstance(node, _Pairs):
        return "{" + comma.join(f"{json.dumps(k, ensure_ascii=False)}{colon}"
                                f"{_write(v, colon, comma)}" for k, v in node) + "}"
    if isinstance(node, list):
        return "[" + comma.join(_write(v, colon, comma) for v in node) + "]"
    return json.dumps(node, ensure_ascii=False)


def _objects(node: Any) -> list[_Pairs]:
    """Every JSON object in ``node``, outermost first."""
    found: list[_Pairs] = []
    if isinstance(node, _Pairs):
        found.append(node)
        for _, value in node:
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


@st.composite
def _states(draw: st.DrawFn) -> lr.MemberState:
    """A member after a few purchases, refunds, behaviours and advances: records, lots,
    usage, a spend log, signals."""
    state = lr.MemberState.model_validate(draw(members(PROGRAM)))
    for step in draw(events(PROGRAM, max_steps=6)):
        try:
            state = lr.apply(state, run_step(PROGRAM, state, step))
        except lr.LoyaltyError:  # (a refund of lines that cost nothing: not a step here)
            continue
    return state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_states(), st.data())
def test_a_key_given_twice_anywhere_in_a_state_is_refused(state: lr.MemberState,
                                                          data: st.DataObject) -> None:
    """The count that lets pydantic's read stand: as the library writes a state, and as
    json.dumps spaces it, every key is counted once and the text is read once; the same
    text with any one key of any object given twice (same value or another) is refused
    with the key named, as Python's reader with a hook refuses it."""
    text = state.model_dump_json(exclude_none=True)
    tree = _pairs(text)
    for written in (text, _write(tree, ": ", ", ")):
        read = lr.MemberState.model_validate_json(written)
        assert read == state
        assert written_once(written, read)
        assert keys_given(read) == sum(len(o) for o in _objects(tree))
    objects = [o for o in _objects(tree) if o]
    where = data.draw(st.sampled_from(objects))
    key, value = where[data.draw(st.integers(0, len(where) - 1))]
    again = data.draw(st.sampled_from([value, "0", 0]))
    where.insert(data.draw(st.integers(0, len(where))), (key, again))
    twice = _write(tree)
    with pytest.raises(lr.InputError) as refused:
        lr.evaluate(PROGRAM, twice, {"id": "x", "at": "2026-03-04T12:00:00+08:00",
                                     "items": [{"sku": "a", "amount": "1.00"}]})
    try:
        lr.MemberState.model_validate_json(twice)
    except ValueError:  # (the last value refused: said so, as for any text pydantic refuses)
        return
    assert str(refused.value) == (f"member: the key {key!r} is given twice in one object "
                                  "(JSON readers keep only the last)")


def test_keys_are_counted_once_each_in_the_bundled_examples() -> None:
    """Every key of the bundled members and transactions, nested ones (usage, attrs,
    items) included, and only those."""
    for name, model in (("members.jsonl", lr.MemberState),
                        ("transactions.jsonl", lr.Transaction)):
        for line in (ROOT / "examples" / name).read_text(encoding="utf-8").splitlines():
            read = model.model_validate_json(line)
            assert keys_given(read) == sum(len(o) for o in _objects(_pairs(line))), line
            assert written_once(line, read)


@settings(max_examples=100, deadline=None)
@given(transactions(PROGRAM))
def test_the_runs_count_of_a_transactions_keys_is_the_general_one(txn: dict[str, Any]
                                                                  ) -> None:
    """`run` counts a transaction's keys by a walk written out for it (every line of a run
    is counted): it counts as keys_given does, attrs of the transaction and its items
    included."""
    text = json.dumps(txn)
    read = lr.Transaction.model_validate_json(text)
    counted = keys_given(read)
    assert counted == sum(len(o) for o in _objects(_pairs(text)))
    assert _keys_given(read) == (None if fraction_in_attrs(read) else counted)


@pytest.mark.parametrize("text", [
    '{"id": "m", "points": 5, "points" : 50000}',  # (a space before the colon)
    '{"id": "m\\":x", "points": 5}',  # (an escaped quote and a colon in a string)
    '{"id": "m"\n, "points": 5}',  # (a line break after a quote)
    '{"id": "m", "points"\t: 5, "points": 6}',  # (a tab, then the same key again)
    '{"id": "m", "points"\r: 5, "points": 6}',  # (a carriage return)
])
def test_text_the_count_cannot_vouch_for_is_read_again(text: str) -> None:
    """Where a key's quote is not right before its colon, or a string holds `":`, the count
    says nothing: the text is read again, and refused only if it gives a key twice."""
    read = lr.MemberState.model_validate_json(text)
    assert not written_once(text, read)
    if text.count('"points"') == 2:
        with pytest.raises(_BadJSON, match="gives the key 'points' twice in one object"):
            _member_line(text)
    else:
        assert _member_line(text) == read


def test_states_read_in_are_kept_lean(tmp_path: Path) -> None:
    """pydantic gives each model it reads a set of its fields of its own (2.3 KB for a
    purchase record) and a dict of its own: a run's states read in share one set per set
    of fields, and keep their values in dicts of shared keys, as the states the library
    builds do, in about a third of the memory. What each state holds and writes is
    unchanged, and a copy that updates a field counts it set without touching the
    others."""
    built = lr.MemberState(id="m1")
    for k, amount in enumerate(("100.00", "250.00", "80.00")):
        built = lr.apply(built, lr.evaluate(PROGRAM, built, {
            "id": f"t{k}", "at": f"2026-03-0{k + 1}T12:00:00+08:00",
            "items": [{"sku": "a", "amount": amount}]}))
    text = built.model_dump_json(exclude_none=True)
    path = tmp_path / "members.jsonl"
    path.write_text(text + "\n" + text.replace('"m1"', '"m2"', 1) + "\n", encoding="utf-8")
    loaded = _load_members(str(path), PROGRAM)
    one, two = loaded["m1"], loaded["m2"]
    assert one.model_dump_json(exclude_none=True) == text
    records = [*one.purchases, *two.purchases]
    assert len({id(r.__pydantic_fields_set__) for r in records}) == 1
    assert len({id(lot.__pydantic_fields_set__) for lot in [*one.lots, *two.lots]}) == 1
    assert one.__pydantic_fields_set__ is two.__pydantic_fields_set__
    fresh = lr.MemberState.model_validate_json(text)
    shared = one.purchases[0].__pydantic_fields_set__
    assert fresh.purchases[0].__pydantic_fields_set__ is not shared
    keep_lean(fresh)
    assert fresh.purchases[0].__pydantic_fields_set__ is shared
    had = set(one.purchases[0].model_fields_set)
    copied = one.purchases[0].model_copy(update={"points_unpaid": 1})
    assert "points_unpaid" in copied.model_fields_set
    assert set(one.purchases[0].model_fields_set) == had == set(two.purchases[1].model_fields_set)
    # the memory: 40 such states read, then kept lean (measured on CPython 3.11: 681 KB read,
    # 150 KB lean, 192 KB with the sets shared and not the dicts' keys; a state of a year of
    # purchases takes 58 KB read, 19 KB lean)
    gc.collect()
    tracemalloc.start()
    try:
        states = [lr.MemberState.model_validate_json(text) for _ in range(40)]
        read, _ = tracemalloc.get_traced_memory()
        for state in states:
            keep_lean(state)
        gc.collect()
        lean, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lean < 0.25 * read, (read, lean)
    assert all(state == fresh for state in states)
    purchase = {"id": "t9", "at": "2026-03-09T12:00:00+08:00",
                "items": [{"sku": "a", "amount": "9.00"}]}
    assert lr.apply(states[0], lr.evaluate(PROGRAM, states[0], purchase)) == lr.apply(
        fresh, lr.evaluate(PROGRAM, fresh, purchase))


def test_the_models_a_run_keeps_hold_their_values_in_dicts_of_shared_keys() -> None:
    """A member state, its purchase records, points lots and totals made by the library keep
    their values in dicts whose keys are shared (see shared_keys), and the next states a
    purchase makes keep them so. Measured on CPython 3.11 after this test's 40 purchases
    (less still after many more), a thousand dicts of each take, shared against their own:
    states 329 KB against 841 KB, records 265 KB against 473 KB, lots 161 KB against 281 KB,
    totals 129 KB against 193 KB."""
    def traced(make: Any) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            kept = [make() for _ in range(1000)]
            size, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(kept) == 1000
        return size

    # (the tables are made at import: CPython gives a class's table less room with each
    # instance made, so one made after these would hold no field)
    built = [lr.MemberState(id=f"m{k}") for k in range(100)][-1]
    keep_lean(built)
    for k in range(40):
        built = lr.apply(built, lr.evaluate(PROGRAM, built, {
            "id": f"t{k}", "at": f"2026-03-0{k % 9 + 1}T{k % 24:02d}:00:00+08:00",
            "items": [{"sku": "a", "amount": "10.00"}]}))
    for model in (built, built.purchases[-1], built.lots[-1], built.totals):
        fields = model.__dict__
        assert traced(fields.copy) < 0.7 * traced(lambda f=fields: dict(f)), type(model)


def _models_read_from_json() -> list[type[Any]]:
    """MemberState, Transaction, HouseholdState and every model in them."""
    from pydantic import BaseModel

    found: list[type[Any]] = []
    todo: list[Any] = [lr.MemberState, lr.Transaction, lr.HouseholdState]
    while todo:
        tp = todo.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in found:
                continue
            found.append(tp)
            todo += [field.annotation for field in tp.model_fields.values()]
        else:
            todo += [arg for arg in getattr(tp, "__args__", ()) if arg is not Ellipsis]
    return found


def test_no_model_read_from_json_can_count_a_key_the_text_did_not_give() -> None:
    """keys_given is sound (a key given twice always shows as more `":` than keys read)
    only while no validator of these models adds a field or a key the text did not give:
    no model validator that runs before pydantic reads the fields (it could fill one in),
    no alias (two keys for one field), no extra fields kept, and no validator of a field
    that holds models or mappings (it could make one from a value). A model that needs one
    must be counted otherwise (see _member.keys_given)."""
    from loyaltyrules._member import nested_fields

    models = _models_read_from_json()
    assert {m.__name__ for m in models} >= {
        "MemberState", "Transaction", "LineItem", "PurchaseRecord", "PointsLot",
        "PointsTotals", "Usage", "RedeemedPart", "HouseholdState"}
    for model in models:
        decorators = model.__pydantic_decorators__
        assert all(d.info.mode == "after" for d in decorators.model_validators.values()), model
        assert model.model_config.get("extra") == "forbid", model
        for name, field in model.model_fields.items():
            assert field.alias is None and field.validation_alias is None, (model, name)
            if name in nested_fields(model):
                assert not any(type(m).__name__.endswith("Validator") for m in field.metadata), (
                    model, name)
                assert not [d for d in decorators.field_validators.values()
                            if name in d.info.fields], (model, name)


def test_members_read_in_leave_the_engine_room_to_share_its_own_field_sets() -> None:
    """keep_lean shares the sets of fields of what it reads only while the pool of shared
    sets is under half full: a file of members each with fields of their own cannot take
    the room of the sets every next state the engine builds shares."""
    from loyaltyrules import _lifecycle as lc

    optional = {"points": 0, "pending_points": 0, "orders": 0, "tier_falls": 0,
                "points_debt": 0, "version": 0, "referred_by": "x", "signals": {},
                "usage": {}, "spend_log": {}}
    room = lc._SHARED_KEPT // 2 - len(lc._SHARED)
    assert 10 < room < 1024 - 30
    states = [lr.MemberState.model_validate({"id": f"m{k}", **{
        name: value for j, (name, value) in enumerate(optional.items()) if k >> j & 1}})
        for k in range(room + 30)]  # (each with a set of fields of its own)
    for state in states:
        lc.keep_lean(state)
    assert len(lc._SHARED) == lc._SHARED_KEPT // 2
    reference = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    after = lr.apply(states[-1], lr.evaluate(reference, states[-1], {
        "id": "t1", "at": "2026-03-01T12:00:00+08:00", "items": [{"sku": "a", "amount": "1.00"}]}))
    assert id(after.__pydantic_fields_set__) in lc._SHARED_IDS


@pytest.mark.parametrize("where", ["member", "transaction", "item", "members-line",
                                   "transactions-line"])
def test_a_fraction_in_attrs_is_read_as_written_whichever_reader(
        where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pydantic's reader hands a number with a fraction to the validator as a float:
    0.10000000000000001 became 0.1, where Python's reader (with parse_float=Decimal) refuses
    it as a number JSON cannot keep (found by helper-87). Text holding one is read again
    exactly, by evaluate() and by `run`, for a member's attrs, a transaction's and an
    item's: 2.5 is Decimal("2.5") either way, 0.10000000000000001 refused either way."""
    from loyaltyrules._cli import main

    member = {"id": "m1"}
    txn = {"id": "t1", "member_id": "m1", "at": "2026-03-04T12:00:00+08:00",
           "items": [{"sku": "a", "amount": "10.00"}]}

    def placed(number: str) -> tuple[str, str]:
        m, t = json.dumps(member), json.dumps(txn)
        if where.startswith("member"):
            m = m[:-1] + f', "attrs": {{"x": {number}}}}}'
        elif where == "item":
            t = t.replace('"amount": "10.00"}', f'"amount": "10.00", "attrs": {{"x": {number}}}}}')
        else:
            t = t[:-1] + f', "attrs": {{"x": {number}}}}}'
        return m, t

    said = ("x: 0.10000000000000001 cannot be kept exactly as a JSON number (read back, it "
            "would not be the same number): send it as text")
    if where.endswith("-line"):
        for number, code in (("2.5", 0), ("0.10000000000000001", 1)):
            m, t = placed(number)
            (tmp_path / "m.jsonl").write_text(m + "\n", encoding="utf-8")
            (tmp_path / "t.jsonl").write_text(t + "\n", encoding="utf-8")
            assert main(["run", str(ROOT / "programs" / "reference-4tier.yaml"),
                         str(tmp_path / "t.jsonl"), "--members", str(tmp_path / "m.jsonl"),
                         "--quiet", "--state-out", str(tmp_path / "s.jsonl")]) == code
            err = capsys.readouterr().err
            assert (said in err) == (code == 1), err
            if code == 0:
                kept = json.loads((tmp_path / "s.jsonl").read_text(encoding="utf-8"),
                                  parse_float=Decimal)
                assert where == "transactions-line" or kept["attrs"] == {"x": Decimal("2.5")}
        return
    reference = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    m, t = placed("2.5")
    decision = lr.evaluate(reference, m, t)
    assert decision.payable == Decimal("10.00")
    m, t = placed("0.10000000000000001")
    with pytest.raises(lr.InputError, match=re.escape(said)):
        lr.evaluate(reference, m, t)


def test_a_host_reads_states_and_transactions_as_evaluate_does() -> None:
    """lr.read_member and lr.read_transaction read JSON text as evaluate() reads it, for a
    host that keeps what it reads (examples/host.py): the same model as pydantic's reader
    for ordinary text, a key given twice refused where pydantic's keeps the last, a
    fraction in attrs as written, and every problem an InputError naming its field."""
    line = (ROOT / "examples" / "members.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert lr.read_member(line) == lr.MemberState.model_validate_json(line)
    assert lr.read_member(line.encode()) == lr.read_member(line)
    text = '{"id": "t1", "at": "2026-03-04T12:00:00+08:00", "items": [{"sku": "a", ' \
           '"amount": "100.00", "amount": "0.01"}]}'
    assert lr.Transaction.model_validate_json(text).items[0].amount == Decimal("0.01")
    with pytest.raises(lr.InputError, match=r"^transaction: the key 'amount' is given twice"):
        lr.read_transaction(text)
    twice = '{"id": "m1", "attrs": {"x": 0.10000000000000001}}'
    assert lr.MemberState.model_validate_json(twice).attrs == {"x": Decimal("0.1")}
    with pytest.raises(lr.InputError, match=r"^member: attrs.x: 0.10000000000000001 cannot "):
        lr.read_member(twice)
    assert lr.read_member('{"id": "m1", "attrs": {"x": 2.50}}').attrs == {"x": Decimal("2.5")}
    with pytest.raises(lr.InputError, match=r"^member: points: expected a whole number"):
        lr.read_member('{"id": "m1", "points": "x"}')
    with pytest.raises(lr.InputError, match=r"^member: expected JSON text, got dict"):
        lr.read_member({"id": "m1"})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1_000", " 7 ", "5", b"5", True])
@pytest.mark.parametrize("field", ["points", "orders", "version", "pending_points"])
def test_a_count_is_a_number_not_text(field: str, value: Any) -> None:
    """Lax reading took "1_000" points as 1000 and " 7 " as 7, where credit() and gift()
    refuse "50": a count is a number, in a state as in a lifecycle call."""
    with pytest.raises(lr.InputError) as refused:
        lr.evaluate(PROGRAM, {"id": "m", field: value}, {
            "id": "t", "at": "2026-03-04T12:00:00+08:00", "items": [{"sku": "a",
                                                                    "amount": "1.00"}]})
    assert str(refused.value) == f"member: {field}: expected a whole number (got " \
        f"{'true' if value is True else repr(value)})"


@pytest.mark.parametrize(("field", "value"), [("quantity", "3"), ("redeem_points", "200")])
def test_a_transactions_counts_are_numbers_not_text(field: str, value: str) -> None:
    txn: dict[str, Any] = {"id": "t", "at": "2026-03-04T12:00:00+08:00",
                           "items": [{"sku": "a", "amount": "1.00"}]}
    if field == "quantity":
        txn["items"][0]["quantity"] = value
        where = "items[0].quantity"
    else:
        txn[field] = value
        where = field
    with pytest.raises(lr.InputError) as refused:
        lr.read_transaction(json.dumps(txn))
    assert str(refused.value) == f"transaction: {where}: expected a whole number (got '{value}')"


@pytest.mark.parametrize(("text", "said"), [
    ("[1]", "a JSON array"), ("null", "null"), ("1", "a number"), ("2.5", "a number"),
    ('"x"', "a JSON string"), ("true", "true or false"),
])
def test_json_text_that_is_not_an_object_is_named_by_what_it_is(text: str, said: str) -> None:
    """It was "got str" for every one: the text, not what it holds."""
    with pytest.raises(lr.InputError) as refused:
        lr.read_member(text)
    assert str(refused.value) == f"member: expected a mapping (a JSON object), got {said}"


@pytest.mark.parametrize(("text", "said"), [
    ('{"id": "a", "points": NaN}', "member: points: expected a finite number (got nan)"),
    ("{1: 2}", "member: not valid JSON: key must be a string at line 1 column 2"),
    ("[" * 300 + "]" * 300, "member: not valid JSON: nested too deeply at line 1 column 202"),
    ('{"id": "a", "points": ' + "9" * 5000 + "}",
     "member: not valid JSON: a number too large to read at line 1 column 4324"),
], ids=["nan", "key", "deep", "long-number"])
def test_unreadable_json_is_said_in_the_librarys_words(text: str, said: str) -> None:
    """pydantic's own sentences ("Input should be a finite number", "Invalid JSON: …") no
    longer reach a host."""
    with pytest.raises(lr.InputError) as refused:
        lr.read_member(text)
    assert str(refused.value) == said
    assert "Input should" not in said and "Invalid JSON" not in said


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_count_in_a_dict_is_said_plainly(value: float) -> None:
    with pytest.raises(lr.InputError) as refused:
        lr.evaluate(PROGRAM, {"id": "m", "points": value}, {
            "id": "t", "at": "2026-03-04T12:00:00+08:00", "items": [{"sku": "a",
                                                                    "amount": "1.00"}]})
    assert str(refused.value) == f"member: points: expected a finite number (got {value})"


@pytest.mark.parametrize("text", ['\ufeff{"id": "a", "points": 5}',
                                  b'\xef\xbb\xbf{"id": "a", "points": 5}'])
def test_a_byte_order_mark_is_read_past_as_run_reads_a_file(text: str | bytes) -> None:
    """`run` skipped a byte-order mark that read_member() refused: one file, read two ways."""
    assert lr.read_member(text) == lr.MemberState(id="a", points=5)


@pytest.mark.parametrize("written", ["1990-03-10T00:00:00", "1990-03-10 00:00",
                                     "1990-03-10T00:00:00+08:00"])
@pytest.mark.parametrize("field", ["birthday", "joined", "last_purchase"])
def test_a_members_date_is_a_date_not_a_date_time(field: str, written: str) -> None:
    """A date-time at midnight was taken as its date (midnight where?), one at 08:00
    refused: a date is written as one."""
    with pytest.raises(lr.InputError) as refused:
        lr.read_member(json.dumps({"id": "a", field: written}))
    assert str(refused.value) == (f"member: {field}: expected a date such as 2026-11-11, not a "
                                  f"date-time (got {written!r})")
    assert getattr(lr.read_member(json.dumps({"id": "a", field: written[:10]})), field) \
        == date(1990, 3, 10)


def test_a_date_alone_is_no_moment() -> None:
    """`at: 2026-03-04` was "needs a UTC offset", as if a time had been given."""
    with pytest.raises(lr.InputError) as refused:
        lr.read_transaction('{"id": "t", "at": "2026-03-04", "items": [{"sku": "a", '
                            '"amount": "1.00"}]}')
    assert str(refused.value) == (
        "transaction: at: expected a date-time such as 2026-03-03T10:00:00+08:00, got "
        "'2026-03-04': a date alone is no moment (give its time and UTC offset)")
