"""Scenario files: a designer's expected behaviour, written next to the program, in YAML.

::

    program: retail-4tier.yaml           # relative to this file
    scenarios:
      - name: gold member on her birthday
        member: {id: wang, tier: gold, birthday: 1990-03-03}
        steps:
          - purchase: {id: T1, at: "2026-03-03T10:00:00+08:00",
                       items: [{sku: BAG, amount: "1000.00"}]}
            expect: {payable: "720.00", points: 70, perks: [birthday_gift]}

Run them with ``loyaltyrules test PATH…`` or let pytest collect ``*.scenarios.yaml`` files
(the ``loyaltyrules`` pytest plugin, one test item per scenario).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._decision import Decision, LifecycleDecision
from ._engine import evaluate
from ._errors import (
    Diagnostic,
    InputError,
    LoyaltyError,
    ProgramError,
    did_you_mean,
    show_value,
)
from ._ledger import apply
from ._lifecycle import (
    EVENT_FIELDS,
    EVENT_NEEDS,
    advance,
    behaviour,
    check_identity,
    redeem_reward,
    refund,
)
from ._member import MemberState, Transaction, coerce, parse_instant, spend_in_unit
from ._money import AMOUNT_LIMIT, SPEND_LIMIT, exact, parse_money
from ._program import Program, load_program
from ._yaml import SourceMap, load_yaml, read_source

__all__ = [
    "STEP_KINDS",
    "Scenario",
    "ScenarioResult",
    "StepFailure",
    "discover",
    "load_scenarios",
    "run_scenario",
    "run_step",
]

STEP_KINDS = ("purchase", "refund", "behaviour", "reward", "advance")
_EXPECT_KEYS = ("payable", "discount", "points", "perks", "redeemed", "qualifying_spend",
                "tier", "balance", "pending", "spend", "events", "signals", "money_refunded",
                "error")


@dataclass(frozen=True)
class Scenario:
    """One scenario of a scenario file: a starting member and steps with expectations."""

    name: str
    member: Mapping[str, Any]
    steps: tuple[Mapping[str, Any], ...]
    source: str
    line: int | None
    index: int


@dataclass(frozen=True)
class StepFailure:
    """What was expected, what came out, and the explanation of the failing step."""

    step: int
    kind: str
    key: str
    expected: Any
    got: Any
    line: int | None
    explanation: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        step = f"{where}step {self.step + 1} ({self.kind})"
        if self.key == "error" and self.expected is _NO_ERROR:  # (said as what happened)
            return f"{step} failed, where no error was expected: {self.got}"
        if self.key == "error" and self.got is _NO_ERROR:
            return (f"{step} went through, where an error containing "
                    f"{_show(self.expected)} was expected")
        if self.key in ("events", "signals") and isinstance(self.got, list):
            missing = [w for w in self.expected if w not in self.got]
            return (f"{step}: {self.key} expected to include {_show(self.expected)}, "
                    f"missing {_show(missing)}; got {_show(self.got)}")
        return (f"{step}: {self.key} expected {_show(self.expected)}, got {_show(self.got)}")


# a step that went through, or was expected to (said so by StepFailure, not as a value)
_NO_ERROR = "no error"


@dataclass
class ScenarioResult:
    scenario: Scenario
    failures: list[StepFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        head = f"{self.scenario.source}:{self.scenario.line or 1}: {self.scenario.name}"
        if self.ok:
            return f"ok    {head}"
        lines = [f"FAIL  {head}"]
        for f in self.failures:
            lines.append(f"      {f}")
        explanation = self.failures[0].explanation
        if explanation:
            lines += ["      trace of the failing step:"]
            lines += [f"        {x}" for x in explanation.splitlines()]
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value) if isinstance(value, str) else str(value)


def _problem(smap: SourceMap, message: str, path: tuple[str | int, ...]) -> ProgramError:
    return ProgramError([smap.diagnostic("LR601", message, path)])


_SHAPE = "a scenario file has `program:` and `scenarios:`"


def _program(path: Path, value: Any, smap: SourceMap) -> Program:
    """The program a scenario file names (relative to the file). A value that is not a
    path, or a file that cannot be read, is a problem of the scenario file, at its
    ``program:``; a program that reads but is wrong reports its own file's lines."""
    if not isinstance(value, str) or not value.strip():
        raise _problem(smap, "expected the path of the program file, relative to this "
                       f"scenario file, such as ../retail-4tier.yaml (got {show_value(value)})",
                       ("program",))
    program_path = (path.parent / value).resolve()
    try:
        return load_program(program_path)
    except ProgramError as exc:
        if [d.code for d in exc.diagnostics] == ["LR001"] \
                and exc.diagnostics[0].source == str(program_path):
            reason = exc.diagnostics[0].message.removeprefix("cannot read the program: ")
            raise _problem(smap, f"cannot read the program {str(program_path)!r}: {reason}",
                           ("program",)) from None
        raise


