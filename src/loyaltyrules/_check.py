"""``loyaltyrules check``: invariants tried on generated inputs, with shrunk counterexamples.

The built-in invariants hold for every program the engine runs correctly — points are never
negative, discounts stay within the amount, evaluation is deterministic and leaves its inputs
alone, a full refund undoes a purchase, a replayed event changes nothing, the ledger identity
holds after every step — plus one about the program's design: a higher tier never gets a
smaller discount, nor fewer points while paying as much (tier monotonicity). The program's own
``invariants:`` are checked on every generated purchase.

Each invariant is a small function in the table :data:`INVARIANTS` that returns ``None`` or
what it found. Inputs come from :mod:`loyaltyrules.testing`; hypothesis shrinks a failing one
to a minimal example, rendered as a scenario file a designer can paste and run.

>>> report = check(load_program("programs/rfm-3tier.yaml"), seed=1)   # doctest: +SKIP
>>> report.ok, [v.invariant for v in report.violations]              # doctest: +SKIP
(False, ['tier-monotonicity'])

Needs hypothesis (``pip install loyaltyrules[test]``); it is imported when ``check`` runs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ._decision import Decision, LifecycleDecision
from ._errors import EvaluationError, InputError, LoyaltyError
from ._expressions import DECISION_FIELDS, ExpressionRuntimeError, Scope
from ._member import MemberState, Transaction, coerce, instant_text
from ._model import Invariant
from ._program import Program, load_program

if TYPE_CHECKING:
    from hypothesis import strategies as st

__all__ = ["INVARIANTS", "CheckReport", "InvariantResult", "Violation", "check"]


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """An invariant that does not hold: its name, what went wrong, and the shrunk
    counterexample as a ready-to-paste scenario file (YAML text)."""

    invariant: str
    message: str
    scenario: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.message}"


@dataclass(frozen=True)
class InvariantResult:
    """One invariant: checked on how many examples, and the violation if one was found.
    ``complete`` is False when the time limit stopped the search early."""

    name: str
    description: str
    declared: bool
    examples: int
    violation: Violation | None = None
    complete: bool = True


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found. ``ok`` when no invariant is violated and every one was checked
    to the end. ``seed`` is always set: the same seed (and program) gives the same report."""

    program: str
    source: str
    seed: int
    results: tuple[InvariantResult, ...]
    examples_run: int
    elapsed: float
    timed_out: bool = False  # the time limit cut a search or a shrink short
    deadline: float | None = None

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(r.violation for r in self.results if r.violation is not None)

    @property
    def incomplete(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if not r.complete and r.violation is None)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.incomplete

    def render(self) -> str:
        """The report for a terminal: one line per invariant, then each counterexample."""
        out = [f"check {self.program} ({self.source}), seed {self.seed} "
               f"(rerun with --seed {self.seed})"]
        width = max((len(r.name) for r in self.results), default=0)
        for r in self.results:
            status = "FAIL" if r.violation else ("ok" if r.complete else "STOP")
            text = r.violation.message.splitlines()[0] if r.violation else r.description
            if not r.complete and r.violation is None:
                text += " (stopped at the time limit)"
            mark = " [program]" if r.declared else ""
            out.append(f"  {status:<5}{r.name:<{width}}  {text}{mark}")
        n = len(self.violations)
        verdict = "ok" if self.ok else (f"{n} violation{'s' if n != 1 else ''}" if n
                                        else "incomplete")
        out.append(f"{verdict}: {len(self.results)} invariants, {self.examples_run} examples, "
                   f"{self.elapsed:.1f} s")
        if self.timed_out:
            limit = f" of {self.deadline:g} s" if self.deadline is not None else ""
            out.append(f"stopped at the time limit{limit}: how far it got depends on the "
                       "machine, so this run is not exactly repeatable with --seed (raise "
                       "--deadline or lower --examples for one that is)")
        for v in self.violations:
            out += ["", f"── {v.invariant}: {v.message.splitlines()[0]}", v.scenario.rstrip()]
        return "\n".join(out) + "\n"


# --- what an invariant found, as scenarios --------------------------------------------------


