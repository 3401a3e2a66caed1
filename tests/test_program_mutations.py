"""Mutated programs: whatever a designer gets wrong, loading says where, in a ProgramError.

The bundled programs are taken apart and put back wrong — a key deleted, a value replaced by
one of another type or an odd one (-1, 0, 1e309, "", a huge number, a list, a mapping, null, an
odd RRULE, date or expression), a list item doubled, two values swapped — then written out as
YAML and loaded. A mutant either loads or raises ProgramError whose every diagnostic has a line
and column; never another exception. A mutant that loads evaluates a few fixed purchases, is
advanced a year, and is linted: only the library's own errors, and each within seconds.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import signal
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr
from loyaltyrules._lint import lint
from loyaltyrules._yaml import load_yaml

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted((ROOT / "programs").glob("*.yaml"))
PROGRAMS = {path.name: load_yaml(path.read_text(encoding="utf-8"))[0] for path in BUNDLED}
TRANSACTIONS = [json.loads(line) for line in
                (ROOT / "examples" / "transactions.jsonl").read_text().splitlines()[:4]]
MEMBERS = {m["id"]: m for m in (json.loads(line) for line in
                                (ROOT / "examples" / "members.jsonl").read_text().splitlines())}
SECONDS = 5
"""How long one mutant may take, load, evaluation, advance and lint together."""

# Odd values, as YAML text: written into the document as they are, so the loader's own reading
# of numbers, dates and quoting is part of what is tried.
ODD = [
    "-1", "0", "1", "1e309", "-1e309", "1e-400", ".inf", ".nan", "99999999999999999999999",
    "2.5", '""', "''", "null", "true", "[]", "{}", "[1, 2]", "{a: 1}", "[[[]]]", '"x"',
    '"8折"', '"200%"', '"-5%"', '"0折"', '"1/0"', '"x.__class__"', '"("', '"member.orders > "',
    '"__import__(\'os\')"', '"9" ', "2026-02-30", "0001-01-01", "9999-12-31",
    '"2026-11-11T25:00"', '"FREQ=MONTHLY;BYDAY=9MO"', '"FREQ=WEEKLY;BYDAY=1000000000MO"',
    '"FREQ=DAILY;INTERVAL=0"', '"FREQ=WEEKLY;X"', '"FREQ=DAILY;BYSETPOS=-1"',
    '"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"', '"FREQ=MONTHLY;BYSETPOS=31;BYMONTHDAY=-1"',
    '"FREQ=WEEKLY;INTERVAL=9999999"', '"FREQ=YEARLY;BYEASTER=60"', '"RRULE:"',
    "{freq: daily, interval: 0}", "{freq: monthly, bysetpos: -31, bymonthday: [1, -1]}",
    "{freq: weekly, byweekday: [XX]}", "{start: 2026-01-01, end: 2025-01-01}",
    "{times: 0, per: year}", "{threshold: 0, off: 0}", "{amount: -1}", "{percent: 2}",
    '"Etc/GMT+14"', '"localtime"', '"never"', '"a b"', '"\\u00e9"', '"' + "x" * 70 + '"',
]
MARK = "ZZODD{}ZZ"  # a plain word the dumper writes as it is, then replaced by the odd text


def _odd(*kinds: str) -> tuple[int, ...]:
    """The indexes of the odd values that start like one of ``kinds``."""
    return tuple(n for n, text in enumerate(ODD)
                 if text.startswith(kinds) or text.lstrip('"{[').startswith(kinds))


_NUMBERS = _odd("-", "0", "1", "2", "9", ".", "null", "true", "[]", "{}")
_FITTING = {  # odd values worth trying at a key: an odd schedule where a schedule belongs …
    "schedule": _odd("FREQ", "RRULE", "freq", "null", "[]", "{}", "''"),
    "when": _odd("1/0", "x.", "(", "member", "__", "true", "''", "null"),
    "window": _odd("start", "20", "00", "99", "[]", "''"),
}
_FITTING |= {"expect": _FITTING["when"], "start": _FITTING["window"], "end": _FITTING["window"],
             "freq": _FITTING["schedule"]}

Path_ = tuple[str | int, ...]


class _Dumper(yaml.SafeDumper):
    """Writes the loader's values back: decimals as the decimals they were."""


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value, "f") if value.is_finite() else str(value)
    return dumper.represent_scalar("tag:yaml.org,2002:float",
                                   text if "." in text else text + ".0")