@exact
def load_scenarios(path: str | Path) -> tuple[Program, list[Scenario]]:
    """Read a scenario file and the program it names; a malformed file is a ProgramError
    with file, line and column, like a program. (Checked in the library's Decimal context:
    a host's traps or precision cannot turn a check into a ``decimal`` exception.)"""
    path = Path(path)
    try:
        raw = read_source(path)  # (never more than the size limit: not /dev/zero into memory)
    except OSError as exc:
        raise ProgramError([Diagnostic("LR001", f"cannot read: {exc.strerror or exc}",
                                       source=str(path))]) from None
    try:
        data, smap = load_yaml(raw, source=str(path))
    except ProgramError as exc:  # (the YAML reader says "the program is empty")
        raise ProgramError([replace(d, message=f"the scenario file is empty: {_SHAPE}")
                            if d.code == "LR103" else d
                            for d in exc.diagnostics]) from None
    if not isinstance(data, Mapping) or "program" not in data or "scenarios" not in data:
        raise _problem(smap, _SHAPE, ())
    unknown = set(data) - {"program", "scenarios"}
    if unknown:
        key = sorted(unknown)[0]
        raise ProgramError([smap.diagnostic("LR601", f"unknown key {key!r}", (key,),
                                            did_you_mean(str(key), ["program", "scenarios"]),
                                            at_key=True)])
    program = _program(path, data["program"], smap)
    if not isinstance(data["scenarios"], list) or not data["scenarios"]:
        # (an empty list tests nothing: it passed, as no folder of scenarios does not)
        raise _problem(smap, "expected a list of one or more scenarios, each with a name "
                       "and steps", ("scenarios",))
    scenarios = []
    problems: list[Diagnostic] = []  # every problem past the top level
    names: dict[str, int | None] = {}
    for i, item in enumerate(data["scenarios"]):
        where: tuple[str | int, ...] = ("scenarios", i)

        def problem(message: str, *path: str | int, where: tuple[str | int, ...] = where,
                    out: list[Diagnostic] = problems, hint: str | None = None,
                    at_key: bool = False) -> None:
            out.append(smap.diagnostic("LR601", message, (*where, *path), hint,
                                       at_key=at_key))

        if not isinstance(item, Mapping) or "name" not in item or "steps" not in item:
            missing = [k for k in ("name", "steps") if isinstance(item, Mapping)
                       and k not in item]
            others = [str(k) for k in item if k not in ("name", "member", "steps")] \
                if isinstance(item, Mapping) else []
            hint = next((h for k in others if (h := did_you_mean(k, missing))), None)
            problem("each scenario has a name and steps (and a member)"
                    + (f": {' and '.join(missing)} missing" if missing else ""), hint=hint)
            continue
        member = item.get("member")
        if member is None:  # (left out, or `member:` with nothing after it)
            member = {"id": "member"}
        elif not isinstance(member, Mapping):  # ([], 0, "" and false are mistakes too)
            problem("expected a mapping of member state fields", "member")
            member = None
        extra = set(item) - {"name", "member", "steps"}
        if extra:
            key = sorted(extra)[0]
            problem(f"unknown key {key!r}", key, at_key=True,
                    hint=did_you_mean(str(key), ["name", "member", "steps"]))
        steps = item["steps"]
        if not isinstance(steps, list) or not steps:
            problem("expected a list of one or more steps", "steps")
            steps = []
        step_problems: list[Diagnostic] = []
        for j, step in enumerate(steps):
            kinds = [k for k in STEP_KINDS if isinstance(step, Mapping) and k in step]
            if len(kinds) != 1:
                others = [str(k) for k in step if k != "expect" and k not in STEP_KINDS] \
                    if isinstance(step, Mapping) else []
                problem(f"each step is exactly one of {', '.join(STEP_KINDS)}", "steps", j,
                        hint=next((h for k in others
                                   if (h := did_you_mean(k, list(STEP_KINDS)))), None))
                continue
            bad = set(step) - {kinds[0], "expect"}
            if bad:  # (said, and the rest of the step still read: every problem at once)
                key = sorted(bad)[0]
                problem(f"unknown key {key!r} in a step", "steps", j, key, at_key=True,
                        hint=did_you_mean(str(key), ["expect"]))
            expect = step.get("expect")
            if expect is None:  # (left out, or `expect:` with nothing after it)
                expect = {}
            elif not isinstance(expect, Mapping):  # ([], false and 0 are mistakes too)
                problem("expected a mapping of expectations", "steps", j, "expect")
                continue
            known = {}  # (the expectations that can be checked further)
            for key, value in expect.items():
                if key in ("perks", "events", "signals") and not (
                        isinstance(value, str) or (isinstance(value, list) and all(
                            isinstance(v, str) for v in value))):
                    problem("expected a name or a list of names", "steps", j, "expect", key)
                elif key not in _EXPECT_KEYS:
                    problem(f"unknown expectation {key!r} (one of {', '.join(_EXPECT_KEYS)})",
                            "steps", j, "expect", key, at_key=True,
                            hint=did_you_mean(str(key), list(_EXPECT_KEYS)))
                else:
                    known[key] = value
            step_problems += _step_problems(smap, program, kinds[0], step[kinds[0]], known,
                                            (*where, "steps", j))
        problems += _name_problems(smap, item["name"], names, where)
        if member is not None:
            problems += _member_problems(smap, program, member, (*where, "member"))
        problems += step_problems
        if problems or member is None:
            continue  # (the file is refused below: only its problems are wanted now)
        position = smap.locate(where)
        step_lines = []
        for j, step in enumerate(steps):
            found = smap.locate((*where, "steps", j)) or position
            step_lines.append({**step, "__line__": found.line if found else None})
        scenarios.append(Scenario(
            name=str(item["name"]), member=dict(member),
            steps=tuple(step_lines), source=str(path), line=position.line if position else None,
            index=i))
    if problems:
        # in the file's order (a step's own problems are found before its expectations')
        problems.sort(key=lambda d: (d.line is None, d.line or 0, d.column or 0))
        raise ProgramError(problems)
    return program, scenarios