@dataclass(frozen=True)
class _Step:
    kind: str
    payload: Any
    expect: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class _Scenario:
    name: str
    member: Mapping[str, Any]
    steps: tuple[_Step, ...]


@dataclass(frozen=True)
class _Found:
    """An example that breaks an invariant: why (``title`` names the scenario), and the
    scenarios that show it."""

    title: str
    message: str
    scenarios: tuple[_Scenario, ...] = ()


# --- prepared examples --------------------------------------------------------------------------


@dataclass
class _Purchase:
    """A generated (member, transaction) and its traced decision (or the error it raised)."""

    member: dict[str, Any]
    txn: dict[str, Any]
    decision: Decision | None
    error: Exception | None
    gap: timedelta = timedelta(hours=1)


@dataclass
class _Record:
    step: Mapping[str, Any]
    kind: str
    before: MemberState
    decision: Decision | LifecycleDecision | None = None
    after: MemberState | None = None
    error: Exception | None = None
    skipped: bool = False  # a refund of lines that cost nothing: "nothing to refund"
    replay: MemberState | None = None
    replay_error: Exception | None = None


@dataclass
class _Trail:
    member: dict[str, Any]
    records: list[_Record]


class _Context:
    def __init__(self, program: Program) -> None:
        self.program = program

    def money(self, value: Decimal) -> Decimal:
        """An amount written with the currency's minor units, as a designer reads it."""
        return value.quantize(self.program.quantum) if value == value.quantize(
            self.program.quantum) else value

    def evaluate(self, member: Any, txn: Any, *, trace: bool = True) -> Decision:
        from ._engine import evaluate

        return evaluate(self.program, copy.deepcopy(member), copy.deepcopy(txn), trace=trace)

    def purchase(self, example: tuple[dict[str, Any], dict[str, Any]],
                 gap: timedelta = timedelta(hours=1)) -> _Purchase:
        member, txn = example
        try:
            return _Purchase(member, txn, self.evaluate(member, txn), None, gap)
        except Exception as exc:  # reported by evaluates-without-error
            return _Purchase(member, txn, None, exc, gap)

    def refund_case(self, example: tuple[tuple[dict[str, Any], dict[str, Any]], timedelta]
                    ) -> _Purchase:
        return self.purchase(example[0], example[1])

    def fit_redemption(self, state: MemberState, step: Mapping[str, Any]
                       ) -> Mapping[str, Any]:
        """A purchase that asks to pay with points, asking for what the member may use then:
        whole steps, at most the balance and the program's share of the order, or none."""
        from ._engine import evaluate
        from ._lifecycle import Redeeming, advance_state

        txn = step.get("purchase")
        r = self.program.model.redemption
        if not isinstance(txn, Mapping) or "redeem_points" not in txn or r is None:
            return step
        plain = {k: v for k, v in txn.items() if k != "redeem_points"}
        at = datetime.fromisoformat(str(txn["at"]))
        usable, _ = advance_state(self.program.model, state, at, self.program.zone)
        goods = evaluate(self.program, state, copy.deepcopy(plain), trace=False).goods_paid
        quantum = self.program.quantum
        rate = Redeeming(r.points, r.value, r.step, quantum)
        cap = rate.most_within(int((goods * r.max_share) // quantum))
        points = min(int(txn["redeem_points"]), max(usable.points, 0), cap)
        points -= points % r.step
        points = rate.points_for(rate.units(points))  # (no points that would pay nothing)
        if points < max(r.minimum, 1):
            return {"purchase": plain}
        return {"purchase": {**plain, "redeem_points": points}}

    def trail(self, scenario: Mapping[str, Any]) -> _Trail:
        from ._ledger import apply
        from .testing import run_step

        member = scenario["member"]
        state = coerce(MemberState, copy.deepcopy(member), "member")
        records: list[_Record] = []
        for step in scenario["steps"]:
            kind = next(iter(step))
            with contextlib.suppress(Exception):  # a failing purchase is run and reported
                step = self.fit_redemption(state, step)
            record = _Record(step, kind, state)
            records.append(record)
            try:
                record.decision = run_step(self.program, state, copy.deepcopy(step))
                record.after = apply(state, record.decision)
            except InputError as exc:
                if kind == "refund" and "nothing to refund" in str(exc):
                    record.skipped, record.after = True, state
                    continue
                record.error = exc
                break
            except Exception as exc:
                record.error = exc
                break
            try:
                # the same decision applied twice, then the same event run again
                record.replay = apply(record.after, record.decision)
                if record.replay == record.after:
                    again = run_step(self.program, record.after, copy.deepcopy(step))
                    record.replay = apply(record.after, again)
            except InputError as exc:
                # evaluate does not look at event ids: re-evaluating a purchase already applied
                # may be refused (its points are spent), which changes nothing
                if kind != "purchase":
                    record.replay_error = exc
            except Exception as exc:
                record.replay_error = exc
            state = record.after
        return _Trail(member, records)


# --- rendering ------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./\-]*")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return json.dumps(format(value, "f"))
    if isinstance(value, (date, datetime)):
        return json.dumps(value.isoformat())
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _text(value: str) -> str:
    """A block scalar written plain when YAML reads it back unchanged, else quoted."""
    if value == value.strip() and "\n" not in value:
        try:
            if yaml.safe_load(f"k: {value}") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


def _render(invariant: str, seed: int, program_ref: str, found: _Found) -> str:
    lines = [f"# counterexample for {invariant}, seed {seed}"]
    lines += [f"# {part}" for part in found.message.splitlines()]
    if program_ref.startswith("<"):
        lines.append("# the program was not read from a file: point `program:` at it")
        program_ref = "program.yaml"
    else:
        # where scenario files go (docs/verifying.md): a scenarios/ folder beside the
        # program; program: is read relative to the scenario file, wherever it is run from
        program = Path(program_ref)
        lines.append(f"# save as {program.parent / 'scenarios'}/<name>.scenarios.yaml "
                     "(program: is relative to the scenario file)")
        program_ref = f"../{program.name}"
    lines.append(f"program: {_scalar(program_ref)}")
    lines.append("scenarios:")
    for scenario in found.scenarios:
        lines.append(f"  - name: {_text(scenario.name)}")
        lines.append(f"    member: {_flow(scenario.member)}")
        lines.append("    steps:")
        for step in scenario.steps:
            lines += [f"      # {part}" for part in step.note.splitlines()]
            lines.append(f"      - {step.kind}: {_flow(step.payload)}")
            if step.expect:
                lines.append(f"        expect: {_flow(step.expect)}")
    return "\n".join(lines) + "\n"


def _money(value: Decimal) -> str:
    return format(value, "f")


def _purchase_expect(d: Decision) -> dict[str, Any]:
    return {"payable": d.payable, "discount": d.total_discount, "points": d.points_total}


def _state_expect(ctx: _Context, state: MemberState) -> dict[str, Any]:
    return {"balance": state.points, "pending": state.pending_points,
            "spend": ctx.money(state.qualifying_spend)}


def _step_expect(record: _Record) -> dict[str, Any]:
    d = record.decision
    if isinstance(d, Decision):
        out = _purchase_expect(d)
    elif isinstance(d, LifecycleDecision):
        out = {"points": d.points_change}
    else:
        out = {}
    if record.after is not None:
        out.update(balance=record.after.points, pending=record.after.pending_points)
    return out


def _one_purchase(name: str, p: _Purchase, expect: Mapping[str, Any], note: str = ""
                  ) -> _Scenario:
    return _Scenario(name, p.member, (_Step("purchase", p.txn, expect, note),))


def _error_text(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _steps_until(trail: _Trail, last: int) -> list[_Step]:
    """The trail's steps up to ``last``; a skipped refund expects its error."""
    out = []
    for record in trail.records[:last]:
        expect: dict[str, Any] = {"error": "nothing to refund"} if record.skipped else {}
        out.append(_Step(record.kind, record.step[record.kind], expect))
    return out


# --- the invariants -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Invariant:
    name: str
    description: str
    group: str  # "purchase", "refund" or "sequence": which examples it reads
    test: Callable[[_Context, Any], _Found | None]
    declared: bool = False


def _evaluates(ctx: _Context, p: _Purchase) -> _Found | None:
    if p.error is None:
        return None
    exc = p.error
    if isinstance(exc, InputError):
        why = f"the engine refused a valid purchase: {exc}"
    elif isinstance(exc, EvaluationError):
        why = f"a rule failed while evaluating: {exc}"
    else:
        why = f"the engine crashed: {_error_text(exc)}"
    expect = {"error": str(exc).splitlines()[0]} if isinstance(exc, LoyaltyError) else {}
    return _Found(why, why, (_one_purchase(f"evaluates without error — {why}", p, expect),))


def _points_non_negative(ctx: _Context, p: _Purchase) -> _Found | None:
    d = p.decision
    if d is None:
        return None
    bad = [line for line in d.points if line.points < 0]
    if d.points_total >= 0 and not bad:
        return None
    which = ", ".join(f"{line.rule} {line.points}" for line in bad) or f"{d.points_total}"
    why = f"negative points: {which}"
    return _Found(why, why, (_one_purchase(f"points never negative — {why}", p,
                                           _purchase_expect(d)),))


def _discount_problems(ctx: _Context, p: _Purchase, d: Decision) -> Iterator[str]:
    zero = Decimal(0)
    if d.payable < 0:
        yield f"payable is negative ({_money(d.payable)})"
    if not zero <= d.total_discount <= d.list_amount:
        yield (f"total discount {_money(d.total_discount)} is outside 0 … "
               f"{_money(d.list_amount)}")
    if d.goods_paid != d.list_amount - d.total_discount:
        yield (f"goods paid {_money(d.goods_paid)} is not list {_money(d.list_amount)} − "
               f"discount {_money(d.total_discount)}")
    if sum((x.amount for x in d.discounts), zero) != d.total_discount:
        yield "the discount lines do not add up to the total discount"
    excluded = ctx.program.plan().excluded_from_discounts
    discountable = zero
    for k, (item, paid) in enumerate(zip(p.txn["items"], d.line_paid, strict=False)):
        amount = Decimal(item["amount"])
        if not zero <= paid <= amount:
            yield f"line {k} pays {_money(paid)} of {_money(amount)}"
        if item.get("category", "general") in excluded:
            if paid != amount:
                yield (f"line {k} is in excluded category {item.get('category')!r} but was "
                       f"discounted to {_money(paid)}")
        else:
            discountable += amount
    for line in d.discounts:
        if line.amount < 0:
            yield f"discount {line.rule} is negative ({_money(line.amount)})"
    limit = ctx.program.model.policies.discounts.max_total
    if limit is not None and d.total_discount > discountable * limit:
        yield (f"total discount {_money(d.total_discount)} exceeds max_total "
               f"{_money((limit * 100).normalize())}% of {_money(discountable)}")


def _discount_within(ctx: _Context, p: _Purchase) -> _Found | None:
    d = p.decision
    if d is None:
        return None
    problems = list(_discount_problems(ctx, p, d))
    if not problems:
        return None
    why = "; ".join(problems)
    return _Found(problems[0], why, (_one_purchase(f"discounts within the amount — "
                                                   f"{problems[0]}", p, _purchase_expect(d)),))


def _numbers(d: Decision) -> dict[str, Any]:
    data = d.model_dump(exclude={"trace"})
    for line in data["points"]:
        line.pop("detail", None)
    return data


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _deterministic(ctx: _Context, p: _Purchase) -> _Found | None:
    d = p.decision
    if d is None:
        return None
    again = ctx.evaluate(p.member, p.txn)
    fast = ctx.evaluate(p.member, p.txn, trace=False)
    if again != d:
        why = "the same purchase evaluated twice gave different decisions (" + ", ".join(
            _differences(d.model_dump(), again.model_dump())) + ")"
    elif _numbers(fast) != _numbers(d):
        why = "with trace=False the decision differs (" + ", ".join(
            _differences(_numbers(d), _numbers(fast))) + ")"
    else:
        return None
    return _Found(why, why, (_one_purchase(f"deterministic — {why}", p, _purchase_expect(d),
                                           note="the traced decision"),))


def _inputs_unchanged(ctx: _Context, p: _Purchase) -> _Found | None:
    from ._engine import evaluate
    from ._ledger import apply

    if p.decision is None:
        return None
    member, txn = copy.deepcopy(p.member), copy.deepcopy(p.txn)
    d = evaluate(ctx.program, member, txn)
    apply(member, d)
    changed = [name for name, a, b in (("member", member, p.member), ("transaction", txn, p.txn))
               if a != b]
    if not changed:
        return None
    why = f"evaluate/apply changed the {' and the '.join(changed)} passed in"
    return _Found(why, why, (_one_purchase(f"inputs unchanged — {why}", p,
                                           _purchase_expect(d)),))


def _tier_monotonicity(ctx: _Context, p: _Purchase) -> _Found | None:
    tiers = ctx.program.tier_ids
    decisions: list[Decision | None] = []
    for tier in tiers:
        try:
            decisions.append(ctx.evaluate({**p.member, "tier": tier}, p.txn))
        except Exception:  # reported by evaluates-without-error
            decisions.append(None)
    for j in range(1, len(tiers)):
        for i in range(j):
            lo, hi = decisions[i], decisions[j]
            if lo is None or hi is None:
                continue
            if hi.total_discount < lo.total_discount:
                title = f"{tiers[j]} gets a smaller discount than {tiers[i]}"
                why = (f"{title}: {_money(hi.total_discount)} vs {_money(lo.total_discount)} "
                       f"off the same {_money(lo.list_amount)} purchase")
            elif hi.points_total < lo.points_total and hi.goods_paid >= lo.goods_paid:
                title = f"{tiers[j]} earns fewer points than {tiers[i]}"
                why = (f"{title} while paying as much: {hi.points_total} vs "
                       f"{lo.points_total} points, paying {_money(hi.goods_paid)} vs "
                       f"{_money(lo.goods_paid)}")
            else:
                continue
            low = _one_purchase(f"tier monotonicity — {tiers[i]} member, for comparison",
                                dataclasses.replace(p, member={**p.member, "tier": tiers[i]}),
                                _purchase_expect(lo))
            high = _one_purchase(f"tier monotonicity — {title}",
                                 dataclasses.replace(p, member={**p.member, "tier": tiers[j]}),
                                 _purchase_expect(hi))
            return _Found(title, why, (low, high))
    return None


def _refund_restores(ctx: _Context, p: _Purchase) -> _Found | None:
    from ._ledger import apply
    from ._lifecycle import advance, refund

    d = p.decision
    if d is None or d.goods_paid <= 0:
        return None
    program = ctx.program
    start = coerce(MemberState, copy.deepcopy(p.member), "member")
    bought = apply(start, d)
    at = datetime.fromisoformat(p.txn["at"]) + p.gap
    event = {"id": "r1", "at": instant_text(at, program.zone),
             "transaction_id": p.txn["id"]}
    steps = [_Step("purchase", p.txn, _purchase_expect(d))]
    try:
        after = apply(bought, refund(program, bought, dict(event)))
    except LoyaltyError as exc:
        why = f"a full refund of the purchase was refused: {exc}"
        steps.append(_Step("refund", event))
        return _Found(why, why, (_Scenario(f"refund restores — {why}", p.member, tuple(steps)),))
    baseline = apply(start, advance(program, start, at))
    want = _state_expect(ctx, baseline) | {"spend": ctx.money(start.qualifying_spend)}
    got = _state_expect(ctx, after)
    wrong = [k for k in want if want[k] != got[k]]
    if sum(after.spend_log.values(), Decimal(0)) != sum(start.spend_log.values(), Decimal(0)):
        wrong.append("spend by month")
    if not wrong:
        return None
    title = f"a full refund does not restore the {' and '.join(wrong)}"
    why = (f"{title}: after the refund " + ", ".join(f"{k} {_show(got[k])}" for k in got)
           + "; without the purchase " + ", ".join(f"{k} {_show(want[k])}" for k in want))
    steps.append(_Step("refund", event, want,
                       note="expected: as if the purchase had not happened; the engine gives "
                       + ", ".join(f"{k} {_show(got[k])}" for k in got)))
    return _Found(title, why, (_Scenario(f"refund restores — {title}", p.member, tuple(steps)),))


def _show(value: Any) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _as_scenarios(name: str, why: str, prepared: Any) -> tuple[_Scenario, ...]:
    if isinstance(prepared, _Purchase):
        return (_one_purchase(f"{name} — {why}", prepared, {}),)
    if isinstance(prepared, _Trail):
        steps = _steps_until(prepared, len(prepared.records))
        return (_Scenario(f"{name} — {why}", prepared.member, tuple(steps)),)
    return ()


def _sequence_found(name: str, trail: _Trail, k: int, title: str, why: str,
                    last: _Step, extra: Sequence[_Step] = ()) -> _Found:
    steps = [*_steps_until(trail, k), last, *extra]
    return _Found(title, why, (_Scenario(f"{name} — {title}", trail.member, tuple(steps)),))


def _events_accepted(ctx: _Context, trail: _Trail) -> _Found | None:
    for k, record in enumerate(trail.records):
        if record.error is not None:
            title = f"step {k + 1} ({record.kind}) raised {type(record.error).__name__}"
            why = f"{title}: {str(record.error).splitlines()[0]}"
            last = _Step(record.kind, record.step[record.kind], note=f"raises: {record.error}")
            return _sequence_found("events accepted", trail, k, title, why, last)
    return None


def _ledger_identity(ctx: _Context, trail: _Trail) -> _Found | None:
    from ._lifecycle import check_identity

    for k, record in enumerate(trail.records):
        state = record.after
        if state is None or check_identity(state):
            continue
        t = state.totals
        lots = sum(lot.points for lot in state.lots)
        title = f"the ledger identity breaks at step {k + 1} ({record.kind})"
        why = (f"{title}: earned {t.earned} − redeemed {t.redeemed} − expired {t.expired} − "
               f"reversed {t.reversed} = {t.earned - t.redeemed - t.expired - t.reversed}, "
               f"balance {state.points} + pending {state.pending_points}, lots {lots} − debt "
               f"{state.points_debt}")
        last = _Step(record.kind, record.step[record.kind], _step_expect(record),
                     note=why.split(": ", 1)[1])
        return _sequence_found("ledger identity", trail, k, title, why, last)
    return None


def _replay_no_op(ctx: _Context, trail: _Trail) -> _Found | None:
    for k, record in enumerate(trail.records):
        if record.after is None or record.skipped:
            continue
        if record.replay_error is not None:
            title = f"replaying step {k + 1} ({record.kind}) raised"
            why = f"{title} {_error_text(record.replay_error)}"
        elif record.replay is not None and record.replay != record.after:
            fields = _differences(record.after.model_dump(), record.replay.model_dump())
            title = f"replaying step {k + 1} ({record.kind}) changed the member"
            why = f"{title}: {', '.join(fields)}"
        else:
            continue
        payload = record.step[record.kind]
        last = _Step(record.kind, payload, _step_expect(record))
        again = _Step(record.kind, payload, _state_expect(ctx, record.after),
                      note="the same event again: it must change nothing")
        return _sequence_found("replay is a no-op", trail, k, title, why, last, (again,))
    return None


def _balance_non_negative(ctx: _Context, trail: _Trail) -> _Found | None:
    if ctx.program.model.ledger.negative_balance != "shortfall":
        return None
    for k, record in enumerate(trail.records):
        state = record.after
        if state is None or (state.points >= 0 and state.pending_points >= 0):
            continue
        title = f"the balance goes negative at step {k + 1} ({record.kind})"
        why = (f"{title}: balance {state.points}, pending {state.pending_points} "
               "(negative_balance: shortfall)")
        last = _Step(record.kind, record.step[record.kind], _step_expect(record))
        return _sequence_found("balance never negative", trail, k, title, why, last)
    return None


INVARIANTS: tuple[_Invariant, ...] = (
    _Invariant("evaluates-without-error", "a valid purchase is evaluated without an error",
               "purchase", _evaluates),
    _Invariant("points-non-negative", "points are never negative", "purchase",
               _points_non_negative),
    _Invariant("discount-within-amount", "discounts stay within the amount (and max_total); "
               "payable is never negative", "purchase", _discount_within),
    _Invariant("deterministic", "the same purchase gives the same decision, traced or not",
               "purchase", _deterministic),
    _Invariant("inputs-unchanged", "evaluate and apply leave the member and transaction alone",
               "purchase", _inputs_unchanged),
    _Invariant("tier-monotonicity", "a higher tier never gets a smaller discount, nor fewer "
               "points while paying as much", "purchase", _tier_monotonicity),
    _Invariant("refund-restores", "a full refund restores balance and qualifying spend",
               "refund", _refund_restores),
    _Invariant("events-accepted", "generated event sequences run without an error",
               "sequence", _events_accepted),
    _Invariant("ledger-identity", "earned − redeemed − expired − reversed = balance + pending "
               "after every step", "sequence", _ledger_identity),
    _Invariant("replay-no-op", "an event applied or run again changes nothing", "sequence",
               _replay_no_op),
    _Invariant("balance-non-negative", "the balance never goes negative (negative_balance: "
               "shortfall)", "sequence", _balance_non_negative),
)


# --- the program's own invariants -------------------------------------------------------------


def _decision_view(d: Decision) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for name in DECISION_FIELDS:
        if hasattr(d, name):
            view[name] = getattr(d, name)
        elif name.endswith("_count") and hasattr(d, name[:-6]):
            view[name] = len(getattr(d, name[:-6]))
        else:
            view[name] = None
    return view


def _scope(program: Program, member: Any, txn: Any, d: Decision) -> Scope:
    """The scope the engine's own conditions saw for this purchase, plus ``decision``."""
    from ._engine import _Ctx, _make_scope
    from ._lifecycle import advance_state

    m = coerce(MemberState, copy.deepcopy(member), "member")
    t = coerce(Transaction, copy.deepcopy(txn), "transaction")
    plan = program.plan()
    if plan.lifecycle or m.lots or m.advanced_to is not None:
        m, _ = advance_state(plan.model, m, t.at, program.zone)
    ctx = _Ctx(program, plan, m, t, t.at.astimezone(program.zone), False)
    return dataclasses.replace(_make_scope(ctx), decision=_decision_view(d))


def _declared(inv: Invariant) -> _Invariant:
    def test(ctx: _Context, p: _Purchase) -> _Found | None:
        d = p.decision
        if d is None:
            return None
        scope = _scope(ctx.program, p.member, p.txn, d)
        try:
            result = inv.expect.evaluate(scope)
        except ExpressionRuntimeError as exc:
            why = f"`{inv.expect.source}` failed: {exc}"
        else:
            if result is True:
                return None
            if result is False:
                why = inv.expect.explain(scope)
            else:
                why = f"`{inv.expect.source}` gave {result!r}, not true or false"
        return _Found(title, why, (_one_purchase(f"{inv.id} — {title}", p,
                                                 _purchase_expect(d), note=f"breaks {inv.id}"),))

    name = (inv.name.get("en") or inv.name.get("default")) if inv.name else None
    title = name or f"`{inv.expect.source}` does not hold"
    return _Invariant(inv.id, name or f"`{inv.expect.source}`", "purchase", test,
                      declared=True)


# --- running ----------------------------------------------------------------------------------


class _OutOfTime(BaseException):
    """Raised inside a search when the time is up (a BaseException, so hypothesis lets it
    through at once instead of shrinking it)."""


@dataclass
class _Search:
    """One group's search: examples tried, and the smallest failure seen per invariant."""

    invariants: list[_Invariant]
    examples: int = 0
    best: dict[str, tuple[Any, _Found]] = field(default_factory=dict)
    complete: bool = True


def _strategies(program: Program) -> dict[str, st.SearchStrategy[Any]]:
    from hypothesis import strategies as st

    from . import testing

    gaps = [timedelta(hours=1), timedelta(days=1)]
    pending = program.model.ledger.pending_days
    if pending:
        gaps.append(timedelta(days=pending, hours=1))
    return {
        "purchase": testing.purchases(program),
        "refund": st.tuples(testing.purchases(program), st.sampled_from(gaps)),
        # purchases may also pay with points here: the trail fits the number to the member
        "sequence": testing._scenario(testing._facts(program), 6, True),
    }


def check(program: Program | str | Path, *, examples: int = 200, seed: int | None = None,
          deadline_s: float = 50) -> CheckReport:
    """Check the built-in invariants and the program's own ``invariants:`` on generated
    inputs: ``examples`` purchases, refunds and event sequences each. A violation comes with
    the shrunk counterexample as a scenario file. ``seed`` makes the run reproducible (one is
    chosen and reported when not given) as long as it is not cut short: the search stops at
    ``deadline_s`` seconds, invariants not checked to the end make the report not ``ok``,
    and a report the limit cut short (``timed_out``, a search or a shrink) depends on the
    machine's speed, so the same seed need not repeat it.

    >>> print(check("programs/retail-4tier.yaml", seed=7).render())   # doctest: +SKIP
    """
    try:
        from hypothesis import HealthCheck, Phase, Verbosity, find, settings
        from hypothesis.errors import NoSuchExample
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("loyaltyrules check needs hypothesis: pip install "
                          "loyaltyrules[test]") from exc

    started = time.monotonic()
    stop = started + deadline_s
    if not isinstance(program, Program):
        program = load_program(program)
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    ctx = _Context(program)
    table = [*INVARIANTS, *(_declared(inv) for inv in program.model.invariants)]
    groups: dict[str, Callable[[Any], Any]] = {
        "purchase": ctx.purchase, "refund": ctx.refund_case, "sequence": ctx.trail}
    strategies = _strategies(program)
    searches = {g: _Search([inv for inv in table if inv.group == g]) for g in groups}
    limit = [stop]
    timed_out = False

    def run(search: _Search, prepare: Callable[[Any], Any], only: _Invariant | None
            ) -> Callable[[Any], bool]:
        def condition(example: Any) -> bool:
            if time.monotonic() > limit[0]:
                raise _OutOfTime
            search.examples += 1
            prepared = prepare(example)
            hit = False
            for inv in ([only] if only else search.invariants):
                try:
                    found = inv.test(ctx, prepared)
                except Exception as exc:  # an engine crash inside a check is a finding too
                    why = f"checking raised {_error_text(exc)}"
                    found = _Found(why, why, _as_scenarios(inv.name, why, prepared))
                if found is None:
                    continue
                hit = True
                if only is not None or inv.name not in search.best:
                    search.best[inv.name] = (copy.deepcopy(example), found)
            return hit and only is not None
        return condition

    def settings_for(shrink: bool) -> Any:
        return settings(max_examples=max(1, examples), database=None, deadline=None,
                        phases=(Phase.generate, Phase.shrink) if shrink else (Phase.generate,),
                        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                        report_multiple_bugs=False)

    # one pass per group tries every invariant of the group on the same examples …
    for name, search in searches.items():
        try:
            find(strategies[name], run(search, groups[name], None),
                 settings=settings_for(False), random=random.Random(f"{seed}:{name}"))
        except NoSuchExample:
            pass
        except _OutOfTime:
            search.complete = False
            timed_out = True
    # … then each violated invariant searches again, from the same seed, and shrinks
    pending = [(name, inv) for name, search in searches.items()
               for inv in search.invariants if inv.name in search.best]
    for n, (name, inv) in enumerate(pending):
        search = searches[name]
        limit[0] = min(stop, time.monotonic() + max(1.0, (stop - time.monotonic())
                                                     / (len(pending) - n)))
        # not found again, or no time left to shrink: keep the smallest seen
        try:
            find(strategies[name], run(search, groups[name], inv),
                 settings=settings_for(True), random=random.Random(f"{seed}:{name}"))
        except NoSuchExample:
            pass
        except _OutOfTime:
            timed_out = True
    elapsed = time.monotonic() - started

    source = program.source
    results = []
    for inv in table:
        search = searches[inv.group]
        violation = None
        if inv.name in search.best:
            found = search.best[inv.name][1]
            violation = Violation(inv.name, found.message,
                                  _render(inv.name, seed, source, found))
        results.append(InvariantResult(inv.name, inv.description, inv.declared,
                                       search.examples, violation, search.complete))
    return CheckReport(program.id, source, seed, tuple(results),
                       sum(s.examples for s in searches.values()), elapsed, timed_out,
                       deadline_s)
