"""Instructions per decision, counted by valgrind's callgrind: the benchmark's ratios in a
unit that does not move with the machine's load.

    python -m benchmarks.instructions            # 2,000 cases per row, about two minutes
    python -m benchmarks.instructions --cases 500
    python -m benchmarks.instructions --part history   # a member's history, per purchase

Timings on a shared two-core machine move by 10–50% from one run to the next; callgrind
counts the instructions the CPU executes, which are the same from run to run for the same
code and inputs. Each row runs in a child Python under callgrind with counting switched on
(``callgrind_control -i on``) only around its timing loop (what switching costs is measured
alone and taken off) — the same loop as
``benchmarks.run`` — so imports, loading and the cases are not counted. Instructions are
not time (a cache miss costs no instruction, a Decimal operation in C is many cheap ones),
so the ratio here is a steady proxy for the timed one, not the same number: compare a
change by both. Needs valgrind; prints why if it is missing.

The streaming rows split one transaction of ``loyaltyrules run`` into its parts (reading the
JSON line, evaluating, applying, writing the decision line), measured on 2,000
transactions after 28,000 others have given 3,000 members about ten purchases each.

``--part history`` counts one purchase (evaluated and applied, each from the state the one
before made) of one member: the 100 after 10, 100 and 1,000 others, eight hours apart, on a
program without pending points or expiry (reference-4tier) and one with both (rfm-3tier):
what a member's history costs each purchase.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .stream import write_transactions

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    ("hand", "hand-written Python"),
    ("off", "loyaltyrules (trace off)"),
    ("state", "loyaltyrules (trace off, next state read)"),
    ("traced", "loyaltyrules (full trace)"),
)
PEERS = (
    ("zen", "zen-engine", "zen-engine (GoRules JDM)"),
    ("zen-traced", "zen-engine", "zen-engine, its trace on"),
    ("datalogic", "datalogic-py", "datalogic-py, one rule per concern"),
    ("datalogic-fused", "datalogic-py", "datalogic-py, hand-fused rule"),
)
STREAM = (
    ("parse", "read a transaction line (Transaction from JSON)"),
    ("evaluate", "evaluate (trace off)"),
    ("apply", "apply (the next state built)"),
    ("write", "write the decision line"),
)


def _toggle(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   capture_output=True, check=False)


def _child_reference(which: str, count: int) -> None:
    import loyaltyrules as lr

    from .cases import make_cases
    from .handwritten import decide

    cases = make_cases(count)
    evaluate = lr.evaluate
    if which == "none":  # switching counting on and off, and nothing else

        def loop() -> None:
            pass
    elif which in ("zen", "zen-traced", "datalogic", "datalogic-fused"):
        from . import peers

        prepare, decide_peer = (peers.make_zen(trace=which == "zen-traced")
                                if which.startswith("zen") else
                                peers.make_datalogic(which == "datalogic-fused"))
        prepared = [prepare(c) for c in cases]

        def loop() -> None:
            for p in prepared:  # as benchmarks.run times the peers
                decide_peer(p)
    elif which == "hand":
        inputs = [(c.tier, c.birth_month, c.spend, c.gift_year, c.day, c.channel, c.items)
                  for c in cases]

        def loop() -> None:
            for x in inputs:
                decide(*x)
    else:
        program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
        pairs = [(c.member(), c.transaction()) for c in cases]
        trace, state = which == "traced", which == "state"

        def loop() -> None:
            for m, t in pairs:  # what benchmarks.run's loop reads
                d = evaluate(program, m, t, trace=trace)
                d.payable, d.points_total, d.tier_after, d.perks  # noqa: B018
                if state:
                    d.member_after  # noqa: B018
    loop()  # warm: the program's plan, the day index, the builders
    _toggle(True)
    loop()
    _toggle(False)


def _child_stream(which: str, count: int) -> None:
    import loyaltyrules as lr
    from loyaltyrules._cli import _transaction

    gc.disable()  # as `run` streams (see _cli._cmd_run)
    program = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")
    path = Path(os.environ["LR_STREAM_FILE"])
    lines = path.read_text(encoding="utf-8").splitlines()
    warm, last = lines[:-count], lines[-count:]
    members: dict[str, lr.MemberState] = {}
    for line in warm:
        t = _transaction(line)
        assert t.member_id is not None
        m = members.get(t.member_id) or lr.MemberState(id=t.member_id)
        members[t.member_id] = lr.apply(m, lr.evaluate(program, m, t, trace=False))
    _toggle(which == "parse")
    txns = [_transaction(line) for line in last]
    _toggle(False)
    states = [members.get(t.member_id or "") or lr.MemberState(id=t.member_id or "-")
              for t in txns]
    _toggle(which == "evaluate")
    decisions = [lr.evaluate(program, m, t, trace=False) for m, t in zip(states, txns,
                                                                          strict=True)]
    _toggle(False)
    _toggle(which == "apply")
    for m, d in zip(states, decisions, strict=True):
        lr.apply(m, d)
    _toggle(False)
    _toggle(which == "write")
    for d in decisions:
        d.model_dump_json(exclude_none=True, exclude={"member_after"})  # as run writes it
    _toggle(False)


HISTORY = ("reference-4tier", "rfm-3tier")
ON_FILE = (10, 100, 1_000)
MEASURED = 100  # purchases counted after the history


def _child_history(which: str, on_file: int) -> None:
    """``on_file`` purchases of one member, one every eight hours, then MEASURED more,
    counted (on ``which`` program)."""
    from datetime import UTC, datetime, timedelta

    import loyaltyrules as lr

    program = lr.load_program(ROOT / "programs" / f"{which}.yaml")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    purchases = [lr.Transaction(
        id=f"t{n}", member_id="m1", at=start + timedelta(hours=8 * n), channel="store",
        items=[{"sku": "s1", "category": "food", "amount": "12.50"},
               {"sku": "s2", "category": "beauty", "amount": "99.00"}])
        for n in range(on_file + MEASURED)]
    member = lr.MemberState(id="m1", joined=start.date())
    for t in purchases[:on_file]:
        member = lr.apply(member, lr.evaluate(program, member, t, trace=False))
    _toggle(True)
    for t in purchases[on_file:]:
        member = lr.apply(member, lr.evaluate(program, member, t, trace=False))
    _toggle(False)


def _history_rows() -> None:
    print(f"one purchase of a member, the {MEASURED} after 10, 100 and 1,000 others (each "
          "from the last one's state), instructions per purchase")
    print(f"| program | {' | '.join(f'purchases {n + 1:,}–{n + MEASURED:,}' for n in ON_FILE)} |")
    print(f"|---|{'---:|' * len(ON_FILE)}")
    toggles = _count(["reference", "none"], MEASURED)
    for which in HISTORY:
        counts = [(_count(["history", which], n) - toggles) / MEASURED for n in ON_FILE]
        print(f"| {which} | {' | '.join(f'{c:,.0f}' for c in counts)} |", flush=True)


def _count(args: list[str], count: int, env: dict[str, str] | None = None) -> int:
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "benchmarks.instructions", "--child", *args,
         "--cases", str(count)],
        capture_output=True, text=True, cwd=ROOT, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})})
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--cases", type=int, default=2_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=("all", "reference", "stream", "history"),
                        default="all")
    args = parser.parse_args(argv)
    if args.child:
        kind, which = args.child
        {"reference": _child_reference, "stream": _child_stream,
         "history": _child_history}[kind](which, args.cases)
        return 0
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (Debian: apt install valgrind)")
        return 0
    n = args.cases
    if args.part in ("all", "reference"):
        _reference_rows(n)
    if args.part in ("all", "stream"):
        _stream_rows(n)
    if args.part in ("all", "history"):
        _history_rows()
    return 0


def _reference_rows(n: int) -> None:
    print(f"reference decision, {n:,} seeded cases, instructions per decision (callgrind)")
    print("| engine | instructions per decision | ratio to hand-written |")
    print("|---|---:|---:|")
    hand = None
    toggles = _count(["reference", "none"], n)  # counted in every row: taken off
    for which, label in ROWS:
        per = (_count(["reference", which], n) - toggles) / n
        hand = hand or per
        print(f"| {label} | {per:,.0f} | {hand / per:.3f} |", flush=True)
    from . import peers

    status = peers.available()
    for which, dist, label in PEERS:
        if status.get(dist):
            print(f"| {label} | skipped: {status[dist]} | — |")
            continue
        per = (_count(["reference", which], n) - toggles) / n
        assert hand is not None
        print(f"| {label} | {per:,.0f} | {hand / per:.3f} |", flush=True)
    print()


def _stream_rows(n: int) -> None:
    print("`loyaltyrules run`, one transaction of a member with about ten earlier purchases "
          f"({n:,} measured after {15 * n - n:,}), instructions per transaction")
    print("| part | instructions |")
    print("|---|---:|")
    total = 0.0
    toggles = _count(["reference", "none"], n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.jsonl"
        write_transactions(path, 15 * n, 15 * n // 10)
        for which, label in STREAM:
            per = (_count(["stream", which], n, {"LR_STREAM_FILE": str(path)}) - toggles) / n
            total += per
            print(f"| {label} | {per:,.0f} |", flush=True)
    print(f"| in all | {total:,.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())
