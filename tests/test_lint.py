"""Lint: each design smell is found, at the place it was written, and nothing else is."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from loyaltyrules import Program, ProgramError, load_program
from loyaltyrules._errors import format_path
from loyaltyrules._lint import CHECKS, Finding, describe_checks, lint
from loyaltyrules._model import Schedule

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
TODAY = date(2026, 6, 1)

# line 1 of every inline program below; the body starts on line 2
META = "program: {id: p, version: 1, currency: CNY, timezone: Asia/Shanghai}\n"
BASIC = "tiers:\n  - id: basic\n"  # lines 2-3


def program(body: str) -> Program:
    return load_program(META + body)


def found(p: Program, today: date = TODAY) -> list[tuple[str, str, str, int | None, int | None]]:
    """(code, severity, path, line, column) of every finding, in the order lint gives them."""
    return [(f.code, f.severity, format_path(f.path), f.line, f.column)
            for f in lint(p, today=today)]


def position(path: Path, text: str, column_of: str | None = None) -> tuple[int, int]:
    """Line and column of the first line holding ``text`` (at ``column_of`` within it):
    bundled programs are edited by others, so their positions are looked up, not hard-coded."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return number, line.index(column_of or text) + 1
    raise AssertionError(f"{text!r} not in {path}")


# --- the table ---------------------------------------------------------------------------------


def test_checks_table_lists_every_code_in_order_with_a_severity_and_description() -> None:
    """describe_checks() gives code, default severity and a description for LR501…LR514."""
    described = describe_checks()
    assert [code for code, _, _ in described] == [f"LR5{n:02d}" for n in range(1, 15)]
    assert list(CHECKS) == [code for code, _, _ in described]
    for code, severity, description in described:
        assert severity in ("error", "warning", "info")
        assert description and "\n" not in description
        assert CHECKS[code].severity == severity


def test_finding_reads_as_where_what_and_which_check() -> None:
    """A Finding prints as file:line:column: path: message [code severity], and is frozen."""
    finding = Finding("LR502", "warning", "window ended 2025-12-31", ("promotions", 2),
                      "programs/x.yaml", 14, 9)
    assert str(finding) == (
        "programs/x.yaml:14:9: promotions[2]: window ended 2025-12-31 [LR502 warning]")
    with pytest.raises(AttributeError):
        finding.code = "LR501"  # type: ignore[misc]


# --- LR501 tiers -------------------------------------------------------------------------------


def test_lr501_tier_whose_only_condition_is_always_false_can_never_be_reached() -> None:
    """A tier that qualifies only on a constant-false `when` is an error at that `when`."""
    p = program(BASIC + "  - id: vip\n"
                        "    qualify: {when: \"1 > 2\"}\n")
    assert found(p) == [("LR501", "error", "tiers[1].qualify.when", 5, 21)]


def test_lr501_tier_whose_condition_is_always_true_takes_every_member() -> None:
    """A qualify that is constant true (`True or …`) means every member reaches the tier."""
    p = program(BASIC + "  - id: vip\n"
                        "    qualify:\n"
                        "      when: \"True or member.orders > 3\"\n")
    assert found(p) == [("LR501", "warning", "tiers[1].qualify.when", 6, 13)]


def test_lr501_false_condition_next_to_a_threshold_with_match_any_is_still_reachable() -> None:
    """With match: any a spend threshold still reaches the tier, so no finding."""
    p = program(BASIC + "  - id: vip\n"
                        "    qualify: {spend: 100, when: \"False\", match: any}\n")
    assert found(p) == []


def test_lr501_tier_needing_exactly_what_a_lower_tier_needs() -> None:
    """Two tiers with the same qualify: the lower one is never held."""
    p = program(BASIC + "  - id: silver\n"
                        "    qualify: {when: \"member.orders > 5\"}\n"
                        "  - id: gold\n"
                        "    qualify: {when: \"member.orders > 5\"}\n")
    assert found(p) == [("LR501", "warning", "tiers[2].qualify", 7, 14)]


@pytest.mark.parametrize(("qualify", "message", "path", "column"), [
    ("{spend: 0}", "every member qualifies for gold at once: qualify.spend is 0, which every "
     "member has", "tiers[1].qualify.spend", 33),
    ("{orders: 0, spend: 100, match: any}", "every member qualifies for gold at once: "
     "qualify.orders is 0, which every member has (with match: any, one met term is enough)",
     "tiers[1].qualify.orders", 34),
])
def test_lr501_a_threshold_of_zero_lets_every_member_in_at_once(
        qualify: str, message: str, path: str, column: int) -> None:
    """qualify.spend (points, orders) 0 is met by everybody: with match: all when it is the
    only term, with match: any always."""
    p = program(BASIC + f"  - {{id: gold, qualify: {qualify}}}\n")
    assert [(f.code, f.severity, f.message, format_path(f.path), f.line, f.column)
            for f in lint(p, today=TODAY)] == [("LR501", "warning", message, path, 4, column)]
    assert found(program(BASIC + "  - {id: gold, qualify: {orders: 0, spend: 100}}\n")) == []


def test_lr501_same_terms_are_compared_as_parsed_not_as_written() -> None:
    """member.orders>5 and member.orders > 5 are the same condition."""
    p = program(BASIC + "  - {id: silver, qualify: {when: \"member.orders>5\"}}\n"
                        "  - {id: gold, qualify: {when: \"member.orders > 5\"}}\n")
    assert [(f.code, f.severity, f.message, format_path(f.path), f.line)
            for f in lint(p, today=TODAY)] == [
        ("LR501", "warning", "gold needs exactly what silver needs, so members go straight to "
         "gold and silver is never held", "tiers[2].qualify", 5)]


def test_lr501_tier_harder_to_keep_than_to_earn() -> None:
    """retain.spend above qualify.spend is reported at the retain value."""
    p = program(BASIC + "  - id: silver\n"
                        "    qualify: {spend: 5000}\n"
                        "    retain: {spend: 6000}\n"
                        "reviews: {schedule: {freq: monthly, bymonthday: 1}}\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.code, finding.path, finding.line, finding.column) == (
        "LR501", ("tiers", 1, "retain", "spend"), 6, 21)
    assert "harder to keep than to earn" in finding.message
    assert "6000" in finding.message and "5000" in finding.message


def test_lr501_tier_that_can_never_be_kept() -> None:
    """A retain condition that is always false drops every member at the next review."""
    p = program(BASIC + "  - id: silver\n"
                        "    qualify: {spend: 5000}\n"
                        "    retain: {when: \"not True\"}\n"
                        "reviews: {anniversary: true}\n")
    assert found(p) == [("LR501", "warning", "tiers[1].retain.when", 6, 20)]


def test_lr501_retain_with_an_easier_alternative_is_not_stricter() -> None:
    """retain {spend: 6000, orders: 3, match: any} can be met by orders alone: no finding."""
    p = program(BASIC + "  - id: silver\n"
                        "    qualify: {spend: 5000}\n"
                        "    retain: {spend: 6000, orders: 3, match: any}\n"
                        "reviews: {anniversary: true}\n")
    assert found(p) == []


# --- LR502 and LR503 windows -------------------------------------------------------------------

WINDOWS = """\
perks:
  - {id: mug}
promotions:
  - id: spring
    window: {start: 2026-03-01, end: 2026-03-31}
    bonus_points: 10
    limit: {times: 1}
  - id: launch
    window:
      end: "2026-04-01T12:00"
    points_multiplier: 2
rewards:
  - id: mug
    points: 100
    perk: mug
    window: {end: 2026-05-31}
"""


def test_lr502_windows_over_before_today_are_reported_at_their_end() -> None:
    """Promotions and rewards whose window closed before `today` get an LR502 each."""
    assert found(program(BASIC + WINDOWS), today=date(2026, 6, 1)) == [
        ("LR502", "warning", "promotions[0].window.end", 8, 38),
        ("LR502", "warning", "promotions[1].window.end", 13, 12),
        ("LR502", "warning", "rewards[0].window.end", 19, 19),
    ]


def test_lr502_depends_only_on_the_today_passed_in() -> None:
    """The same program gives more LR502 findings as `today` moves on, and the same ones for
    the same day."""
    p = program(BASIC + WINDOWS)
    ended = [[f.path[:2] for f in lint(p, today=day)] for day in (
        date(2026, 3, 31), date(2026, 4, 1), date(2026, 4, 2), date(2026, 6, 1))]
    assert ended == [
        [],                                         # the last day of spring still counts
        [("promotions", 0)],                        # launch ends at noon today, not over yet
        [("promotions", 0), ("promotions", 1)],
        [("promotions", 0), ("promotions", 1), ("rewards", 0)],
    ]
    assert lint(p, today=date(2026, 4, 2)) == lint(p, today=date(2026, 4, 2))


