"""A member's history: what one purchase costs as a member's records grow, and a host's checkout.

    python -m benchmarks.history            # every bundled program (about a minute)
    python -m benchmarks.history --quick    # a smoke test

A member keeps a year of purchase records and points lots (for refunds, expiry and
warnings), so each event reads more of them as the member buys more. For each bundled
program this prints:

- the mean time of one purchase (evaluate, then read the next state) over each fifth of
  2,000 purchases of one member within a year;
- a host's checkout for a member with 10, 50 and 200 purchases on file: read the state
  from its JSON, evaluate a purchase and build the next state, write that state as JSON.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import loyaltyrules as lr

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ("reference-4tier", "retail-4tier", "rfm-3tier", "coffee-club")
START = datetime(2026, 1, 1, tzinfo=UTC)


def purchase(n: int, at: datetime, items: int = 1) -> lr.Transaction:
    lines = [{"sku": "s1", "category": "food", "amount": "12.50"},
             {"sku": "s2", "category": "beauty", "amount": "99.00"}][:items]
    return lr.Transaction(id=f"t{n}", member_id="m1", at=at, channel="store", items=lines)


def growing(program: lr.Program, count: int) -> list[float]:
    """Mean µs of a purchase over each fifth of ``count`` purchases spread over a year."""
    member = lr.MemberState(id="m1")
    means = []
    block = count // 5
    started = time.perf_counter()
    for n in range(count):
        at = START + timedelta(seconds=n * 31_536_000 // count)
        member = lr.evaluate(program, member, purchase(n, at), trace=False).member_after
        if n % block == block - 1:
            now = time.perf_counter()
            means.append((now - started) / block * 1e6)
            started = now
    return means


def checkout(program: lr.Program, history: int, repeat: int) -> tuple[int, float, float, float]:
    """(state's JSON size, read µs, evaluate + next state µs, write µs) for a member with
    ``history`` purchases on file."""
    member = lr.MemberState(id="m1")
    at = START
    for n in range(history):
        at = START + timedelta(hours=n * 8760 // 250)
        member = lr.evaluate(program, member, purchase(n, at, 2), trace=False).member_after
    text = member.model_dump_json()
    txn = purchase(history, at + timedelta(hours=1))
    times = []
    read = after = member
    for step in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            if step == 0:
                read = lr.MemberState.model_validate_json(text)
            elif step == 1:
                after = lr.evaluate(program, read, txn, trace=False).member_after
            else:
                after.model_dump_json()
        times.append((time.perf_counter() - started) / repeat * 1e6)
    return len(text), times[0], times[1], times[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history")
    parser.add_argument("--quick", action="store_true", help="fewer purchases and repeats")
    args = parser.parse_args(argv)
    count, repeat = (250, 5) if args.quick else (2_000, 200)
    print(f"one purchase, mean µs over each fifth of {count:,} purchases of one member")
    print("| program | " + " | ".join(f"to {count // 5 * k:,}" for k in range(1, 6)) + " |")
    print("|---|" + "---:|" * 5)
    programs = {name: lr.load_program(ROOT / "programs" / f"{name}.yaml") for name in PROGRAMS}
    for name, program in programs.items():
        print(f"| {name} | " + " | ".join(f"{us:,.0f}" for us in growing(program, count))
              + " |")
    print()
    print("a host's checkout: µs to read the state's JSON, evaluate and build the next "
          "state, write it")
    print("| program | purchases on file | state's JSON | read | evaluate | write |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, program in programs.items():
        for history in (10, 50, 200):
            size, read, evaluate, write = checkout(program, history, repeat)
            print(f"| {name} | {history} | {size:,} B | {read:,.0f} | {evaluate:,.0f} "
                  f"| {write:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
