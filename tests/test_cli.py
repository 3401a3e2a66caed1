"""The `loyaltyrules` command: validate, evaluate, run and schema, in-process and installed."""

from __future__ import annotations

import codecs
import contextlib
import decimal
import gc
import io
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from loyaltyrules import ProgramError
from loyaltyrules._cli import main
from loyaltyrules._scenario import load_scenarios

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "programs").glob("*.yaml"))
RETAIL = ROOT / "programs" / "retail-4tier.yaml"
EXAMPLES = ROOT / "examples"

BAD_PROGRAM = """\
program: {id: shop, version: 1, currency: CNY, timezone: Asia/Shanghai}
tiers:
  - id: basic
  - id: silver
    qualify: {spend: 5000}
    perks: [vip]
  - id: gold
    qualify: {spend: 4000}
"""

TXN = ('{{"id": "{id}", "member_id": "m1", "at": "{at}", '
       '"items": [{{"sku": "A", "amount": "100.00"}}]}}\n')


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- validate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_validate_ok_on_every_bundled_program(
    capsys: pytest.CaptureFixture[str], path: Path
) -> None:
    """validate exits 0 on each bundled program and prints '<file>: ok — …'."""
    code, out, err = run_main(capsys, "validate", path)
    assert code == 0
    assert out.startswith(f"{path}: ok — ")
    assert len(out.splitlines()) == 1
    assert err == ""


def test_validate_all_bundled_programs_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    """validate with several programs prints one ok line each, naming id, version and tiers."""
    code, out, _ = run_main(capsys, "validate", *PROGRAMS)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(PROGRAMS)
    retail = next(line for line in lines if line.startswith(str(RETAIL)))
    assert retail.startswith(
        f"{RETAIL}: ok — retail-4tier v1, tiers basic → silver → gold → diamond, sha256:"
    )


def test_validate_bad_program_lists_each_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """validate on a bad program prints one 'file:line:col: path: message' line per problem on
    stderr and exits 1, without a traceback."""
    path = tmp_path / "shop.yaml"
    path.write_text(BAD_PROGRAM, encoding="utf-8")
    code, out, err = run_main(capsys, "validate", path)
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    assert sorted(err.splitlines()) == sorted([
        f"{path}:6:13: tiers[1].perks[0]: unknown perk 'vip' — declare it under perks: [LR403]",
        f"{path}:8:22: tiers[2].qualify.spend: qualify.spend must increase along the tiers: "
        "'gold' needs 4000 but the lower tier 'silver' already needs 5000 [LR406]",
    ])


def test_validate_reports_bad_and_ok_programs_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """validate keeps going after a bad program: ok lines for good ones, exit 1 overall."""
    path = tmp_path / "shop.yaml"
    path.write_text(BAD_PROGRAM, encoding="utf-8")
    code, out, err = run_main(capsys, "validate", path, RETAIL)
    assert code == 1
    assert out.startswith(f"{RETAIL}: ok — ")
    assert len(err.splitlines()) == 2
    assert all(re.match(rf"{re.escape(str(path))}:\d+:\d+: ", line) for line in err.splitlines())


def test_validate_missing_program_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """validate on a file that does not exist prints one LR001 line and exits 1."""
    missing = tmp_path / "nope.yaml"
    code, out, err = run_main(capsys, "validate", missing)
    assert code == 1
    assert out == ""
    line = assert_one_line_error(err)
    assert line == (
        f"{missing}: (top level): cannot read the program: No such file or directory [LR001]"
    )


# -- evaluate ---------------------------------------------------------------------------------


def test_evaluate_prints_decision_and_next_state(capsys: pytest.CaptureFixture[str]) -> None:
    """evaluate prints JSON with the decision (payable 720.00, 70 points) and member_after
    (1200 + 70 = 1270 points)."""
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", EXAMPLES / "member.json",
                              "--txn", EXAMPLES / "txn.json")
    assert code == 0
    assert err == ""
    data = json.loads(out)
    decision = data["decision"]
    assert decision["payable"] == "720.00"
    assert decision["list_amount"] == "1000.00"
    assert decision["total_discount"] == "280.00"
    assert decision["points_total"] == 70
    assert [p["perk"] for p in decision["perks"]] == ["birthday_gift"]
    assert [(d["rule"], d["amount"]) for d in decision["discounts"]] == [
        ("gold", "200.00"), ("birthday-discount", "80.00")]
    after = data["member_after"]
    assert after["points"] == 1270
    assert after["tier"] == "gold"
    assert after["qualifying_spend"] == "24720.00"
    assert after["usage"] == {"birthday-gift": {"period": "2026", "count": 1}}
    assert "member_after" not in decision  # (the next state once, not twice)


@pytest.mark.parametrize("which", ["--member", "--txn"])
def test_evaluate_reads_one_input_from_standard_input(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    """`-` for --member or --txn reads standard input (it was taken as a file named `-`,
    found by helper-92); both cannot be, standard input holds one."""
    files = {"--member": EXAMPLES / "member.json", "--txn": EXAMPLES / "txn.json"}
    code, expected, _ = run_main(capsys, "evaluate", RETAIL, *itertools.chain(*files.items()))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        files[which].read_bytes())))
    given = {**files, which: "-"}
    code, out, err = run_main(capsys, "evaluate", RETAIL, *itertools.chain(*given.items()))
    assert (code, out, err) == (0, expected, "")
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", "-", "--txn", "-")
    assert (code, out) == (1, "")
    assert err == ("loyaltyrules: --member and --txn both name standard input (-): give one of "
                   "them as a file\n")