def test_lr502_message_reads_like_the_example() -> None:
    """str(finding) is file:line:column: path: message — hint [code severity]."""
    [first, *_] = lint(program(BASIC + WINDOWS), today=TODAY)
    assert str(first).startswith(
        "<program>:8:38: promotions[0].window.end: window ended 2026-03-31 — spring no longer "
        "applies")
    assert str(first).endswith(" [LR502 warning]")
    assert first.as_dict()["path"] == "promotions[0].window.end"


def test_lr503_schedule_with_no_day_inside_the_window() -> None:
    """A Wednesday schedule in a Monday-to-Tuesday window never applies: an error at schedule."""
    p = program(BASIC + "promotions:\n"
                        "  - id: wednesdays\n"
                        "    window: {start: 2026-03-02, end: 2026-03-03}\n"
                        "    schedule: \"FREQ=WEEKLY;BYDAY=WE\"\n"
                        "    points_multiplier: 2\n")
    [finding] = lint(p, today=date(2026, 1, 1))
    assert (finding.code, finding.severity, finding.path, finding.line, finding.column) == (
        "LR503", "error", ("promotions", 0, "schedule"), 7, 15)
    assert "between 2026-03-02 and 2026-03-03" in finding.message


def test_schedule_that_selects_no_day_at_all_does_not_even_load() -> None:
    """30 February never comes: the loader refuses the schedule, so lint never sees it."""
    with pytest.raises(ProgramError, match="selects no day in ten years") as info:
        program(BASIC + "promotions:\n"
                        "  - id: feb30\n"
                        "    schedule: {freq: yearly, bymonth: 2, bymonthday: 30}\n"
                        "    points_multiplier: 2\n")
    assert [(d.line, d.column) for d in info.value.diagnostics] == [(6, 15)]


def test_a_reward_window_that_ends_before_it_starts_stops_the_load_as_a_rule_s_does() -> None:
    """LR408, as for promotions and birthday rules (before, rewards loaded and only lint
    reported the inverted window, as LR503)."""
    with pytest.raises(ProgramError) as info:
        program(BASIC + "rewards:\n"
                        "  - id: tote\n"
                        "    points: 500\n"
                        "    window: {start: 2026-09-01, end: 2026-08-01}\n")
    assert [(d.code, format_path(d.path), d.line, d.column, d.message)
            for d in info.value.diagnostics] == [
        ("LR408", "rewards[0].window.end", 7, 38, "the window ends before (or when) it starts")]


def test_lr503_schedule_with_a_day_in_the_window_is_fine() -> None:
    """Member day on the 8th inside March 2026 is a normal program."""
    p = program(BASIC + "promotions:\n"
                        "  - id: member-day\n"
                        "    window: {start: 2026-03-01, end: 2026-03-31}\n"
                        "    schedule: {freq: monthly, bymonthday: 8}\n"
                        "    points_multiplier: 2\n")
    assert found(p, today=date(2026, 1, 1)) == []


# --- LR504 exclusive promotions ----------------------------------------------------------------


def exclusive_pair(first: str, second: str) -> Program:
    return program(BASIC + "promotions:\n"
                           "  - id: a\n"
                           f"    {first}\n"
                           "    discount: 20%\n"
                           "    exclusive: true\n"
                           "  - id: b\n"
                           f"    {second}\n"
                           "    discount: 30%\n"
                           "    priority: 5\n"
                           "    exclusive: true\n")


def test_lr504_exclusive_promotions_in_overlapping_windows() -> None:
    """Two exclusive promotions that meet in time and scope: reported at the second's flag."""
    p = exclusive_pair("window: {start: 2026-11-01, end: 2026-11-30}",
                       "window: {start: 2026-11-20, end: 2026-12-10}")
    [finding] = lint(p, today=date(2026, 1, 1))
    assert (finding.code, finding.severity, finding.path, finding.line, finding.column) == (
        "LR504", "warning", ("promotions", 1, "exclusive"), 13, 16)
    assert finding.message == (
        "exclusive promotions a and b can both match one purchase from 2026-11-20: only b "
        "applies and a is skipped without notice")


def test_lr504_exclusive_promotions_whose_schedules_share_a_day() -> None:
    """Wednesdays and the 8th of the month meet (first on 2026-04-08)."""
    p = exclusive_pair("schedule: \"FREQ=WEEKLY;BYDAY=WE\"",
                       "schedule: {freq: monthly, bymonthday: 8, start: 2026-01-01}")
    [finding] = lint(p, today=date(2026, 1, 1))
    assert finding.code == "LR504"
    assert "on 2026-04-08" in finding.message


def test_lr504_exclusive_promotions_with_disjoint_categories_still_collide() -> None:
    """One basket can hold items of both scopes, so only one of the two applies."""
    p = exclusive_pair("categories: [shoes]", "categories: [bags]")
    [finding] = lint(p, today=TODAY)
    assert finding.code == "LR504"
    assert "at any time (one basket can hold items for both)" in finding.message


@pytest.mark.parametrize(("first", "second"), [
    ("window: {start: 2026-11-01, end: 2026-11-09}", "window: {start: 2026-11-10}"),
    ("channels: [app]", "channels: [store]"),
    ("tiers: [basic]", "tiers: [gold]"),
    ("schedule: \"FREQ=WEEKLY;BYDAY=MO\"", "schedule: \"FREQ=WEEKLY;BYDAY=TU\""),
])
def test_lr504_exclusive_promotions_that_cannot_meet_are_fine(first: str, second: str) -> None:
    """Disjoint windows (a date-only end includes that day), channels, tiers or schedules
    keep exclusive promotions apart."""
    p = program(BASIC + "  - {id: gold, qualify: {spend: 1000}}\n"
                        "promotions:\n"
                        f"  - {{id: a, {first}, discount: 20%, exclusive: true}}\n"
                        f"  - {{id: b, {second}, discount: 30%, exclusive: true}}\n")
    assert found(p, today=date(2026, 1, 1)) == []


GOLD = "  - {id: gold, qualify: {spend: 1000}}\n"  # line 4


@pytest.mark.parametrize(("first", "second", "reported"), [
    ("when: \"tier == 'gold'\"", "tiers: [basic]", False),
    ("when: \"'gold' == member.tier\"", "tiers: [basic]", False),
    ("when: \"tier in ['gold']\"", "when: \"tier == 'basic'\"", False),
    ("when: \"tier != 'basic' and txn.channel == 'app'\"", "tiers: [basic]", False),
    ("min_amount: 500", "when: \"txn.amount < 500\"", False),
    ("when: \"txn.amount >= 500\"", "when: \"txn.amount < 500\"", False),
    ("when: \"tier == 'gold' or txn.amount > 1\"", "tiers: [basic]", True),
    ("when: \"not (tier == 'gold')\"", "tiers: [basic]", True),
    ("min_amount: 500", "when: \"txn.amount <= 500\"", True),
    ("when: \"tier == 'gold'\"", "tiers: [gold]", True),
])
def test_lr504_tier_and_amount_conditions_that_must_hold_narrow_who_can_match(
        first: str, second: str, reported: bool) -> None:
    """`tier == …` / `tier in […]` / `tier != …` (also member.tier) and bounds on txn.amount
    (with min_amount) that are top-level `and` parts say whom a promotion can match; two
    exclusive promotions that share nobody, or no amount, cannot collide."""
    p = program(BASIC + GOLD + "promotions:\n"
                "  - {id: a, exclusive: true, discount: 10%, " + first + "}\n"
                "  - {id: b, exclusive: true, discount: 10%, " + second + "}\n")
    expected = [("LR504", "warning", "exclusive promotions a and b can both match one purchase "
                 "at any time: only a applies and b is skipped without notice",
                 "promotions[1].exclusive")] if reported else []
    assert [(f.code, f.severity, f.message, format_path(f.path))
            for f in lint(p, today=TODAY)] == expected


