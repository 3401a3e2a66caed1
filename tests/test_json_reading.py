"""Reading member states and transactions from JSON text: pydantic reads the text, and a key
given twice is still refused (pydantic, like every JSON reader, keeps the last one); states a
run reads in are kept as lean as the states the library builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr
from loyaltyrules._cli import _BadJSON, _keys_given, _load_members, _member_line
from loyaltyrules._lifecycle import share_field_sets
from loyaltyrules._member import keys_given, written_once
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
    assert _keys_given(read) == keys_given(read) == sum(len(o) for o in _objects(_pairs(text)))


@pytest.mark.parametrize("text", [
    '{"id": "m", "points": 5, "points" : 50000}',  # (a space before the colon)
    '{"id": "m\\":x", "points": 5}',  # (an escaped quote and a colon in a string)
    '{"id": "m"\n, "points": 5}',  # (a line break after a quote)
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


def test_states_read_in_share_their_field_sets(tmp_path: Path) -> None:
    """pydantic gives each model it reads a set of its fields of its own (2.3 KB for a
    purchase record): a run's states read in share one per set of fields, as the states
    the library builds do. What each state holds and writes is unchanged, and a copy that
    updates a field counts it set without touching the others."""
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
    share_field_sets(fresh)
    assert fresh.purchases[0].__pydantic_fields_set__ is shared
    had = set(one.purchases[0].model_fields_set)
    copied = one.purchases[0].model_copy(update={"points_unpaid": 1})
    assert "points_unpaid" in copied.model_fields_set
    assert set(one.purchases[0].model_fields_set) == had == set(two.purchases[1].model_fields_set)