def test_run_reads_members_from_standard_input(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--members -` reads JSONL states from standard input, the events from their file."""
    code, expected, _ = run_examples(capsys)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        (EXAMPLES / "members.jsonl").read_bytes())))
    code, out, _ = run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl",
                            "--members", "-")
    assert (code, [json.loads(line) for line in out.splitlines()]) == (0, expected)
    code, out, err = run_main(capsys, "run", RETAIL, "-", "--members", "-")
    assert (code, out) == (1, "")
    assert err == ("loyaltyrules: TRANSACTIONS and --members both name standard input (-): "
                   "give one of them as a file\n")


def test_evaluate_explain_without_trace_gives_no_empty_details(
        capsys: pytest.CaptureFixture[str]) -> None:
    """--explain --no-trace: a points line without its details reads `(earn base)`, not
    `(earn base: )`."""
    code, out, _ = run_main(capsys, "evaluate", RETAIL, "--member", EXAMPLES / "member.json",
                            "--txn", EXAMPLES / "txn.json", "--explain", "--no-trace")
    assert code == 0
    assert "  + 70 points (earn base)\n" in out


def test_evaluate_explain_prints_human_text(capsys: pytest.CaptureFixture[str]) -> None:
    """evaluate --explain prints readable text naming the payable amount and the points."""
    code, out, _ = run_main(capsys, "evaluate", RETAIL, "--member", EXAMPLES / "member.json",
                            "--txn", EXAMPLES / "txn.json", "--explain")
    assert code == 0
    assert "720.00" in out
    assert "payable 720.00 CNY" in out
    assert "points total 70" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_evaluate_missing_member_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """evaluate with a member file that does not exist prints one error line and exits 1."""
    missing = tmp_path / "member.json"
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", missing,
                              "--txn", EXAMPLES / "txn.json")
    assert code == 1
    assert out == ""
    line = assert_one_line_error(err)
    assert line == f"loyaltyrules: {missing}: cannot read member state: No such file or directory"


# -- run --------------------------------------------------------------------------------------

EXPECTED_RUN = {
    # transaction: (member, payable, points, tier_after, perks)
    "T1001": ("silver-lin", "950.00", 90, "silver", []),
    "T1002": ("gold-wang", "800.00", 80, "gold", []),
    "T1003": ("diamond-zhao", "800.00", 120, "diamond", []),
    "T1004": ("basic-chen", "800.00", 80, "silver", []),
    "T1005": ("basic-chen", "950.00", 90, "silver", []),
    "T1006": ("gold-wang", "720.00", 70, "gold", ["birthday_gift"]),
    "T1007": ("gold-wang", "720.00", 70, "gold", []),
    "T1008": ("diamond-zhao", "800.00", 240, "diamond", []),
    "T1009": ("silver-lin", "94.99", 0, "silver", []),
}


def run_examples(capsys: pytest.CaptureFixture[str], *extra: str | Path
                 ) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl",
                              "--members", EXAMPLES / "members.jsonl", *extra)
    return code, [json.loads(line) for line in out.splitlines()], err


def test_run_gives_one_decision_per_transaction(capsys: pytest.CaptureFixture[str]) -> None:
    """run over the example stream prints 9 JSONL decisions in input order."""
    code, decisions, _ = run_examples(capsys)
    assert code == 0
    assert [d["transaction_id"] for d in decisions] == list(EXPECTED_RUN)


@pytest.mark.parametrize("txn_id", list(EXPECTED_RUN))
def test_run_decision_values(capsys: pytest.CaptureFixture[str], txn_id: str) -> None:
    """Each example transaction gets its hand-computed payable, points, tier and perks."""
    _, decisions, _ = run_examples(capsys)
    d = next(d for d in decisions if d["transaction_id"] == txn_id)
    got = (d["member_id"], d["payable"], d["points_total"], d["tier_after"],
           [p["perk"] for p in d["perks"]])
    assert got == EXPECTED_RUN[txn_id]


def test_run_basic_member_upgrades_on_t1004(capsys: pytest.CaptureFixture[str]) -> None:
    """basic-chen (9500 spent) crosses 10000 with T1004: silver from then, 9.5折 only on T1005."""
    _, decisions, _ = run_examples(capsys)
    t1004, t1005 = (next(d for d in decisions if d["transaction_id"] == t)
                    for t in ("T1004", "T1005"))
    assert (t1004["tier_before"], t1004["tier_after"], t1004["tier_changed"]) == (
        "basic", "silver", True)
    assert t1004["benefits_tier"] == "basic"
    assert (t1005["tier_before"], t1005["benefits_tier"]) == ("silver", "silver")


@pytest.mark.parametrize("which", ["program", "events", "events, by a link"])
def test_run_refuses_a_state_out_that_would_overwrite_its_program_or_events(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, which: str) -> None:
    """`--state-out` naming the program or the events file wrote the states over it, exit
    0 (found by helper-92). Refused before anything is read; the file is left as it was.
    The members file may be named: it is read whole first, an update in place."""
    program, events = tmp_path / "p.yaml", tmp_path / "ev.jsonl"
    program.write_text(RETAIL.read_text(encoding="utf-8"), encoding="utf-8")
    events.write_text((EXAMPLES / "transactions.jsonl").read_text(encoding="utf-8"),
                      encoding="utf-8")
    target = program if which == "program" else events
    if which.endswith("link"):
        (tmp_path / "link.jsonl").symlink_to(events)
        target = tmp_path / "link.jsonl"
    before = target.read_bytes()
    code, out, err = run_main(capsys, "run", program, events, "--state-out", target)
    assert (code, out) == (1, "")
    named = "program" if which == "program" else "events"
    assert err == (f"loyaltyrules: {target}: --state-out names the {named} file; the states "
                   "would be written over it (give another file)\n")
    assert target.read_bytes() == before
    members = tmp_path / "m.jsonl"
    members.write_text((EXAMPLES / "members.jsonl").read_text(encoding="utf-8"),
                       encoding="utf-8")
    code, _, _ = run_main(capsys, "run", program, events, "--members", members,
                          "--state-out", members, "--quiet")
    assert code == 0 and len(members.read_text(encoding="utf-8").splitlines()) == 4


def test_run_refuses_a_state_out_that_names_the_file_standard_input_reads(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """`run p.yaml - --state-out ev.jsonl < ev.jsonl` wrote the states over the events it
    read (found by helper-93): standard input redirected from that file is that file."""
    events = tmp_path / "ev.jsonl"
    events.write_text((EXAMPLES / "transactions.jsonl").read_text(encoding="utf-8"),
                      encoding="utf-8")
    before = events.read_bytes()
    with open(events, encoding="utf-8") as redirected:
        monkeypatch.setattr("sys.stdin", redirected)
        code, out, err = run_main(capsys, "run", RETAIL, "-", "--state-out", events)
    assert (code, out, events.read_bytes()) == (1, "", before)
    assert err == (f"loyaltyrules: {events}: --state-out names the events file; the states "
                   "would be written over it (give another file)\n")


def test_run_state_out_writes_final_states(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--state-out writes each member's final state; basic-chen ends silver with 170 points."""
    state = tmp_path / "state.jsonl"
    code, _, _ = run_examples(capsys, "--state-out", state)
    assert code == 0
    states = {s["id"]: s for s in map(json.loads, state.read_text(encoding="utf-8").splitlines())}
    assert set(states) == {"silver-lin", "gold-wang", "diamond-zhao", "basic-chen"}
    chen = states["basic-chen"]
    assert (chen["tier"], chen["points"], chen["qualifying_spend"], chen["orders"]) == (
        "silver", 170, "11250.00", 2)
    assert states["gold-wang"]["points"] == 220
    assert states["diamond-zhao"]["points"] == 360
    assert states["silver-lin"]["points"] == 90


def test_run_malformed_jsonl_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A line that is not JSON stops the run with one error naming file:line, exit 1."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="X1", at="2026-03-02T10:00:00+08:00") + '{"id": "X2", oops\n',
                      encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert code == 1
    line = assert_one_line_error(err)
    assert line.startswith(f"loyaltyrules: {stream}:2: transactions is not valid JSON")
    assert len(out.splitlines()) == 1


def test_run_leaves_the_cycle_collector_as_it_found_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`run` pauses the collector for the run and restores it, after a finished run and
    after one stopped by a bad line, whether the host had it running or paused."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "X2", oops\n', encoding="utf-8")
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            for stream, code in ((EXAMPLES / "transactions.jsonl", 0), (bad, 1)):
                assert run_main(capsys, "run", RETAIL, stream)[0] == code
                assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_run_naive_datetime(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A transaction whose `at` has no UTC offset is rejected naming file:line (blank lines
    counted), exit 1."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="X1", at="2026-03-02T10:00:00+08:00") + "\n"
                      + TXN.format(id="X2", at="2026-03-02T10:00:00"), encoding="utf-8")
    code, _, err = run_main(capsys, "run", RETAIL, stream)
    assert code == 1
    line = assert_one_line_error(err)
    assert line == (f"loyaltyrules: {stream}:3: transaction: at: needs a UTC offset (the engine "
                    "never guesses a zone)")


def test_run_reads_files_with_a_byte_order_mark(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Transactions and member files saved with a UTF-8 byte-order mark (as Windows tools
    write them) read like the same files without it, from a file or from standard input;
    a mark anywhere but the start is still an error."""
    plain = TXN.format(id="X1", at="2026-03-02T10:00:00+08:00")
    stream = tmp_path / "txns.jsonl"
    stream.write_text("\ufeff" + plain, encoding="utf-8")
    members = tmp_path / "members.jsonl"
    members.write_text('\ufeff{"id": "m1", "tier": "gold", "qualifying_spend": "25000.00"}\n',
                       encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream, "--members", members,
                              "--format", "text")
    assert (code, err.count("\n")) == (0, 1)
    assert out.split() == ["X1", "m1", "2026-03-02", "gold", "list", "100.00", "pay", "80.00",
                           "CNY", "points", "+0", "[gold,base]"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeff" + plain))
    code, out_stdin, _ = run_main(capsys, "run", RETAIL, "-", "--members", members,
                                  "--format", "text")
    assert (code, out_stdin) == (0, out)
    stream.write_text(plain + "\ufeff" + plain.replace("X1", "X2"), encoding="utf-8")
    code, _, err = run_main(capsys, "run", RETAIL, stream)
    assert code == 1
    assert assert_one_line_error(err).startswith(f"loyaltyrules: {stream}:2: transactions is "
                                                 "not valid JSON")


def test_run_missing_transactions_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A transactions file that does not exist gives one error line and exit 1."""
    missing = tmp_path / "nope.jsonl"
    code, out, err = run_main(capsys, "run", RETAIL, missing)
    assert code == 1
    assert out == ""
    line = assert_one_line_error(err)
    assert line == f"loyaltyrules: {missing}: cannot read transactions: No such file or directory"


def test_run_missing_program_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A program file that does not exist gives one LR001 line and exit 1."""
    missing = tmp_path / "nope.yaml"
    code, _, err = run_main(capsys, "run", missing, EXAMPLES / "transactions.jsonl")
    assert code == 1
    line = assert_one_line_error(err)
    assert line == (f"loyaltyrules: {missing}: (top level): cannot read the program: "
                    "No such file or directory [LR001]")


# -- schema -----------------------------------------------------------------------------------


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """schema prints a JSON Schema whose properties include tiers and program."""
    code, out, _ = run_main(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "loyaltyrules program"
    assert "tiers" in schema["properties"]
    assert "program" in schema["properties"]
    assert set(schema["required"]) == {"program", "tiers"}


# -- README and the installed script ---------------------------------------------------------


def quickstart_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Quickstart\n.*?^```sh\n(.*?)^```", readme, re.S | re.M)
    assert match is not None, "README has no Quickstart ```sh block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_quickstart_has_the_two_documented_commands() -> None:
    """The Quickstart block holds exactly two commands: the example run and the CI test command."""
    lines = quickstart_lines()
    assert len(lines) == 2
    assert lines[0].startswith("pip install . && loyaltyrules run ")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.startswith("#")]
    assert lines[1] == ci[-1]


def test_readme_quickstart_run_works(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Quickstart's loyaltyrules arguments, run from the repository root, print 9 text lines."""
    args = shlex.split(quickstart_lines()[0].split("&& loyaltyrules ", 1)[1])
    monkeypatch.chdir(ROOT)
    code, out, err = run_main(capsys, *args)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(EXPECTED_RUN)
    assert "basic→silver" in lines[3]
    assert "pay     720.00 CNY points +70" in lines[5]
    assert "perks birthday_gift" in lines[5]
    assert err.startswith("9 transactions for 4 members in ")


def test_console_script_is_installed() -> None:
    """The installed `loyaltyrules` console script runs `validate` as a real process."""
    script = Path(sysconfig.get_path("scripts")) / "loyaltyrules"
    assert script.exists(), script
    result = subprocess.run(
        [str(script), "validate", "programs/retail-4tier.yaml"],
        capture_output=True, text=True, encoding="utf-8", cwd=ROOT, check=False, timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "programs/retail-4tier.yaml: ok — retail-4tier v1, tiers basic → silver → gold → diamond"
    )
    assert result.stderr == ""


def test_run_of_a_mixed_stream_counts_events_by_kind(
        capsys: pytest.CaptureFixture[str]) -> None:
    """examples/life.jsonl is 7 events of one member, not "7 transactions for 1 members"."""
    code, _, err = run_main(capsys, "run", ROOT / "programs" / "rfm-3tier.yaml",
                            ROOT / "examples" / "life.jsonl", "--format", "text")
    assert code == 0
    assert err.startswith("7 events (2 purchases, 2 behaviours, 2 advances, 1 refund) for "
                          "1 member in ")


def test_a_streamed_run_makes_no_garbage_cycles_per_event(tmp_path: Path) -> None:
    """`run` pauses the cycle collector for the whole run: that is only sound if reading the
    members, evaluating and applying events and writing the states leave nothing but what
    reference counting frees. The cyclic garbage of a run (from loading the program) must
    not grow with the number of members and events — for a year of lifecycle events
    (rfm-3tier, whose signals build next states at once), traced or as text with a repeated
    purchase, and for purchases whose next state is built when read (reference-4tier)."""
    life = [json.loads(line) for line in (ROOT / "examples" / "life.jsonl").read_text(
        encoding="utf-8").splitlines()]
    purchases = [event for event in life if "type" not in event]

    def garbage_of(program: str, template: list[dict[str, Any]], members: int,
                   *flags: str) -> int:
        events = tmp_path / f"events-{program}-{members}.jsonl"
        with events.open("w", encoding="utf-8") as out:
            for k in range(members):
                for event in template:
                    event = dict(event, member_id=f"m{k}")
                    for key in ("id", "transaction_id"):
                        if key in event:
                            event[key] = f"{event[key]}-{k}"
                    for key in ("at", "until"):  # five calendars, so the program's day
                        if key in event:         # index is the same size in both runs
                            when = datetime.fromisoformat(event[key])
                            event[key] = (when + timedelta(days=k % 5)).isoformat()
                    out.write(json.dumps(event) + "\n")
        # members read in, as a host's would be, each with a history (lots, records, usage)
        import loyaltyrules as lr

        loaded = lr.load_program(ROOT / "programs" / program)
        seed = lr.MemberState(id="seed")
        for n in range(3):
            seed = lr.apply(seed, lr.evaluate(loaded, seed, {
                "id": f"old{n}", "at": f"2025-12-0{n + 1}T12:00:00+08:00",
                "items": [{"sku": "A", "amount": "120.00"}]}))
        text = seed.model_dump_json(exclude_none=True)
        known = tmp_path / f"members-{members}.jsonl"
        known.write_text("".join(text.replace('"seed"', json.dumps(f"m{k}"), 1) + "\n"
                                 for k in range(members)), encoding="utf-8")
        gc.collect()
        gc.disable()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["run", str(ROOT / "programs" / program), str(events),
                             "--members", str(known), "--state-out",
                             str(tmp_path / "states.jsonl"), *flags]) == 0
            return gc.collect()
        finally:
            gc.enable()

    for program, template, flags in (("rfm-3tier.yaml", life, ("--trace",)),
                                     ("rfm-3tier.yaml", life + life[:1], ("--format", "text")),
                                     ("reference-4tier.yaml", purchases, ())):
        few, many = garbage_of(program, template, 5, *flags), garbage_of(
            program, template, 200, *flags)
        assert many - few < 50, (program, few, many)