def test_lr504_and_lr503_findings_for_many_kinds_of_schedule() -> None:
    """Weekly, monthly, yearly, last-weekday and leap-day schedules, with and without windows:
    the first shared day of each pair that meets, nothing for pairs that never do (searched a
    century ahead), and a schedule with no day in its window (pinned before LR504 compared
    schedules as sets of days instead of walking each pair's days)."""
    p = program(BASIC + "promotions:\n"
                "  - {id: wed, schedule: \"FREQ=WEEKLY;BYDAY=WE\", discount: 10%, "
                "exclusive: true}\n"
                "  - {id: eighth, schedule: {freq: monthly, bymonthday: 8, start: 2026-01-01}, "
                "discount: 10%, exclusive: true}\n"
                "  - {id: leap, schedule: {freq: yearly, bymonth: 2, bymonthday: 29}, "
                "discount: 10%, exclusive: true}\n"
                "  - {id: last-fri, schedule: {freq: monthly, byweekday: FR, bysetpos: -1}, "
                "discount: 10%, exclusive: true}\n"
                "  - {id: late-29th, schedule: {freq: monthly, bymonthday: 29}, "
                "window: {start: 2030-03-01}, discount: 10%, exclusive: true}\n"
                "  - {id: sunday, schedule: \"FREQ=WEEKLY;BYDAY=SU\", "
                "window: {start: 2026-01-01, end: 2026-03-31}, discount: 10%, exclusive: true}\n"
                "birthday:\n"
                "  - {id: feb-sun, on: birthday, schedule: \"FREQ=YEARLY;BYMONTH=2;BYDAY=SU\", "
                "window: {start: 2026-03-01, end: 2026-12-31}, bonus_points: 5, "
                "limit: {times: 1, per: year}}\n")
    pairs = [("wed", "eighth", "2026-04-08"), ("wed", "leap", "2012-02-29"),
             ("leap", "last-fri", "2008-02-29"), ("wed", "late-29th", "2030-05-29"),
             ("leap", "late-29th", "2032-02-29"), ("last-fri", "late-29th", "2030-03-29"),
             ("eighth", "sunday", "2026-02-08")]
    where = {"eighth": (6, 105), "leap": (7, 96), "last-fri": (8, 102), "late-29th": (9, 119),
             "sunday": (10, 124)}
    expected = [("LR504", *where[b], f"exclusive promotions {a} and {b} can both match one "
                 f"purchase on {day}: only {a} applies and {b} is skipped without notice")
                for a, b, day in pairs]
    expected.append(("LR503", 12, 43, "the schedule FREQ=YEARLY;BYMONTH=2;BYDAY=SU falls on no "
                     "day between 2026-03-01 and 2026-12-31, so feb-sun never applies"))
    assert [(f.code, f.line, f.column, f.message)
            for f in lint(p, today=date(2026, 1, 1))] == expected