_MONEY_KEYS = ("payable", "discount", "redeemed", "qualifying_spend", "spend", "money_refunded")
_COUNT_KEYS = ("points", "balance", "pending")
_PURCHASE_KEYS = ("payable", "discount", "perks", "redeemed", "qualifying_spend")
_MEMBER_FIELDS = list(MemberState.model_fields)


def _name_problems(smap: SourceMap, name: Any, names: dict[str, int | None],
                   where: tuple[str | int, ...]) -> list[Diagnostic]:
    """A scenario's name is text, and no other scenario of the file has it (a test id)."""
    path = (*where, "name")
    if not isinstance(name, str) or not name.strip():
        return [smap.diagnostic("LR601", f"expected the scenario's name, as text (got "
                                f"{show_value(name)})", path)]
    if "::" in name:  # (pytest's separator in a test's id: such a one cannot be chosen)
        return [smap.diagnostic("LR601", f"{name!r} holds '::', which pytest reads as a "
                                "separator of a test's id: the scenario could not be chosen "
                                "with pytest's -k or its id", path, "write ' - ' or ': '")]
    if name in names:
        first = names[name]
        on = f" on line {first}" if first else ""
        return [smap.diagnostic("LR601", f"{name!r} is already the name of the scenario{on}: "
                                "each scenario of a file has a name of its own", path)]
    found = smap.locate(where)
    names[name] = found.line if found else None
    return []


