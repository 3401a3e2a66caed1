"""`loyaltyrules check` and the public hypothesis strategies of `loyaltyrules.testing`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, find, given, settings

import loyaltyrules as lr
from loyaltyrules import _lifecycle
from loyaltyrules._check import check
from loyaltyrules._scenario import load_scenarios, run_scenario
from loyaltyrules.testing import (
    events,
    instants,
    members,
    purchases,
    run_step,
    scenarios,
    transactions,
)

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = {p.stem: lr.load_program(p) for p in sorted((ROOT / "programs").glob("*.yaml"))
            if not p.name.endswith(".scenarios.yaml")}
RETAIL = PROGRAMS["retail-4tier"]
RFM = PROGRAMS["rfm-3tier"]
COFFEE = PROGRAMS["coffee-club"]

STACKED = lr.load_program({
    "program": {"id": "stacked", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
    "tiers": [{"id": "basic"}],
    "earn": [{"id": "base", "points": 1, "per": 1}],
    "promotions": [{"id": "spring-sale", "discount": "20%"},
                   {"id": "vip-week", "discount": "20%"}],
    "invariants": [{"id": "max-discount", "name": "never more than 30% off",
                    "expect": "decision.total_discount <= txn.amount * 0.3"}],
})

QUICK = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
SEARCH = settings(max_examples=5000, database=None, deadline=None, phases=[Phase.generate])


def _names(report: Any) -> list[str]:
    return [v.invariant for v in report.violations]


# --- check -----------------------------------------------------------------------------------


def test_retail_4tier_passes_every_invariant() -> None:
    """Mechanism A keeps every built-in invariant, tier monotonicity included."""
    report = check(RETAIL, examples=60, seed=11)
    assert report.ok, report.render()
    assert report.violations == ()
    assert report.examples_run >= 60 * 3
    assert "tier-monotonicity" in [r.name for r in report.results]


def test_windows_at_the_ends_of_the_calendar_are_checked_without_false_alarms() -> None:
    """Windows from 1900-01-01 and to 8999-12-31 load (the engine's range); the checker's
    purchases and refunds around their edges stay inside that range (before, it tried
    instants before 1900 and after 8999 and reported the refusals as violations)."""
    program = lr.load_program(
        "program: {id: shop, version: 1, currency: CNY, timezone: Asia/Shanghai}\n"
        "tiers: [{id: basic}, {id: gold, qualify: {spend: 20000}, discount: 8折}]\n"
        "earn: [{id: base, points: 1, per: 1}]\n"
        "promotions:\n"
        "  - {id: p, bonus_points: 5, window: {start: 2026-01-01, end: 8999-12-31}}\n"
        "  - {id: q, bonus_points: 5, window: {start: 1900-01-01, end: 2026-12-31}}\n")
    report = check(program, examples=40, seed=3)
    assert report.ok, report.render()


def test_purchases_from_before_shanghai_kept_whole_minutes_are_checked_without_false_alarms(
        ) -> None:
    """Until 1928 Shanghai's offset was +08:05:43, which a date-time's text cannot carry: the
    checker wrote purchases and refunds of those years with it, and reported the engine's
    refusal as a failed invariant (refund-restores, seed 3). It writes them in UTC."""
    from zoneinfo import ZoneInfo

    from loyaltyrules._member import instant_text

    shanghai = ZoneInfo("Asia/Shanghai")
    assert instant_text(datetime(1900, 1, 1, 15, 54, 16, tzinfo=UTC), shanghai) == \
        "1900-01-01T15:54:16+00:00"
    assert instant_text(datetime(2026, 3, 3, 2, tzinfo=UTC), shanghai) == \
        "2026-03-03T10:00:00+08:00"
    program = lr.load_program(
        "program: {id: s, version: 1, currency: CNY, timezone: Asia/Shanghai}\n"
        "tiers: [{id: basic}]\nearn: [{id: e, points: 1, per: 1}]\n"
        "promotions: [{id: p, bonus_points: 5, window: {end: 1900-01-01}}]\n")
    report = check(program, examples=40, seed=3)
    assert report.ok, report.render()


def test_rfm_3tier_reports_tier_monotonicity_with_a_runnable_counterexample(
        tmp_path: Path) -> None:
    """Mechanism B as written (silver 9.5折 after bronze 9折) is reported, and the counterexample
    parses, runs as a scenario file and shows the higher tier getting less off."""
    report = check(RFM, examples=50, seed=12345)
    assert not report.ok
    assert _names(report) == ["tier-monotonicity"]
    violation = report.violations[0]
    assert "silver gets a smaller discount than bronze" in violation.message

    data = yaml.safe_load(violation.scenario)
    assert violation.scenario.startswith("# counterexample for tier-monotonicity, seed 12345")
    # program: is relative to where the docs put scenario files, a scenarios/ folder beside
    # the program (was: the path as typed, relative to the working directory)
    assert data["program"] == "../rfm-3tier.yaml"
    assert f"# save as {ROOT / 'programs' / 'scenarios'}/<name>.scenarios.yaml (program: is " \
        "relative to the scenario file)" in violation.scenario.splitlines()
    lower, higher = data["scenarios"]
    assert (lower["member"]["tier"], higher["member"]["tier"]) == ("bronze", "silver")

    decisions = [lr.evaluate(RFM, s["member"], s["steps"][0]["purchase"])
                 for s in (lower, higher)]
    assert decisions[1].total_discount < decisions[0].total_discount
    for scenario, decision in zip((lower, higher), decisions, strict=True):
        expect = scenario["steps"][0]["expect"]
        assert Decimal(expect["discount"]) == decision.total_discount
        assert Decimal(expect["payable"]) == decision.payable

    (tmp_path / "scenarios").mkdir()
    (tmp_path / "rfm-3tier.yaml").write_bytes((ROOT / "programs" / "rfm-3tier.yaml").read_bytes())
    path = tmp_path / "scenarios" / "counterexample.scenarios.yaml"
    path.write_text(violation.scenario, encoding="utf-8")
    program, loaded = load_scenarios(path)
    assert program.id == "rfm-3tier" and len(loaded) == 2
    for scenario in loaded:
        result = run_scenario(program, scenario)
        assert result.ok, result.render()


def test_declared_invariant_is_reported_for_stacked_promotions() -> None:
    """Two stacking 20% promotions break `decision.total_discount <= txn.amount * 0.3`, and
    the violation names the program's invariant and shows a purchase that breaks it."""
    report = check(STACKED, examples=50, seed=3)
    assert _names(report) == ["max-discount"]
    [result] = [r for r in report.results if r.declared]
    assert result.name == "max-discount" and result.violation is not None
    assert "decision.total_discount" in result.violation.message
    data = yaml.safe_load(result.violation.scenario)
    [scenario] = data["scenarios"]
    step = scenario["steps"][0]
    decision = lr.evaluate(STACKED, scenario["member"], step["purchase"])
    assert decision.total_discount > decision.list_amount * Decimal("0.3")
    assert Decimal(step["expect"]["discount"]) == decision.total_discount


def test_the_same_seed_gives_the_same_report() -> None:
    """Two runs with one seed find the same violations, counterexamples and example counts."""
    first = check(COFFEE, examples=40, seed=2024)
    second = check(COFFEE, examples=40, seed=2024)
    assert first.seed == second.seed == 2024
    assert [(v.invariant, v.message, v.scenario) for v in first.violations] == \
        [(v.invariant, v.message, v.scenario) for v in second.violations]
    assert [(r.name, r.examples) for r in first.results] == \
        [(r.name, r.examples) for r in second.results]
    assert first.examples_run == second.examples_run


def test_a_seed_is_chosen_and_reported_when_none_is_given() -> None:
    """Without a seed the report still carries one, and the rendering says how to rerun."""
    report = check(STACKED, examples=10)
    assert isinstance(report.seed, int)
    text = report.render()
    assert f"seed {report.seed}" in text and "FAIL" in text and "max-discount" in text


def test_a_refund_that_does_not_restore_spend_is_reported(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A (simulated) refund bug that leaves qualifying spend behind is caught, with a
    purchase-then-refund scenario expecting the spend from before the purchase."""
    real = _lifecycle.refund

    def leaky(program: Any, member: Any, event: Any) -> lr.LifecycleDecision:
        d = real(program, member, event)
        state = d.member_after
        return d.model_copy(update={"member_after": state.model_copy(
            update={"qualifying_spend": state.qualifying_spend + 1})})

    monkeypatch.setattr(_lifecycle, "refund", leaky)
    report = check(RETAIL, examples=30, seed=5)
    assert "refund-restores" in _names(report)
    [violation] = [v for v in report.violations if v.invariant == "refund-restores"]
    steps = yaml.safe_load(violation.scenario)["scenarios"][0]["steps"]
    assert [next(iter(s)) for s in steps] == ["purchase", "refund"]
    assert steps[1]["expect"]["spend"] == "0.00"


def test_a_broken_ledger_is_reported_after_the_step_that_breaks_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """When the ledger identity fails after a step, the counterexample replays the events up
    to that step."""
    real = _lifecycle.check_identity
    monkeypatch.setattr(_lifecycle, "check_identity",
                        lambda m: real(m) and m.points + m.pending_points < 100)
    report = check(RFM, examples=60, seed=8)
    [violation] = [v for v in report.violations if v.invariant == "ledger-identity"]
    assert "the ledger identity breaks at step" in violation.message
    assert yaml.safe_load(violation.scenario)["scenarios"][0]["steps"]


def test_the_time_limit_stops_the_search_and_the_report_says_so() -> None:
    """With no time at all nothing is checked to the end, and the report is not ok."""
    report = check(RETAIL, examples=200, seed=1, deadline_s=0)
    assert not report.ok and report.violations == ()
    assert set(report.incomplete) == {r.name for r in report.results}
    assert "STOP" in report.render()


EXPECTED = {"coffee-club": ["tier-monotonicity"], "reference-4tier": [],
            "retail-4tier": [], "rfm-3tier": ["tier-monotonicity"]}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_bundled_program_is_checked_to_the_end_in_seconds(name: str) -> None:
    """Each bundled program is checked well inside the time limit, with the known findings:
    rfm-3tier's literal tier discounts and coffee-club's tier discount that pushes a basket
    below the 满减-style "spend $30, save $5" threshold."""
    report = check(PROGRAMS[name], seed=99, examples=100)
    assert not report.incomplete
    assert report.elapsed < 20
    assert _names(report) == EXPECTED[name]


# --- strategies ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_generated_members_and_transactions_are_accepted(name: str) -> None:
    """Every generated member and transaction is valid input: evaluate raises no InputError."""
    program = PROGRAMS[name]

    @QUICK
    @given(members(program), transactions(program, member_id="m1"), purchases(program))
    def run(member: dict[str, Any], txn: dict[str, Any],
            case: tuple[dict[str, Any], dict[str, Any]]) -> None:
        assert member["tier"] in program.tier_ids
        assert txn["member_id"] == "m1"
        lr.evaluate(program, member, txn)
        lr.evaluate(program, *case)

    run()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_generated_event_sequences_run_and_keep_the_ledger(name: str) -> None:
    """Generated steps run in order (a refund of lines that cost nothing aside) and the ledger
    identity holds after each."""
    program = PROGRAMS[name]

    @QUICK
    @given(scenarios(program))
    def run(scenario: dict[str, Any]) -> None:
        state = lr.MemberState.model_validate(scenario["member"])
        for step in scenario["steps"]:
            try:
                decision = run_step(program, state, step)
            except lr.InputError as exc:
                assert "nothing to refund" in str(exc)
                continue
            state = lr.apply(state, decision)
            assert lr.check_identity(state)

    run()


def test_amounts_use_the_currency_minor_units() -> None:
    """Money is a Decimal string with exactly the currency's minor units."""
    yen = lr.load_program({
        "program": {"id": "yen", "version": 1, "currency": "JPY", "timezone": "Asia/Tokyo"},
        "tiers": [{"id": "basic"}]})

    @QUICK
    @given(transactions(yen), transactions(RETAIL))
    def run(jpy: dict[str, Any], cny: dict[str, Any]) -> None:
        assert all("." not in i["amount"] for i in jpy["items"])
        assert all(len(i["amount"].split(".")[1]) == 2 for i in cny["items"])

    run()


def test_29_february_birthdays_and_purchases_are_generated() -> None:
    """Members born on 29 February, purchases on 29 February, and purchases of such members
    on 28 February or 1 March of a year without one turn up."""
    member = find(members(RETAIL), lambda m: m.get("birthday", "").endswith("-02-29"),
                  settings=SEARCH, random=Random(1))
    assert member["birthday"].endswith("-02-29")
    txn = find(transactions(RETAIL), lambda t: "-02-29T" in t["at"], settings=SEARCH,
               random=Random(1))
    assert txn["at"][:4] in ("2024", "2028")

    def fallback(case: tuple[dict[str, Any], dict[str, Any]]) -> bool:
        member, txn = case
        return (member.get("birthday", "").endswith("-02-29")
                and txn["at"][4:11] in ("-02-28T", "-03-01T")
                and txn["at"][:4] not in ("2024", "2028"))

    member, txn = find(purchases(RETAIL), fallback, settings=SEARCH, random=Random(1))
    assert fallback((member, txn))


def test_window_edges_schedule_days_and_dst_changes_are_generated() -> None:
    """A second before and at the Black Friday window's edges, the member day and a
    daylight-saving change of the program's zone are all generated."""
    start = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # midnight in New York
    for edge in (start - timedelta(seconds=1), start, start + timedelta(days=1),
                 start + timedelta(days=1, seconds=-1)):
        found = find(instants(COFFEE), lambda at, e=edge: datetime.fromisoformat(at) == e,
                     settings=SEARCH, random=Random(1))
        assert datetime.fromisoformat(found) == edge
    # the edge as the zone writes it (the same instant is now and then written in UTC, and
    # which comes first depends on the search's path)
    txn = find(transactions(COFFEE), lambda t: t["at"] == "2026-11-27T00:00:00-05:00",
               settings=SEARCH, random=Random(1))
    assert datetime.fromisoformat(txn["at"]) == start
    eighth = find(instants(RETAIL), lambda at: at.startswith("2026-05-08T"), settings=SEARCH,
                  random=Random(1))
    assert eighth.startswith("2026-05-08T")
    spring_forward = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 02:00 EST → 03:00 EDT
    found_at = find(instants(COFFEE),
                    lambda at: abs(datetime.fromisoformat(at) - spring_forward)
                    <= timedelta(minutes=1), settings=SEARCH, random=Random(1))
    assert abs(datetime.fromisoformat(found_at) - spring_forward) <= timedelta(minutes=1)


def test_event_sequences_include_refunds_and_behaviours() -> None:
    """Sequences hold refunds of earlier purchases and the program's behaviour events."""
    steps = find(events(RFM), lambda s: any("refund" in x for x in s)
                 and any("behaviour" in x for x in s), settings=SEARCH, random=Random(1))
    bought = {x["purchase"]["id"] for x in steps if "purchase" in x}
    assert all(x["refund"]["transaction_id"] in bought for x in steps if "refund" in x)
    assert {x["behaviour"]["event"] for x in steps if "behaviour" in x} <= {"review", "check_in"}


def test_a_scenario_file_is_read_only_up_to_the_size_limit() -> None:
    """A scenario file is refused past 1,000,000 bytes without being read into memory, as a
    program is (/dev/zero never ends)."""
    with pytest.raises(lr.ProgramError) as caught:
        load_scenarios("/dev/zero")
    assert [(d.code, d.source) for d in caught.value.diagnostics] == [("LR102", "/dev/zero")]


_DATED_META = ("program: {id: shop, version: 1, currency: CNY, timezone: Asia/Shanghai}\n"
               "tiers:\n  - {id: basic}\n  - {id: gold, qualify: {spend: 1000}, discount: 5%}\n")
YEARLY = lr.load_program(_DATED_META + (
    "promotions:\n"
    "  - {id: anniversary, tiers: [basic], discount: 20%,\n"
    "     schedule: {freq: yearly, bymonth: 6, bymonthday: 18}}\n"))
DOUBLE_11 = lr.load_program(_DATED_META + (
    "promotions:\n"
    "  - {id: double11, window: {start: 2026-11-11, end: 2026-11-11}, exclusive: true,\n"
    "     discount: {threshold: 300, off: 50}}\n"))


def test_generated_instants_favour_the_days_dated_rules_apply() -> None:
    """A yearly schedule's days and a one-day window are a real share of generated purchase
    days; with a schedule, the 8th of every month no longer swamps its days."""
    from loyaltyrules import testing
    facts = testing._facts(YEARLY)
    assert {d.date() for d in facts.rule_days} == {datetime(y, 6, 18).date()
                                                   for y in testing.YEARS}
    assert not any(d.day == 8 for d in facts.scheduled)
    assert {d.date().isoformat() for d in testing._facts(DOUBLE_11).rule_days} == {"2026-11-11"}
    assert testing._facts(DOUBLE_11).thresholds == (30000,)


@pytest.mark.parametrize(("program", "seed", "message"), [
    (YEARLY, 1, "gold gets a smaller discount than basic: 5.00 vs 20.00 off the same 100.00 "
                "purchase"),
    (YEARLY, 2, "gold gets a smaller discount than basic: 5.00 vs 20.00 off the same 100.00 "
                "purchase"),
    (DOUBLE_11, 1, "gold gets a smaller discount than basic: 15.00 vs 50.00 off the same "
                   "300.00 purchase"),
    (DOUBLE_11, 2, "gold gets a smaller discount than basic: 15.00 vs 50.00 off the same "
                   "300.00 purchase"),
])
def test_check_finds_inversions_on_scheduled_days_and_at_thresholds(
        program: lr.Program, seed: int, message: str) -> None:
    """A basic-only 20% on 18 June every year, and 满300减50 on 11.11 that a gold member's 5%
    drops out of, are found at the default 200 examples (they were found on 1 and 1 seed in 5
    before scheduled days and threshold amounts were targeted)."""
    report = check(program, seed=seed)
    assert [(v.invariant, v.message) for v in report.violations] == [
        ("tier-monotonicity", message)]


def test_a_run_cut_short_by_the_time_limit_says_it_is_not_exactly_repeatable() -> None:
    """--seed repeats a run exactly only when the time limit does not cut it short (how far
    a search gets in N seconds depends on the machine); such a report says so."""
    report = check(RFM, seed=3, examples=100_000, deadline_s=1)
    assert report.timed_out and not report.ok
    assert ("stopped at the time limit of 1 s: how far it got depends on the machine, so this "
            "run is not exactly repeatable with --seed (raise --deadline or lower --examples "
            "for one that is)") in report.render().splitlines()
    quick = check(STACKED, seed=3, examples=5)
    assert not quick.timed_out and "time limit" not in quick.render()


def test_check_command_takes_a_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    """loyaltyrules check --deadline SECONDS sets the time limit (default 50)."""
    from loyaltyrules._cli import main
    code = main(["check", str(ROOT / "programs" / "rfm-3tier.yaml"), "--seed", "3",
                 "--examples", "100000", "--deadline", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "stopped at the time limit of 1 s" in out


def _failures(tmp_path: Path, steps: str) -> list[str]:
    """What a scenario of these steps (for member lin, silver) fails with, step by step."""
    path = tmp_path / "f.scenarios.yaml"
    path.write_text(f"program: {ROOT / 'programs' / 'retail-4tier.yaml'}\nscenarios:\n"
                    "  - name: s\n    member: {id: lin, tier: silver}\n    steps:\n" + steps,
                    encoding="utf-8")
    program, scenarios = load_scenarios(path)
    return [str(f) for f in run_scenario(program, scenarios[0]).failures]


PURCHASE = ('      - purchase: {id: T1, at: "2026-03-03T10:00:00+08:00", items: [{sku: A, '
            'amount: "1000.00"}]%s}\n')


def test_a_failing_step_says_what_happened_in_words(tmp_path: Path) -> None:
    """"error expected 'no error', got …", a quoted amount shown with its quotes, and an
    events list with nothing said of what was missing (helper-98)."""
    assert _failures(tmp_path, PURCHASE % "" + "        expect: {payable: '951'}\n") == [
        "line 6: step 1 (purchase): payable expected 951, got 950.00"]
    assert _failures(tmp_path, PURCHASE % "" + "        expect: {events: [points_earned, "
                     "tier_upgraded]}\n") == [
        "line 6: step 1 (purchase): events expected to include ['points_earned', "
        "'tier_upgraded'], missing ['tier_upgraded']; got ['points_earned']"]
    assert _failures(tmp_path, PURCHASE % ", redeem_points: 100000") == [
        "line 6: step 1 (purchase) failed, where no error was expected: transaction: "
        "redeem_points: 100000 points asked, 0 available"]
    assert _failures(tmp_path, PURCHASE % "" + "        expect: {error: available}\n") == [
        "line 6: step 1 (purchase) went through, where an error containing 'available' was "
        "expected"]