def test_200_exclusive_monthly_promotions_lint_quickly_each_schedule_expanded_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: LR504 walked the days of every pair of exclusive promotions (40 took 19 s,
    200 did not finish in 5 minutes). Each distinct schedule's days are now expanded once
    and pairs compared as sets; 200 promotions on 28 monthly days give the 616 pairs that
    share a day, each at its first shared day."""
    builds = 0
    build = Schedule.build

    def counting(self: Schedule) -> Any:
        nonlocal builds
        builds += 1  # once to see that it selects a day, once to expand it
        assert builds <= 2 * 28, "a schedule is expanded again (once per pair?)"
        return build(self)

    body = "".join(f"  - {{id: p{n}, bonus_points: 5, schedule: \"FREQ=MONTHLY;BYMONTHDAY="
                   f"{n % 28 + 1}\", exclusive: true, limit: {{times: 1}}}}\n"
                   for n in range(200))
    p = program(BASIC + "promotions:\n" + body)
    monkeypatch.setattr(Schedule, "build", counting)
    start = time.perf_counter()
    findings = lint(p, today=TODAY)
    elapsed = time.perf_counter() - start
    assert elapsed < 20  # a generous guard, as for `check`; it takes about a second
    assert len(findings) == sum(k * (k - 1) // 2 for k in (8,) * 4 + (7,) * 24) == 616
    assert {f.code for f in findings} == {"LR504"}
    assert findings[0].message == (
        "exclusive promotions p0 and p28 can both match one purchase on 2000-01-01: only p0 "
        "applies and p28 is skipped without notice")
    assert (findings[0].line, findings[0].column) == (33, 82)


# --- LR505 perks -------------------------------------------------------------------------------


def test_lr505_perk_that_nothing_grants() -> None:
    """A declared perk granted by no tier, rule or reward is reported at its id."""
    p = program("tiers:\n"
                "  - {id: basic, perks: [wifi]}\n"
                "perks:\n"
                "  - id: wifi\n"
                "  - id: lounge\n")
    assert found(p) == [("LR505", "warning", "perks[1].id", 6, 9)]


# --- LR506 expressions ------------------------------------------------------------------------


def test_lr506_second_purchase_line() -> None:
    """items[1] fails on a one-line purchase unless the condition checks len(items)."""
    p = program(BASIC + "promotions:\n"
                        "  - id: pair\n"
                        "    when: \"items[1].category == 'socks'\"\n"
                        "    bonus_points: 5\n"
                        "    limit: {times: 1, per: day}\n"
                        "  - id: guarded\n"
                        "    when: \"len(items) > 1 and items[1].category == 'socks'\"\n"
                        "    bonus_points: 5\n"
                        "    limit: {times: 1, per: day}\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.code, finding.severity, finding.path, finding.line, finding.column) == (
        "LR506", "warning", ("promotions", 0, "when"), 6, 11)
    assert finding.message.startswith("reads items[1], but a purchase may have a single line")


def test_lr506_optional_member_field_without_a_none_check() -> None:
    """member.joined compared with >= fails for members without a join date."""
    p = program(BASIC + "earn:\n"
                        "  - id: loyal\n"
                        "    points: 1\n"
                        "    when: \"member.joined <= date(2020, 1, 1)\"\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.code, finding.severity, finding.path, finding.line, finding.column) == (
        "LR506", "warning", ("earn", 0, "when"), 7, 11)
    assert "member.joined" in finding.message
    assert finding.hint == "write `member.joined is not None and …`"


@pytest.mark.parametrize("condition", [
    "member.joined is not None and member.joined <= date(2020, 1, 1)",
    "member.birthday is not None and month(member.birthday) == 3",
    "not member.birthday or month(member.birthday) == 3",
    "member.last_purchase is None or days_since(member.last_purchase) > 90",
    "len(items) > 1 and items[1].amount > 5",
    "len(items) >= 3 and items[2].amount > 5",
    "len(items) <= 1 or items[1].amount > 5",
    "2 > len(items) or items[1].amount > 5",
    "txn.items_count > 1 and items[1].amount > 5",
    "items[1].amount > 5 if len(items) > 1 else False",
    "days_since(member.last_purchase) is None or days_since(member.last_purchase) > 90",
    "(member.joined or member.birthday) is None or days_since(member.birthday) is None",
    "txn.store == 'S1'",
    "txn.store in ['S1', 'S2']",
    "is_birthday('month')",
    "items[0].category == 'socks'",
])
def test_lr506_guarded_or_none_safe_reads_are_fine(condition: str) -> None:
    """Reads that check for None, or that simply come out false for None, are not reported."""
    p = program(BASIC + f"earn:\n  - id: e\n    points: 1\n    when: \"{condition}\"\n")
    assert found(p) == []


@pytest.mark.parametrize(("condition", "message"), [
    # a check after the read comes too late: the read has already failed
    ("days_since(member.last_purchase) > 90 or member.last_purchase is None",
     "reads member.last_purchase without checking first that it is there: a member who has "
     "never bought has none, and for them this condition fails with an error"),
    ("member.birthday.month == 3 and member.birthday is not None",
     "reads member.birthday without checking first that it is there: a member may have no "
     "birthday on file, and for them this condition fails with an error"),
    # a check of what the read gives: month() fails on None before `is None` compares
    ("month(member.birthday) is None or month(member.birthday) == 3",
     "reads member.birthday without checking first that it is there: a member may have no "
     "birthday on file, and for them this condition fails with an error"),
    ("member.birthday.month is not None and member.birthday.month == 3",
     "reads member.birthday without checking first that it is there: a member may have no "
     "birthday on file, and for them this condition fails with an error"),
    # a check of either of two: `(a or b) is not None` says nothing of a alone
    ("(member.joined or member.birthday) is not None and month(member.joined) == 3",
     "reads member.joined without checking first that it is there: a member may have no "
     "join date on file, and for them this condition fails with an error"),
    # a check on the wrong side: `is None and …` protects nothing
    ("member.joined is None and member.joined < date(2020, 1, 1)",
     "reads member.joined without checking first that it is there: a member may have no join "
     "date on file, and for them this condition fails with an error"),
    # (a bare read whose None becomes the condition's value, `member.birthday and …`, is
    # refused when the program loads: tests/test_expressions.py)
    # a bound too small for the line read
    ("len(items) > 0 and items[1].amount > 5",
     "reads items[1], but a purchase may have a single line: for such purchases this "
     "condition fails with an error"),
    ("len(items) > 1 and items[2].amount > 5",
     "reads items[2], but a purchase may have a single line: for such purchases this "
     "condition fails with an error"),
    ("items[1].amount > 5 and len(items) > 1",
     "reads items[1], but a purchase may have a single line: for such purchases this "
     "condition fails with an error"),
    ("len(items) > 1 or items[1].amount > 5",
     "reads items[1], but a purchase may have a single line: for such purchases this "
     "condition fails with an error"),
])
def test_lr506_a_check_counts_only_before_the_read_on_its_path(condition: str,
                                                               message: str) -> None:
    """A check protects a read only when it is evaluated first and its outcome is the one
    that lets the read run: the left of `and` for `is not None` / `len(items) > k`, the left
    of `or` for `is None` / `len(items) <= k`. Each of these conditions raises."""
    p = program(BASIC + f"earn:\n  - id: e\n    points: 1\n    when: \"{condition}\"\n")
    assert [(f.code, f.severity, f.message, format_path(f.path), f.line, f.column)
            for f in lint(p, today=TODAY)] == [
        ("LR506", "warning", message, "earn[0].when", 7, 11)]


def test_lr506_optional_store_used_in_an_ordering() -> None:
    """txn.store > 'S5' raises for an online order without a store."""
    p = program(BASIC + "earn:\n  - id: e\n    points: 1\n    when: \"txn.store > 'S5'\"\n")
    assert found(p) == [("LR506", "warning", "earn[0].when", 7, 11)]


def test_lr506_host_data_is_information() -> None:
    """txn.attrs and member.attrs reads are one info finding listing the keys; a key the
    condition checks for is left out."""
    p = program(BASIC + "multipliers:\n"
                        "  - id: m\n"
                        "    factor: 2\n"
                        "    when: \"txn.attrs.coupon == 'X' and member.attrs['vip'] == True"
                        " and ('ok' in txn.attrs and txn.attrs.ok)\"\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.code, finding.severity, finding.path, finding.line, finding.column) == (
        "LR506", "info", ("multipliers", 0, "when"), 7, 11)
    assert "(txn.attrs.coupon, member.attrs.vip)" in finding.message


@pytest.mark.parametrize(("section", "condition", "severity", "message", "hint"), [
    ("earn", "member.attrs.level > 2", "warning",
     "reads member.attrs.level, data the host must send, without checking first that it is "
     "there: when it is missing it reads as None, and this condition fails with an error",
     "make sure every host sends it, or write `'level' in member.attrs and …`"),
    ("earn", "txn.attrs.n + 1 > 2", "warning",
     "reads txn.attrs.n, data the host must send, without checking first that it is "
     "there: when it is missing it reads as None, and this condition fails with an error",
     "make sure every host sends it, or write `'n' in txn.attrs and …`"),
    ("earn", "items[0].attrs.size >= 40", "warning",
     "reads items[0].attrs.size, data the host must send, without checking first that it is "
     "there: when it is missing it reads as None, and this condition fails with an error",
     "make sure every host sends it, or write `'size' in items[0].attrs and …`"),
    ("earn", "txn.attrs.vip", "warning",
     "reads txn.attrs.vip, data the host must send, without checking first that it is "
     "there: when it is missing it reads as None, and this condition fails with an error",
     "make sure every host sends it, or write `'vip' in txn.attrs and …`"),
    ("earn", "txn.attrs.coupon == 'X'", "info",
     "depends on data the host must send (txn.attrs.coupon): when it is missing it reads as "
     "None and the condition is quietly false",
     "make sure every host sends it, or check for it (`'coupon' in txn.attrs`)"),
    ("earn", "not member.attrs.blocked", "info",
     "depends on data the host must send (member.attrs.blocked): when it is missing it reads "
     "as None and the condition is quietly false",
     "make sure every host sends it, or check for it (`'blocked' in member.attrs`)"),
    ("behaviours", "event.attrs.stars > 3", "warning",
     "reads event.attrs.stars, data the host must send, without checking first that it is "
     "there: when it is missing it reads as None, and this condition fails with an error",
     "make sure every host sends it, or write `'stars' in event.attrs and …`"),
    ("behaviours", "event.attrs.photo == True", "info",
     "depends on data the host must send (event.attrs.photo): when it is missing it reads as "
     "None and the condition is quietly false",
     "make sure every host sends it, or check for it (`'photo' in event.attrs`)"),
])
def test_lr506_host_data_that_fails_is_a_warning_and_quietly_false_is_information(
        section: str, condition: str, severity: str, message: str, hint: str) -> None:
    """A missing attrs key reads as None: ==, != and `not` come out false (info), but an
    ordering, arithmetic or a bare read that is the condition's value raise (warning). Item
    and event attrs are host data too, and the hint names the map the key belongs in."""
    rule = ("{id: e, points: 1" if section == "earn"
            else "{id: e, event: review, points: 1")
    p = program(BASIC + f"{section}:\n  - {rule}, when: \"{condition}\"}}\n")
    assert [(f.code, f.severity, f.message, f.hint, format_path(f.path))
            for f in lint(p, today=TODAY)] == [
        ("LR506", severity, message, hint, f"{section}[0].when")]


# --- LR507 bounds ------------------------------------------------------------------------------


def test_lr507_discounts_multipliers_bonuses_and_point_values_out_of_bounds() -> None:
    """Each out-of-bounds number is reported at its own value, 100% off as an error."""
    p = program("tiers:\n"                                      # 2
                "  - id: basic\n"                               # 3
                "    discount: 60%\n"                           # 4
                "    points_multiplier: 12\n"                   # 5
                "multipliers:\n"                                # 6
                "  - {id: x, factor: 11}\n"                     # 7
                "promotions:\n"                                 # 8
                "  - id: free\n"                                # 9
                "    discount: 100%\n"                          # 10
                "    bonus_points: 200000\n"                    # 11
                "    limit: {times: 1}\n"                       # 12
                "  - id: fine\n"                                # 13
                "    discount: {percent: 45%}\n"                # 14
                "    points_multiplier: 10\n"                   # 15
                "redemption: {points: 1, value: 2}\n"           # 16
                "policies:\n"                                   # 17
                "  discounts: {max_total: 100%}\n")             # 18
    assert found(p) == [
        ("LR507", "warning", "tiers[0].discount", 4, 15),
        ("LR507", "warning", "tiers[0].points_multiplier", 5, 24),
        ("LR507", "warning", "multipliers[0].factor", 7, 21),
        ("LR507", "error", "promotions[0].discount", 10, 15),
        ("LR507", "warning", "promotions[0].bonus_points", 11, 19),
        ("LR507", "warning", "redemption.value", 16, 32),
        ("LR507", "warning", "policies.discounts.max_total", 18, 26),
    ]


@pytest.mark.parametrize(("discount", "severity", "message", "path", "column"), [
    ("discount: {threshold: 100, off: 100}", "error",
     "p takes 100 off a basket of exactly the threshold 100 CNY: it pays nothing",
     "promotions[0].discount.off", 45),
    ("discount: {threshold: 100, off: 60}", "warning",
     "p takes 60 off a basket of exactly the threshold 100 CNY: 60% off, half the price or "
     "more", "promotions[0].discount.off", 45),
    ("discount: {threshold: 300, off: 150, repeat: true}", "warning",
     "p takes 150 off a basket of exactly the threshold 300 CNY: 50% off, half the price or "
     "more", "promotions[0].discount.off", 45),
    ("min_amount: 100, discount: {amount: 80}", "warning",
     "p takes 80 off a purchase of exactly min_amount 100 CNY: 80% off, half the price or "
     "more", "promotions[0].discount.amount", 49),
    ("discount: {threshold: 300, off: 50}", None, "", "", 0),
    ("discount: {amount: 80}", None, "", "", 0),
    # (a min_amount of 0 asks for no smallest basket, as none does: this divided by 0 and
    # crashed lint, found by helper-92)
    ("min_amount: 0, discount: {amount: 5}", None, "", "", 0),
    ("min_amount: -0.00, discount: {amount: 5}", None, "", "", 0),
])
def test_lr507_amounts_off_count_against_the_smallest_basket_they_apply_to(
        discount: str, severity: str | None, message: str, path: str, column: int) -> None:
    """满减 off is judged against its threshold (a ¥100 basket under 满100减100 pays 0), a
    flat amount off against the rule's min_amount (without one, or with 0, there is nothing
    to judge)."""
    p = program(BASIC + f"promotions:\n  - {{id: p, {discount}, limit: {{times: 1}}}}\n")
    expected = [("LR507", severity, message, path, 5, column)] if severity else []
    assert [(f.code, f.severity, f.message, format_path(f.path), f.line, f.column)
            for f in lint(p, today=TODAY)] == expected


def test_lr507_messages_name_the_numbers() -> None:
    """The designer reads the offending number and its rule in the message."""
    p = program(BASIC + "redemption: {points: 10, value: 20}\n")
    [finding] = lint(p, today=TODAY)
    assert finding.message == "each point pays 2 CNY: 10 points pay 20 CNY"


# --- LR508 benefits along the tiers ------------------------------------------------------------


def test_lr508_higher_tier_with_smaller_multiplier_or_missing_perk() -> None:
    """Multiplier compared with the nearest lower tier that earns more; perks with the tier
    just below."""
    p = program("tiers:\n"                                               # 2
                "  - {id: a, points_multiplier: 2, perks: [wifi]}\n"     # 3
                "  - id: b\n"                                            # 4
                "    qualify: {spend: 100}\n"                            # 5
                "    points_multiplier: 1.5\n"                           # 6
                "    perks: [lounge]\n"                                  # 7
                "perks: [{id: wifi}, {id: lounge}]\n")                   # 8
    assert found(p) == [
        ("LR508", "warning", "tiers[1].points_multiplier", 6, 24),
        ("LR508", "warning", "tiers[1].perks", 7, 12),
    ]
    messages = [f.message for f in lint(p, today=TODAY)]
    assert messages == ["b earns points ×1.5, less than a's ×2",
                        "b does not get wifi, which a gets"]


def test_lr508_tier_without_a_discount_above_one_with_a_discount() -> None:
    """A missing discount counts as 0% and names the nearest lower tier that gives more."""
    p = program("tiers:\n"
                "  - {id: a, discount: 10%}\n"
                "  - {id: b, qualify: {spend: 100}, discount: 12%}\n"
                "  - {id: c, qualify: {spend: 200}}\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.path, finding.line, finding.column) == (("tiers", 2, "discount"), 5, 5)
    assert finding.message == "c gives 0% off, less than b's 12%"


def test_lr508_rfm_3tier_reports_the_plans_shrinking_discounts() -> None:
    """Mechanism B's bronze 10% / silver 5% / gold 2%: two LR508s at the higher tiers'
    discount values, and nothing else."""
    path = PROGRAMS / "rfm-3tier.yaml"
    p = load_program(path)
    silver = position(path, "discount: 9.5折", "9.5折")
    gold = position(path, "discount: 9.8折", "9.8折")
    photo = position(path, "event.attrs.photo", "\"event")
    quality = position(path, "event.attrs.quality", "\"event")
    assert found(p) == [
        ("LR508", "warning", "tiers[1].discount", *silver),
        ("LR508", "warning", "tiers[2].discount", *gold),
        ("LR506", "info", "behaviours[0].when", *photo),
        ("LR506", "info", "behaviours[1].when", *quality),
    ]
    assert [f.message for f in lint(p, today=TODAY)][:2] == [
        "silver gives 5% off, less than bronze's 10%",
        "gold gives 2% off, less than silver's 5%",
    ]
    assert str(lint(p, today=TODAY)[0]).startswith(
        f"{path}:{silver[0]}:{silver[1]}: tiers[1].discount: silver gives 5% off")


def test_ignore_in_the_program_silences_a_code() -> None:
    """`lint: {ignore: [LR508]}` drops the LR508 findings and nothing else."""
    text = (PROGRAMS / "rfm-3tier.yaml").read_text(encoding="utf-8")
    assert lint(load_program(text + "\nlint: {ignore: [LR508, LR506]}\n"), today=TODAY) == []
    assert [f.code for f in lint(load_program(text + "\nlint: {ignore: [LR508]}\n"),
                                 today=TODAY)] == ["LR506", "LR506"]
    p = program(BASIC + "perks: [{id: unused}]\n"
                        "lint: {ignore: [LR508, LR501]}\n")
    assert [f.code for f in lint(p, today=TODAY)] == ["LR505"]


# --- LR509 caps --------------------------------------------------------------------------------


def test_lr509_caps_of_zero_and_below_one_block() -> None:
    """A cap of 0 never earns (error); a cap below one block truncates every purchase."""
    p = program(BASIC + "earn:\n"                                             # 4
                        "  - {id: none, points: 1, cap: 0}\n"                 # 5
                        "  - {id: tiny, points: 10, per: 100, cap: 5}\n"      # 6
                        "  - {id: ok, points: 10, per: 100, cap: 10}\n"       # 7
                        "policies:\n"                                         # 8
                        "  points: {max_per_transaction: 8}\n")               # 9
    assert found(p) == [
        ("LR509", "error", "earn[0].cap", 5, 32),
        ("LR509", "warning", "earn[1].cap", 6, 43),
        ("LR509", "warning", "policies.points.max_per_transaction", 9, 33),
    ]
    assert lint(p, today=TODAY)[1].message == (
        "the cap 5 is below one block (100 CNY earn 10 points): every purchase of one block or "
        "more is cut to the cap")


def test_lr509_cap_below_one_block_with_reject_is_an_error() -> None:
    """With `cap: reject` such a purchase earns nothing from the rule at all."""
    p = program(BASIC + "earn:\n  - {id: tiny, points: 10, per: 100, cap: 5}\n"
                        "policies: {points: {cap: reject}}\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.severity, finding.line) == ("error", 5)
    assert "earns nothing" in finding.message


def test_lr509_max_per_period_of_zero_or_below_max_per_transaction() -> None:
    """0 points a month lets no purchase earn; 500 a month under a 1,000 per-purchase cap
    makes that cap unreachable."""
    zero = program(BASIC + "policies: {points: {max_per_period: {points: 0, per: month}}}\n")
    assert said(zero) == [("LR509", "error", "policies.points.max_per_period.points", 4, 46,
                           "max_per_period is 0 points a month, so no purchase earns any "
                           "points")]
    below = program(BASIC + "policies: {points: {max_per_transaction: 1000, "
                            "max_per_period: {points: 500, per: month}}}\n")
    assert [f[5] for f in said(below)] == [
        "max_per_period 500 a month is below max_per_transaction 1000, so no purchase can "
        "ever reach max_per_transaction"]


# --- LR510 repeatable gifts --------------------------------------------------------------------


def test_lr510_bonus_and_perk_without_a_usage_limit() -> None:
    """Flat bonuses without a limit are information; limited or first-order ones are not."""
    p = program(BASIC + "perks: [{id: gift}]\n"                               # 4
                        "promotions:\n"                                       # 5
                        "  - id: bonus\n"                                     # 6
                        "    bonus_points: 50\n"                              # 7
                        "    perk: gift\n"                                    # 8
                        "  - {id: once, bonus_points: 50, limit: {times: 1}}\n"
                        "  - {id: welcome, bonus_points: 50, when: \"member.orders == 0\"}\n")
    assert found(p) == [
        ("LR510", "info", "promotions[0].bonus_points", 7, 19),
        ("LR510", "info", "promotions[0].perk", 8, 11),
    ]


@pytest.mark.parametrize(("condition", "reported"), [
    ("member.orders == 0", False),
    ("member.orders < 1", False),
    ("member.orders <= 0", False),
    ("0 == member.orders", False),
    ("txn.amount > 100 and member.orders == 0", False),
    ("member.last_purchase is None and txn.channel == 'app'", False),
    ("member.orders == 0 or txn.channel == 'app'", True),
    ("not (member.orders == 0)", True),
    ("member.orders == 3", True),
    ("member.orders != 0", True),
])
def test_lr510_only_a_first_order_test_that_must_hold_limits_the_rule(
        condition: str, reported: bool) -> None:
    """A rule limits itself only when a part of its condition that must hold (a top-level
    `and` part) says no order was made yet; `… or …` and `not (…)` let any order collect."""
    p = program(BASIC + "promotions:\n"
                        f"  - {{id: p, bonus_points: 50, when: \"{condition}\"}}\n")
    expected = [("LR510", "info", "p gives 50 bonus points on every matching purchase, with "
                 "no usage limit: splitting one order into several collects it each time",
                 "promotions[0].bonus_points", 5, 27)] if reported else []
    assert [(f.code, f.severity, f.message, format_path(f.path), f.line, f.column)
            for f in lint(p, today=TODAY)] == expected


# --- LR511 settings without effect -------------------------------------------------------------


def test_lr511_exclusive_on_a_birthday_rule_and_retain_that_is_never_checked() -> None:
    """`exclusive` only applies to promotions; retain needs reviews and a tier to drop from."""
    p = program("tiers:\n"                                               # 2
                "  - id: basic\n"                                        # 3
                "    retain: {spend: 1}\n"                               # 4
                "  - id: silver\n"                                       # 5
                "    qualify: {spend: 100}\n"                            # 6
                "    retain: {spend: 50}\n"                              # 7
                "birthday:\n"                                            # 8
                "  - {id: bday, on: birthday, points_multiplier: 2, exclusive: true}\n")
    assert found(p) == [
        ("LR511", "warning", "tiers[0].retain", 4, 13),
        ("LR511", "warning", "tiers[1].retain", 7, 13),
        ("LR511", "warning", "birthday[0].exclusive", 9, 63),
    ]


def test_lr511_a_group_of_one_a_factor_of_one_and_an_unknown_ignored_code() -> None:
    """Found by helper-51, each loaded without a word: a group name written two ways (each
    group then has one rule and keeps nothing out), points multiplied by 1, and an ignored
    code that is no check."""
    p = program(BASIC +                                                      # 2-3
                "multipliers:\n  - {id: m, factor: 1}\n"                       # 4-5
                "promotions:\n"                                                 # 6
                "  - {id: a, discount: 5%, group: basket-deal}\n"               # 7
                "  - {id: b, discount: 8%, group: basket_deal}\n"               # 8
                "  - {id: c, points_multiplier: 1}\n"                           # 9
                "lint: {ignore: [LR580]}\n")                                    # 10
    assert [(code, path, line, message) for code, _, path, line, _, message in said(p)] == [
        ("LR511", "multipliers[0].factor", 5, "factor 1 multiplies points by one"),
        ("LR511", "promotions[0].group", 7,
         "group basket-deal has only this rule, so it keeps nothing out"),
        ("LR511", "promotions[1].group", 8,
         "group basket_deal has only this rule, so it keeps nothing out"),
        ("LR511", "promotions[2].points_multiplier", 9,
         "points_multiplier 1 multiplies points by one"),
        ("LR511", "lint.ignore[0]", 10, "LR580 is no lint check, so ignoring it has no "
                                        "effect")]
    hints = [f.hint for f in lint(p, today=TODAY)]
    assert hints[1:3] == ["did you mean 'basket_deal'?", "did you mean 'basket-deal'?"]


# --- LR513 conditions that can never hold ------------------------------------------------------

NEVER = ("tiers: [{id: basic}, {id: vip, qualify: {spend: 1000}}]\n"         # 2
         "promotions:\n")                                                   # 3


@pytest.mark.parametrize(("rule", "message"), [
    ("{id: r, bonus_points: 1, when: \"txn.weekday == 0\"}",
     "r can never apply: no txn.weekday satisfies all of its comparisons (txn.weekday is 1 "
     "to 7)"),
    ("{id: r, bonus_points: 1, when: \"txn.hour >= 24\"}",
     "r can never apply: no txn.hour satisfies all of its comparisons (txn.hour is 0 to 23)"),
    ("{id: r, bonus_points: 1, when: \"3 < txn.hour < 4\"}",
     "r can never apply: no txn.hour satisfies all of its comparisons (txn.hour is 0 to 23)"),
    ("{id: r, bonus_points: 1, when: \"month(today) == 13\"}",
     "r can never apply: no month(today) satisfies all of its comparisons (month(today) is 1 "
     "to 12)"),
    ("{id: r, bonus_points: 1, when: \"txn.amount >= 500 and txn.amount < 100\"}",
     "r can never apply: no txn.amount satisfies all of its comparisons"),
    ("{id: r, bonus_points: 1, channels: [app], when: \"txn.channel == 'store'\"}",
     "r can never apply: no txn.channel satisfies all of its comparisons with its channels "
     "(app)"),
    ("{id: r, bonus_points: 1, tiers: [basic], when: \"tier == 'vip'\"}",
     "r can never apply: no tier satisfies all of its comparisons with its tiers (basic)"),
    ("{id: r, bonus_points: 1, when: \"1 > 2\"}",
     "r can never apply: `1 > 2` is always false"),
])
def test_lr513_a_condition_that_can_never_hold_is_an_error(rule: str, message: str) -> None:
    """Each passed validate and lint without a word (found by helper-51): Sunday written as
    weekday 0, an hour 24, contradicting bounds, a channel or tier the rule's own settings
    exclude, a constant."""
    p = program(NEVER + f"  - {rule}\n")
    assert [(code, severity, path, msg) for code, severity, path, _, _, msg in said(p)
            if code == "LR513"] == [("LR513", "error", "promotions[0].when", message)]


def test_lr513_a_behaviour_for_another_event_and_a_condition_always_true() -> None:
    p = program(NEVER + "  - {id: r, bonus_points: 1, when: 'True'}\n"
                "behaviours:\n  - {id: b, event: review, points: 1, "
                "when: \"event.type == 'reveiw'\"}\n")
    assert [(code, severity, path, msg) for code, severity, path, _, _, msg in said(p)
            if code == "LR513"] == [
        ("LR513", "warning", "promotions[0].when", "`True` is always true, so it says nothing"),
        ("LR513", "error", "behaviours[0].when", "b can never apply: no event.type satisfies "
                                                  "all of its comparisons with its event "
                                                  "(review)")]


@pytest.mark.parametrize("when", [
    "txn.weekday >= 6 and txn.hour < 12", "11 <= txn.hour < 14", "txn.amount >= 100 and "
    "txn.amount < 100.01", "today.month == 12 or today.month == 1",
    "member.birthday is not None and member.birthday.month == 2",
    # (found by helper-53: a host's attrs named day or minute are no calendar field, and
    # `!= ['web']` is always true; `in` a text written in the condition, which looks inside
    # it, is refused at load since 2026-12-07: test_expressions.py)
    "'day' in txn.attrs and txn.attrs.day >= 60", "txn.attrs['minute'] >= 90",
    "txn.channel != ['app']",
])
def test_lr513_conditions_that_can_hold_are_not_found(when: str) -> None:
    p = program(NEVER + f"  - {{id: r, bonus_points: 1, channels: [app, web], "
                f"when: \"{when} and txn.channel != 'web'\"}}\n")
    assert [f for f in lint(p, today=TODAY) if f.code == "LR513"] == []


def test_lr513_tiers_and_tier_may_differ_when_benefits_apply_at_once() -> None:
    """With benefits_from: this_transaction a basic member upgrading to vip is priced as vip:
    `tiers: [vip]` and `tier == 'basic'` can both hold."""
    p = program(NEVER + "  - {id: r, bonus_points: 1, tiers: [vip], when: \"tier == 'basic'\"}\n"
                "policies: {tiers: {benefits_from: this_transaction}}\n")
    assert [f for f in lint(p, today=TODAY) if f.code == "LR513"] == []


# --- LR512 settings that cancel their feature ---------------------------------------------------

SILVER = "  - {id: silver, qualify: {spend: 5000}}\n"  # line 4 after BASIC


def said(p: Program) -> list[tuple[str, str, str, int | None, int | None, str]]:
    """(code, severity, path, line, column, message) of every finding."""
    return [(f.code, f.severity, format_path(f.path), f.line, f.column, f.message)
            for f in lint(p, today=TODAY)]


def test_lr512_discount_cap_of_zero_cancels_every_discount() -> None:
    """max_total: 0% takes every discount to nothing (and drops the rules that give one)."""
    p = program(BASIC + "policies: {discounts: {max_total: 0%}}\n")
    assert said(p) == [("LR512", "warning", "policies.discounts.max_total", 4, 35,
                        "a discount cap of 0% cancels every discount: nothing is ever taken "
                        "off, and a rule whose discount comes to 0 does not apply")]
    [finding] = lint(p, today=TODAY)
    assert finding.hint == ("the cap is the most that all discounts together may take off, "
                            "e.g. 40%; remove it for no cap")


def test_lr512_a_zero_percent_rule_discount_drops_the_rule_with_its_other_effects() -> None:
    """A 0% discount comes to 0, so (discounts stacking) the rule is dropped, bonus included;
    with combine: best the rule is dropped with its bonus wherever no other discount is
    chosen (checked with evaluate: 100 points, no bonus, on a purchase with no other
    discount), and a rule with nothing else only takes nothing off."""
    rules = ("promotions:\n"
             "  - {id: launch, discount: 0%, bonus_points: 50, limit: {times: 1}}\n"  # 5
             "birthday:\n"
             "  - {id: bday, on: birthday, discount: 0%, limit: {times: 1, per: year}}\n")
    assert said(program(BASIC + rules)) == [
        ("LR512", "warning", "promotions[0].discount", 5, 28,
         "launch gives 0% off: a rule whose discount comes to 0 does not apply, so it never "
         "gives 50 bonus points either"),
        ("LR512", "warning", "birthday[0].discount", 7, 40,
         "bday gives 0% off: a rule whose discount comes to 0 does not apply"),
    ]
    best = program(BASIC + rules + "policies: {discounts: {combine: best}}\n")
    assert [m for *_, m in said(best)] == [
        "launch gives 0% off: with combine: best the rule does not apply, so it gives no 50 "
        "bonus points, on every purchase where no other rule's discount is chosen (where one "
        "is, they are given)",
        "bday gives 0% off: the discount never takes anything off"]


@pytest.mark.parametrize(("combine", "other", "points", "discount"), [
    ("stack", "", 100, "0.00"),
    ("best", "", 100, "0.00"),
    ("best", "  - {id: other, discount: 10%}\n", 95, "10.00"),
])
def test_lr512_what_the_engine_does_with_a_zero_percent_rule(
        combine: str, other: str, points: int, discount: str) -> None:
    """What the LR512 messages say: the 0% rule's 5 bonus points are lost unless, under
    combine: best, another rule's discount is chosen (90 points on 90.00 paid, plus 5)."""
    from loyaltyrules import evaluate
    p = load_program(META + "tiers: [{id: basic}]\nearn: [{id: e, points: 1, per: 1}]\n"
                     "promotions:\n  - {id: launch, discount: 0%, bonus_points: 5}\n" + other
                     + f"policies: {{discounts: {{combine: {combine}}}}}\n")
    d = evaluate(p, {"id": "m1", "tier": "basic"},
                 {"id": "t1", "at": "2026-03-03T12:00:00+08:00",
                  "items": [{"sku": "a", "category": "x", "amount": "100.00"}]})
    assert (d.points_total, d.total_discount) == (points, Decimal(discount))