@pytest.mark.parametrize("program_path", PROGRAMS, ids=lambda p: p.stem)
@pytest.mark.parametrize("trace", [False, True])
def test_run_writes_each_decision_as_pydantic_writes_it(program_path: Path, trace: bool) -> None:
    """`run` writes decisions with Decision.model_dump_json, which uses a serializer of the
    fields alone (not the wrapping one that builds a pending next state first): every line
    must be what pydantic's own serializer writes, with the trace on or off, with discounts,
    perks and upgrades, whether the next state was pending or built."""
    import loyaltyrules as lr

    program = lr.load_program(program_path)
    members = {m["id"]: lr.MemberState.model_validate(m) for m in map(
        json.loads, (EXAMPLES / "members.jsonl").read_text(encoding="utf-8").splitlines())}
    own = lr.Decision.__pydantic_serializer__
    seen = set()
    for line in (EXAMPLES / "transactions.jsonl").read_text(encoding="utf-8").splitlines():
        txn = lr.Transaction.model_validate_json(line)
        assert txn.member_id is not None
        member = members[txn.member_id]
        if member.tier not in program.tier_ids:  # the examples' members are retail-4tier's
            member = member.model_copy(update={"tier": None})
        decision = lr.evaluate(program, member, txn, trace=trace)
        written = decision.model_dump_json(exclude_none=True, exclude={"member_after"})
        assert written == own.to_json(decision, exclude_none=True,
                                      exclude={"member_after"}).decode()
        assert "member_after" not in json.loads(written)
        members[txn.member_id] = lr.apply(member, decision)
        seen.update(k for k in ("discounts", "perks", "events", "trace")
                    if getattr(decision, k))
        seen.update(["upgrade"] if decision.tier_changed else [])
    assert seen >= {"events"}
    if program_path.stem == "retail-4tier":
        assert seen >= {"discounts", "perks", "upgrade"}


# -- input the JSON reader cannot hold ----------------------------------------------------------