_Dumper.add_representer(Decimal, _decimal)


def _paths(node: Any, path: Path_ = ()) -> Iterator[Path_]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


# keys whose values are parsed beyond their type: most odd values go to one of these
TARGETS = frozenset({"schedule", "when", "expect", "window", "start", "end", "discount",
                     "qualify", "retain", "limit", "expiry", "freq", "timezone"})


def _mutate(data: Any, op: int, first: int, second: int, odd: int) -> None:
    """Apply one mutation (op) at the path numbered ``first`` (and ``second``) in place:
    0 deletes, 1 writes the odd value ODD[odd] anywhere, 2 doubles, 3 swaps, 4 writes it at
    the ``first`` path of those ending in one of the TARGETS keys."""
    paths = [p for p in _paths(data) if p]
    if op == 4:
        targets = [p for p in paths if p[-1] in TARGETS]
        if targets:
            path = targets[first % len(targets)]
            _at(data, path[:-1])[path[-1]] = MARK.format(odd)
            return
        op = 1
    if not paths:
        return
    path = paths[first % len(paths)]
    parent, key = _at(data, path[:-1]), path[-1]
    if op == 0:  # delete a key or an item
        del parent[key]
    elif op == 1:  # an odd value
        parent[key] = MARK.format(odd)
    elif op == 2:  # an item doubled, or the list holding it
        if isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(parent[key]))
        else:
            parent[key] = [copy.deepcopy(parent[key])] * 2
    else:  # two values swapped (when neither holds the other)
        other = paths[second % len(paths)]
        if other[:len(path)] == path or path[:len(other)] == other:
            return
        other_parent, other_key = _at(data, other[:-1]), other[-1]
        parent[key], other_parent[other_key] = other_parent[other_key], parent[key]


def _text(data: Any) -> str:
    text = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
    for n in range(len(ODD) - 1, -1, -1):  # (ZZODD1ZZ is not a part of ZZODD12ZZ)
        text = text.replace(MARK.format(n), ODD[n])
    return text