@pytest.mark.parametrize(("over_ask", "outcome"),
                         [("error", "refused"), ("clamp", "cut to 0 points")])
def test_lr512_points_that_may_pay_zero_percent_can_never_pay(over_ask: str, outcome: str) -> None:
    """redemption max_share: 0% means points pay no part of any order."""
    p = program(BASIC + "redemption: {points: 100, value: 1, max_share: 0%, "
                        f"over_ask: {over_ask}}}\n")
    assert said(p) == [("LR512", "warning", "redemption.max_share", 4, 48,
                        "max_share is 0%, so points can pay no part of an order: every "
                        f"redemption is {outcome}")]


@pytest.mark.parametrize(("reviews", "path", "column", "when"), [
    ("{schedule: {freq: yearly, bymonth: 1, bymonthday: 1}}", "reviews.schedule", 21,
     "on a schedule"),
    ("{anniversary: true}", "reviews.anniversary", 24, "on each membership anniversary"),
])
def test_lr512_reviews_of_lifetime_spend_never_move_anyone_down(
        reviews: str, path: str, column: int, when: str) -> None:
    """Reviews (scheduled or on anniversaries) with the default lifetime window: spend only
    grows, so nobody who reached a tier on spend ever misses it at a review."""
    p = program(BASIC + SILVER + f"reviews: {reviews}\n")
    assert said(p) == [("LR512", "warning", path, 5, column,
                        f"reviews run {when}, but tiers count lifetime spend, which only grows "
                        "(refunds aside): a review can move members up but never down")]
    [finding] = lint(p, today=TODAY)
    assert finding.hint == ("to requalify members each year, count spend over a window: "
                            "reviews: {window: calendar_year} (or membership_year, or "
                            "rolling_months: 12)")


