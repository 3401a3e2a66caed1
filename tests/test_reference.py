"""The reference program and the hand-written reference function agree, case by case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import loyaltyrules as lr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cases import make_cases  # noqa: E402
from benchmarks.handwritten import decide  # noqa: E402

PROGRAM = lr.load_program(ROOT / "programs" / "reference-4tier.yaml")


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_reference_program_matches_hand_written_on_10000_cases(mode: str) -> None:
    """On 10,000 seeded random cases, payable, points, tier and gift agree exactly."""
    cases = make_cases(10_000 if mode == "compiled" else 2_000)
    for n, case in enumerate(cases):
        d = lr.evaluate(PROGRAM, case.member(), case.transaction(), trace=False, mode=mode)
        got = (d.payable, d.points_total, d.tier_after,
               any(p.perk == "birthday_gift" for p in d.perks))
        want = decide(case.tier, case.birth_month, case.spend, case.gift_year, case.day,
                      case.channel, case.items)
        assert got == want, (n, case)


def test_hand_written_reference_examples() -> None:
    """Worked example: gold, beauty ¥200 + food ¥100 on 11.11 online in her birthday month."""
    from datetime import date
    from decimal import Decimal

    paid, points, tier, gift = decide(
        "gold", 11, Decimal("19800"), None, date(2026, 11, 11), "online",
        [("a", "beauty", Decimal("200.00")), ("b", "food", Decimal("100.00"))])
    # 10% off → 270.00 paid (beauty 180, food 90); basis 270 + 2×180 = 630 → 63 base points;
    # ×1.5 gold ×2 birthday month = 189; paid 270 < 300 so no 11.11 bonus; 19800+300 → gold
    assert (paid, points, tier, gift) == (Decimal("270.00"), 189, "gold", True)


def test_the_benchmark_table_runs_and_checks_every_engine_first() -> None:
    """`python -m benchmarks.run` in miniature: every engine is checked against the
    hand-written answers before it is timed, and the table has a row per engine (peers
    absent from this install are listed as skipped). Timings are not asserted."""
    from benchmarks.run import bench_promotions, bench_reference, render

    rows = bench_reference(make_cases(60, seed=7), repeat=1)
    engines = [row.engine for row in rows]
    assert engines[:6] == [
        "hand-written Python", "loyaltyrules (trace off)",
        "loyaltyrules (trace off, next state read)", "loyaltyrules (full trace)",
        "loyaltyrules, plan interpreter, simpleeval conditions",
        "loyaltyrules, full trace by the reference engine"]
    assert engines[6:] == [
        "zen-engine (GoRules JDM)", "zen-engine, its trace on",
        "datalogic-py, one rule per concern", "datalogic-py, hand-fused rule"]
    table = render(rows).splitlines()
    assert table[0].startswith("| engine | decisions/s | ratio to hand-written")
    assert len(table) == 2 + len(rows)
    lines = bench_promotions(40)
    assert lines[0].startswith("1,000-promotion program: load + validate + compile")
    assert "cost ratio" in lines[1]
    assert lines[2].startswith("1,000-promotion program from its YAML text (")
    assert lines[3].startswith("1,000-earn-rule program: load + validate + compile")


def test_the_instruction_count_loops_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m benchmarks.instructions` in miniature: each row's loop (run by callgrind in
    a child process) runs, with counting switched on once and off once around it; without
    valgrind the command says so. Counts are not asserted."""
    from benchmarks import instructions
    from benchmarks.stream import write_transactions

    switched: list[bool] = []
    monkeypatch.setattr(instructions, "_toggle", switched.append)
    monkeypatch.setattr("gc.disable", lambda: None)  # (the child pauses the collector)
    from benchmarks.peers import available

    status = available()
    peers = [which for which, dist, _ in instructions.PEERS if status.get(dist) is None]
    for which in ["none", *(which for which, _ in instructions.ROWS), *peers]:
        switched.clear()
        instructions._child_reference(which, 20)
        assert switched == [True, False]
    path = tmp_path / "transactions.jsonl"
    write_transactions(path, 300, 30)
    monkeypatch.setenv("LR_STREAM_FILE", str(path))
    for which, _ in instructions.STREAM:
        switched.clear()
        instructions._child_stream(which, 20)
        assert switched.count(True) == 1 and switched[-1] is False
    monkeypatch.setattr("shutil.which", lambda _: None)
    assert instructions.main([]) == 0
    assert capsys.readouterr().out.startswith("skipped: valgrind, callgrind_control not found")


def test_the_history_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m benchmarks.history --quick`: a table of a purchase's cost as one member's
    history grows and one of a host's checkout, a row per bundled program (and per history
    size). Timings are not asserted; the member it grows is checked to keep its records."""
    from benchmarks import history

    member = lr.MemberState(id="m1")
    for n in range(3):
        member = lr.evaluate(PROGRAM, member, history.purchase(n, history.START), trace=False
                             ).member_after
    assert [p.id for p in member.purchases] == ["t0", "t1", "t2"]
    assert history.main(["--quick"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("| ") and line[2:3].isalpha()
            and not line.startswith("| program")]
    assert [r.split(" | ")[0][2:] for r in rows] == [
        *history.PROGRAMS, *(name for name in history.PROGRAMS for _ in range(3))]