def test_a_number_too_long_is_one_line_naming_where(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A whole number of more digits than Python converts (4300) is a one-line error naming
    file:line (and column in a JSON file), in evaluate's member, a run line and --members."""
    digits = "9" * 5000
    member = tmp_path / "member.json"
    member.write_text('{"id": "a",\n "name": "12345", "points": ' + digits + "}",
                      encoding="utf-8")
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", member,
                              "--txn", EXAMPLES / "txn.json")
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (f"loyaltyrules: {member}:2:29: member state has a "
                                          "number too long to read (more than 4300 digits)")
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="X1", at="2026-03-02T10:00:00+08:00")
                      + TXN.format(id="X2", at="2026-03-02T10:00:00+08:00").replace(
                          '"100.00"', digits), encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, len(out.splitlines())) == (1, 1)
    assert assert_one_line_error(err) == (f"loyaltyrules: {stream}:2: transactions has a number "
                                          "too long to read (more than 4300 digits)")
    stream.write_text('{"type": "advance", "member_id": "m1", "until": ' + digits + "}\n",
                      encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (f"loyaltyrules: {stream}:1: transactions has a number "
                                          "too long to read (more than 4300 digits)")
    members = tmp_path / "members.jsonl"
    members.write_text('{"id": "b"}\n{"id": "a", "points": ' + digits + "}\n", encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl",
                              "--members", members)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (f"loyaltyrules: {members}:2: member states has a "
                                          "number too long to read (more than 4300 digits)")


def test_a_tiny_exponent_is_refused_in_one_short_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`"amount": 1e-99999999` (13 characters) has more decimals than CNY allows; it was said
    with the number written out, a 100 MB line. A purchase's amount, its shipping and a
    refund's amount alike."""
    stream = tmp_path / "txns.jsonl"
    purchase = TXN.format(id="X1", at="2026-03-02T10:00:00+08:00")
    for line, said in [
            (purchase.replace('"100.00"', "1e-99999999"), "2: transaction: items[0].amount"),
            (purchase.replace('"items"', '"shipping": 1e-99999999, "items"'),
             "2: transaction: shipping"),
            ('{"type": "refund", "member_id": "m1", "id": "R1", "transaction_id": "X0", '
             '"at": "2026-03-03T10:00:00+08:00", "amount": 1e-99999999}\n', "2: refund: amount")]:
        stream.write_text(purchase.replace("X1", "X0") + line, encoding="utf-8")
        code, out, err = run_main(capsys, "run", RETAIL, stream, "--quiet")
        assert (code, len(out.splitlines())) == (1, 1)
        assert assert_one_line_error(err) == (
            f"loyaltyrules: {stream}:{said}: 1E-99999999 has more decimals than CNY allows")


def test_json_nested_too_deeply_is_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A run line nested 100,000 levels deep (past the JSON reader's limit), or 900 levels
    inside attrs (past what validation walks), is `FILE:LINE: … nested too deeply` or the
    field's problem — never an internal error."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == f"loyaltyrules: {stream}:1: transactions nested too deeply"
    stream.write_text('{"type": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert assert_one_line_error(err) == f"loyaltyrules: {stream}:1: transactions nested too deeply"
    stream.write_text(TXN.format(id="X1", at="2026-03-02T10:00:00+08:00").replace(
        '"items"', '"attrs": {"x": ' + "[" * 900 + "]" * 900 + '}, "items"'), encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {stream}:1: transaction: attrs.x: expected text, a whole number, a "
        "number, true or false (got " + "[" * 39 + "…)")


def test_run_a_line_not_utf8_is_named_by_its_own_number(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Of 600 lines (CRLF, a blank one among them) where only line 500 has GBK bytes, the
    499 valid lines before it are run and the error names line 500 — from a file and from
    standard input alike."""
    lines = [TXN.format(id=f"X{i}", at="2026-03-02T10:00:00+08:00").rstrip("\n").encode()
             for i in range(600)]
    lines[10] = b""
    lines[499] = lines[499].replace(b'"sku": "A"', '"sku": "礼品"'.encode("gbk"))
    stream = tmp_path / "txns.jsonl"
    stream.write_bytes(b"\r\n".join(lines) + b"\r\n")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, len(out.splitlines())) == (1, 498)
    assert assert_one_line_error(err) == (f"loyaltyrules: {stream}:500: transactions is not "
                                          "UTF-8 text")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stream.read_bytes())))
    code, out, err = run_main(capsys, "run", RETAIL, "-")
    assert (code, len(out.splitlines())) == (1, 498)
    assert assert_one_line_error(err) == "loyaltyrules: -:500: transactions is not UTF-8 text"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        codecs.BOM_UTF8 + b"\r\n".join(lines[:3]) + b"\r\n")))
    code, out, err = run_main(capsys, "run", RETAIL, "-", "--quiet")
    assert (code, len(out.splitlines()), err) == (0, 3, "")


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("members.jsonl", '{"id": "gold-wang", "tier": "gold"}\n\n{"id": "b", "tier": "silvr"}\n',
     "3: member: tier: unknown tier 'silvr'; the program has ['basic', 'silver', 'gold', "
     "'diamond']"),
    ("members.json", '[\n  {"id": "a"},\n  {"id": "b",\n   "tier": "silvr"}\n]\n',
     "3: member: tier: unknown tier 'silvr'; the program has ['basic', 'silver', 'gold', "
     "'diamond']"),
    ("members.jsonl", '{"id": "a"}\n{"id": "b"}\n{"id": "a", "tier": "gold"}\n',
     "3: member: id: 'a' is given twice (first on line 1): one starting state per member"),
    ("members.json", '[{"id": "a"},\n {"id": "b", "points": "x"}]',
     "2: member: points: expected a whole number (got 'x')"),
    ("members.json", '[{"id": "a"},\n {"id": "b"},]', "2:14: member states is not valid JSON: "
     "Expecting value"),
    ("members.json", '[{"id": "a"}]\n[]', "2:1: member states is not valid JSON: Extra data"),
    ("members.json", '{"id": "solo", "tier": "silvr"}',
     "1: member: tier: unknown tier 'silvr'; the program has ['basic', 'silver', 'gold', "
     "'diamond']"),
    ("members.jsonl", '{"id": "gold-wang"}\n{"id": "nobody", "qualifying_spend": "0.001"}\n',
     "2: member: qualifying_spend: 0.001 has more decimals than CNY allows"),
    # (a .jsonl file is read a line at a time: the first line wrong is the one named)
    ("members.jsonl", '{"id": "a"}\n{"id": "b", "tier": "silvr"}\n{"id": oops\n',
     "2: member: tier: unknown tier 'silvr'; the program has ['basic', 'silver', 'gold', "
     "'diamond']"),
    ("members.jsonl", '{"id": "a"}\n\n{"id": oops\n{"id": "b", "tier": "silvr"}\n',
     "3: member states is not valid JSON: Expecting value"),
    ("members.jsonl", '{"id": "a", "points": 5, "points": 9}\n',
     "1: member states gives the key 'points' twice in one object"),
], ids=["jsonl-tier", "json-tier", "duplicate", "json-malformed", "json-trailing-comma",
        "json-extra-data", "json-one-state", "spend-finer-than-the-currency",
        "jsonl-first-wrong-line", "jsonl-malformed", "jsonl-key-twice"])
def test_run_checks_members_when_loading(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        name: str, text: str, expected: str) -> None:
    """A --members state with a tier the program lacks (even a member with no events), a
    malformed one, or an id given twice is MEMBERSFILE:LINE before any event runs, and no
    state file is written."""
    members = tmp_path / name
    members.write_text(text, encoding="utf-8")
    state = tmp_path / "state.jsonl"
    code, out, err = run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl",
                              "--members", members, "--state-out", state)
    assert (code, out, state.exists()) == (1, "", False)
    assert assert_one_line_error(err) == f"loyaltyrules: {members}:{expected}"


def test_run_writes_a_starting_spend_in_the_currencys_unit(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A starting spend of 12000 or 5.010 yuan fits the currency: each is written in its
    unit, 12000.00 and 5.01 (a member with no events is written back so)."""
    members = tmp_path / "members.jsonl"
    members.write_text('{"id": "gold-wang", "qualifying_spend": "12000"}\n'
                       '{"id": "nobody", "qualifying_spend": "5.010", '
                       '"spend_log": {"2026-01": "5.010"}}\n', encoding="utf-8")
    state = tmp_path / "state.jsonl"
    code, _, _ = run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl",
                          "--members", members, "--state-out", state, "--quiet")
    written = {s["id"]: s for s in map(json.loads, state.read_text().splitlines())}
    assert (code, written["nobody"]["qualifying_spend"], written["nobody"]["spend_log"]) == (
        0, "5.01", {"2026-01": "5.01"})
    assert Decimal(written["gold-wang"]["qualifying_spend"]).as_tuple().exponent == -2


# -- a reader that stops reading (| head) -------------------------------------------------------


@contextlib.contextmanager
def closed_stdout(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Standard output as `| head` leaves it: a pipe whose reader is gone (writes fail
    with BrokenPipeError once the buffer is flushed)."""
    read, write = os.pipe()
    os.close(read)
    handle = open(write, "w", encoding="utf-8")  # noqa: SIM115
    monkeypatch.setattr("sys.stdout", handle)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            handle.close()


SCENARIO = """\
program: {program}
scenarios:
  - name: {name}
    member: {{id: lin, tier: silver, qualifying_spend: 12000}}
    steps:
      - purchase: {{id: T1, at: "2026-03-03T12:00:00+08:00", items: [{{sku: A, amount: 1000}}]}}
        expect: {{payable: {payable}}}
"""


def write_scenarios(folder: Path, name: str, payables: list[str]) -> Path:
    folder.mkdir(exist_ok=True)
    text = SCENARIO.format(program=RETAIL, name="s0", payable=payables[0])
    for n, payable in enumerate(payables[1:], 1):
        text += SCENARIO.format(program=RETAIL, name=f"s{n}", payable=payable).split(
            "scenarios:\n", 1)[1]
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_test_with_its_output_closed_still_exits_with_the_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`loyaltyrules test failing | head -1`: the scenarios still run and the exit code is 1
    (was 0); all passing with -v and the output closed is still 0; nothing on stderr."""
    failing = write_scenarios(tmp_path / "f", "x.scenarios.yaml", ["951.00"] * 200)
    passing = write_scenarios(tmp_path / "p", "x.scenarios.yaml", ["950.00"] * 200)
    with closed_stdout(monkeypatch):
        assert main(["test", str(failing)]) == 1
    with closed_stdout(monkeypatch):
        assert main(["test", "-v", str(passing)]) == 0
    assert capsys.readouterr().err == ""


def test_run_with_its_output_closed_is_not_a_success(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`run … --state-out st.jsonl | head -1` exits 1 naming the line it stopped at and
    writes no state file (was: exit 0, no state file, no word); no traceback."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text("".join(TXN.format(id=f"X{i}", at="2026-03-02T10:00:00+08:00")
                              for i in range(400)), encoding="utf-8")
    state = tmp_path / "st.jsonl"
    with closed_stdout(monkeypatch):
        code = main(["run", str(RETAIL), str(stream), "--state-out", str(state), "--trace"])
    err = capsys.readouterr().err
    assert (code, state.exists()) == (1, False)
    line = assert_one_line_error(err)
    assert re.fullmatch(rf"loyaltyrules: {re.escape(str(stream))}:\d+: output closed, the run "
                        r"stopped here; the member states were not written", line), line
    with closed_stdout(monkeypatch):
        code = main(["schema"])
    assert code == 1
    assert assert_one_line_error(capsys.readouterr().err) == (
        "loyaltyrules: output closed before the command finished")


def test_run_trace_keeps_the_trace_of_a_purchase_line_with_type(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """run --trace writes the trace of every purchase, also of a line that says
    "type": "purchase" or has "type" among its attrs (was: no trace for those lines)."""
    at = "2026-03-02T10:00:00+08:00"
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="X1", at=at)
                      + TXN.format(id="X2", at=at).replace('{"id"', '{"type": "purchase", "id"')
                      + TXN.format(id="X3", at=at).replace('"items"',
                                                           '"attrs": {"type": "gift"}, "items"'),
                      encoding="utf-8")
    code, out, _ = run_main(capsys, "run", RETAIL, stream, "--trace", "--quiet")
    decisions = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [d["transaction_id"] for d in decisions] == ["X1", "X2", "X3"]
    assert [bool(d.get("trace")) for d in decisions] == [True, True, True]
    assert [(e["rule"], e["kind"]) for e in decisions[1]["trace"]] == [
        (e["rule"], e["kind"]) for e in decisions[0]["trace"]]


# -- scenario files -------------------------------------------------------------------------------


def test_test_reports_a_bad_scenario_file_at_its_program_key_and_runs_the_others(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A scenario file whose `program:` cannot be read, is not a path (5, [a], ''), or that
    is empty is one line pointing into the scenario file, counted as not run; the valid
    file is still run and the summary line printed; exit 1."""
    folder = tmp_path / "sc"
    folder.mkdir()
    (folder / "a1.scenarios.yaml").write_text("program: progr.yaml\nscenarios: []\n",
                                              encoding="utf-8")
    (folder / "a2.scenarios.yaml").write_text("program: 5\nscenarios: []\n", encoding="utf-8")
    (folder / "a3.scenarios.yaml").write_text("scenarios: []\nprogram: [a]\n",
                                              encoding="utf-8")
    (folder / "a4.scenarios.yaml").write_text("", encoding="utf-8")
    write_scenarios(folder, "b_good.scenarios.yaml", ["950.00", "950"])
    code, out, err = run_main(capsys, "test", folder)
    assert (code, out) == (1, "2 passed, 0 failed, 4 scenario files not run\n")
    path = "expected the path of the program file, relative to this scenario file, such as " \
        "../retail-4tier.yaml"
    assert err.splitlines() == [
        f"loyaltyrules: {folder}/a1.scenarios.yaml:1:10: program: cannot read the program "
        f"'{folder}/progr.yaml': No such file or directory [LR601]",
        f"loyaltyrules: {folder}/a2.scenarios.yaml:1:10: program: {path} (got 5) [LR601]",
        f"loyaltyrules: {folder}/a3.scenarios.yaml:2:10: program: {path} (got ['a']) [LR601]",
        f"loyaltyrules: {folder}/a4.scenarios.yaml: (top level): the scenario file is empty: "
        "a scenario file has `program:` and `scenarios:` [LR103]",
    ]


BAD_VALUES = """\
program: {program}
scenarios:
  - name: one
    member: {{id: a, qualifyng_spend: 100}}
    steps:
      - purchase: {{id: T1, at: "2026-03-03T12:00:00+08:00", items: [{{sku: A, amount: 10}}]}}
        expect: {{payable: abc}}
  - name: one
    member: {{id: b, birthday: 1988-02-30, tier: platinum}}
    steps:
      - purchase: {{id: T1, at: "2026-03-03T12:00:00+08:00", items: [{{sku: A, amount: 10}}]}}
        expect: {{payable: , tier: silvr, points: "100"}}
  - name:
    steps:
      - advance: "2027-01-01T00:00:00+08:00"
        expect: {{payable: 5, balance: 1e3}}
      - purchase: {{id: T2, at: "2026-03-03T12:00:00+08:00", items: [{{sku: A, amount: 1}}]}}
        expect: {{error: }}
"""


def test_test_refuses_amounts_finer_than_the_currency_when_loading(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A purchase of 10.005 CNY loaded and failed as it ran ("has more decimals than CNY
    allows", with no place in the file), and an expected payable of 9.995 could never
    match: both are said at their place when the file loads (found by helper-46)."""
    assert scenario_file_problems(capsys, tmp_path / "fine.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n  - name: one\n    member: {{id: a}}\n    steps:\n"
        "      - purchase: {id: T1, at: \"2026-03-03T12:00:00+08:00\", shipping: 0.001,\n"
        "                   items: [{sku: A, amount: 1.00}, {sku: B, amount: 10.005}]}\n"
        "        expect: {payable: 9.995, points: 1}\n") == [
        "6:71: scenarios[0].steps[0].purchase.shipping: 0.001 has more decimals than CNY "
        "allows",
        "7:69: scenarios[0].steps[0].purchase.items[1].amount: 10.005 has more decimals than "
        "CNY allows",
        "8:27: scenarios[0].steps[0].expect.payable: 9.995 has more decimals than CNY allows: "
        "no decision is ever that amount"]


def test_test_refuses_a_starting_member_s_spend_finer_than_the_currency_when_loading(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A starting member's qualifying spend of 12000.001 yuan, or a month of its spend log,
    is said at its place when the file loads, as the engine would refuse it."""
    assert scenario_file_problems(capsys, tmp_path / "odd.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n"
        "  - name: one\n    member: {id: a, qualifying_spend: 12000.001}\n    steps:\n"
        "      - advance: \"2026-03-03T12:00:00+08:00\"\n"
        "  - name: two\n    member: {id: b, spend_log: {\"2026-01\": 1.001}}\n    steps:\n"
        "      - advance: \"2026-03-03T12:00:00+08:00\"\n") == [
        "4:39: scenarios[0].member.qualifying_spend: 12000.001 has more decimals than CNY "
        "allows",
        "8:44: scenarios[1].member.spend_log.2026-01: 1.001 has more decimals than CNY allows"]


def test_a_scenario_can_expect_a_spend_beyond_one_amount(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A member's spend is read below 10^18 (it adds purchases up, each below 10^15): a
    scenario may start from such a spend and expect one; 10^18 is refused at its place."""
    path = tmp_path / "big.scenarios.yaml"
    path.write_text(f"program: {RETAIL}\nscenarios:\n"
                    "  - name: one\n    member: {id: a, qualifying_spend: 999999999999999.00}\n"
                    "    steps:\n      - purchase: {id: t1, at: \"2026-03-03T12:00:00+08:00\", "
                    "items: [{sku: a, amount: 1000.00}]}\n"
                    "        expect: {spend: 1000000000000999.00}\n", encoding="utf-8")
    code, out, err = run_main(capsys, "test", path)
    assert (code, out, err) == (0, "1 passed, 0 failed\n", "")
    assert scenario_file_problems(capsys, tmp_path / "top.scenarios.yaml",
        path.read_text(encoding="utf-8").replace("{spend: 1000000000000999.00}",
                                                 "{spend: 1000000000000000000}")) == [
        "7:25: scenarios[0].steps[0].expect.spend: expected an amount below 10^18 "
        "(got 1000000000000000000)"]


def test_a_scenario_file_is_checked_whatever_the_hosts_decimal_context(tmp_path: Path) -> None:
    """A conftest that traps Inexact (quantizing 123456789012.001 to the fen is inexact)
    turned the load's check into a bare decimal.Inexact; the file's problems are said as
    ever, at their places."""
    path = tmp_path / "odd.scenarios.yaml"
    path.write_text(f"program: {RETAIL}\nscenarios:\n"
                    "  - name: one\n    member: {id: a, qualifying_spend: 123456789012.001}\n"
                    "    steps:\n      - purchase: {id: t1, at: \"2026-03-03T12:00:00+08:00\", "
                    "items: [{sku: a, amount: 10.005}]}\n", encoding="utf-8")
    for setting in ({"traps": [decimal.Inexact]}, {"prec": 4}):
        with decimal.localcontext(**setting), \
                pytest.raises(ProgramError) as refused:
            load_scenarios(path)
        assert [(d.line, d.column, d.message) for d in refused.value.diagnostics] == [
            (4, 39, "123456789012.001 has more decimals than CNY allows"),
            (6, 86, "10.005 has more decimals than CNY allows")]


def scenario_file_problems(capsys: pytest.CaptureFixture[str], path: Path, text: str
                           ) -> list[str]:
    """`loyaltyrules test` on a scenario file with ``text``, which must not run: each
    problem's line, without the file's name and the [LR601] every one of them ends with."""
    path.write_text(text, encoding="utf-8")
    code, out, err = run_main(capsys, "test", path)
    assert (code, out) == (1, "0 passed, 0 failed, 1 scenario file not run\n")
    lines = err.splitlines()
    assert all(line.endswith(" [LR601]") for line in lines)
    return [line.removesuffix(" [LR601]").removeprefix(f"loyaltyrules: {path}:")
            for line in lines]


def test_test_reports_every_misshapen_scenario_and_step_at_once_in_file_order(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An empty steps list, an unknown expectation, a step of no known kind and an unknown
    key of a scenario are all reported in one run, in the file's order, with the value
    problems beside them (found by helper-55/56: one per run, and `steps: []` hid the rest);
    an unknown key or expectation at the key, not its value (helper-98)."""
    path = tmp_path / "shapes.scenarios.yaml"
    assert scenario_file_problems(capsys, path,
        f"program: {RETAIL}\nscenarios:\n"
        "  - name: a\n    member: {id: a, tier: platinum}\n    steps: []\n"
        "  - name: b\n    steps:\n"
        "      - purchase: {id: T1, at: \"2026-03-03T10:00:00+08:00\", items: [{sku: B, "
        "amount: 10.005}]}\n"
        "        expect: {points: \"100\", colour: red, payble: 1}\n"
        "      - dance: {}\n"
        "    extra: 1\n") == [
        "4:27: scenarios[0].member.tier: unknown tier 'platinum'; the program has ['basic', "
        "'silver', 'gold', 'diamond']",
        "5:12: scenarios[0].steps: expected a list of one or more steps",
        "8:86: scenarios[1].steps[0].purchase.items[0].amount: 10.005 has more decimals "
        "than CNY allows",
        "9:26: scenarios[1].steps[0].expect.points: expected a whole number of points (got "
        "'100')",
        "9:33: scenarios[1].steps[0].expect.colour: unknown expectation 'colour' (one of "
        "payable, discount, points, perks, redeemed, qualifying_spend, tier, balance, "
        "pending, spend, events, signals, money_refunded, error)",
        "9:46: scenarios[1].steps[0].expect.payble: unknown expectation 'payble' (one of "
        "payable, discount, points, perks, redeemed, qualifying_spend, tier, balance, "
        "pending, spend, events, signals, money_refunded, error) — did you mean 'payable'?",
        "10:9: scenarios[1].steps[1]: each step is exactly one of purchase, refund, "
        "behaviour, reward, advance — did you mean 'advance'?",
        "11:5: scenarios[1].extra: unknown key 'extra'"]
    # as the pytest plugin shows them: the scenario file's problems, not the program's
    with pytest.raises(ProgramError) as caught:
        load_scenarios(path)
    assert str(caught.value).splitlines()[0] == "8 problems in the scenario file:"


def test_test_refuses_a_step_or_member_that_is_not_a_mapping(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A step written as a word, a member written as an empty list and expectations written
    as one are problems of the file (found by helper-60/61: the step raised a TypeError, and
    `member: []`, 0, "" or false ran as the default member, `expect: []` as none)."""
    assert scenario_file_problems(capsys, tmp_path / "shapes.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n"
        "  - name: a\n    member: []\n    steps: [purchase]\n"
        "  - name: b\n    member: false\n"
        "    steps: [{advance: \"2026-03-03T00:00:00+08:00\", expect: []}]\n") == [
        "4:13: scenarios[0].member: expected a mapping of member state fields",
        "5:13: scenarios[0].steps[0]: each step is exactly one of purchase, refund, "
        "behaviour, reward, advance",
        "7:13: scenarios[1].member: expected a mapping of member state fields",
        "8:60: scenarios[1].steps[0].expect: expected a mapping of expectations"]


def test_test_checks_scenario_values_when_loading(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Typos in member fields, impossible dates, unknown tiers, expectations that are no
    amount / no whole number / no tier / not said of that step, empty and duplicate names
    are each reported with file:line:col when the file loads, before any scenario runs
    (was: run, and failed or compared "100" with 100)."""
    path = tmp_path / "bad.scenarios.yaml"
    path.write_text(BAD_VALUES.format(program=RETAIL), encoding="utf-8")
    code, out, err = run_main(capsys, "test", path)
    assert (code, out) == (1, "0 passed, 0 failed, 1 scenario file not run\n")
    tiers = "the program has ['basic', 'silver', 'gold', 'diamond']"
    at = f"loyaltyrules: {path}"
    assert err.splitlines() == [
        f"{at}:4:21: scenarios[0].member.qualifyng_spend: unknown field — did you mean "
        "'qualifying_spend'? [LR601]",
        f"{at}:7:27: scenarios[0].steps[0].expect.payable: expected an amount such as 720.00 "
        "(got 'abc') [LR601]",
        f"{at}:8:11: scenarios[1].name: 'one' is already the name of the scenario on line 3: "
        "each scenario of a file has a name of its own [LR601]",
        f"{at}:9:31: scenarios[1].member.birthday: expected a date such as 2026-11-11 (got "
        "'1988-02-30') [LR601]",
        f"{at}:9:49: scenarios[1].member.tier: unknown tier 'platinum'; {tiers} [LR601]",
        f"{at}:12:26: scenarios[1].steps[0].expect.payable: expected an amount such as 720.00 "
        "(got null) [LR601]",
        f"{at}:12:35: scenarios[1].steps[0].expect.tier: unknown tier 'silvr'; {tiers} — did "
        "you mean 'silver'? [LR601]",
        f"{at}:12:50: scenarios[1].steps[0].expect.points: expected a whole number of points "
        "(got '100') [LR601]",
        f"{at}:13:10: scenarios[2].name: expected the scenario's name, as text (got null) "
        "[LR601]",
        f"{at}:16:27: scenarios[2].steps[0].expect.payable: payable is said of a purchase "
        "step, not of an advance step [LR601]",
        f"{at}:18:24: scenarios[2].steps[1].expect.error: expected the text the step's error "
        "message contains (got null) [LR601]",
    ]


# -- smaller things -------------------------------------------------------------------------------


def test_run_shows_progress_on_a_terminal_in_the_words_of_its_events(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, a line every so many events (10,000; 2 here) says how many and how
    fast; a stream holding a refund or an advance counts events, not transactions (found by
    helper-60: an advance was called a transaction)."""
    import loyaltyrules._cli as cli
    monkeypatch.setattr(cli, "_PROGRESS_EVERY", 2)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    stream = tmp_path / "txns.jsonl"
    purchases = [TXN.format(id=f"X{n}", at=f"2026-03-0{n}T10:00:00+08:00") for n in (1, 2, 3)]
    stream.write_text("".join(purchases[:2]), encoding="utf-8")
    code, _, err = run_main(capsys, "run", RETAIL, stream, "--format", "jsonl")
    assert code == 0
    assert re.fullmatch(r"\r2 transactions, 1 member, [\d,]+/s\x1b\[K\n", err)
    stream.write_text(purchases[0] + '{"type": "advance", "member_id": "m1", "until": '
                      '"2026-03-02T00:00:00+08:00"}\n' + "".join(purchases[1:]),
                      encoding="utf-8")
    code, _, err = run_main(capsys, "run", RETAIL, stream, "--format", "jsonl")
    assert code == 0
    assert re.fullmatch(r"(\r(2|4) events, 1 member, [\d,]+/s\x1b\[K){2}\n", err)


def test_run_says_when_a_repeated_purchase_id_is_skipped(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A purchase reusing an id already applied (here with other contents) is skipped with a
    line in text output, and a count on stderr with JSON lines, --quiet too (was silent)."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="X1", at="2026-03-02T10:00:00+08:00")
                      + TXN.format(id="X1", at="2026-03-05T10:00:00+08:00").replace("100", "99")
                      + TXN.format(id="X1", at="2026-03-05T10:00:00+08:00").replace(
                          '{"id"', '{"type": "purchase", "id"'), encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream, "--format", "text", "--quiet")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        f"X1       skipped: line {n} repeats a purchase id already applied to its member (a "
        "retry, or the id reused)" for n in (2, 3)]
    code, out, err = run_main(capsys, "run", RETAIL, stream, "--quiet")
    assert (code, len(out.splitlines())) == (0, 1)
    assert err == (f"loyaltyrules: {stream}: 2 repeated purchases skipped (ids already applied "
                   "to their member: a retry, or an id reused)\n")


@pytest.mark.parametrize(("line", "expected"), [
    ('{"type": "advance", "member_id": "m", "untill": "2027-01-01T00:00:00+08:00"}',
     "advance: untill: unknown field; did you mean 'until'?"),
    ('{"type": "advance", "member_id": "m", "until": "2027-01-01T00:00:00+08:00", "extra": 1}',
     "advance: extra: unknown field"),
    ('{"type": "advance", "member_id": "m"}', "advance: until: required"),
    ('{"type": "advance", "member_id": "m", "until": null}',
     "advance: until: expected a date-time such as 2026-03-03T10:00:00+08:00, got null"),
    ('{"type": "behaviour", "member_id": "m", "id": "B1", "at": "2027-01-01T00:00:00+08:00"}',
     "behaviour: event: required"),
    ('{"type": null, "member_id": "m"}',  # (was Python's spelling: type None)
     "type null is not one of purchase, refund, behaviour, reward, advance"),
], ids=["misspelt", "extra", "no-until", "null-until", "no-event", "null-type"])
def test_run_event_lines_name_their_own_keys(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, expected: str) -> None:
    """An advance line refuses unknown keys (was: run, or `until: … got ''`); a behaviour
    line without `event` names `event` (was `type`)."""
    stream = tmp_path / "events.jsonl"
    stream.write_text(line + "\n", encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == f"loyaltyrules: {stream}:1: {expected}"


@pytest.mark.parametrize("examples", ["0", "-5", "many"])
def test_check_examples_below_one_is_a_usage_error(
        capsys: pytest.CaptureFixture[str], examples: str) -> None:
    """check --examples 0 / -5 / many is refused by the command line itself (exit 2)."""
    with pytest.raises(SystemExit) as stop:
        main(["check", str(RETAIL), "--examples", examples])
    assert stop.value.code == 2
    said = "expected a whole number, got 'many'" if examples == "many" else \
        f"must be at least 1, got {examples}"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"loyaltyrules check: error: argument --examples: {said}")


# -- output that cannot be written, input that is not text ---------------------------------------


def test_output_that_cannot_be_written_is_one_line_not_an_internal_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk (`> /dev/full`), standard output closed (`>&-`) and a terminal whose
    encoding cannot write the output (PYTHONIOENCODING=ascii) each said "internal error …
    this is a bug"."""
    with open("/dev/full", "w", encoding="utf-8") as full:
        monkeypatch.setattr("sys.stdout", full)
        code = main(["run", str(RETAIL), str(EXAMPLES / "transactions.jsonl")])
        assert code == 1
        assert assert_one_line_error(capsys.readouterr().err) == (
            "loyaltyrules: cannot write the output: No space left on device")
    monkeypatch.setattr("sys.stdout", None)
    assert main(["validate", str(RETAIL)]) == 1
    assert assert_one_line_error(capsys.readouterr().err) == (
        "loyaltyrules: standard output is closed")
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert main(["validate", str(RETAIL)]) == 1
    assert assert_one_line_error(capsys.readouterr().err) == (
        "loyaltyrules: the output has characters ascii cannot write: run with "
        "PYTHONIOENCODING=utf-8")


def test_a_line_longer_than_the_bound_is_refused_without_reading_it_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON Lines input is read a line at a time up to MAX_LINE (64 MiB): a file with no
    line break was read whole into memory. Here the bound is made 400 characters."""
    monkeypatch.setattr("loyaltyrules._cli.MAX_LINE", 400)
    line = TXN.format(id="T1", at="2026-03-03T10:00:00+08:00")
    assert len(line) < 400
    stream = tmp_path / "txns.jsonl"
    stream.write_text(line + "x" * 10_000, encoding="utf-8")
    assert main(["run", str(RETAIL), str(stream)]) == 1
    assert assert_one_line_error(capsys.readouterr().err) == (
        f"loyaltyrules: {stream}:2: transactions line is longer than 400 characters")
    stream.write_text(line + line.replace("T1", "T2"), encoding="utf-8")
    assert main(["run", str(RETAIL), str(stream)]) == 0


def test_a_file_name_that_is_not_utf8_is_written_back_as_its_bytes(tmp_path: Path) -> None:
    """`validate r\\xff.yaml` read the program and then failed writing its name ("the
    output has characters utf-8 cannot write: run with PYTHONIOENCODING=utf-8", which was
    already so); the name's bytes are written back as they came, as ls does."""
    name = os.fsdecode(bytes(tmp_path) + b"/r\xff.yaml")
    Path(name).write_bytes(RETAIL.read_bytes())
    done = subprocess.run([sys.executable, "-m", "loyaltyrules", "validate", name],
                          capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
                          check=False)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.startswith(bytes(tmp_path) + b"/r\xff.yaml: ok")
    # and on standard error as well (it was spelled r\udcff, a name no file has)
    Path(name).write_text("program: {id: p, version: 1, currency: CNY, timezone: UTC}\n"
                          "tiers: 5\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "loyaltyrules", "validate", name],
                          capture_output=True, check=False)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.startswith(bytes(tmp_path) + b"/r\xff.yaml:2:8: tiers: ")


@pytest.mark.parametrize("where", ["member_id", "attrs"])
def test_a_lone_surrogate_escape_is_refused_where_it_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    r"""`"m\ud800"` is half of a character: JSON can escape it, Python reads it, nothing can
    write it. Refused on its line (it was an internal error, several lines of pydantic's);
    a whole escaped pair (an emoji) is text and is read."""
    half = '"x\\ud800"'
    pair = '"x\\ud83d\\ude00"'
    for value, fine in ((half, False), (pair, True)):
        line = TXN.format(id="T1", at="2026-03-03T10:00:00+08:00")
        if where == "member_id":
            line = line.replace('"m1"', value)
        else:
            line = line.replace('"items"', f'"attrs": {{"k": {value}}}, "items"')
        stream = tmp_path / "txns.jsonl"
        stream.write_text(TXN.format(id="T0", at="2026-03-03T09:00:00+08:00") + line,
                          encoding="utf-8")
        code, out, err = run_main(capsys, "run", RETAIL, stream)
        if fine:
            assert (code, err, len(out.splitlines())) == (0, "", 2)
        else:
            assert code == 1
            assert assert_one_line_error(err) == (
                f"loyaltyrules: {stream}:2: transactions holds a lone surrogate escape such "
                "as \\ud800 (half of a character, not text)")
    member = tmp_path / "m.json"
    member.write_text('{"id": "m", "attrs": {"k": "\\udc00"}}', encoding="utf-8")
    txn = tmp_path / "t.json"
    txn.write_text(TXN.format(id="T1", at="2026-03-03T10:00:00+08:00").replace(
        '"m1"', '"m"'), encoding="utf-8")
    code, _, err = run_main(capsys, "evaluate", RETAIL, "--member", member, "--txn", txn)
    assert code == 1
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {member}: member state holds a lone surrogate escape such as "
        "\\ud800 (half of a character, not text)")


def test_a_json_string_is_not_read_again_as_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A member list holding the text of a member (`["{\\"id\\": \\"a\\"}"]`) was read as
    member a; a transaction line `"x"` was "Invalid JSON"."""
    members = tmp_path / "m.json"
    members.write_text(json.dumps(['{"id": "a", "tier": "gold"}']), encoding="utf-8")
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="T1", at="2026-03-03T10:00:00+08:00"), encoding="utf-8")
    code, _, err = run_main(capsys, "run", RETAIL, stream, "--members", members)
    assert code == 1
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {members}:1: member: expected a mapping (a JSON object), got text")
    stream.write_text('"x"\n', encoding="utf-8")
    code, _, err = run_main(capsys, "run", RETAIL, stream)
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {stream}:1: transaction: expected a mapping (a JSON object), got text")


@pytest.mark.parametrize("today", ["20260301", "2026-W10-1", "2026-13-01", "2026-3-1"])
def test_lint_today_is_a_date_written_as_the_help_says(
        capsys: pytest.CaptureFixture[str], today: str) -> None:
    """--today takes YYYY-MM-DD (Python's reader also took 20260301 and 2026-W10-1); any
    other is a wrong command line, exit 2 as for every other option (it was 1: helper-98)."""
    with pytest.raises(SystemExit) as usage:
        main(["lint", str(RETAIL), "--today", today])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (f"loyaltyrules lint: error: argument --today: {today!r} "
                                    "is not a date such as 2026-03-01")
    assert run_main(capsys, "lint", RETAIL, "--today", "2026-03-01")[0] == 0


@pytest.mark.parametrize("args", [
    ("run", RETAIL, EXAMPLES / "transactions.jsonl", "--members", EXAMPLES / "members.jsonl",
     "--quiet"),
    ("run", RETAIL, EXAMPLES / "transactions.jsonl", "--format", "text"),
    ("validate", RETAIL),
    ("evaluate", RETAIL, "--member", EXAMPLES / "member.json", "--txn", EXAMPLES / "txn.json"),
], ids=["run-quiet", "run-text", "validate", "evaluate"])
def test_every_command_runs_with_standard_error_closed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        args: tuple[str | Path, ...]) -> None:
    """Started with `2>&-` (sys.stderr is None), run said "internal error (AttributeError:
    'NoneType' object has no attribute 'isatty')". What goes to standard error (progress,
    the summary) is not shown; the output is as ever."""
    code, expected, _ = run_main(capsys, *args)
    assert code == 0
    monkeypatch.setattr("sys.stderr", None)
    assert run_main(capsys, *args) == (0, expected, "")


def test_a_failure_with_standard_error_closed_is_told_by_the_exit_code_alone(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    """With standard error closed, an error is not written into the output instead."""
    monkeypatch.setattr("sys.stderr", None)
    assert run_main(capsys, "run", RETAIL, tmp_path / "missing.jsonl") == (1, "", "")


LONG_ID = "x" * 129


@pytest.mark.parametrize(("line", "expected"), [
    (TXN.format(id="T1", at="2026-03-02T10:00:00+08:00").replace('"m1"', '""'),
     "transaction: member_id: each transaction in a stream needs a member_id"),
    (TXN.format(id="T1", at="2026-03-02T10:00:00+08:00").replace("m1", LONG_ID),
     "transaction: member_id: must be at most 128 characters long (got 129)"),
    ('{"type": "advance", "member_id": "' + LONG_ID + '", "until": "2027-01-01T00:00:00+08:00"}',
     "advance: member_id: must be at most 128 characters long (got 129)"),
    ('{"type": "behaviour", "member_id": "' + LONG_ID + '", "id": "B1", "event": "check_in", '
     '"at": "2027-01-01T00:00:00+08:00"}',
     "behaviour: member_id: must be at most 128 characters long (got 129)"),
], ids=["purchase-empty", "purchase-129", "advance-129", "behaviour-129"])
def test_a_member_id_no_member_can_have_is_the_lines_one_line_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, expected: str) -> None:
    """A purchase line with `"member_id": ""`, or any line whose member_id (of a member not
    in --members) is longer than a member's id may be, was "internal error
    (ValidationError …)" over several lines."""
    stream = tmp_path / "events.jsonl"
    stream.write_text(line.rstrip("\n") + "\n", encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == f"loyaltyrules: {stream}:1: {expected}"


@pytest.mark.parametrize(("written", "expected"), [
    ('"redeem_points": 100.0000000000000000000000000001',
     "redeem_points: expected a whole number (got 100.0000000000000000000000000001)"),
    ('"redeem_points": 1e-1000', "redeem_points: expected a whole number (got 1E-1000)"),
    ('"items": [{"sku": "A", "amount": "100.00", "quantity": 2.0000000000000000000000000001}]',
     "items[0].quantity: expected a whole number (got 2.0000000000000000000000000001)"),
], ids=["just-above-100", "tiny-exponent", "quantity"])
def test_run_refuses_a_whole_number_field_written_with_a_fraction(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, written: str, expected: str) -> None:
    """A count written with a fraction or exponent was read as a float: 100.000…0001 redeemed
    100 points, 1e-1000 none, quantity 2.000…0001 was 2. Refused, as the API refuses them."""
    members = tmp_path / "members.jsonl"
    members.write_text('{"id": "m1", "points": 1000}\n', encoding="utf-8")
    stream = tmp_path / "txns.jsonl"
    line = TXN.format(id="T1", at="2026-03-02T10:00:00+08:00")
    if written.startswith('"items"'):
        line = line[:line.index('"items"')] + written + "}\n"
    else:
        line = line.replace('"items"', written + ', "items"')
    stream.write_text(line, encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream, "--members", members)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == f"loyaltyrules: {stream}:1: transaction: {expected}"


def test_run_reads_a_whole_number_written_with_zero_decimals_as_itself(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`"redeem_points": 100.0` and `1e2` are 100, and `"quantity": 2.0` is 2."""
    members = tmp_path / "members.jsonl"
    members.write_text('{"id": "m1", "points": 1000}\n', encoding="utf-8")
    stream = tmp_path / "txns.jsonl"
    stream.write_text(
        '{"id": "T1", "member_id": "m1", "at": "2026-03-02T10:00:00+08:00", "redeem_points": '
        '100.0, "items": [{"sku": "A", "amount": "100.00", "quantity": 2.0}]}\n'
        '{"id": "T2", "member_id": "m1", "at": "2026-03-02T10:00:00+08:00", "redeem_points": '
        '1e2, "items": [{"sku": "A", "amount": "100.00"}]}\n', encoding="utf-8")
    code, out, _ = run_main(capsys, "run", RETAIL, stream, "--members", members, "--quiet")
    assert code == 0
    assert [json.loads(line)["redeemed_points"] for line in out.splitlines()] == [100, 100]


def test_a_whole_json_file_larger_than_its_bound_is_refused_without_reading_it_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """evaluate's --member and --txn are bounded as a JSON Lines line is (MAX_LINE, 64 MiB),
    a --members .json list by MAX_MEMBERS_JSON (256 MiB): `--member /dev/zero` grew to
    gigabytes, or was "internal error (MemoryError)". Here the bounds are 400 and 800."""
    monkeypatch.setattr("loyaltyrules._cli.MAX_LINE", 400)
    monkeypatch.setattr("loyaltyrules._cli.MAX_MEMBERS_JSON", 800)
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", "/dev/zero",
                              "--txn", EXAMPLES / "txn.json")
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (
        "loyaltyrules: /dev/zero: member state file is longer than 400 bytes")
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", EXAMPLES / "member.json",
                              "--txn", "/dev/zero")
    assert assert_one_line_error(err) == (
        "loyaltyrules: /dev/zero: transaction file is longer than 400 bytes")
    members = tmp_path / "members.json"
    members.write_text(json.dumps([{"id": f"m{n}"} for n in range(50)]), encoding="utf-8")
    assert 400 < members.stat().st_size <= 800
    assert run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl", "--members",
                    members, "--quiet")[0] == 0
    members.write_text(json.dumps([{"id": f"m{n}"} for n in range(100)]), encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, EXAMPLES / "transactions.jsonl",
                              "--members", members)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {members}: member states file is longer than 800 bytes")


@pytest.mark.parametrize(("line", "key"), [
    (TXN.replace('"amount": "100.00"', '"amount": "100.00", "amount": "0.01"'), "amount"),
    (TXN.replace('"id": "{id}", ', '"id": "{id}", "id" : "X9", '), "id"),
    (TXN.replace('"member_id": "m1", ', '"attrs": {{"vip": true, "vip": false}}, '
                 '"member_id": "m1", '), "vip"),
    ('{{"type": "advance", "member_id": "m1", "member_id": "m2", "until": "{at}"}}\n',
     "member_id"),
], ids=["item-amount", "spaced-colon", "attrs", "event"])
def test_run_refuses_a_key_given_twice(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, key: str) -> None:
    """`{"amount": "100.00", "amount": "0.01"}` charged 0.01: JSON readers keep the last
    of a key given twice, silently. Refused, as YAML refuses it, naming the key."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text(line.format(id="T1", at="2026-03-02T10:00:00+08:00"), encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, stream)
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {stream}:1: transactions gives the key '{key}' twice in one object")


def test_a_key_given_twice_in_a_whole_json_file_is_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """evaluate's --member (and --txn, and a --members list) refuse a key given twice."""
    member = tmp_path / "member.json"
    member.write_text('{"id": "m1", "points": 10, "points": 99999}', encoding="utf-8")
    code, out, err = run_main(capsys, "evaluate", RETAIL, "--member", member,
                              "--txn", EXAMPLES / "txn.json")
    assert (code, out) == (1, "")
    assert assert_one_line_error(err) == (
        f"loyaltyrules: {member}: member state gives the key 'points' twice in one object")


def test_run_reads_a_line_holding_a_colon_after_a_quote_in_a_string(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A line whose text holds `":` inside a string (here an escaped quote in a sku) is
    read again to look for a key given twice, finds none, and runs."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text(TXN.format(id="T1", at="2026-03-02T10:00:00+08:00").replace(
        '"sku": "A"', '"sku": "A\\":B"'), encoding="utf-8")
    code, out, _ = run_main(capsys, "run", RETAIL, stream, "--quiet")
    assert (code, json.loads(out)["payable"]) == (0, "100.00")


def test_text_output_escapes_control_characters_in_ids(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--format text wrote ids raw: a newline in a purchase id split its decision over two
    lines (the second could pass for another decision), and `\\u001b[31m` in a member id
    sent a terminal escape. They are written escaped, as error messages quote them."""
    stream = tmp_path / "txns.jsonl"
    stream.write_text(
        '{"id": "T1\\nFAKE", "member_id": "m\\u001b[31m1", "at": "2026-03-02T10:00:00+08:00", '
        '"items": [{"sku": "A", "amount": "100.00"}]}\n', encoding="utf-8")
    code, out, _ = run_main(capsys, "run", RETAIL, stream, "--format", "text", "--quiet")
    assert code == 0
    assert out == ("T1\\nFAKE m\\x1b[31m1   2026-03-02 basic          list     100.00 pay     "
                   "100.00 CNY points +10    [base]\n")


def test_text_output_says_a_repeated_event_changed_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A refund sent twice printed "points +0 → 9: nothing due" where its JSON line says
    "replayed": true; the summary counted only repeated purchases."""
    events = tmp_path / "events.jsonl"
    refund = ('{"type": "refund", "id": "R1", "member_id": "a", "at": '
              '"2026-03-04T10:00:00+08:00", "transaction_id": "t1", "amount": "10.00"}\n')
    events.write_text('{"id": "t1", "member_id": "a", "at": "2026-03-03T10:00:00+08:00", '
                      '"items": [{"sku": "x", "amount": "100.00"}]}\n' + refund + refund,
                      encoding="utf-8")
    code, out, err = run_main(capsys, "run", RETAIL, events, "--format", "text")
    assert code == 0
    assert out.splitlines()[1:] == [
        "R1       a            2026-03-04 refund         points -1 → 9: points_reversed "
        "refund -1",
        "R1       a            2026-03-04 refund         points +0 → 9: already applied "
        "(event id seen before), nothing changed",
    ]
    assert re.fullmatch(r"3 events \(1 purchase, 2 refunds\) for 1 member in \d+\.\d{3} s "
                        r"\(1 repeated event changed nothing\)\n", err)



def test_text_output_says_an_advance_to_a_moment_passed_changed_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An advance has no id: one to a moment the member stands at already is no repeated
    event (helper-97: it said "event id seen before" and was counted as one)."""
    events = tmp_path / "events.jsonl"
    line = '{{"type": "advance", "member_id": "a", "until": "2026-01-{}T00:00:00+08:00"}}\n'
    events.write_text(line.format(13) + line.format(13) + line.format(10), encoding="utf-8")
    code, out, err = run_main(capsys, "run", ROOT / "programs" / "rfm-3tier.yaml", events,
                              "--format", "text")
    assert code == 0
    assert [row.split(": ", 1)[1] for row in out.splitlines()] == [
        "nothing due",
        "the member stands at or past that moment already, nothing changed",
        "the member stands at or past that moment already, nothing changed"]
    assert "repeated" not in err


def test_event_steps_are_read_when_the_file_is_read(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A refund's, behaviour's or reward's mistakes were found only when the step ran, with
    no column (`expected 'no error', got …`), while a purchase's were said at their place;
    a behaviour step's `type:` was silently overridden by its `event:`; an event no rule is
    for earned 0, silently; a step expected to fail passed whatever else it expected
    (helper-98)."""
    path = tmp_path / "events.scenarios.yaml"
    assert scenario_file_problems(capsys, path,
        f"program: {ROOT / 'programs' / 'rfm-3tier.yaml'}\nscenarios:\n"
        "  - name: a\n    steps:\n"
        '      - behaviour: {id: B1, at: "2026-03-04T10:00:00+08:00", type: review, '
        "event: chekin}\n"
        '      - refund: {id: R1, at: "2026-03-04T10:00:00", transaction_id: t1, '
        'amout: "1.00"}\n'
        '      - reward: {id: W1, at: "2026-03-04T10:00:00+08:00", reward: drink}\n'
        '      - purchase: {id: t2, at: "2026-03-03T10:00:00+08:00", items: [{sku: a, '
        'amount: "10.00"}]}\n'
        "        expect: {error: available, payable: 12345.00}\n") == [
        "5:62: scenarios[0].steps[0].behaviour.type: unknown key 'type' in a behaviour step "
        "— a behaviour step names its event with event:",
        "5:83: scenarios[0].steps[0].behaviour.event: no behaviour rule of the program is for "
        "event 'chekin' (the program's are check_in, review) — did you mean 'check_in'?",
        "6:30: scenarios[0].steps[1].refund.at: needs a UTC offset (the engine never guesses "
        "a zone)",
        "6:73: scenarios[0].steps[1].refund.amout: unknown key 'amout' in a refund step — did "
        "you mean 'amount'?",
        "7:67: scenarios[0].steps[2].reward.reward: unknown reward 'drink'; it has no rewards",
        "9:36: scenarios[0].steps[3].expect.payable: a step expected to fail has no decision "
        "to check payable against: give error alone"]


def test_lint_goes_on_past_a_program_it_cannot_read(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`lint a.yaml nosuch.yaml b.yaml` never linted b.yaml (validate and test carried on);
    the one it cannot read is told, and the exit is 1."""
    missing = tmp_path / "nosuch.yaml"
    code, out, err = run_main(capsys, "lint", RETAIL, missing, RETAIL, "--fail-on", "never")
    assert code == 1
    assert out.splitlines() == [f"{RETAIL}: no findings"] * 2
    assert err.splitlines() == [f"loyaltyrules: {missing}: (top level): cannot read the "
                                "program: No such file or directory [LR001]"]


def test_every_problem_of_a_scenarios_member_is_told_at_once(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """One per member was told (the engine reports the first): a file of three mistakes
    took three runs to mend (helper-98)."""
    assert scenario_file_problems(capsys, tmp_path / "member.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n  - name: a\n"
        '    member: {id: lin, qualifyng_spend: 12000, birthday: 1988-02-30, points: "5", '
        "lots: 3}\n"
        '    steps: [{advance: "2026-03-03T00:00:00+08:00"}]\n') == [
        "4:23: scenarios[0].member.qualifyng_spend: unknown field — did you mean "
        "'qualifying_spend'?",
        "4:57: scenarios[0].member.birthday: expected a date such as 2026-11-11 (got "
        "'1988-02-30')",
        "4:77: scenarios[0].member.points: expected a whole number (got '5')",
        "4:88: scenarios[0].member.lots: expected a list (got 3)"]


def test_a_scenario_file_named_twice_runs_once(capsys: pytest.CaptureFixture[str]) -> None:
    """A folder and a file in it ran the file twice: 27 passed of 19 (helper-98)."""
    scenarios = ROOT / "programs" / "scenarios"
    once = run_main(capsys, "test", scenarios)[1]
    assert run_main(capsys, "test", scenarios, scenarios / "retail-4tier.scenarios.yaml",
                    scenarios)[1] == once


def test_a_step_with_an_unknown_key_still_has_its_other_problems_told(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A step with an unknown key skipped every other check of that step (helper-98)."""
    assert scenario_file_problems(capsys, tmp_path / "step.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n  - name: a\n    steps:\n"
        '      - purchase: {id: t2, at: "2026-03-03T10:00:00", items: [{sku: a, '
        'amount: "10.00"}]}\n        expct: {points: 3}\n') == [
        "5:32: scenarios[0].steps[0].purchase.at: needs a UTC offset (the engine never "
        "guesses a zone)",
        "6:9: scenarios[0].steps[0].expct: unknown key 'expct' in a step — did you mean "
        "'expect'?"]


def test_a_scenario_file_of_no_scenarios_is_a_problem(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`scenarios: []` passed, "0 passed, 0 failed", exit 0 — an empty folder exits 1
    (helper-98): a file that tests nothing is not a pass."""
    assert scenario_file_problems(capsys, tmp_path / "none.scenarios.yaml",
                                  f"program: {RETAIL}\nscenarios: []\n") == [
        "2:12: scenarios: expected a list of one or more scenarios, each with a name and "
        "steps"]


@pytest.mark.parametrize(("member", "said"), [
    ("{id: 5, tier: basic, points: x}", ["4:18: scenarios[0].member.id: expected text (got 5)",
                                        "4:42: scenarios[0].member.points: expected a whole "
                                        "number (got 'x')"]),
    ("{tier: basic, points: x}", ["4:13: scenarios[0].member.id: required",
                                 "4:35: scenarios[0].member.points: expected a whole number "
                                 "(got 'x')"]),
])
def test_a_members_id_problem_hides_nothing_else(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, member: str,
        said: list[str]) -> None:
    """A wrong id was taken away to read the rest, and then said to be required; a missing
    one stopped the reading there (helper-99)."""
    assert scenario_file_problems(capsys, tmp_path / "id.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n  - name: a\n    member: {member}\n"
        '    steps: [{advance: "2026-03-03T00:00:00+08:00"}]\n') == said


def test_a_replayed_events_text_line_comes_from_the_decision(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """It was cut from explain() at its first ': ', which a member id may hold (helper-99)."""
    events = tmp_path / "events.jsonl"
    line = ('{"type": "advance", "member_id": "shop: 12", "until": '
            '"2026-01-13T00:00:00+08:00"}\n')
    events.write_text(line * 2, encoding="utf-8")
    out = run_main(capsys, "run", ROOT / "programs" / "rfm-3tier.yaml", events, "--format",
                   "text")[1]
    assert out.splitlines()[1].endswith(
        "→ 0: the member stands at or past that moment already, nothing changed")


def test_the_pytest_plugin_names_a_failing_scenario_file_from_the_root(tmp_path: Path) -> None:
    """It printed the file's absolute path where `loyaltyrules test` prints it as given
    (helper-98)."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "a.scenarios.yaml").write_text(
        f"program: {RETAIL}\nscenarios:\n  - name: a\n    member: {{id: lin, tier: silver}}\n"
        "    steps:\n      - purchase: {id: T1, at: \"2026-03-03T10:00:00+08:00\", items: "
        "[{sku: A, amount: \"1000.00\"}]}\n        expect: {payable: 951}\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), "shop"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert f"FAIL  {Path('shop') / 'a.scenarios.yaml'}:3: a" in run.stdout
    assert str(tmp_path) not in run.stdout.split("short test summary")[0]


def test_a_scenario_name_holding_pytests_separator_is_a_problem(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`a::b` ran under `loyaltyrules test` and could not be chosen by its pytest id
    (helper-98)."""
    assert scenario_file_problems(capsys, tmp_path / "sep.scenarios.yaml",
        f"program: {RETAIL}\nscenarios:\n  - name: 'gold::birthday'\n"
        '    steps: [{advance: "2026-03-03T00:00:00+08:00"}]\n') == [
        "3:11: scenarios[0].name: 'gold::birthday' holds '::', which pytest reads as a "
        "separator of a test's id: the scenario could not be chosen with pytest's -k or its "
        "id — write ' - ' or ': '"]