@pytest.mark.parametrize("setting", [
    "reviews: {anniversary: true, window: calendar_year}",
    "reviews: {anniversary: true, rolling_months: 12}",
    "reviews: {anniversary: true}\nhouseholds: {share: 50%, tiers_on: group}",
])
def test_lr512_reviews_of_spend_over_a_window_or_of_a_household_can_move_down(
        setting: str) -> None:
    """A spend window, or the household's spend (a member may leave), can fall: no finding."""
    assert said(program(BASIC + SILVER + setting + "\n")) == []


@pytest.mark.parametrize("silver", [
    "{id: silver, qualify: {points: 500}}",                      # the points balance falls
    "{id: silver, qualify: {spend: 5000, when: \"member.attrs.vip\"}}",  # a condition may
    "{id: silver, qualify: {spend: 5000, orders: 5, match: any}, retain: {spend: 4000}}",
    "{id: silver, qualify: {spend: 5000}, retain: {spend: 4000, orders: 4}}",
])
def test_lr512_lifetime_reviews_that_can_still_move_someone_down_are_fine(silver: str) -> None:
    """Keep terms a member can stop meeting although spend and orders only grow."""
    p = program(BASIC + f"  - {silver}\nreviews: {{anniversary: true}}\n")
    assert [c for c, *_ in said(p) if c == "LR512"] == []