def _input_problem(smap: SourceMap, exc: InputError, path: tuple[str | int, ...],
                   fields: list[str]) -> Diagnostic:
    """An InputError about a value written in the scenario file, at that value."""
    loc: tuple[str | int, ...] = ()
    if exc.field:
        loc = tuple(int(index) if index else name
                    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", exc.field))
    prefix = f"{exc.kind}: {exc.field}: " if exc.field else f"{exc.kind}: "
    message = str(exc).removeprefix(prefix)
    hint = None
    if message == "unknown field" and loc and isinstance(loc[-1], str) and len(loc) == 1:
        hint = did_you_mean(loc[-1], fields)
    return smap.diagnostic("LR601", message, (*path, *loc), hint,
                           at_key=message == "unknown field")  # (where the key is written)


# an id that reads, put in for a member's own while its other fields are checked
_STAND_IN = "member"


def _member_problems(smap: SourceMap, program: Program, member: Mapping[str, Any],
                     path: tuple[str | int, ...]) -> list[Diagnostic]:
    """The starting member, checked as the engine will read it (its spend in the currency's
    unit too), and its tier against the program's tiers: every field's problem, not the
    first alone (the engine reports one; the file is read again without each field found)."""
    out = []
    rest = dict(member)
    for _ in range(len(member) + 2):
        try:
            spend_in_unit(coerce(MemberState, rest, "member"), program.quantum,
                          program.currency)
            break
        except InputError as exc:
            out.append(_input_problem(smap, exc, path, _MEMBER_FIELDS))
            top = re.match(r"[^.\[]+", exc.field or "")
            name = top.group() if top else None
            if name == "id" and rest.get("id") != _STAND_IN:  # (required: one that reads)
                rest["id"] = _STAND_IN
            elif name in rest:
                del rest[name]
            else:  # (the whole state, or nothing left to take away)
                break
    tier = member.get("tier")
    if isinstance(tier, str) and tier not in program.tier_ids:
        out.append(_tier_problem(smap, program, tier, (*path, "tier")))
    return out


def _tier_problem(smap: SourceMap, program: Program, tier: Any, path: tuple[str | int, ...]
                  ) -> Diagnostic:
    tiers = list(program.tier_ids)
    return smap.diagnostic("LR601", f"unknown tier {show_value(tier)}; the program has {tiers}",
                           path, did_you_mean(str(tier), tiers))


def _whole(value: Any) -> bool:
    if isinstance(value, Decimal):  # (100.0 is 100 points, and compares equal to it)
        return value.is_finite() and value == value.to_integral_value()
    return isinstance(value, int) and not isinstance(value, bool)


def _step_problems(smap: SourceMap, program: Program, kind: str, payload: Any,
                   expect: Mapping[str, Any], path: tuple[str | int, ...]) -> list[Diagnostic]:
    """A step's expectations, each a value of its kind; and (unless the step is meant to be
    refused) a purchase read as the engine reads it, an advance's instant."""
    out = []
    for key, value in expect.items():
        at = (*path, "expect", key)
        if (key in _PURCHASE_KEYS and kind != "purchase") or \
                (key == "money_refunded" and kind != "refund"):
            step = "purchase" if key in _PURCHASE_KEYS else "refund"
            out.append(smap.diagnostic("LR601", f"{key} is said of a {step} step, not of "
                                       f"a{'n' if kind == 'advance' else ''} {kind} step", at))
        elif key in _MONEY_KEYS:
            try:
                # (a member's spend adds purchases up: read as a state's is, below 10^18)
                limit = SPEND_LIMIT if key == "spend" else AMOUNT_LIMIT
                amount = parse_money(value, limit)
            except ValueError as refused:
                # (a number too large is said so, not as if it were no amount at all)
                what = f"below 10^{limit.adjusted()}" if "below 10^" in str(refused) \
                    else "such as 720.00"
                out.append(smap.diagnostic("LR601", f"expected an amount {what} "
                                           f"(got {show_value(value)})", at))
            else:
                if finer := _finer_than_currency(program, amount):
                    out.append(smap.diagnostic("LR601", f"{finer}: no decision is ever "
                                               "that amount", at))
        elif key in _COUNT_KEYS and not _whole(value):
            out.append(smap.diagnostic("LR601", "expected a whole number of points (got "
                                       f"{show_value(value)})", at))
        elif key == "tier" and (not isinstance(value, str) or value not in program.tier_ids):
            out.append(_tier_problem(smap, program, value, at))
        elif key == "error" and (not isinstance(value, str) or not value):
            out.append(smap.diagnostic("LR601", "expected the text the step's error message "
                                       f"contains (got {show_value(value)})", at))
    if "error" in expect:
        for key in expect:  # (a step that fails has no decision: nothing else to check)
            if key != "error":
                out.append(smap.diagnostic(
                    "LR601", f"a step expected to fail has no decision to check {key} "
                    "against: give error alone", (*path, "expect", key), at_key=True))
        return out
    if kind == "advance":
        try:
            parse_instant(payload, "advance", "step")
        except InputError as exc:
            out.append(smap.diagnostic("LR601", str(exc).removeprefix("step: advance: "),
                                       (*path, kind)))
    elif not isinstance(payload, Mapping):
        out.append(smap.diagnostic("LR601", f"a {kind} step is a mapping (got "
                                   f"{show_value(payload)})", (*path, kind)))
    elif kind == "purchase":
        try:
            txn = coerce(Transaction, dict(payload), "transaction")
        except InputError as exc:
            out.append(_input_problem(smap, exc, (*path, kind), list(Transaction.model_fields)))
        else:  # (what evaluation would refuse, said at its place before anything runs)
            amounts: list[tuple[tuple[str | int, ...], Decimal]] = [
                (("items", k, "amount"), item.amount) for k, item in enumerate(txn.items)]
            amounts += [((name,), getattr(txn, name)) for name in
                        ("shipping", "tax", "paid_with_points") if name in payload]
            for where, amount in amounts:
                if finer := _finer_than_currency(program, amount):
                    out.append(smap.diagnostic("LR601", finer, (*path, kind, *where)))
    else:
        out += _event_step_problems(smap, program, kind, payload, (*path, kind))
    return out


def _as_step(keys: tuple[str, ...]) -> tuple[str, ...]:
    """An event's keys as a step writes them: a behaviour names its event with event:, as
    a `loyaltyrules run` line does (the call's type:)."""
    return tuple("event" if key == "type" else key for key in keys)


def _event_step_problems(smap: SourceMap, program: Program, kind: str,
                         payload: Mapping[str, Any], path: tuple[str | int, ...]
                         ) -> list[Diagnostic]:
    """A refund, behaviour or reward step's keys, moment and names, said at their place
    when the file is read, as a purchase's are (they were found only when the step ran,
    with no column): what the program has no rule for is a mistake of the file too."""
    out = []
    allowed = _as_step(EVENT_FIELDS[kind])
    for key in payload:
        if key not in allowed:
            hint = ("a behaviour step names its event with event:" if key == "type" and
                    kind == "behaviour" else did_you_mean(str(key), list(allowed)))
            out.append(smap.diagnostic("LR601", f"unknown key {key!r} in a {kind} step",
                                       (*path, key), hint, at_key=True))
    for key in _as_step(EVENT_NEEDS[kind]):
        if payload.get(key) in (None, ""):
            out.append(smap.diagnostic("LR601", f"a {kind} step needs {key}", path))
    for key in ("id", "transaction_id", "event", "reward", "channel"):
        value = payload.get(key)
        if value not in (None, "") and not isinstance(value, str):  # (as the call refuses)
            out.append(smap.diagnostic("LR601", f"expected text (got {show_value(value)})",
                                       (*path, key)))
    if "attrs" in payload and not isinstance(payload["attrs"], Mapping | None):
        out.append(smap.diagnostic("LR601", "attrs is a mapping of names to values",
                                   (*path, "attrs")))
    if payload.get("at") not in (None, ""):
        try:
            parse_instant(payload["at"], "at", "step")
        except InputError as exc:
            out.append(smap.diagnostic("LR601", str(exc).removeprefix("step: at: "),
                                       (*path, "at")))
    model = program.model
    if kind == "behaviour" and isinstance(payload.get("event"), str):
        known = sorted({b.event for b in model.behaviours})
        if payload["event"] not in known:
            said = f"the program's are {', '.join(known)}" if known else "it has none"
            out.append(smap.diagnostic(
                "LR601", f"no behaviour rule of the program is for event "
                f"{payload['event']!r} ({said})", (*path, "event"),
                did_you_mean(payload["event"], known)))
    if kind == "reward" and isinstance(payload.get("reward"), str):
        rewards = [r.id for r in model.rewards]
        if payload["reward"] not in rewards:
            has = f"the program has {', '.join(rewards)}" if rewards else "it has no rewards"
            out.append(smap.diagnostic(
                "LR601", f"unknown reward {payload['reward']!r}; {has}", (*path, "reward"),
                did_you_mean(payload["reward"], rewards)))
    return out


def _finer_than_currency(program: Program, amount: Decimal) -> str | None:
    """What is wrong with an amount written finer than the program's currency (10.005 in
    CNY), or None."""
    if amount == amount.quantize(program.quantum):
        return None
    return f"{show_value(amount)} has more decimals than {program.model.program.currency} allows"


def discover(paths: list[str]) -> Iterator[Path]:
    """Scenario files named on the command line, or found (``*.scenarios.yaml``) in folders;
    each once, however often it is named (a folder and a file in it: run twice, counted
    twice)."""
    seen: set[Path] = set()
    for name in paths:
        p = Path(name)
        for found in sorted(p.rglob("*.scenarios.yaml")) if p.is_dir() else [p]:
            key = found.resolve()
            if key not in seen:
                seen.add(key)
                yield found


def run_scenario(program: Program, scenario: Scenario) -> ScenarioResult:
    """Run every step from the scenario's member, checking each expectation and the ledger
    identity after every step."""
    result = ScenarioResult(scenario)
    try:
        member = coerce(MemberState, dict(scenario.member), "member")
    except LoyaltyError as exc:
        result.failures.append(StepFailure(0, "member", "member", "a valid member", str(exc),
                                           scenario.line))
        return result
    for n, step in enumerate(scenario.steps):
        kind = next(k for k in STEP_KINDS if k in step)
        expect = dict(step.get("expect") or {})
        line = step.get("__line__")
        try:
            decision = _run_step(program, member, kind, step[kind])
        except LoyaltyError as exc:
            if "error" in expect and str(expect["error"]) in str(exc):
                continue
            result.failures.append(StepFailure(
                n, kind, "error", expect.get("error", _NO_ERROR), str(exc), line))
            return result
        if "error" in expect:
            result.failures.append(StepFailure(n, kind, "error", expect["error"], _NO_ERROR,
                                               line))
            return result
        member = apply(member, decision)
        failures = list(_compare(n, kind, expect, decision, member, line))
        if not check_identity(member):
            failures.append(StepFailure(n, kind, "ledger identity", "earned − redeemed − "
                                        "expired − reversed = balance", member.totals, line))
        if failures:
            text = decision.explain()
            failures[0] = StepFailure(**{**failures[0].__dict__, "explanation": text})
            result.failures.extend(failures)
            return result
    return result


def run_step(program: Program, member: MemberState | dict[str, Any],
             step: Mapping[str, Any]) -> Decision | LifecycleDecision:
    """Run one scenario step (``purchase``, ``refund``, ``behaviour``, ``reward`` or
    ``advance``) for ``member``; apply the decision with :func:`loyaltyrules.apply`."""
    kinds = [k for k in STEP_KINDS if k in step]
    if len(kinds) != 1:
        raise InputError(f"a step is exactly one of {', '.join(STEP_KINDS)}", kind="step")
    m = coerce(MemberState, member, "member")
    return _run_step(program, m, kinds[0], step[kinds[0]])


def _run_step(program: Program, member: MemberState, kind: str, payload: Any
              ) -> Decision | LifecycleDecision:
    if kind == "advance":
        return advance(program, member, str(payload))
    if not isinstance(payload, Mapping):
        raise InputError(f"a {kind} step is a mapping", kind="step")
    data = dict(payload)
    if kind == "purchase":
        return evaluate(program, member, data)
    if kind == "refund":
        return refund(program, member, data)
    if kind == "behaviour":
        if "event" in data:
            data["type"] = data.pop("event")
        return behaviour(program, member, data)
    return redeem_reward(program, member, data)


def _compare(n: int, kind: str, expect: Mapping[str, Any], d: Decision | LifecycleDecision,
             member: MemberState, line: int | None) -> Iterator[StepFailure]:
    events = list(d.events)
    got: dict[str, Any] = {
        "tier": member.tier,
        "balance": member.points,
        "pending": member.pending_points,
        "spend": member.qualifying_spend,
        "events": sorted({e.type for e in events}),
        "signals": sorted({e.rule for e in events if e.type == "signal" and e.rule}),
    }
    if isinstance(d, Decision):
        got.update(payable=d.payable, discount=d.total_discount, points=d.points_total,
                   perks=sorted(p.perk for p in d.perks), redeemed=d.redeemed_points,
                   qualifying_spend=d.qualifying_spend)
    else:
        got["points"] = d.points_change
        if d.refund is not None:
            got["money_refunded"] = d.refund.money_refunded
    for key, want in expect.items():
        if key not in got:
            yield StepFailure(n, kind, key, want, f"(not reported for a {kind} step)", line)
            continue
        have = got[key]
        if key in ("events", "signals"):
            wanted = [want] if isinstance(want, str) else list(want)
            missing = [w for w in wanted if w not in have]
            if missing:
                yield StepFailure(n, kind, key, wanted, have, line)
        elif key == "perks":
            wanted = [want] if isinstance(want, str) else sorted(want or [])
            if wanted != have:
                yield StepFailure(n, kind, key, wanted, have, line)
        elif isinstance(have, Decimal):
            try:
                wanted_money = parse_money(want, SPEND_LIMIT)  # (checked at load)
            except ValueError:
                wanted_money = None
            if wanted_money != have:  # (shown as the amount it is: '99' is 99)
                yield StepFailure(n, kind, key, want if wanted_money is None else wanted_money,
                                  have, line)
        elif have != want:
            yield StepFailure(n, kind, key, want, have, line)