def _timeout(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError(f"a mutant took more than {SECONDS} s")


def _exercise(program: lr.Program) -> None:
    """Evaluate, advance and lint a program that loaded: only the library's errors."""
    for txn in TRANSACTIONS:
        for member in (MEMBERS[txn["member_id"]],
                       {"id": txn["member_id"], "tier": program.tier_ids[-1],
                        "birthday": "1988-03-03", "points": 500}):
            with contextlib.suppress(lr.LoyaltyError):
                lr.apply(member, lr.evaluate(program, member, txn))
    with contextlib.suppress(lr.LoyaltyError):
        lr.advance(program, {"id": "m", "tier": program.tier_ids[0], "joined": "2025-01-01"},
                   "2027-01-01T00:00:00+08:00")
    lint(program, today=date(2026, 6, 1))


def check_mutant(text: str) -> lr.Program | None:
    """Load ``text``: a Program, or None after checking the ProgramError says where."""
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(SECONDS)
    try:
        try:
            program = lr.load_program(text)
        except lr.ProgramError as error:
            assert error.diagnostics
            for diagnostic in error.diagnostics:
                assert diagnostic.line is not None and diagnostic.column is not None, \
                    str(diagnostic)
                assert str(diagnostic).startswith(f"<program>:{diagnostic.line}:"), \
                    str(diagnostic)
            return None
        _exercise(program)
        return program
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(PROGRAMS)), st.integers(1, 3), st.data())
def test_a_mutated_program_loads_or_says_where_it_is_wrong(
        name: str, count: int, draw: st.DataObject) -> None:
    """Whatever is deleted, replaced, doubled or swapped, loading ends in a Program or a
    ProgramError with a position for each problem, and a program that loads runs."""
    data = copy.deepcopy(PROGRAMS[name])
    for _ in range(count):
        # (drawn from the choices themselves: hypothesis draws small integers most often,
        # which would try the first few paths and odd values again and again)
        paths = [p for p in _paths(data) if p]
        targets = [p for p in paths if p[-1] in TARGETS]
        op = draw.draw(st.sampled_from([0, 1, 2, 3, 4, 4, 4, 4]))
        path = draw.draw(st.sampled_from(targets if op == 4 and targets else paths))
        other = paths.index(draw.draw(st.sampled_from(paths)))
        fitting = _FITTING.get(str(path[-1]), _NUMBERS) if op == 4 else range(len(ODD))
        _mutate(data, op, paths.index(path) if op != 4 else targets.index(path), other,
                draw.draw(st.sampled_from(fitting)))
    check_mutant(_text(data))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_bundled_programs_written_back_load_as_they_were(name: str) -> None:
    """The mutations start from what the bundled programs mean: written back unmutated, each
    loads to the same program (same hash)."""
    program = check_mutant(_text(PROGRAMS[name]))
    assert program is not None
    assert program.hash == lr.load_program(ROOT / "programs" / name).hash


@pytest.mark.parametrize("odd", range(len(ODD)), ids=ODD)
def test_every_odd_value_is_tried_in_a_schedule_and_a_discount(odd: int) -> None:
    """Each odd value, written where a schedule and where a discount belongs, loads or is
    refused with a position — the fuzz above may not happen to draw every one there."""
    for key in ("schedule", "discount", "when", "window", "points_multiplier"):
        data = {"program": {"id": "p", "version": 1, "currency": "CNY",
                            "timezone": "Asia/Shanghai"},
                "tiers": [{"id": "basic"}, {"id": "gold", "qualify": {"spend": 100}}],
                "promotions": [{"id": "p", "bonus_points": 5, key: MARK.format(odd)}]}
        check_mutant(_text(data))


def _edit(data: Any, rng: random.Random) -> None:
    """One edit a designer makes on purpose, in place: a number changed (to 0, 1, double,
    half, or a tenth), or an item dropped from a list of several (a promotion, a tier's
    perk, an earn rule). Most such programs still load, so what they decide is exercised."""
    paths = [p for p in _paths(data) if p]
    numbers = [p for p in paths if type(_at(data, p)) in (int, Decimal)]
    items = [p for p in paths if isinstance(p[-1], int) and len(_at(data, p[:-1])) > 1]
    if numbers and (not items or rng.random() < 0.7):
        path = rng.choice(numbers)
        value = _at(data, path)
        new = rng.choice([0, 1, value * 2, value / 2, value / 10])
        _at(data, path[:-1])[path[-1]] = \
            int(new) if type(value) is int else Decimal(new).quantize(Decimal("0.01"))
    elif items:
        path = rng.choice(items)
        del _at(data, path[:-1])[path[-1]]


def test_programs_edited_on_purpose_mostly_load_and_run() -> None:
    """The mutants above are mostly refused, so few reach evaluation. These edits are the
    plausible ones — numbers changed, items dropped — and most load: each that loads must
    evaluate, advance and lint with only the library's errors (seeded, so the same every
    run)."""
    rng = random.Random(20261204)
    loaded = 0
    for n in range(80):
        data = copy.deepcopy(PROGRAMS[sorted(PROGRAMS)[n % len(PROGRAMS)]])
        for _ in range(rng.randint(1, 3)):
            _edit(data, rng)
        loaded += check_mutant(_text(data)) is not None
    assert loaded >= 35, loaded  # (45 of 80 when written: most must reach evaluation)