def test_lr512_lifetime_reviews_with_easier_retain_terms_still_never_move_down() -> None:
    """Retain at or below qualify (all terms met, or the single one met) is still met."""
    p = program(BASIC + "  - {id: silver, qualify: {spend: 5000, orders: 5}, "
                        "retain: {spend: 4000, orders: 9, match: any}}\n"
                        "  - {id: gold, qualify: {spend: 9000, orders: 9, match: any}, "
                        "retain: {spend: 8000, orders: 9, match: any}}\n"
                        "reviews: {anniversary: true}\n")
    assert [(c, path) for c, _, path, *_ in said(p)] == [("LR512", "reviews.anniversary")]


def test_lr512_keep_without_a_length_keeps_nothing() -> None:
    """reviews.keep with neither until nor months guarantees no stay."""
    p = program(BASIC + SILVER + "reviews: {anniversary: true, window: calendar_year, "
                                 "keep: {}}\n")
    assert said(p) == [("LR512", "warning", "reviews.keep", 5, 59,
                        "keep gives neither until nor months, so no tier is ever kept")]


def test_lr512_referral_of_zero_points_rewards_nobody() -> None:
    """`referral: {}` loads, with 0 points on both sides."""
    assert said(program(BASIC + "referral: {}\n")) == [
        ("LR512", "warning", "referral", 4, 11,
         "referrer_points and referee_points are both 0, so a referral rewards nobody")]
    assert said(program(BASIC + "referral: {referee_points: 100}\n")) == []


def test_lr512_households_that_pool_nothing_and_share_no_tiers_change_nothing() -> None:
    """share: 0% with tiers on each member's own spend; with tiers_on: group it is a design."""
    assert said(program(BASIC + "households: {share: 0%}\n")) == [
        ("LR512", "warning", "households.share", 4, 21,
         "households pool a share of 0% of the points their members earn, and tiers count "
         "each member's own spend, so a household changes nothing")]
    assert said(program(BASIC + "households: {share: 0%, tiers_on: group}\n")) == []


def test_lr512_tier_gap_signal_with_no_gap_to_measure_never_fires() -> None:
    """tier_gap needs a tier above the first that qualifies on what the signal measures."""
    one_tier = program(BASIC + "signals:\n  - {id: nearly, on: tier_gap, spend: 500}\n")
    assert said(one_tier) == [("LR512", "warning", "signals[0].on", 5, 22,
                               "the tier_gap signal nearly never fires: there is no tier "
                               "above basic")]
    on_orders = program(BASIC + "  - {id: silver, qualify: {orders: 10}}\n"
                                "signals:\n"
                                "  - {id: nearly, on: tier_gap, spend: 500, points: 100}\n")
    assert said(on_orders) == [("LR512", "warning", "signals[0].on", 6, 22,
                                "the tier_gap signal nearly never fires: no tier above basic "
                                "qualifies on spend or points")]
    on_spend = program(BASIC + SILVER + "signals:\n  - {id: nearly, on: tier_gap, spend: 500}\n")
    assert said(on_spend) == []



