"""Benchmark table: loyaltyrules against hand-written Python and peer rules engines.

    python -m benchmarks.run            # full run (one to two minutes)
    python -m benchmarks.run --quick    # fewer cases, for a smoke test

Prints, for the reference decision (programs/reference-4tier.yaml): engine, decisions/s,
ratio to hand-written, load time and peak memory; then the 1,000-promotion program's load
time and evaluation cost against 10 promotions, and the 1,000-earn-rule program's load
time. Every engine is checked against the hand-written decision on the cases before it is
timed.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import loyaltyrules as lr

from .cases import Case, make_cases
from .handwritten import decide
from .promotions import (
    many_earn_rules_program,
    many_promotions_program,
    many_promotions_yaml,
    promotion_cases,
)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "programs" / "reference-4tier.yaml"


@dataclass
class Row:
    engine: str
    per_second: float | None
    load_seconds: float | None
    peak_bytes: int | None
    note: str = ""


@dataclass
class _Timed:
    """One row's loop, timed in turn with every other row's (see _interleaved)."""
    engine: str
    run: Callable[[], Any]
    count: int
    load_seconds: float | None
    sample: Callable[[], Any]  # the same loop on 2,000 cases, for its peak memory
    best: float = float("inf")


def _interleaved(timed: Sequence[_Timed | Row], repeat: int) -> list[Row]:
    """Best of ``repeat`` rounds, each round running every row once in turn. On a shared
    machine the speed moves by a third within minutes; rows timed one after another would
    each see a different machine, rows timed in the same rounds see the same one, so their
    ratios hold from run to run. (A row given as a Row, a peer skipped, stays in its place.)"""
    for _ in range(repeat):
        for t in timed:
            if isinstance(t, _Timed):
                gc.collect()
                start = time.perf_counter()
                t.run()
                t.best = min(t.best, time.perf_counter() - start)
    return [Row(t.engine, t.count / t.best, t.load_seconds, _peak(t.sample))
            if isinstance(t, _Timed) else t for t in timed]


def _peak(run: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _expected(case: Case) -> tuple[Decimal, int, str, bool]:
    return decide(case.tier, case.birth_month, case.spend, case.gift_year, case.day,
                  case.channel, case.items)


def _as_tuple(d: lr.Decision) -> tuple[Decimal, int, str, bool]:
    return d.payable, d.points_total, d.tier_after, any(
        p.perk == "birthday_gift" for p in d.perks)


def bench_reference(cases: Sequence[Case], repeat: int) -> list[Row]:
    expected = [_expected(c) for c in cases]
    timed: list[_Timed | Row] = []

    hw_inputs = [(c.tier, c.birth_month, c.spend, c.gift_year, c.day, c.channel, c.items)
                 for c in cases]

    def hand(sample: list[Any] = hw_inputs) -> None:
        for x in sample:
            decide(*x)

    timed.append(_Timed("hand-written Python", hand, len(cases), None,
                        lambda: hand(hw_inputs[:2000])))

    start = time.perf_counter()
    program = lr.load_program(REFERENCE)
    load = time.perf_counter() - start
    inputs = [(c.member(), c.transaction()) for c in cases]
    for trace, mode, label, state in (
            (False, "compiled", "loyaltyrules (trace off)", False),
            (False, "compiled", "loyaltyrules (trace off, next state read)", True),
            (True, "compiled", "loyaltyrules (full trace)", False),
            (False, "interpreted", "loyaltyrules, plan interpreter, simpleeval conditions",
             False),
            (True, "interpreted", "loyaltyrules, full trace by the reference engine", False)):
        got = [_as_tuple(lr.evaluate(program, m, t, trace=trace, mode=mode)) for m, t in inputs]
        assert got == expected, label
        timed.append(_engine_loop(label, program, inputs, trace, mode, load, state))

    from . import peers

    status = peers.available()
    makers: list[tuple[str, Callable[[], Any]]] = [
        ("zen-engine (GoRules JDM)", peers.make_zen),
        ("zen-engine, its trace on", lambda: peers.make_zen(trace=True)),
        ("datalogic-py, one rule per concern", lambda: peers.make_datalogic(False)),
        ("datalogic-py, hand-fused rule", lambda: peers.make_datalogic(True)),
    ]
    for label, make in makers:
        key = "zen-engine" if label.startswith("zen") else "datalogic-py"
        if status.get(key):
            timed.append(Row(label, None, None, None, f"skipped: {status[key]}"))
            continue
        start = time.perf_counter()
        prepare, evaluate = make()
        load = time.perf_counter() - start
        prepared = [prepare(c) for c in cases]
        assert [evaluate(p) for p in prepared] == expected, label
        timed.append(_peer_loop(label, evaluate, prepared, load))
    return _interleaved(timed, repeat)


def _engine_loop(label: str, program: lr.Program, inputs: list[Any], trace: bool, mode: Any,
                 load: float, state: bool) -> _Timed:
    evaluate = lr.evaluate

    def run(sample: list[Any] = inputs) -> None:
        # each decision's answer is read (what the hand-written function returns), and with
        # ``state`` its next state too (built when first read), then dropped
        for m, t in sample:
            d = evaluate(program, m, t, trace=trace, mode=mode)
            d.payable, d.points_total, d.tier_after, d.perks  # noqa: B018
            if state:
                d.member_after  # noqa: B018

    return _Timed(label, run, len(inputs), load, lambda: run(inputs[:2000]))


def _peer_loop(label: str, evaluate: Callable[[Any], Any], prepared: list[Any], load: float
               ) -> _Timed:
    def run(sample: list[Any] = prepared) -> None:
        for p in sample:
            evaluate(p)

    return _Timed(label, run, len(prepared), load, lambda: run(prepared[:2000]))


def bench_promotions(count: int) -> list[str]:
    lines = []
    start = time.perf_counter()
    big = many_promotions_program(1000)
    load_big = time.perf_counter() - start
    small = many_promotions_program(10)
    inputs = promotion_cases(count)
    for program in (big, small):
        for m, t in inputs[:200]:
            lr.evaluate(program, m, t, trace=False)  # warm the day index
    def run(program: lr.Program) -> None:
        for m, t in inputs:  # each decision dropped as it is made, as in the table above
            lr.evaluate(program, m, t, trace=False)

    big_row, small_row = _interleaved([
        _Timed("1,000 promotions", lambda: run(big), len(inputs), None, lambda: None),
        _Timed("10 promotions", lambda: run(small), len(inputs), None, lambda: None)], 3)
    rate_big, rate_small = big_row.per_second or 0.0, small_row.per_second or 0.0
    lines.append(f"1,000-promotion program: load + validate + compile {load_big:.3f} s")
    lines.append(f"evaluation with 1,000 promotions: {rate_big:,.0f}/s; with 10: "
                 f"{rate_small:,.0f}/s; cost ratio {rate_small / rate_big:.2f}× (target ≤ 2×)")
    text = many_promotions_yaml(1000)
    start = time.perf_counter()
    lr.load_program(text)
    lines.append(f"1,000-promotion program from its YAML text ({len(text):,} characters): "
                 f"parse + load + validate + compile {time.perf_counter() - start:.3f} s")
    start = time.perf_counter()
    many_earn_rules_program(1000)
    lines.append(f"1,000-earn-rule program: load + validate + compile "
                 f"{time.perf_counter() - start:.3f} s")
    return lines


def render(rows: list[Row]) -> str:
    base = next(r.per_second for r in rows if r.engine.startswith("hand-written"))
    assert base is not None
    out = ["| engine | decisions/s | ratio to hand-written | load time | peak memory |",
           "|---|---:|---:|---:|---:|"]
    for r in rows:
        if r.per_second is None:
            out.append(f"| {r.engine} | — | — | — | {r.note} |")
            continue
        load = "—" if r.load_seconds is None else f"{r.load_seconds * 1000:.1f} ms"
        peak = "—" if r.peak_bytes is None else f"{r.peak_bytes / 1e6:.1f} MB"
        out.append(f"| {r.engine} | {r.per_second:,.0f} | {r.per_second / base:.3f} "
                   f"| {load} | {peak} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    args = parser.parse_args(argv)
    n, repeat = (2_000, 1) if args.quick else (20_000, 5)
    cases = make_cases(n)
    print(f"reference decision, {n:,} seeded cases, best of {repeat} rounds (each round "
          "runs every row once, in turn)")
    print(render(bench_reference(cases, repeat)))
    print()
    for line in bench_promotions(500 if args.quick else 5_000):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