def test_lr512_points_pending_longer_than_a_lot_can_live_expire_unused() -> None:
    """end_of_quarter: 0 with 120 pending days: points earned late on 31 March expire that
    night, 120 days before they would be usable. end_of_year: 1 lets a lot earned late on
    31 December live 366 days: 365 pending days are fine, 366 are not. months: 1 lives 29
    days when earned on 31 January of a common year (usable through 28 February)."""
    def ledger(expiry: str, days: int) -> Program:
        return program(BASIC + f"ledger: {{expiry: {{{expiry}}}, pending_days: {days}}}\n")

    assert said(ledger("end_of_quarter: 0", 120)) == [(
        "LR512", "warning", "ledger.pending_days", 4, 53,
        "points stay pending 120 days, but points earned late on 31 March expire 1 day "
        "later: points earned late in a period expire before they are ever usable")]
    assert said(ledger("end_of_year: 1", 365)) == []
    assert [f[5] for f in said(ledger("end_of_year: 1", 366))] == [
        "points stay pending 366 days, but points earned late on 31 December expire 366 days "
        "later: points earned late in a period expire before they are ever usable"]
    assert said(ledger("months: 1", 28)) == []
    assert [f[5] for f in said(ledger("months: 1", 29))] == [
        "points stay pending 29 days, but points earned late on 31 January expire 29 days "
        "later: points earned late in a period expire before they are ever usable"]
    assert said(ledger("inactive_months: 1", 400)) == []
    assert said(program(BASIC + "ledger: {pending_days: 400}\n")) == []



def test_lr512_tier_falls_signal_that_cannot_fire() -> None:
    """Members move down only at reviews; and three tiers allow two falls in a row."""
    signal = "signals:\n  - {id: falling, on: tier_falls, times: 3}\n"
    no_reviews = program(BASIC + SILVER + signal)
    assert said(no_reviews) == [("LR512", "warning", "signals[0].times", 6, 42,
                                 "the tier_falls signal falling never fires: the program has "
                                 "no reviews, and members move down only at a review")]
    three = program(BASIC + SILVER + "  - {id: gold, qualify: {spend: 9000}}\n"
                    "reviews: {rolling_months: 12, schedule: {freq: monthly, bymonthday: 1}}\n"
                    + signal)
    assert [(f[2], f[5]) for f in said(three)] == [(
        "signals[0].times", "the tier_falls signal falling never fires: 3 tiers allow at most 2 "
        "falls in a row, not 3")]
    assert said(program(BASIC + SILVER + "  - {id: gold, qualify: {spend: 9000}}\n"
                        "reviews: {rolling_months: 12, schedule: {freq: monthly, "
                        "bymonthday: 1}}\n"
                        + signal.replace("times: 3", "times: 2"))) == []


# --- LR514 redemption steps worth less than the currency's unit --------------------------------


@pytest.mark.parametrize(("redemption", "currency", "message", "hint"), [
    ("{points: 100, value: 1}", "JPY",
     "a step of 1 point is worth 0.01 JPY, less than 1 JPY, the smallest amount paid: points "
     "are only taken for money they pay, so a request of fewer than 100 points, or 101 (which "
     "pay 1 JPY, as 100 do), is refused", "step: 100 (100 points pay 1 JPY)"),
    ("{points: 10, value: 0.01, step: 3, over_ask: clamp}", "CNY",
     "a step of 3 points is worth 0.003 CNY, less than 0.01 CNY, the smallest amount paid: "
     "points are only taken for money they pay, so a request of fewer than 12 points, or 15 "
     "(which pay 0.01 CNY, as 12 do), is trimmed to the points that pay",
     "step: 10 (10 points pay 0.01 CNY)"),
], ids=["JPY", "CNY-clamp"])
def test_lr514_a_redemption_step_worth_less_than_a_yen_names_the_step_that_fits(
        redemption: str, currency: str, message: str, hint: str) -> None:
    """"100 points = ¥1" with the default step of 1 point: a step is worth ¥0.01, which
    JPY cannot pay, so most requests hold points that would pay nothing."""
    p = load_program(META.replace("CNY", currency) + BASIC + f"redemption: {redemption}\n")
    [finding] = lint(p, today=TODAY)
    assert (finding.code, finding.severity, format_path(finding.path), finding.message,
            finding.hint) == ("LR514", "warning", "redemption.step", message, hint)


@pytest.mark.parametrize(("redemption", "currency"), [
    ("{points: 100, value: 1}", "CNY"),              # a point pays 0.01, the unit
    ("{points: 100, value: 1, step: 100}", "JPY"),   # a step pays ¥1
    ("{points: 10, value: 0.01, step: 10}", "CNY"),
])
def test_lr514_steps_worth_a_unit_or_more_are_not_reported(redemption: str,
                                                           currency: str) -> None:
    """A step whose points pay at least the currency's unit says nothing."""
    p = load_program(META.replace("CNY", currency) + BASIC + f"redemption: {redemption}\n")
    assert [f for f in lint(p, today=TODAY) if f.code == "LR514"] == []


# --- the whole program -------------------------------------------------------------------------


def test_findings_are_sorted_by_line_then_column() -> None:
    """Findings of different checks come out in the order they appear in the file."""
    p = program("tiers:\n"
                "  - id: basic\n"
                "    discount: 20%\n"
                "  - {id: silver, qualify: {spend: 10}, discount: 10%, perks: [p]}\n"
                "perks: [{id: p}, {id: q}]\n"
                "promotions:\n"
                "  - {id: old, window: {end: 2020-01-01}, discount: 60%}\n")
    findings = lint(p, today=TODAY)
    assert [(f.code, f.line) for f in findings] == [
        ("LR508", 5), ("LR505", 6), ("LR502", 8), ("LR507", 8)]
    assert [(f.line, f.column) for f in findings] == sorted((f.line, f.column) for f in findings)


def test_program_built_from_a_dict_has_findings_without_positions() -> None:
    """Without a source map a finding still names its path; str() then has no line."""
    p = Program.from_dict({
        "program": {"id": "p", "version": "1", "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}], "perks": [{"id": "lost"}]})
    [finding] = lint(p, today=TODAY)
    assert (finding.line, finding.column) == (None, None)
    assert str(finding) == ("<dict>: perks[0].id: perk lost is declared but no tier, rule or "
                            "reward grants it — grant it (a tier's perks, a rule's or a reward's "
                            "perk) or remove it [LR505 warning]")


@pytest.mark.parametrize("today", [date(2026, 3, 1), date(2027, 1, 15)])
def test_retail_4tier_is_clean(today: date) -> None:
    """Mechanism A as designed has no smells, before and after any date."""
    assert lint(load_program(PROGRAMS / "retail-4tier.yaml"), today=today) == []


def test_coffee_club_is_clean_while_its_windows_run() -> None:
    """Coffee Club in mid-2026: nothing to say while its two promotion windows are open."""
    assert lint(load_program(PROGRAMS / "coffee-club.yaml"), today=date(2026, 6, 1)) == []


def test_coffee_club_reports_its_ended_windows_in_2027() -> None:
    """After 2026 the Wednesday and Black Friday windows are over: two LR502s, nothing else."""
    path = PROGRAMS / "coffee-club.yaml"
    wednesday = position(path, "window: {start: 2026-01-01, end: 2026-12-31}", "2026-12-31")
    friday = position(path, 'end: "2026-11-28T00:00"', '"2026-11-28T00:00"')
    assert found(load_program(path), today=date(2027, 1, 15)) == [
        ("LR502", "warning", "promotions[0].window.end", *wednesday),
        ("LR502", "warning", "promotions[5].window.end", *friday),
    ]
    # Black Friday's window ends at midnight starting 28 November: over from that day on
    assert [f.path[1] for f in lint(load_program(path), today=date(2026, 11, 27))] == []
    assert [f.path[1] for f in lint(load_program(path), today=date(2026, 11, 28))] == [5]


def test_reference_4tier_only_notes_its_repeatable_double_eleven_bonus() -> None:
    """The benchmark program's 11.11 bonus has no usage limit: one info finding."""
    path = PROGRAMS / "reference-4tier.yaml"
    assert found(load_program(path)) == [
        ("LR510", "info", "promotions[0].bonus_points",
         *position(path, "bonus_points: 500", "500")),
    ]
