"""Loading programs: every source form, the content hash, immutability and diagnostics."""

from __future__ import annotations

import json
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import loyaltyrules as lr
from loyaltyrules import Diagnostic, Program, ProgramError, load_program
from loyaltyrules._errors import format_path

ROOT = Path(__file__).resolve().parent.parent
RETAIL = ROOT / "programs" / "retail-4tier.yaml"
BUNDLED = sorted((ROOT / "programs").glob("*.yaml"))

META = "program: {id: p, version: 1, currency: CNY, timezone: Asia/Shanghai}\n"

# retail-4tier.yaml written out by hand as plain data (no YAML involved).
RETAIL_DICT: dict[str, Any] = {
    "program": {
        "id": "retail-4tier",
        "name": {"zh": "四级零售会员体系", "en": "Four-tier retail membership"},
        "version": "1",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
    },
    "tiers": [
        {"id": "basic", "name": {"zh": "普通会员", "en": "Basic"}},
        {"id": "silver", "name": {"zh": "银卡", "en": "Silver"},
         "qualify": {"spend": 10000}, "discount": "9.5折"},
        {"id": "gold", "name": {"zh": "金卡", "en": "Gold"},
         "qualify": {"spend": 20000}, "discount": "8折"},
        {"id": "diamond", "name": {"zh": "钻石会员", "en": "Diamond"},
         "qualify": {"spend": 30000}, "discount": "8折", "points_multiplier": "1.5"},
    ],
    "perks": [{"id": "birthday_gift", "name": {"zh": "生日礼物", "en": "Birthday gift"}}],
    "earn": [{"id": "base", "name": {"zh": "消费积分", "en": "Purchase points"},
              "points": 10, "per": 100, "blocks": "full", "basis": "paid"}],
    "birthday": [
        {"id": "birthday-gift", "name": {"zh": "生日礼物", "en": "Birthday gift"},
         "on": "birthday", "perk": "birthday_gift", "limit": {"times": 1, "per": "year"}},
        {"id": "birthday-discount", "name": {"zh": "生日九折", "en": "Birthday 10% off"},
         "on": "birthday", "discount": "10%", "priority": 50},
    ],
    "promotions": [
        {"id": "member-day", "name": {"zh": "会员尊享日", "en": "Member day"},
         "schedule": {"freq": "monthly", "bymonthday": 8}, "points_multiplier": 2},
    ],
    "redemption": {"points": 10, "value": 5, "step": 10, "max_share": "50%",
                   "over_ask": "error"},
    "ledger": {"expiry": {"end_of_year": 1}, "negative_balance": "shortfall",
               "refund_days": 365},
    "policies": {
        "rounding": {"money": "half_up", "points": "floor"},
        "tiers": {"benefits_from": "next_transaction"},
        "discounts": {"stacking": "sequential", "tier_priority": 100},
        "qualifying_spend": {"basis": "paid"},
    },
}

# The same program as retail-4tier.yaml, re-formatted: other comments, flow and block styles
# swapped, keys reordered, strings quoted, defaults that were written left out and vice versa.
RETAIL_REFORMATTED = """\
# a different header comment
program:
  timezone: "Asia/Shanghai"
  currency: CNY
  version: 1
  name:
    en: Four-tier retail membership
    zh: 四级零售会员体系
  id: retail-4tier
tiers:
- {id: basic, name: {zh: 普通会员, en: Basic}}
- {id: silver, name: {zh: 银卡, en: Silver}, discount: '9.5折', qualify: {spend: 10000}}
- id: gold
  discount: "8折"     # comment moved here
  qualify:
    spend: 20000
  name: {en: Gold, zh: 金卡}
- id: diamond
  points_multiplier: 1.5
  discount: 8折
  qualify: {spend: 30000, match: all}
  name: {zh: 钻石会员, en: Diamond}
perks: [{id: birthday_gift, name: {zh: 生日礼物, en: Birthday gift}}]
earn:
- {id: base, name: {zh: 消费积分, en: Purchase points}, points: 10, per: 100}
birthday:
- {id: birthday-gift, name: {zh: 生日礼物, en: Birthday gift}, on: birthday,
   perk: birthday_gift, limit: {times: 1, per: year}}
- {id: birthday-discount, name: {zh: 生日九折, en: Birthday 10% off}, on: birthday,
   discount: 10%, priority: 50}
promotions:
- id: member-day
  points_multiplier: 2
  schedule: {bymonthday: 8, freq: monthly}
  name: {zh: 会员尊享日, en: Member day}
ledger: {expiry: {end_of_year: 1}}
redemption: {value: 5, points: 10, step: 10, max_share: 0.5}
policies:
  qualifying_spend: {basis: paid}
"""


def program_error(source: Any) -> ProgramError:
    with pytest.raises(ProgramError) as info:
        load_program(source)
    return info.value


def as_tuple(d: Diagnostic) -> tuple[str, str, int | None, int | None, str, str | None]:
    return d.code, format_path(d.path), d.line, d.column, d.message, d.hint


def by_path(error: ProgramError, path: str) -> Diagnostic:
    found = [d for d in error.diagnostics if format_path(d.path) == path]
    assert len(found) == 1, [str(d) for d in error.diagnostics]
    return found[0]


# -- the forms a program can be loaded from -------------------------------------------------


def test_load_from_str_path() -> None:
    """A str naming a .yaml file loads that file and records it as the source."""
    program = load_program(str(RETAIL))
    assert program.id == "retail-4tier"
    assert program.version == "1"
    assert program.source == str(RETAIL)
    assert program.tier_ids == ("basic", "silver", "gold", "diamond")


def test_load_from_pathlib_path() -> None:
    """A pathlib.Path loads the file it names."""
    program = load_program(RETAIL)
    assert program.id == "retail-4tier"
    assert program.currency == "CNY"
    assert program.quantum == Decimal("0.01")
    assert str(program.zone) == "Asia/Shanghai"


def test_load_from_yaml_text() -> None:
    """YAML text (several lines) is parsed as the program itself, with source '<program>'."""
    program = load_program(RETAIL.read_text(encoding="utf-8"))
    assert program.id == "retail-4tier"
    assert program.source == "<program>"


def test_load_from_dict_and_from_dict() -> None:
    """A dict is accepted by load_program and by Program.from_dict alike."""
    assert load_program(RETAIL_DICT).tier_ids == ("basic", "silver", "gold", "diamond")
    program = Program.from_dict(RETAIL_DICT, source="retail.json")
    assert program.source == "retail.json"
    assert program.tiers[1].discount == Decimal("0.05")


def test_every_form_gives_the_same_hash() -> None:
    """str path, Path, YAML text and dict of the same program all have the same hash."""
    hashes = {
        load_program(str(RETAIL)).hash,
        load_program(RETAIL).hash,
        load_program(RETAIL.read_text(encoding="utf-8")).hash,
        load_program(RETAIL_DICT).hash,
        Program.from_dict(RETAIL_DICT).hash,
    }
    assert len(hashes) == 1
    (value,) = hashes
    assert value.startswith("sha256:")
    assert len(value) == len("sha256:") + 64


# -- the content hash -----------------------------------------------------------------------


def test_hash_ignores_formatting_comments_and_key_order() -> None:
    """Re-formatting the YAML (comments, flow/block style, key order, quoting) keeps the hash."""
    assert load_program(RETAIL_REFORMATTED).hash == load_program(RETAIL).hash


def test_hash_is_the_same_with_settings_written_at_their_defaults() -> None:
    """Writing a setting at its default (or a setting a later version added, at its
    default) is the program without it: one hash. A setting that changes something (a
    max_per_period) changes it."""
    data = dict(RETAIL_DICT)
    plain = Program.from_dict(data).hash
    written = {**data, "policies": {**data.get("policies", {}), "points": {
        "combine_rules": "sum", "cap": "truncate", "max_per_transaction": None,
        "max_per_period": None}}}
    assert Program.from_dict(written).hash == plain
    capped = {**data, "policies": {**data.get("policies", {}), "points": {
        "max_per_period": {"points": 5000, "per": "month"}}}}
    assert Program.from_dict(capped).hash != plain


@pytest.mark.parametrize(("discount", "min_amount", "percent"), [
    ("-0", "-0.0", "-0%"), ("-0%", "-0.00", "-0"), ("0.00", "0", "0%")])
def test_minus_zero_is_zero_in_the_program_and_its_hash(discount: str, min_amount: str,
                                                        percent: str) -> None:
    """`min_amount: -0.0` and a discount of `-0%` loaded as Decimal('-0.0') and
    Decimal('-0'), money and rates that are never negative, and each gave the program a hash
    of its own (found by helper-92 and helper-93): a program means the same with 0 there."""
    text = ("program: {id: s, version: 1, currency: CNY, timezone: Asia/Shanghai}\n"
            "tiers: [{id: basic, discount: %s}]\n"
            "promotions:\n  - {id: p, discount: {percent: %s}, min_amount: %s}\n")
    program = load_program(text % (discount, percent, min_amount))
    assert program.hash == load_program(text % ("0", "0", "0")).hash
    [promotion] = program.model.promotions
    assert promotion.discount is not None and promotion.discount.percent is not None
    for value in (promotion.min_amount, program.model.tiers[0].discount,
                  promotion.discount.percent):
        assert value is not None and value == 0 and not value.is_signed()


def test_hash_changes_when_a_rate_changes() -> None:
    """Changing one tier's discount (silver 9.5折 → 9折) changes the hash."""
    text = RETAIL.read_text(encoding="utf-8")
    changed = text.replace("discount: 9.5折", "discount: 9折")
    assert changed != text
    assert load_program(changed).hash != load_program(text).hash


def test_hash_changes_when_an_earn_rate_changes() -> None:
    """Changing the earn rate (10 → 11 points per ¥100) changes the hash."""
    text = RETAIL.read_text(encoding="utf-8")
    changed = text.replace("points: 10\n", "points: 11\n")
    assert changed != text
    assert load_program(changed).hash != load_program(text).hash


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_to_dict_round_trips_to_the_same_hash(path: Path) -> None:
    """Program.from_dict(program.to_dict()) is the same program: same hash and tiers."""
    program = load_program(path)
    again = Program.from_dict(program.to_dict())
    assert again.hash == program.hash
    assert again.tier_ids == program.tier_ids


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_a_program_pickles_to_the_same_program(path: Path) -> None:
    """For process pools: the same hash, the same positions for diagnostics, the same
    decisions."""
    program = load_program(path)
    again = pickle.loads(pickle.dumps(program))
    assert again.hash == program.hash and again.source_map == program.source_map
    assert again.source_map.locate(("tiers", 1)) is not None
    member = {"id": "m", "birthday": "1990-03-15"}
    txn = {"id": "t", "at": "2026-03-15T14:30:00+08:00",
           "items": [{"sku": "a", "amount": "1000.00"}]}
    assert lr.evaluate(again, member, txn).model_dump_json() == lr.evaluate(
        program, member, txn).model_dump_json()


def _worker_points(program: Program) -> int:
    return lr.evaluate(program, {"id": "m"}, {
        "id": "t", "at": "2026-03-15T14:30:00+08:00",
        "items": [{"sku": "a", "amount": "1000.00"}]}).points_total


def test_a_process_pool_can_be_handed_a_program() -> None:
    program = load_program(RETAIL)
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_worker_points, program).result(timeout=60) == \
            _worker_points(program)


# -- immutability ---------------------------------------------------------------------------


def test_program_attributes_cannot_be_set() -> None:
    """Setting any attribute of a Program, public, private or new, raises AttributeError."""
    program = load_program(RETAIL)
    for name in ("id", "_hash", "_model", "anything"):
        with pytest.raises(AttributeError, match="Program is immutable"):
            setattr(program, name, "x")
    assert program.id == "retail-4tier"


def test_program_model_is_frozen() -> None:
    """The validated model inside a Program is frozen: assigning a field raises."""
    program = load_program(RETAIL)
    with pytest.raises(ValidationError):
        program.model.tiers[1].discount = Decimal("0.5")  # type: ignore[misc]
    assert isinstance(program.tiers, tuple)
    assert program.tiers[1].discount == Decimal("0.05")


def test_program_nested_names_cannot_be_mutated() -> None:
    """A tier's name mapping is read-only too, so the program can't drift from its hash."""
    program = load_program(RETAIL)
    with pytest.raises(TypeError):
        program.tiers[1].name["en"] = "Hacked"  # type: ignore[index]
    assert program.tiers[1].name == {"zh": "银卡", "en": "Silver"}


# -- diagnostics: one error listing every problem --------------------------------------------

# Each line carries one (or two) deliberate mistakes; positions below are 1-based line:column.
BAD_PROGRAM = """\
program: {id: shop, version: 1, currency: CNY, timezone: Asia/Shanghai}
tiers:
  - id: basic
    qualify: {spend: 100}
  - id: silver
    qualify: {spend: 5000}
    discont: 5%
  - id: gold
    qualify: {spend: 4000}
    discount: 80
  - id: diamond
perks:
  - {id: gift}
earn:
  - {id: base, points: ten, per: 100}
birthday:
  - {id: bday, perk: gift}
  - {id: bday, on: birthday, perk: gifft}
promotions:
  - id: wed
    tiers: [silvr]
    when: "txn.chanel == 'app'"
    points_multiplier: 2
  - id: sale
    window: {start: 2026-11-12, end: 2026-11-11}
    discount: 10%
  - name: no id
    bonus_points: 5
"""

# The same text with the shape/type mistakes corrected in place (same lines and columns), so
# only the whole-program consistency mistakes (LR4xx) remain.
CONSISTENCY_ONLY = (
    BAD_PROGRAM.replace("discont:", "discount:")
    .replace("discount: 80", "discount: 8%")
    .replace("points: ten", "points: 10")
    .replace("txn.chanel", "txn.channel")
    .replace("  - name: no id", "  - id: bonus1")
)

# (code, path, line, column, message, hint)
SHAPE_PROBLEMS = [
    ("LR201", "tiers[1].discont", 7, 5, "unknown key 'discont'", "did you mean 'discount'?"),
    ("LR203", "tiers[2].discount", 10, 15, "must be between 0 and 1 (got 80)",
     "did you mean 80% (0.8)?"),
    ("LR203", "earn[0].points", 15, 24, "expected an amount such as 12.50, got 'ten'", None),
    ("LR202", "promotions[2].id", 27, 5, "missing required key 'id'", None),
]
EXPRESSION_PROBLEM = ("promotions[0].when", 22, 11, "txn has no field 'chanel'",
                      "did you mean 'channel'?")
CONSISTENCY_PROBLEMS = [
    ("LR404", "tiers[0].qualify", 4, 14,
     "the first tier is where members start; it cannot have qualify", None),
    ("LR406", "tiers[2].qualify.spend", 9, 22,
     "qualify.spend must increase along the tiers: 'gold' needs 4000 but the lower tier "
     "'silver' already needs 5000", None),
    ("LR405", "tiers[3]", 11, 5, "tier 'diamond' has no qualify: members could never reach it",
     None),
    ("LR407", "birthday[0]", 17, 5,
     "a birthday rule needs on: birthday, birthday_week or birthday_month", None),
    ("LR401", "birthday[1].id", 18, 10,
     "duplicate rule id 'bday' (also birthday[0]); rule ids must be unique across earn, "
     "multipliers, birthday, promotions and behaviours", None),
    ("LR403", "birthday[1].perk", 18, 36, "unknown perk 'gifft'", "did you mean 'gift'?"),
    ("LR402", "promotions[0].tiers[0]", 21, 13, "unknown tier 'silvr'",
     "did you mean 'silver'?"),
    ("LR408", "promotions[1].window.end", 25, 38,
     "the window ends before (or when) it starts", None),
]


def test_one_error_lists_every_problem_of_the_program() -> None:
    """A program with shape, expression and consistency mistakes reports all 13 in one error."""
    error = program_error(BAD_PROGRAM)
    reported = sorted((d.code, format_path(d.path)) for d in error.diagnostics)
    expected = sorted(
        [(p[0], p[1]) for p in SHAPE_PROBLEMS + CONSISTENCY_PROBLEMS]
        + [(by_path(error, EXPRESSION_PROBLEM[0]).code, EXPRESSION_PROBLEM[0])]
    )
    assert reported == expected


@pytest.mark.parametrize("expected", SHAPE_PROBLEMS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_shape_problem_is_reported_where_it_was_written(expected: tuple[Any, ...]) -> None:
    """Each unknown key, wrong type, bad rate and missing key has its code, path and line:col."""
    error = program_error(BAD_PROGRAM)
    assert as_tuple(by_path(error, expected[1])) == expected


def test_expression_typo_is_reported_with_a_suggestion() -> None:
    """A misspelt field in a when: expression (txn.chanel) is located and suggests 'channel'."""
    d = by_path(program_error(BAD_PROGRAM), EXPRESSION_PROBLEM[0])
    assert (format_path(d.path), d.line, d.column, d.message, d.hint) == EXPRESSION_PROBLEM


def test_expression_problem_uses_the_expression_code_family() -> None:
    """An expression mistake carries an LR3xx code, the family _errors documents for them."""
    d = by_path(program_error(BAD_PROGRAM), EXPRESSION_PROBLEM[0])
    assert d.code.startswith("LR3"), d


@pytest.mark.parametrize("expected", CONSISTENCY_PROBLEMS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_consistency_problem_is_reported_where_it_was_written(expected: tuple[Any, ...]) -> None:
    """Each cross-reference/consistency mistake (LR4xx) has its code, path, line:col and hint."""
    error = program_error(CONSISTENCY_ONLY)
    assert as_tuple(by_path(error, expected[1])) == expected


def test_consistency_only_program_reports_exactly_its_eight_problems() -> None:
    """With shape mistakes fixed, exactly the eight LR4xx problems are reported, all at once."""
    error = program_error(CONSISTENCY_ONLY)
    assert sorted(as_tuple(d) for d in error.diagnostics) == sorted(CONSISTENCY_PROBLEMS)
    assert all(d.source == "<program>" for d in error.diagnostics)


def test_program_error_is_a_value_error() -> None:
    """ProgramError can be caught as ValueError and as LoyaltyError."""
    with pytest.raises(ValueError):
        load_program(CONSISTENCY_ONLY)
    assert issubclass(ProgramError, ValueError)
    assert issubclass(ProgramError, lr.LoyaltyError)


def test_str_of_program_error_with_several_problems() -> None:
    """str(ProgramError) is a count header, then one 'source:line:col: …' line each, in
    document order."""
    text = (META + "tiers:\n  - id: basic\n  - id: silver\n    discont: 5%\n"
            "    points_multiplier: lots\n")
    error = program_error(text)
    assert str(error) == (
        "3 problems in the program:\n"
        "  <program>:4:5: tiers[1]: tier 'silver' has no qualify: members could never reach it "
        "[LR405]\n"
        "  <program>:5:5: tiers[1].discont: unknown key 'discont' — did you mean 'discount'? "
        "[LR201]\n"
        "  <program>:6:24: tiers[1].points_multiplier: expected a factor such as 2 or 1.5 "
        "(2 = double), got 'lots' [LR203]"
    )


def test_str_of_program_error_with_one_problem() -> None:
    """With one problem, str(ProgramError) is just that diagnostic's line."""
    text = META + "tiers:\n  - id: basic\n  - id: silver\n    qualify: {spend: 1}\n" \
        "    perks: [vip]\n"
    error = program_error(text)
    assert str(error) == (
        "<program>:6:13: tiers[1].perks[0]: unknown perk 'vip' — declare it under perks: [LR403]"
    )
    assert str(error.diagnostics[0]) == str(error)


def test_a_mistake_in_the_only_tier_is_reported_once() -> None:
    """A bad rate in a program's only tier gives one diagnostic, not an extra 'empty tiers' one."""
    error = program_error(META + "tiers:\n  - {id: basic, discount: 80}\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "tiers[0].discount", 3, 27, "must be between 0 and 1 (got 80)",
         "did you mean 80% (0.8)?"),
    ]


# -- YAML 1.1 surprises do not leak ---------------------------------------------------------


def test_yaml_11_surprises_stay_strings() -> None:
    """Tier id NO, version 012 and a store code 12:30 stay the strings that were written."""
    text = (
        "program: {id: p, version: 012, currency: CNY, timezone: Asia/Shanghai}\n"
        "tiers:\n"
        "  - id: NO\n"
        "  - id: yes\n"
        "    qualify: {spend: 1}\n"
        "promotions:\n"
        "  - {id: lunch, skus: [12:30], categories: [off], bonus_points: 1}\n"
    )
    program = load_program(text)
    assert program.tier_ids == ("NO", "yes")
    assert program.version == "012"
    assert program.model.promotions[0].skus == ("12:30",)
    assert program.model.promotions[0].categories == ("off",)


def test_on_key_is_not_a_boolean() -> None:
    """The key `on:` of a birthday rule is read as the word 'on', not YAML 1.1's True."""
    program = load_program(RETAIL)
    assert program.model.birthday[0].on == "birthday"


# -- money, currency, time zone, rates -------------------------------------------------------


def test_float_money_in_a_dict_program_is_rejected() -> None:
    """A float amount (per: 100.5) in a dict program is refused with an 'amounts must be exact'
    message naming earn[0].per."""
    data = {
        "program": {"id": "p", "version": "1", "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}],
        "earn": [{"id": "base", "points": 1, "per": 100.5}],
    }
    error = program_error(data)
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "earn[0].per", None, None,
         "amounts must be exact: write 100.5 as a string or decimal, not a float", None),
    ]
    assert error.diagnostics[0].source == "<dict>"


@pytest.mark.parametrize("owner", ["tiers", "promotions"])
def test_a_float_discount_shorthand_in_a_dict_program_is_refused_as_inexact(owner: str) -> None:
    """``discount: 0.1`` is fine in YAML (read as an exact decimal); the Python float 0.1 in
    a dict program is refused as inexact, for a tier's rate and for a rule's shorthand alike
    (a rule's was refused as 'expected a mapping')."""
    data: dict[str, Any] = {
        "program": {"id": "p", "version": "1", "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}],
        "earn": [{"id": "base", "points": 1, "per": 1}],
    }
    if owner == "tiers":
        data["tiers"] = [{"id": "basic", "discount": 0.1}]
    else:
        data["promotions"] = [{"id": "p", "discount": 0.1}]
    error = program_error(data)
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", f"{owner}[0].discount", None, None,
         "amounts must be exact: write 0.1 as a string or decimal, not a float", None),
    ]
    data[owner][0]["discount"] = "0.1"
    assert load_program(data).hash == load_program(
        data | {owner: [data[owner][0] | {"discount": Decimal("0.1")}]}).hash


def test_unknown_currency_needs_minor_units() -> None:
    """A currency outside the ISO table is an error unless minor_units is given."""
    error = program_error(
        "program: {id: p, version: 1, currency: XTS, timezone: Asia/Shanghai}\n"
        "tiers: [{id: basic}]\n"
    )
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "program", 1, 10,
         "currency 'XTS' is not in the built-in ISO 4217 table; set minor_units explicitly", None),
    ]
    program = load_program(
        "program: {id: p, version: 1, currency: XTS, minor_units: 3, timezone: Asia/Shanghai}\n"
        "tiers: [{id: basic}]\n"
    )
    assert program.currency == "XTS"
    assert program.quantum == Decimal("0.001")


def test_invalid_timezone_is_an_error() -> None:
    """A time zone that is not an IANA name is reported at program.timezone."""
    error = program_error(
        "program: {id: p, version: 1, currency: CNY, timezone: Mars/Olympus}\n"
        "tiers: [{id: basic}]\n"
    )
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "program.timezone", 1, 55,
         "unknown time zone 'Mars/Olympus' (use an IANA name such as Asia/Shanghai)", None),
    ]


NOT_ZONES = [
    # in the tz database, but an abbreviation: EST has no daylight saving time, so a US
    # program written EST ran an hour off from March to November (found by helper-51)
    ("EST", "'EST' is an abbreviation, not a place's time zone",
     "did you mean America/New_York (Eastern, with daylight saving time) or America/Panama "
     "(UTC-5 all year)?"),
    ("est", "'est' is an abbreviation, not a place's time zone",
     "did you mean America/New_York (Eastern, with daylight saving time) or America/Panama "
     "(UTC-5 all year)?"),
    ("MST", "'MST' is an abbreviation, not a place's time zone",
     "did you mean America/Denver (Mountain, with daylight saving time) or America/Phoenix "
     "(UTC-7 all year)?"),
    ("localtime",
     "'localtime' is the server's own time zone, so results would change from machine to "
     "machine", "name the zone, e.g. Asia/Shanghai"),
    ("UTC-8", "'UTC-8' is a UTC offset, not an IANA time zone name",
     "did you mean Etc/GMT+8 (IANA writes UTC-8 with the sign reversed) or a city zone such "
     "as America/Los_Angeles?"),
    ("UTC+8", "'UTC+8' is a UTC offset, not an IANA time zone name",
     "did you mean Etc/GMT-8 (IANA writes UTC+8 with the sign reversed) or a city zone such "
     "as Asia/Shanghai?"),
    ("'+08:00'", "'+08:00' is a UTC offset, not an IANA time zone name",
     "did you mean Etc/GMT-8 (IANA writes UTC+8 with the sign reversed) or a city zone such "
     "as Asia/Shanghai?"),
    ("CST-8", "'CST-8' is a POSIX TZ string, not an IANA time zone name; it means UTC+8 "
     "(POSIX reverses the sign)",
     "name the zone, e.g. Asia/Shanghai for UTC+8 or America/Los_Angeles for UTC-8"),
    ("CST+8", "'CST+8' is a POSIX TZ string, not an IANA time zone name; it means UTC-8 "
     "(POSIX reverses the sign)",
     "name the zone, e.g. Asia/Shanghai for UTC+8 or America/Los_Angeles for UTC-8"),
    ("CST", "unknown time zone 'CST' (use an IANA name such as Asia/Shanghai)",
     "did you mean Asia/Shanghai (China) or America/Chicago (US Central)?"),
    ("asia/shanghai", "unknown time zone 'asia/shanghai' (use an IANA name such as "
     "Asia/Shanghai)", "did you mean 'Asia/Shanghai'?"),
    ("Tokyo", "unknown time zone 'Tokyo' (use an IANA name such as Asia/Shanghai)",
     "did you mean 'Asia/Tokyo'?"),
    ("Asia/Beijing", "unknown time zone 'Asia/Beijing' (use an IANA name such as "
     "Asia/Shanghai)", "did you mean Asia/Shanghai?"),
]


@pytest.mark.parametrize(("zone", "message", "hint"), NOT_ZONES, ids=[z[0] for z in NOT_ZONES])
def test_a_time_zone_that_is_not_an_iana_name_is_refused(zone: str, message: str,
                                                         hint: str) -> None:
    """`localtime` (the server's zone), offsets and POSIX TZ strings (whose sign dateutil
    read either way) loaded before and made results depend on the machine or on a sign
    convention; each is refused with what to write instead."""
    error = program_error(
        f"program: {{id: p, version: 1, currency: CNY, timezone: {zone}}}\ntiers: [{{id: b}}]\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "program.timezone", 1, 55, message, hint)]


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT-8", "America/New_York", "EST5EDT", "PRC"])
def test_tz_database_names_load(zone: str) -> None:
    """Every name of the tz database loads, links and fixed Etc/GMT zones included."""
    program = load_program(
        f"program: {{id: p, version: 1, currency: CNY, timezone: {zone}}}\ntiers: [{{id: b}}]\n")
    assert str(program.zone) == zone


SCHEDULE_PROBLEMS = [
    ("'FREQ=DAILY;BYHOUR=10'",
     "a schedule selects whole days, so BYHOUR cannot be used (use a window for times of day)",
     "for hours of every scheduled day, add a condition such as when: 10 <= txn.hour < 12"),
    ("'freq=weekly;byday=we;byminute=0;bysecond=0'",
     "a schedule selects whole days, so BYMINUTE and BYSECOND cannot be used (use a window "
     "for times of day)",
     "for hours of every scheduled day, add a condition such as when: 10 <= txn.hour < 12"),
    ("{bymonthday: 8}",
     "a schedule needs freq: yearly, monthly, weekly or daily (or one rrule string)", None),
    ("{freq: monthly, rrule: 'FREQ=WEEKLY'}",
     "give either an rrule string or freq (with by… fields), not both", None),
    ("{rrule: 'FREQ=MONTHLY', bymonthday: 8}",
     "bymonthday goes with freq; with an rrule string, write it inside the string", None),
]


@pytest.mark.parametrize(("schedule", "message", "hint"), SCHEDULE_PROBLEMS,
                         ids=[s[0] for s in SCHEDULE_PROBLEMS])
def test_a_schedule_says_what_is_wrong_with_it(schedule: str, message: str,
                                               hint: str | None) -> None:
    """An RRULE's BYHOUR/BYMINUTE/BYSECOND was silently ignored (the rule applied all day);
    a schedule without freq was told "not both"; by… keys beside an rrule string were
    ignored. Each is refused at the schedule, saying what is wrong."""
    error = program_error(META + "tiers: [{id: b}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: 5, schedule: {schedule}}}\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "promotions[0].schedule", 4, 40, message, hint)]


ORDINAL_HINT = "with FREQ={}, write MO for every Monday"
ALL_PARTS = ("a schedule's RRULE may have FREQ, INTERVAL, BYMONTH, BYMONTHDAY, BYDAY, BYWEEKDAY, "
             "BYSETPOS, BYYEARDAY, BYWEEKNO, WKST and BYEASTER")
RRULE_PROBLEMS = [
    # BYDAY=9MO escaped load_program as dateutil's IndexError
    ("FREQ=MONTHLY;BYDAY=9MO",
     "BYDAY=9MO: a month has at most 5 Mondays, so the number before MO is 1 to 5 (the first "
     "to the fifth) or -1 to -5 (counting from the month's end: -1 is the last)", None),
    ("FREQ=YEARLY;BYDAY=60MO",
     "BYDAY=60MO: a year has at most 53 Mondays, so the number before MO is 1 to 53 (the "
     "first to the 53rd) or -1 to -53 (counting from the year's end: -1 is the last)", None),
    ("FREQ=YEARLY;BYMONTH=2;BYDAY=6MO",
     "BYDAY=6MO: a month has at most 5 Mondays, so the number before MO is 1 to 5 (the first "
     "to the fifth) or -1 to -5 (counting from the month's end: -1 is the last)", None),
    ("FREQ=MONTHLY;BYDAY=0MO",
     "BYDAY=0MO: a month has at most 5 Mondays, so the number before MO is 1 to 5 (the first "
     "to the fifth) or -1 to -5 (counting from the month's end: -1 is the last)", None),
    # an ordinal in a weekly or daily rule was ignored: 2MO was every Monday
    ("FREQ=WEEKLY;BYDAY=1000000000MO",
     "BYDAY=1000000000MO: a number before a weekday (1000000000MO) counts Mondays within a "
     "month or a year, so it needs FREQ=MONTHLY or FREQ=YEARLY", ORDINAL_HINT.format("WEEKLY")),
    ("FREQ=DAILY;BYDAY=2MO",
     "BYDAY=2MO: a number before a weekday (2MO) counts Mondays within a month or a year, so "
     "it needs FREQ=MONTHLY or FREQ=YEARLY", ORDINAL_HINT.format("DAILY")),
    # INTERVAL=0 loaded, then working out a year's days never ended
    ("FREQ=WEEKLY;INTERVAL=0",
     "INTERVAL=0: INTERVAL is how many weeks apart the days repeat (1 = every week, 2 = every "
     "other week), a whole number of at least 1", None),
    ("FREQ=DAILY;INTERVAL=-1",
     "INTERVAL=-1: INTERVAL is how many days apart the days repeat (1 = every day, 2 = every "
     "other day), a whole number of at least 1", None),
    ("FREQ=WEEKLY;INTERVAL=2.5", "INTERVAL=2.5: '2.5' is not a whole number", None),
    # a part without "=" was told "not enough values to unpack (expected 2, got 1)"
    ("FREQ=WEEKLY;X", "the part 'X' is not NAME=VALUE",
     "an RRULE is parts such as FREQ=WEEKLY and BYDAY=MO, separated by ;"),
    ("FREQ=WEEKLY;COUNT=3", "write the window with `window:`, not UNTIL/COUNT/DTSTART", None),
    ("FREQ=WEEKLY;UNTIL=20261231",
     "write the window with `window:`, not UNTIL/COUNT/DTSTART", None),
    # BYMONTHDAY=0 loaded (and matched days); BYMONTH=13 was "no day in ten years"
    ("FREQ=MONTHLY;BYMONTHDAY=0",
     "BYMONTHDAY=0: days of the month count 1 to 31 from the start of the month or -1 to -31 "
     "from its end; 0 is not a day", None),
    ("FREQ=MONTHLY;BYMONTHDAY=99999999999999999999",
     "BYMONTHDAY=99999999999999999999: days of the month count 1 to 31 from the start of the "
     "month or -1 to -31 from its end; 0 is not a day", None),
    ("FREQ=YEARLY;BYMONTH=13", "BYMONTH=13: months are 1 to 12", None),
    ("FREQ=DAILY;BYWEEKNO=0",  # loaded, then a purchase's schedule check never ended
     "BYWEEKNO=0: weeks of the year count 1 to 53 from the start of the year or -1 to -53 from "
     "its end; 0 is not a week", None),
    ("FREQ=YEARLY;BYEASTER=99999999",  # IndexError
     "BYEASTER=99999999: BYEASTER counts days from Easter Sunday, -80 to 250 (so that the "
     "day is in Easter's own year)", None),
    # dateutil read -90 as a December day of the year before (another part of its table)
    ("FREQ=YEARLY;BYEASTER=-90",
     "BYEASTER=-90: BYEASTER counts days from Easter Sunday, -80 to 250 (so that the day is "
     "in Easter's own year)", None),
    # slow to search, and meaning little: Easter days that are two days apart from the start
    ("FREQ=DAILY;INTERVAL=2;BYEASTER=0",
     "BYEASTER picks a day of each year, so with FREQ=DAILY it takes no INTERVAL",
     "write FREQ=YEARLY;BYEASTER=… for the same days every year"),
    ("FREQ=WEEKLY;BYEASTER=0,1;BYSETPOS=1",
     "BYEASTER picks a day of each year, so with FREQ=WEEKLY it takes no INTERVAL or BYSETPOS",
     "write FREQ=YEARLY;BYEASTER=… for the same days every year"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0",
     "BYSETPOS=0: BYSETPOS picks the n-th of the days the other parts give: 1 to 366 from the "
     "first or -1 to -366 from the last; 0 is not a position", None),
    # a position no period holds took seconds (10 s for FREQ=DAILY) to be found impossible
    ("FREQ=DAILY;BYSETPOS=2",
     "BYSETPOS=2: with FREQ=DAILY, each day is a set of its own, so the only position is 1 "
     "(or -1)", None),
    ("FREQ=WEEKLY;BYDAY=MO,TU;BYSETPOS=8",
     "BYSETPOS=8: with FREQ=WEEKLY, a week has 7 days, so the position is 1 to 7 (or -1 to -7 "
     "counting from the last)", None),
    # dateutil's own words: "unknown parameter 'BYDAYS'", "invalid 'BYDAY': XX", "empty string"
    ("FREQ=WEEKLY;BYDAYS=MO",
     "unknown part 'BYDAYS': " + ALL_PARTS, "did you mean BYDAY?"),
    # a part that only began with COUNT or UNTIL was told to use `window:`
    ("FREQ=WEEKLY;COUNTRY=CN", "unknown part 'COUNTRY': " + ALL_PARTS, None),
    ("FREQ=WEEKLY;UNTILX=1", "unknown part 'UNTILX': " + ALL_PARTS, None),
    ("FREQ=WEEKLY;BYDAY=XX", "BYDAY=XX: 'XX' is not a weekday",
     "write MO, TU, WE, TH, FR, SA or SU, or 2MO for the second Monday of a month"),
    ("FREQ=WEEKLY;FREQ=DAILY", "FREQ is given twice; give each part once", None),
    ("BYDAY=MO", "an RRULE needs FREQ=YEARLY, MONTHLY, WEEKLY or DAILY (it is missing)", None),
    ("FREQ=FORTNIGHTLY",
     "an RRULE needs FREQ=YEARLY, MONTHLY, WEEKLY or DAILY (got 'FORTNIGHTLY')", None),
    ("FREQ=WEEKLY;WKST=XX",
     "WKST=XX: WKST is the day weeks start on: MO, TU, WE, TH, FR, SA or SU", None),
]


@pytest.mark.parametrize(("rrule", "message", "hint"), RRULE_PROBLEMS,
                         ids=[r[0] for r in RRULE_PROBLEMS])
def test_an_rrule_says_which_part_is_wrong(rrule: str, message: str, hint: str | None) -> None:
    """Every part of an RRULE string is checked at load and a wrong one is named in plain
    words at the schedule: before, dateutil's IndexError escaped load_program, ordinals in
    weekly rules were ignored, INTERVAL=0 made evaluation hang, and messages were Python's."""
    error = program_error(META + "tiers: [{id: b}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: 5, schedule: '{rrule}'}}\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "promotions[0].schedule", 4, 40, message, hint)]


@pytest.mark.parametrize(("schedule", "message"), [
    ("{freq: daily, bysetpos: 2}", "bysetpos 2: with freq daily, each day is a set of its own, "
     "so the only position is 1 (or -1)"),
    ("{freq: monthly, byweekday: MO, bysetpos: [1, -32]}",
     "bysetpos 1, -32: with freq monthly, a month has at most 31 days, so the position is 1 to "
     "31 (or -1 to -31 counting from the last)"),
    ("{freq: monthly, byweekday: MO, bysetpos: 0}",
     "bysetpos picks the n-th of the days the other keys give: 1…366 from the first or -1…-366 "
     "from the last; 0 is not a position"),
])
def test_a_bysetpos_no_period_holds_is_refused_at_once(schedule: str, message: str) -> None:
    """`bysetpos: 2` with `freq: daily` picks nothing, and took 10 s to be found impossible
    (dateutil searched every day up to the year 9999); it is refused at once."""
    started = time.perf_counter()
    error = program_error(META + "tiers: [{id: b}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: 5, schedule: {schedule}}}\n")
    assert time.perf_counter() - started < 1
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "promotions[0].schedule", 4, 40, message, None)]


@pytest.mark.parametrize("rrule", [
    "RRULE:FREQ=MONTHLY;BYDAY=-1FR", "freq=monthly;byday=fr(-1)", " FREQ = WEEKLY ; byday = we ",
    "FREQ=WEEKLY;BYDAY=WE;", "FREQ=WEEKLY;BYWEEKDAY=WE", "FREQ=YEARLY;BYDAY=53MO",
    "FREQ=YEARLY;BYEASTER=0", "FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=-1",
    "FREQ=WEEKLY;INTERVAL=99999999999999999999999", "FREQ=YEARLY;BYEASTER=-63",
    "FREQ=YEARLY;BYEASTER=-80,250", "FREQ=DAILY;BYEASTER=1;BYSETPOS=-1",
    "FREQ=WEEKLY;BYEASTER=0;WKST=SU", "FREQ=YEARLY;BYDAY=MO;BYSETPOS=" + "1," * 20000 + "-1",
], ids=lambda rrule: rrule if len(rrule) < 60 else rrule[:40] + "…")
def test_rrule_strings_that_loaded_still_load(rrule: str) -> None:
    """The forms dateutil read (its MO(+1) and BYWEEKDAY, any case, BYEASTER within its
    year) still load, and so do a trailing ; and spaces around parts. (A BYSETPOS repeated
    20,000 times took two seconds a year of days: repeats are dropped.)"""
    program = load_program(META + "tiers: [{id: b}]\npromotions:\n"
                           f"  - {{id: p, bonus_points: 5, schedule: '{rrule}'}}\n")
    member = {"id": "m", "tier": "b"}
    txn = {"id": "T", "at": "2026-03-27T10:00:00+08:00",
           "items": [{"sku": "s", "category": "c", "amount": "10"}]}
    lr.evaluate(program, member, txn)  # (INTERVAL=0 used to hang here)


def test_an_rrule_selects_the_days_dateutil_gave_it() -> None:
    """Read part by part, an RRULE selects what dateutil's own reading selected."""
    from dateutil.rrule import rrule as make_rule
    from dateutil.rrule import rrulestr

    from loyaltyrules._calendar import rrule_parts

    start, until = datetime(2000, 1, 1), datetime(2010, 1, 1)
    for text in ["FREQ=MONTHLY;BYDAY=-1FR", "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
                 "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU;WKST=SU", "FREQ=MONTHLY;BYMONTHDAY=8,-1",
                 "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "FREQ=DAILY;BYMONTH=2;BYYEARDAY=40",
                 "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "FREQ=YEARLY;BYEASTER=-2",
                 "FREQ=MONTHLY;BYDAY=FR(+2)", "FREQ=YEARLY;BYYEARDAY=-1,100"]:
        freq, parts = rrule_parts(text)
        ours = make_rule(freq, dtstart=start, until=until, **parts)
        theirs = rrulestr(text, dtstart=start).replace(until=until)
        assert list(ours) == list(theirs), text


NEVER = ["FREQ=DAILY;BYYEARDAY=1;BYWEEKNO=20", "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30",
         "FREQ=DAILY;INTERVAL=7;BYDAY=TU", "{freq: daily, bymonth: 2, bymonthday: 30}",
         "{freq: daily, interval: 14, byweekday: [MO], start: 2026-01-01}",
         # Easter Sunday is never a Monday, nor in January: 6 s and 2 s to refuse
         "FREQ=DAILY;BYEASTER=0;BYDAY=MO", "FREQ=WEEKLY;BYEASTER=1;BYMONTH=1"]


@pytest.mark.parametrize("schedule", NEVER)
def test_a_schedule_that_selects_no_day_is_refused_within_a_second(schedule: str) -> None:
    """dateutil searches for a first day up to the year 9999 whatever the bound, so a
    schedule of no day (2026-01-01 is a Thursday, never a Tuesday seven days on) took 0.5–3 s
    to refuse here; asked 400·k years later, where the calendar is the same, it takes a
    tenth of a second."""
    written = schedule if schedule.startswith("{") else f"'{schedule}'"
    started = time.perf_counter()
    error = program_error(META + "tiers: [{id: b}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: 5, schedule: {written}}}\n")
    assert time.perf_counter() - started < 1.5
    assert [d.message for d in error.diagnostics] == [
        "this schedule selects no day in ten years (e.g. 30 February)"]


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(freq=st.sampled_from(["yearly", "monthly", "weekly", "daily"]),
       interval=st.integers(1, 40),
       bymonth=st.none() | st.lists(st.integers(1, 12), min_size=1, max_size=3),
       bymonthday=st.none() | st.lists(st.integers(-31, 31).filter(bool), min_size=1,
                                        max_size=3),
       byweekday=st.none() | st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA",
                                                       "SU"]), min_size=1, max_size=3),
       start=st.dates(date(1900, 1, 1), date(8999, 12, 31)))
def test_a_schedule_repeats_every_400_years(freq: str, interval: int, bymonth: list[int] | None,
                                          bymonthday: list[int] | None,
                                          byweekday: list[str] | None, start: date) -> None:
    """The load check asks whether a schedule selects a day of its first ten years of the
    same schedule started 400·k years later; that holds only if the days are the same,
    moved by 400·k years. (Schedules that select no day are left out: their original
    search is the slow one; the examples above are refused.)"""
    from loyaltyrules._model import Schedule

    rule = Schedule.model_construct(
        freq=freq, interval=interval, bymonth=bymonth, bymonthday=bymonthday,
        byweekday=byweekday, bysetpos=None, rrule=None, start=start).build()
    begin = datetime(start.year, start.month, start.day)
    shift = (9988 - start.year) // 400 * 400
    later = begin.replace(year=begin.year + shift)
    moved = rule.replace(dtstart=later).between(later, later + timedelta(days=3653), inc=True)
    assume(moved)
    days = rule.between(begin, begin + timedelta(days=3653), inc=True)
    assert [d.replace(year=d.year + shift) for d in days] == moved


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(freq=st.sampled_from(["DAILY", "WEEKLY"]),
       easter=st.lists(st.integers(-80, 250), min_size=1, max_size=3),
       extra=st.sampled_from(["", ";BYDAY=SU", ";BYDAY=MO,SU", ";BYMONTH=3,4", ";BYMONTHDAY=1,-1",
                              ";BYWEEKNO=12,13,14;WKST=SU", ";BYYEARDAY=90,100", ";BYSETPOS=1"]),
       start=st.dates(date(1900, 1, 1), date(2200, 12, 31)))
def test_a_daily_or_weekly_easter_rule_selects_its_own_days(
        freq: str, easter: list[int], extra: str, start: date) -> None:
    """A daily or weekly rule with BYEASTER is built as the yearly rule of its parts (its
    parts only filter each year's days): the days are dateutil's own daily ones. (Its
    weekly rule misses an Easter day of early January in a week begun in December, which
    it reads with the December's year: BYEASTER=-77 missed 6 January 2008.)"""
    from dateutil.rrule import DAILY
    from dateutil.rrule import rrule as make_rule

    from loyaltyrules._calendar import rrule_parts
    from loyaltyrules._model import Schedule

    if freq == "WEEKLY" and "BYSETPOS" in extra:
        extra = ""  # refused (tested above)
    text = f"FREQ={freq};BYEASTER={','.join(map(str, easter))}{extra}"
    begin = datetime(start.year, start.month, start.day)
    end = begin + timedelta(days=3653)
    ours = Schedule.model_construct(rrule=text, start=start).build().between(begin, end, inc=True)
    assume(ours)  # (a rule of no day: dateutil's own search would run to the year 9999)
    _, parts = rrule_parts(text.replace("WEEKLY", "DAILY"))
    theirs = make_rule(DAILY, dtstart=begin, cache=False, **parts).between(begin, end, inc=True)
    assert ours == theirs


@pytest.mark.parametrize("schedule", [
    "{freq: daily, interval: 3, start: 2001-03-05}",
    "{freq: weekly, interval: 2, byweekday: [SA, SU], start: 2026-01-03}",
    "{freq: monthly, byweekday: FR, bysetpos: -1}", "{freq: yearly, bymonth: 2, bymonthday: 29}",
    "'FREQ=YEARLY;BYWEEKNO=1,53;BYDAY=MO;WKST=SU'", "'FREQ=YEARLY;BYEASTER=-2'",
    "{freq: monthly, interval: 7, bymonthday: 31, start: 2003-01-31}",
    "{freq: yearly, interval: 3, start: 2000-02-29}", "'FREQ=DAILY;INTERVAL=4;BYMONTH=2'",
    # moved to 2403-12-31, its first week (from the start, as dateutil counts it) picked
    # Friday 2 January 2404 as the week's first day, though Monday 29 December was
    "{freq: weekly, byweekday: [mo, fr], bysetpos: 1, start: 2003-12-31}",
])
def test_a_purchase_centuries_on_meets_the_schedule_s_own_days(schedule: str) -> None:
    """A schedule's days of a year are worked out from a start moved on by whole repeats
    (dateutil walks every period from the start: a daily schedule took 4 s for a purchase
    in 8999); the days are dateutil's own, walked from the start, in leap centuries and not,
    for intervals that 400 years are not a whole number of (every other week: 20,871
    weeks)."""
    program = load_program(META + "tiers: [{id: b}]\npromotions:\n"
                           f"  - {{id: p, bonus_points: 5, schedule: {schedule}}}\n")
    days = program.plan().rules[0].days
    assert days is not None
    rule = days.schedule.build()  # dateutil's own, walked from the schedule's start
    for year in (2401, 2404, 2500, 2800, 3001):
        first, last = datetime(year, 1, 1), datetime(year, 12, 31)
        expected = {d.date() for d in rule.between(first, last, inc=True)}
        assert {d for d in _days_of(first.date(), last.date()) if d in days} == expected
    started = time.perf_counter()
    lr.evaluate(program, {"id": "m", "tier": "b"},
                {"id": "T", "at": "8999-04-05T10:00:00+08:00",
                 "items": [{"sku": "s", "category": "c", "amount": "10"}]})
    assert time.perf_counter() - started < 2  # (0.1 s; 4 s before, for the daily one)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(schedule=st.sampled_from([
           {"freq": "monthly", "bymonthday": [1]}, {"freq": "yearly", "bymonth": [1, 7]},
           {"freq": "weekly", "interval": 2, "byweekday": ["MO"], "start": date(2001, 1, 1)},
           {"freq": "monthly", "byweekday": ["FR"], "bysetpos": [-1]},
           {"rrule": "FREQ=YEARLY;BYEASTER=1"}, {"freq": "daily", "interval": 45}]),
       first=st.dates(date(2000, 1, 1), date(2040, 12, 31)), days=st.integers(0, 1200))
def test_review_days_are_the_schedule_s_own(schedule: dict[str, Any], first: date,
                                           days: int) -> None:
    """Review days come from the schedule's days of each year, worked out once: asked on
    every purchase of a member, dateutil's walk from the start took 1.6 ms (a monthly
    review from 2000, in 2026). They are the days dateutil gives, in (first, last]."""
    from loyaltyrules._lifecycle import _review_days
    from loyaltyrules._model import Schedule

    program = load_program(META + "tiers: [{id: b}, {id: g, qualify: {spend: 100}}]\n"
                           "reviews: {schedule: " + json.dumps(schedule, default=str) + "}\n")
    last = first + timedelta(days=days)
    rule = Schedule.model_validate(schedule).build()
    expected = [d.date() for d in rule.between(datetime(first.year, first.month, first.day),
                                               datetime(last.year, last.month, last.day),
                                               inc=True) if d.date() > first]
    member = lr.MemberState(id="m", tier="b")
    assert _review_days(program.model, member, first, last) == expected


def _days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


CALENDAR_PROBLEMS = [
    ("window: {start: 0001-01-01}", "promotions[0].window.start", 46,
     "must be from 1900-01-01 to 8999-12-31 (got 0001-01-01)"),
    ("window: {start: 9999-12-31}", "promotions[0].window.start", 46,
     "must be from 1900-01-01 to 8999-12-31 (got 9999-12-31)"),
    ("window: {start: '0001-01-01T00:00+14:00'}", "promotions[0].window.start", 46,
     "must be from 1900-01-01 to 8999-12-31 (got 0001-01-01T00:00:00+14:00)"),
    ("window: {end: 9999-12-30}", "promotions[0].window.end", 44,
     "must be from 1900-01-01 to 8999-12-31, or 9999-12-31 for no end (got 9999-12-30)"),
    ("schedule: {freq: daily, start: 9995-01-01}", "promotions[0].schedule.start", 61,
     "must be from 1900-01-01 to 8999-12-31 (got 9995-01-01)"),
]


@pytest.mark.parametrize(("written", "where", "column", "message"), CALENDAR_PROBLEMS,
                         ids=[c[0] for c in CALENDAR_PROBLEMS])
def test_window_and_schedule_dates_outside_the_accepted_years_are_refused(
        written: str, where: str, column: int, message: str) -> None:
    """A window starting in year 1 or ending 9999-12-30 loaded, then `loyaltyrules check`
    crashed (OverflowError) and every purchase was refused; such dates are refused at load,
    with the years transactions accept (a date-only end 9999-12-31 still means no end)."""
    error = program_error(META + "tiers: [{id: b}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: 5, {written}}}\n")
    assert [as_tuple(d) for d in error.diagnostics] == [("LR203", where, 4, column, message, None)]


def test_windows_and_schedules_may_reach_the_edges_of_the_calendar() -> None:
    """1900-01-01 … 8999-12-31 load, a date-only end 9999-12-31 is a window without end, and
    a schedule may start on 29 February (its ten-year look-ahead used to fail on it)."""
    program = load_program(META + "tiers: [{id: b}]\npromotions:\n"
                           "  - {id: p, bonus_points: 5, window: {start: 1900-01-01, "
                           "end: 8999-12-31}}\n"
                           "  - {id: q, bonus_points: 5, window: {end: 9999-12-31}}\n"
                           "  - {id: r, bonus_points: 5, schedule: {freq: yearly, "
                           "start: 2024-02-29}}\n")
    window = program.model.promotions[1].window
    assert window is not None and window.bounds(program.zone) == (None, None)


NEW_YORK = "program: {id: p, version: 1, currency: USD, timezone: America/New_York}\n"


@pytest.mark.parametrize(("end", "message"), [
    ("2026-03-08T03:15", "the window ends before it starts: start 2026-03-08T02:30:00 is a time "
     "the clocks skip in America/New_York (they go forward 1:00 that night), so it resolves to "
     "2026-03-08T03:30:00-04:00 (07:30:00 UTC), after end 2026-03-08T03:15:00-04:00 "
     "(07:15:00 UTC)"),
    ("2026-03-08T03:30", "the window ends when it starts: start 2026-03-08T02:30:00 is a time "
     "the clocks skip in America/New_York (they go forward 1:00 that night), so it resolves to "
     "2026-03-08T03:30:00-04:00 (07:30:00 UTC), at end 2026-03-08T03:30:00-04:00 "
     "(07:30:00 UTC)"),
], ids=["end-before", "end-at"])
def test_a_window_from_a_skipped_local_time_that_resolves_after_its_end_is_lr408(
        end: str, message: str) -> None:
    """New York skips 02:00–03:00 on 8 March 2026: a window written 02:30–03:15 (or 03:30)
    resolves to 07:30Z–07:15Z (07:30Z) and could never match (before, it loaded: the two
    times were compared as written, not as instants)."""
    error = program_error(NEW_YORK + "tiers: [{id: b}]\npromotions:\n"
                          "  - {id: flash, bonus_points: 5, window: "
                          f"{{start: \"2026-03-08T02:30\", end: \"{end}\"}}}}\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR408", "promotions[0].window.end", 4, 75, message,
         "write times the clocks show that day")]


def test_a_window_across_the_skipped_hour_loads_and_matches_from_its_start() -> None:
    """02:30–03:45 on 8 March 2026 in New York resolves to 03:30–03:45 EDT (the clocks skip
    02:30): it loads, and a purchase at 03:40 EDT gets its bonus."""
    program = load_program(NEW_YORK + "tiers: [{id: b}]\npromotions:\n"
                           "  - {id: flash, bonus_points: 5, window: "
                           "{start: \"2026-03-08T02:30\", end: \"2026-03-08T03:45\"}}\n")
    decisions = [lr.evaluate(program, {"id": "m"}, {
        "id": "t", "at": at, "items": [{"sku": "a", "amount": "10"}]}).rules_fired
        for at in ("2026-03-08T03:25:00-04:00", "2026-03-08T03:40:00-04:00")]
    assert decisions == [(), ("flash",)]


@pytest.mark.parametrize(
    ("written", "rate"),
    [("8折", Decimal("0.20")), ("9.5折", Decimal("0.05")), ("20%", Decimal("0.20")),
     ("0.2", Decimal("0.20")), ("10折", Decimal("0")), ("100%", Decimal("1"))],
)
def test_rate_notations(written: str, rate: Decimal) -> None:
    """Discounts in 折, percent or fraction notation parse to the fraction taken off."""
    program = load_program(META + f"tiers:\n  - {{id: basic, discount: {written}}}\n")
    assert program.tiers[0].discount == rate


def test_rate_out_of_range_hints_at_a_percentage() -> None:
    """discount: 80 is out of range and hints 'did you mean 80% (0.8)?'."""
    error = program_error(
        META + "tiers:\n  - id: basic\n  - id: gold\n    qualify: {spend: 1}\n    discount: 80\n"
    )
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "tiers[1].discount", 6, 15, "must be between 0 and 1 (got 80)",
         "did you mean 80% (0.8)?"),
    ]


@pytest.mark.parametrize(("field", "written", "said"), [
    ("discount", "九折", "expected a rate such as 20%, 0.2 or 8折, got '九折'"),
    ("discount", "10 percent", "expected a rate such as 20%, 0.2 or 8折, got '10 percent'"),
    ("points_multiplier", "200%", "expected a factor such as 2 or 1.5 (2 = double), got "
                                  "'200%' — did you mean 2?"),
    ("points_multiplier", "1.5x", "expected a factor such as 2 or 1.5 (2 = double), got "
                                  "'1.5x' — did you mean 1.5?"),
    ("points_multiplier", "2倍", "expected a factor such as 2 or 1.5 (2 = double), got '2倍' "
                                "— did you mean 2?"),
])
def test_a_rate_or_factor_that_is_no_number_says_what_it_expects(
        field: str, written: str, said: str) -> None:
    """Both said "expected an amount such as 12.50", which is neither (found by helper-51)."""
    error = program_error(META + f"tiers:\n  - {{id: basic, {field}: {written}}}\n")
    assert [str(d).split(": ", 2)[2].removesuffix(" [LR203]") for d in error.diagnostics] == [
        said]


@pytest.mark.parametrize(("body", "path", "said"), [
    ("reviews: {schedule: {freq: yearly}, keep: {until: end_of_next_year, months: 6}}\n",
     "reviews.keep", "give either until or months: with both, months would be ignored"),
    ("promotions:\n  - {id: p, discount: {threshold: 300, off: 50, max_repeats: 3}}\n",
     "promotions[0].discount", "max_repeats limits repeat: true, and this reduction does not "
     "repeat — add repeat: true, or remove max_repeats"),
    ("signals:\n  - {id: s, on: first_purchase, days: 30}\n", "signals[0]",
     "signal first_purchase does not use days; only birthday_in, points_expiring, "
     "no_purchase, new_member_idle do"),
    ("signals:\n  - {id: s, on: no_purchase, days: 30, spend: 500}\n", "signals[0]",
     "signal no_purchase does not use spend; only tier_gap does"),
    ("signals:\n  - {id: s, on: tier_gap, points: 50, days: 7}\n", "signals[0]",
     "signal tier_gap does not use days; only birthday_in, points_expiring, no_purchase, "
     "new_member_idle do"),
])
def test_a_setting_that_would_be_ignored_is_refused(body: str, path: str, said: str) -> None:
    """Each loaded and did nothing (keep used until and dropped months; a reduction that
    does not repeat has no repeats to limit; signals read only their own settings): nothing
    a designer writes is silently ignored (found by helper-51)."""
    error = program_error(META + "tiers: [{id: basic}, {id: gold, qualify: {spend: 100}}]\n"
                          + body)
    assert [(format_path(d.path), str(d).split(": ", 2)[2].removesuffix(" [LR203]"))
            for d in error.diagnostics] == [(path, said)]


@pytest.mark.parametrize(("written", "said"), [
    ("1e400", "expected a whole number below 10^15 (got 1E+400)"),
    ("1000000000000000", "expected a whole number below 10^15 (got 1000000000000000)"),
    (".inf", "expected a whole number (got '.inf')"),
    ("2.5", "expected a whole number (got 2.5)"),
])
def test_whole_numbers_are_bounded_as_amounts_are(written: str, said: str) -> None:
    """`bonus_points: 1e400` loaded: 10^400 points reached balances and lint quoted all 400
    digits (found by helper-51). Whole numbers are below 10^15, as amounts of money are."""
    error = program_error(META + "tiers: [{id: basic}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: {written}}}\n")
    assert [d.message for d in error.diagnostics] == [said]
    assert load_program(META + "tiers: [{id: basic}]\npromotions:\n"
                        "  - {id: p, bonus_points: 999999999999999}\n").model.promotions[
        0].bonus_points == 10**15 - 1


@pytest.mark.parametrize(("written", "said"), [
    ("1e999999", "number 1e999999 is too large"),
    ("1e-999999999", "number 1e-999999999 is too small"),
    ("0e999999", "number 0e999999 has an exponent beyond ±1000"),
    ("0." + "0" * 99 + "1", "number 0.000000000000000000... is too long (more than 100 "
                            "characters)"),
])
def test_a_number_the_reader_will_not_parse_says_why(written: str, said: str) -> None:
    """1e-999999999 was "too large" (LR111): an exponent beyond ±1000 either way, or a
    number longer than 100 characters, is refused before it is parsed, each in its words."""
    error = program_error(META + f"tiers: [{{id: basic, discount: {written}}}]\n")
    assert [(d.code, d.message) for d in error.diagnostics] == [("LR111", said)]


@pytest.mark.parametrize(("written", "said"), [
    ("2026/03/01", "not a valid date or date-time: '2026/03/01' (write it as 2026-03-01, or "
                   "2026-03-01T10:00 with a time)"),
    ("2026-1-1", "not a valid date or date-time: '2026-1-1' (write it as 2026-03-01, or "
                 "2026-03-01T10:00 with a time)"),
    ("2026-02-29", "not a valid date or date-time: '2026-02-29' (2026-02 has 28 days)"),
    ("2026-13-01", "not a valid date or date-time: '2026-13-01' (there is no month 13)"),
    ("2026-02-30T10:00", "not a valid date or date-time: '2026-02-30T10:00' (2026-02 has 28 "
                         "days)"),
    ("2026-01-01T25:00", "not a valid date or date-time: '2026-01-01T25:00' (there is no hour "
                         "25: a day's hours are 00 to 23)"),
    ("2026-01-01T00:00+8", "not a valid date or date-time: '2026-01-01T00:00+8' (a UTC offset "
                           "is written with hours and minutes, such as +08:00)"),
    ("２０２６-01-01", "not a valid date or date-time: '２０２６-01-01' (write it in ASCII: "
                   "2026-01-01)"),
    ("2026-02-00", "not a valid date or date-time: '2026-02-00' (there is no day 0)"),
    ("0000-01-01", "not a valid date or date-time: '0000-01-01' (there is no year 0)"),
])
def test_a_window_date_that_is_no_date_says_why(written: str, said: str) -> None:
    """It said only "not a valid date or date-time" (found by helper-51), then Python's
    words ("day is out of range for month", "Invalid isoformat string"): now the library's
    (found by helper-95)."""
    error = program_error(META + "tiers: [{id: basic}]\npromotions:\n"
                          f"  - {{id: p, bonus_points: 1, window: {{start: '{written}'}}}}\n")
    assert [d.message for d in error.diagnostics] == [said]


@pytest.mark.parametrize(("written", "hint"), [
    ("{spend: 10,000}", "inside { } a comma separates entries: write 10000, without the "
                        "thousands comma"),
    ("{spend: 1,500}", "inside { } a comma separates entries: write 1500, without the "
                       "thousands comma"),
    ("{spend: 1000, 100: 5}", None),  # (a key with a value of its own is no comma's)
])
def test_a_thousands_comma_in_a_flow_mapping_is_explained(written: str,
                                                          hint: str | None) -> None:
    """`{spend: 10,000}` is spend 10 and a key 000 in YAML: it said only "unknown key
    '000'" (found by helper-51); the number is the one written (helper-54)."""
    error = program_error(META + f"tiers: [{{id: basic}}, {{id: gold, qualify: {written}}}]\n")
    [d] = error.diagnostics
    assert d.hint == hint


@pytest.mark.parametrize(("body", "hint"), [
    ("promotions:\n  - {id: p, bonus_points: 1, if: \"txn.amount > 5\"}\n",
     "did you mean 'when'?"),
    ("promotions:\n  - {id: p, bonus_points: 1, window: {from: 2026-01-01}}\n",
     "did you mean 'start'?"),
    ("promotions:\n  - {id: p, bonus_points: 1, window: {start: 2026-01-01, until: "
     "2026-02-01}}\n", "did you mean 'end'?"),
    ("promotions:\n  - {id: p, bonus_points: 1, schedule: {freq: MONTHLY, bymonthday: 8}}\n",
     "did you mean 'monthly'?"),
    ("policies: {rounding: {money: ROUND_HALF_UP}}\n", "did you mean 'half_up'?"),
])
def test_other_words_for_a_key_or_choice_get_a_suggestion(body: str, hint: str) -> None:
    """`if:` for `when`, `from`/`until` for `start`/`end`, `MONTHLY`, `ROUND_HALF_UP` got no
    suggestion: they are no near spelling of the word (found by helper-51)."""
    [d] = program_error(META + "tiers: [{id: basic}]\n" + body).diagnostics
    assert d.hint == hint


def test_a_full_width_percent_sign_is_a_percent_sign() -> None:
    """`10％`, as a Chinese input method writes it, is 10% (full-width digits already were)."""
    program = load_program(META + "tiers:\n  - {id: basic, discount: 10％}\n")
    assert program.model.tiers[0].discount == Decimal("0.1")


@pytest.mark.parametrize("written", ["NaN%", "sNaN%", "-NaN%", "1e999999999%", "1e2%"])
def test_a_percentage_that_is_not_a_plain_number_is_a_program_error(written: str) -> None:
    """`NaN%` and `1e999999999%` crashed the loader with Python's decimal.InvalidOperation
    and Overflow (an "internal error" from the command line)."""
    error = program_error(META + f'tiers:\n  - {{id: basic, discount: "{written}"}}\n')
    assert [as_tuple(d)[:2] + as_tuple(d)[4:5] for d in error.diagnostics] == [
        ("LR203", "tiers[0].discount",
         f"expected a percentage such as 20%, got {written!r}")]


@pytest.mark.parametrize(("condition", "read"), [
    ("txn.amount >= 100", "txn.amount"), ("len(items) > 1", "items"),
    ("txn.quantity > 0 and txn.channel == 'app'", "txn.quantity"),
    ("event.type == 'review' and has_sku('X')", "has_sku(…)"),
    ("amount_in('beauty') > 0", "amount_in(…)"),
    ("has_category('review')", "has_category(…)"),
    ("txn.tax > 0 or amount_in('x') > 0", "txn.tax")])
def test_a_behaviour_condition_cannot_read_a_purchase(condition: str, read: str) -> None:
    """A check-in has no transaction: such a condition loaded and was never true (the event
    was read as an empty basket). Refused at its place; member, tier, today and event load."""
    error = program_error(META + "tiers: [{id: basic}]\nbehaviours:\n"
                          f'  - {{id: b, event: review, points: 5, when: "{condition}"}}\n')
    assert [as_tuple(d)[:4] for d in error.diagnostics] == [("LR301", "behaviours[0].when", 4, 45)]
    assert error.diagnostics[0].message.startswith(
        f"{read} reads a purchase, and a behaviour event is not one")
    program = load_program(
        META + "tiers: [{id: basic}]\nbehaviours:\n  - {id: b, event: review, points: 5, "
        'when: "event.attrs.photo == True and member.orders > 0 and tier == \'basic\'"}\n')
    assert program.model.behaviours[0].when is not None


def test_a_behaviour_condition_reads_the_events_channel_moment_and_type() -> None:
    """The event's id, channel and moment are read through txn as before the purchase-only
    names were refused."""
    program = load_program(
        META + "tiers: [{id: basic}]\nbehaviours:\n  - {id: b, event: review, points: 5, "
        'when: "txn.channel == \'app\' and txn.at.hour < 12 and txn.weekday == 6 and '
        'txn.id != \'\'"}\n')
    member = {"id": "m1", "tier": "basic"}
    morning = {"type": "review", "id": "e1", "at": "2026-12-05T09:00:00+08:00",
               "channel": "app"}
    assert lr.behaviour(program, member, morning).points_change == 5
    for other in ({"at": "2026-12-05T13:00:00+08:00"}, {"channel": "web"},
                  {"at": "2026-12-04T09:00:00+08:00"}):
        assert lr.behaviour(program, member, {**morning, **other}).points_change == 0


def test_a_lone_surrogate_is_a_program_error_not_a_unicode_error() -> None:
    """A lone surrogate in a program's text made load_program raise UnicodeEncodeError from
    the content hash; from YAML it is LR101 with a position, from a dict LR203 at its path."""
    error = program_error(META.replace("}", ', name: "\\ud800"}') + "tiers: [{id: b}]\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR101", "program.name", 1, 76,
         "\\ud800 on its own is not a character (it is half of a UTF-16 surrogate pair)",
         "write the character itself, or a \\U0001F600-style escape")]
    data = {"program": {"id": "p", "version": "1", "currency": "CNY",
                        "timezone": "Asia/Shanghai", "name": "\ud800"},
            "tiers": [{"id": "b"}]}
    assert [as_tuple(d) for d in program_error(data).diagnostics] == [
        ("LR203", "program.name", None, None,
         "\\ud800 on its own is not a character (it is half of a UTF-16 surrogate pair)",
         None)]


@pytest.mark.parametrize(("written", "column", "hint"), [
    ("8", 27, "did you mean 8折 (pays 80%, 20% off) or 8% off (0.08)?"),
    ("9.5", 27, "did you mean 9.5折 (pays 95%, 5% off) or 9.5% off (0.095)?"),
    ("'8'", 27, "did you mean 8折 (pays 80%, 20% off) or 8% off (0.08)?"),
    ("10", 27, "did you mean 10% (0.1)?"),
])
def test_a_bare_discount_up_to_ten_hints_at_zhe_as_well(written: str, column: int,
                                                       hint: str) -> None:
    """`discount: 8` was hinted only as "8% (0.08)", but a designer writing 8 or 9.5 usually
    means 8折 / 9.5折: the hint offers both (10折 is nothing off, so 10 hints a percentage)."""
    error = program_error(META + f"tiers: [{{id: b, discount: {written}}}]\n"
                          f"promotions: [{{id: p, discount: {written}}}]\n")
    value = written.strip("'")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "tiers[0].discount", 2, column,
         f"must be between 0 and 1 (got {value})", hint),
        ("LR203", "promotions[0].discount", 3, 32,
         f"must be between 0 and 1 (got {value})", hint),
    ]


def test_program_amounts_finer_than_the_currency_are_refused() -> None:
    """In JPY, `off: 100.7` was silently rounded to 101 at every purchase and `amount: 0.4`
    made every purchase say "discount would be 0": an amount with more decimals than the
    currency allows is refused at load, as it is in a transaction (100.00 is fine)."""
    error = program_error("""\
program: {id: p, version: 1, currency: JPY, timezone: Asia/Tokyo}
tiers:
  - {id: b}
  - {id: g, qualify: {spend: 1000.5}, retain: {spend: 500.00}}
promotions:
  - {id: p1, discount: {threshold: 300, off: 100.7}}
  - {id: p2, discount: {amount: 0.4}, min_amount: 99.9}
rewards:
  - {id: r, points: 10, value: 1.5}
signals:
  - {id: s, on: tier_gap, spend: 0.5}
""")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "tiers[1].qualify.spend", 4, 30, "1000.5 has more decimals than JPY allows",
         None),
        ("LR203", "promotions[0].discount.off", 6, 46, "100.7 has more decimals than JPY allows",
         None),
        ("LR203", "promotions[1].discount.amount", 7, 33,
         "0.4 has more decimals than JPY allows", None),
        ("LR203", "promotions[1].min_amount", 7, 51, "99.9 has more decimals than JPY allows",
         None),
        ("LR203", "rewards[0].value", 9, 32, "1.5 has more decimals than JPY allows", None),
        ("LR203", "signals[0].spend", 11, 34, "0.5 has more decimals than JPY allows", None),
    ]


@pytest.mark.parametrize(("gifting", "message"), [
    ("{minimum: 100, maximum: 10}",
     "maximum (10) is smaller than minimum (100): every gift would be refused"),
    ("{minimum: 100, monthly_limit: 50}",
     "monthly_limit (50) is smaller than minimum (100): every gift would be refused"),
])
def test_gifting_that_refuses_every_gift_does_not_load(gifting: str, message: str) -> None:
    """`gifting: {minimum: 100, maximum: 10}` loaded, and then every gift was refused."""
    error = program_error(META + f"tiers: [{{id: b}}]\ngifting: {gifting}\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", "gifting", 3, 10, message, None)]


PLAIN_WORDS = [
    ("tiers: [{id: 普通}]", "tiers[0].id", 2, 14,
     "ids are letters, digits, _ . - (not starting with . or -) (got '普通')",
     "write Chinese and other text in name:, and a Latin id such as gold"),
    ("tiers: [{id: " + "x" * 70 + "}]", "tiers[0].id", 2, 14,
     "must be at most 64 characters long (got 70)", None),
    ("tiers: []", "tiers", 2, 8, "must not be empty", None),
    ("tiers: [{id: b, perks: 1.5}]", "tiers[0].perks", 2, 24, "expected a list (got 1.5)", None),
    ("tiers: [{id: b}]\npromotions: [{id: p, bonus_points: 5, window: '2026'}]",
     "promotions[0].window", 3, 47,
     "expected a mapping such as {start: 2026-11-11, end: 2026-11-11} (got '2026')", None),
    ("tiers: [{id: b}]\npromotions: [{id: p, bonus_points: 2.5}]",
     "promotions[0].bonus_points", 3, 36, "expected a whole number (got 2.5)", None),
    ("tiers: [{id: b}]\npromotions: [{id: p, bonus_points: 0}]",
     "promotions[0].bonus_points", 3, 36, "must be at least 1 (got 0)", None),
    ("tiers: [{id: b}]\nearn: [{id: e, points: 1, blocks: ful}]", "earn[0].blocks", 3, 35,
     "must be 'full' or 'proportional' (got 'ful')", "did you mean 'full'?"),
    ("tiers: [{id: b}]\npromotions: [{id: p, bonus_points: 1, categories: ['']}]",
     "promotions[0].categories[0]", 3, 52, "must not be empty", None),
]


@pytest.mark.parametrize(("written", "where", "line", "column", "message", "hint"),
                         PLAIN_WORDS, ids=[p[1] + ":" + p[4][:20] for p in PLAIN_WORDS])
def test_shape_mistakes_are_told_in_plain_words(written: str, where: str, line: int,
                                                column: int, message: str,
                                                hint: str | None) -> None:
    """The validation library's words ("String should match pattern '^[A-Za-z0-9_]…'",
    "Input should be a valid tuple", "Tuple should have at least 1 item after validation",
    "Value should have at most 64 items", "Input should be a valid dictionary or instance of
    Window", "got Decimal('2.5')") reached designers as they were; they are said plainly."""
    error = program_error(META + written + "\n")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR203", where, line, column, message, hint)]


# -- YAML-level and file errors --------------------------------------------------------------


def test_duplicate_yaml_keys_are_an_error() -> None:
    """A key written twice in one mapping is LR108 at the second occurrence."""
    text = META + "tiers:\n  - id: basic\n    discount: 5%\n    discount: 10%\n"
    error = program_error(text)
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR108", "tiers[0].discount", 5, 5, "duplicate key 'discount' (first defined at line 4)",
         None),
    ]


def test_missing_file_is_lr001(tmp_path: Path) -> None:
    """A program file that does not exist gives ProgramError LR001 naming the file."""
    missing = tmp_path / "nope.yaml"
    for source in (missing, str(missing)):
        error = program_error(source)
        assert [as_tuple(d) for d in error.diagnostics] == [
            ("LR001", "(top level)", None, None,
             "cannot read the program: No such file or directory", None),
        ]
        assert error.diagnostics[0].source == str(missing)
        assert str(error) == (
            f"{missing}: (top level): cannot read the program: No such file or directory [LR001]"
        )


def test_a_missing_path_without_a_yaml_ending_is_said_to_be_missing() -> None:
    """"programs/shop" (no such file, no .yaml ending) is read as YAML text, one word: it is
    reported as the missing file it most likely is (found by helper-57: it was LR200, "a
    program is a mapping of sections"). A bare word with no / or . is still LR200."""
    error = program_error("programs/shop")
    assert [(d.code, d.source) for d in error.diagnostics] == [("LR001", "programs/shop")]
    assert str(error) == (
        "programs/shop: (top level): cannot read the program: no such file (a str is a path "
        "when it names an existing regular file or ends in .yaml, .yml or .json; otherwise it is "
        "read as YAML text, and this text is no program) [LR001]")
    assert [d.code for d in program_error("shop").diagnostics] == ["LR200"]


def test_file_diagnostics_name_the_file(tmp_path: Path) -> None:
    """Problems in a program file carry the file's path as their source."""
    path = tmp_path / "shop.yaml"
    path.write_text(CONSISTENCY_ONLY, encoding="utf-8")
    error = program_error(path)
    assert {d.source for d in error.diagnostics} == {str(path)}
    assert str(error).splitlines()[1].startswith(f"  {path}:")


@pytest.mark.parametrize(("yaml_text", "where", "message"), [
    (META + "tiers: [{id: basic}]\n"
     "promotions: [{id: daily, bonus_points: 5, limit: {times: 1, per: day}}]\n"
     "behaviours: [{id: daily, event: check_in, points: 2, limit: {times: 1, per: day}}]\n",
     ("behaviours", 0, "id"),
     "duplicate rule id 'daily' (also promotions[0]); rule ids must be unique across earn, "
     "multipliers, birthday, promotions and behaviours"),
    (META + "tiers: [{id: basic}]\n"
     "promotions: [{id: gifting, bonus_points: 5, limit: {times: 3, per: month}}]\n",
     ("promotions", 0, "id"),
     "rule id 'gifting' is reserved: members' gifting limits are kept under it"),
])
def test_rules_that_would_share_a_usage_limit_are_refused(
        yaml_text: str, where: tuple[str | int, ...], message: str) -> None:
    """A member's use of a limited rule is counted under the rule's id (gifting's under
    `gifting`): a behaviour and a promotion both named `daily` would use up each other's daily
    limit, so the program does not load."""
    with pytest.raises(lr.ProgramError) as caught:
        lr.load_program(yaml_text)
    assert [(d.code, d.path, d.message) for d in caught.value.diagnostics] == [
        ("LR401", where, message)]


def test_duplicate_reward_signal_and_invariant_ids_are_refused() -> None:
    """Two rewards, signals or invariants of one id loaded silently (the second reward could
    never be redeemed by id); each is LR401 at the second id, like tiers and perks."""
    error = program_error(META + """tiers: [{id: b}]
rewards:
  - {id: mug, points: 100}
  - {id: mug, points: 200}
signals:
  - {id: lapse, on: no_purchase, days: 90}
  - {id: lapse, on: no_purchase, days: 180}
invariants:
  - {id: sane, expect: decision.points_total >= 0}
  - {id: sane, expect: decision.total_discount >= 0}
""")
    assert [as_tuple(d) for d in error.diagnostics] == [
        ("LR401", "rewards[1].id", 5, 10, "duplicate id 'mug' (also rewards[0])", None),
        ("LR401", "signals[1].id", 8, 10, "duplicate id 'lapse' (also signals[0])", None),
        ("LR401", "invariants[1].id", 11, 10, "duplicate id 'sane' (also invariants[0])", None),
    ]


TWO_TIERS = META + "tiers: [{id: basic}, {id: gold, qualify: {spend: 100}}]\nperks: [{id: gift}]\n"


@pytest.mark.parametrize(("extra", "where", "message"), [
    ("promotions: [{id: p1, tiers: glod, bonus_points: 5}]\n", ("promotions", 0, "tiers"),
     "unknown tier 'glod'"),
    ("rewards: [{id: r, points: 10, tiers: [glod]}]\n", ("rewards", 0, "tiers", 0),
     "unknown tier 'glod'"),
    ("behaviours: [{id: b, event: x, points: 1, tiers: [glod]}]\n",
     ("behaviours", 0, "tiers", 0), "unknown tier 'glod'"),
    ("gifting: {minimum: 1, maximum: 10, monthly_limit: 10, tiers: [glod]}\n",
     ("gifting", "tiers", 0), "unknown tier 'glod'"),
    ("rewards: [{id: r, points: 10, perk: gfit}]\n", ("rewards", 0, "perk"),
     "unknown perk 'gfit'"),
])
def test_every_tier_and_perk_reference_is_checked(
        extra: str, where: tuple[str | int, ...], message: str) -> None:
    """A misspelt tier is refused wherever a program names tiers, as a list or one bare id
    (before, `tiers: glod` and the tiers of rewards, behaviours and gifting loaded unchecked,
    and the rule silently never applied)."""
    with pytest.raises(lr.ProgramError) as caught:
        lr.load_program(TWO_TIERS + extra)
    assert [(d.code[:5], d.path, d.message) for d in caught.value.diagnostics] == [
        ("LR402" if "tier" in message else "LR403", where, message)]


def test_a_tier_may_name_one_perk_bare() -> None:
    """`perks: gift` is read as `[gift]` and checked as one perk (before, each letter was
    reported as an unknown perk); a misspelt one is one LR403."""
    gold = lr.load_program(TWO_TIERS.replace("qualify: {spend: 100}}",
                                             "qualify: {spend: 100}, perks: gift}"))
    assert gold.model.tiers[1].perks == ("gift",)
    with pytest.raises(lr.ProgramError) as caught:
        lr.load_program(TWO_TIERS.replace("qualify: {spend: 100}}",
                                          "qualify: {spend: 100}, perks: gfit}"))
    assert [(d.code, d.path, d.message) for d in caught.value.diagnostics] == [
        ("LR403", ("tiers", 1, "perks"), "unknown perk 'gfit'")]


@pytest.mark.parametrize(("when", "where", "message"), [
    ("promotions: [{id: p, bonus_points: 5, when: \"tier == 'glod'\"}]\n",
     ("promotions", 0, "when"), "unknown tier 'glod' in the condition"),
    ("promotions: [{id: p, bonus_points: 5, when: \"member.tier in ['gold', 'dimond']\"}]\n",
     ("promotions", 0, "when"), "unknown tier 'dimond' in the condition"),
])
def test_a_tier_named_in_a_condition_is_checked(
        when: str, where: tuple[str | int, ...], message: str) -> None:
    """`tier == 'glod'` never holds, so the rule would silently never apply: a tier compared
    in a condition is checked against `tiers:` as one in a `tiers:` list is (LR402)."""
    with pytest.raises(lr.ProgramError) as caught:
        lr.load_program(TWO_TIERS + when)
    assert [(d.code, d.path, d.message) for d in caught.value.diagnostics] == [
        ("LR402", where, message)]
    lr.load_program(TWO_TIERS + when.replace("glod", "gold").replace("dimond", "basic"))


def test_a_program_may_be_given_as_utf8_bytes_and_nothing_else_unexpected() -> None:
    """Bytes are YAML text (as read from a file or a request body) and load like the text;
    None, a number or a list is a TypeError saying what load_program takes (before: an
    AttributeError or a TypeError from deep inside)."""
    text = META + "tiers: [{id: basic}]\n"
    assert lr.load_program(text.encode("utf-8")).hash == lr.load_program(text).hash
    for wrong in (None, 5, []):
        with pytest.raises(TypeError) as caught:
            lr.load_program(wrong)  # type: ignore[arg-type]
        assert str(caught.value) == ("load_program takes a path, YAML text or a mapping, got "
                                     f"{type(wrong).__name__}")


REVIEWED = META + "reviews: {schedule: {freq: monthly, bymonthday: 1}}\n"


@pytest.mark.parametrize(("tier", "read", "col"), [
    ("{id: gold, qualify: {spend: 100}, retain: {when: \"txn.channel == 'app'\"}}",
     "txn.channel", 54),
    ('{id: gold, qualify: {spend: 100}, retain: {when: "len(items) > 0 and tier == \'gold\'"}}',
     "items", 54),
])
def test_a_retain_condition_cannot_read_a_purchase(tier: str, read: str, col: int) -> None:
    """retain is judged at reviews, where there is no purchase: `txn.channel == 'app'` loaded,
    linted clean and moved every member of the tier down at the next review."""
    error = program_error(REVIEWED + f"tiers:\n  - {{id: basic}}\n  - {tier}\n")
    assert [as_tuple(d)[:4] for d in error.diagnostics] == [("LR410", "tiers[1].retain.when",
                                                             5, col)]
    assert error.diagnostics[0].message == (
        f"{read} reads a purchase, and retain is judged at reviews, where there is none (its "
        "amount is 0, its channel empty)")


def test_under_reviews_a_qualify_condition_reading_a_purchase_needs_a_retain() -> None:
    """A tier without retain is kept by its qualify at each review, judged with no purchase:
    `txn.amount > 5` moved every member down. With a retain, or without reviews (a qualify
    is then judged only at purchases), it loads; the review's own moment may be read."""
    tiers = "tiers:\n  - {id: basic}\n  - {id: gold, qualify: {when: \"txn.amount > 5\"}%s}\n"
    error = program_error(REVIEWED + tiers % "")
    assert [as_tuple(d)[:4] for d in error.diagnostics] == [("LR410", "tiers[1].qualify.when",
                                                             5, 32)]
    assert error.diagnostics[0].message == (
        "txn.amount reads a purchase, and reviews judge tier 'gold' by its qualify (it has no "
        "retain) with none: every member would be judged on an empty purchase")
    assert error.diagnostics[0].hint == ("give the tier a retain: with what it takes to stay, "
                                         "judged on the member")
    load_program(REVIEWED + tiers % ", retain: {spend: 100}")
    load_program(META + tiers % "")
    # a member alone can meet it at a review another way (helper-97: refused at first)
    load_program(REVIEWED + "tiers:\n  - {id: basic}\n  - {id: gold, qualify: {when: "
                 '"txn.amount >= 5000 or member.qualifying_spend >= 20000"}}\n')
    load_program(REVIEWED + "tiers:\n  - {id: basic}\n  - {id: gold, qualify: {spend: 100, "
                 'when: "txn.amount >= 5000", match: any}}\n')
    for needs in ("(txn.amount > 5 or txn.channel == 'app') and member.orders > 1",
                  "txn.amount > 5 or len(items) > 2"):
        assert [d.code for d in program_error(
            REVIEWED + f'tiers:\n  - {{id: basic}}\n  - {{id: gold, qualify: {{when: "{needs}"}}}}'
            "\n").diagnostics] == ["LR410"]
    load_program(REVIEWED + "tiers:\n  - {id: basic}\n  - {id: gold, qualify: {when: "
                 '"txn.date.month == 3 and txn.weekday < 6 and member.orders > 2"}}\n')


@pytest.mark.parametrize(("written", "field", "col", "hint"), [
    ("channels: [app，store]", "channels[0]", 49, "write ',' (and a space), not '，'"),
    ("categories: [bakery、pastry]", "categories[0]", 54, "write ',' (and a space), not '、'"),
    ("channels: [app, web，store]", "channels[1]", 54, "write ',' (and a space), not '，'"),
])
def test_a_full_width_comma_in_a_list_is_refused_at_it(written: str, field: str, col: int,
                                                      hint: str) -> None:
    """`[app，store]` is one channel, `app，store`, to YAML: it loaded, linted clean and never
    matched (the same comma in `{...}` was refused already)."""
    error = program_error(META + "tiers: [{id: basic}]\nmultipliers:\n"
                          f"  - {{id: app-bonus, factor: 1.25, {written}}}\n")
    assert [as_tuple(d)[:4] for d in error.diagnostics] == [
        ("LR100", f"multipliers[0].{field}", 4, col)]
    assert error.diagnostics[0].message == \
        "YAML separates the values of [...] with an ASCII comma"
    assert error.diagnostics[0].hint == f"{hint}; a name that holds one is written in quotes"


def test_a_name_that_holds_a_comma_is_written_in_quotes() -> None:
    program = load_program(META + "tiers: [{id: basic}]\nmultipliers:\n"
                           "  - {id: drinks, factor: 2, "
                           'categories: ["饮料，酒水", "beer, wine"]}\n')
    assert program.model.multipliers[0].categories == ("饮料，酒水", "beer, wine")


@pytest.mark.parametrize(("written", "meant"), [("【app】", "[app]"),
                                               ("【app，web】", "[app, web]")])
def test_full_width_brackets_are_no_list(written: str, meant: str) -> None:
    """Where a list of names goes; a name written 【会员日】 is a name (helper-97 found the
    first version refusing it anywhere)."""
    error = program_error(META + "tiers: [{id: basic}]\nmultipliers:\n"
                          f"  - {{id: app-bonus, factor: 1.25, channels: {written}}}\n")
    assert [(as_tuple(d)[:4], d.message) for d in error.diagnostics] == [
        (("LR203", "multipliers[0].channels", 4, 45),
         f"{written!r} is one name to YAML, brackets and all; a list is written in ASCII "
         f"brackets: {meant}")]
    program = load_program(META + "tiers: [{id: basic}]\npromotions:\n"
                           "  - {id: m, name: 【会员日】, bonus_points: 5}\n")
    assert program.model.promotions[0].name is not None


@pytest.mark.parametrize(("written", "meant"), [
    ("bakery, pastry", "[bakery, pastry]"), ("bakery，pastry", "[bakery, pastry]"),
    ("a、b、c", "[a, b, c]")])
def test_names_with_commas_outside_brackets_are_refused_with_the_list_meant(
        written: str, meant: str) -> None:
    """`categories: bakery, pastry` loaded as the one category 'bakery, pastry'."""
    error = program_error(META + "tiers: [{id: basic}]\nmultipliers:\n  - id: m\n"
                          f"    factor: 2\n    categories: {written}\n")
    assert [as_tuple(d)[:4] for d in error.diagnostics] == [
        ("LR203", "multipliers[0].categories", 6, 17)]
    assert error.diagnostics[0].message == (
        f"{written!r} is one name to YAML, commas and all; a list is written {meant} (and a "
        f'name that holds a comma as ["{written}"])')


@pytest.mark.parametrize(("space", "name"), [("\u00a0", "a non-breaking space (U+00A0)"),
                                             ("\u3000", "a full-width space (U+3000)")])
def test_an_odd_space_after_a_keys_colon_is_named_at_its_place(space: str, name: str) -> None:
    """`discount:` then a non-breaking space was "could not find expected ':'" on the next
    line: YAML reads no space there, so the key runs on into its value."""
    error = program_error(META + "tiers:\n  - id: basic\n  - id: gold\n"
                          f"    discount:{space}9.5折\n    qualify: {{spend: 100}}\n")
    assert [as_tuple(d)[:4] for d in error.diagnostics] == [("LR100", "(top level)", 5, 14)]
    assert error.diagnostics[0].message == (
        f"the space after 'discount:' is {name}, which YAML does not read as a space")
    assert error.diagnostics[0].hint == "write discount: 9.5折 (an ordinary space after the colon)"


def test_a_byte_that_is_not_utf8_is_placed_in_characters_as_an_editor_counts() -> None:
    """The column counted bytes: 普通会员普通会员 (24 bytes, 8 characters) put the bad byte
    at column 47 where an editor shows 31."""
    text = (META + "tiers:\n  - {id: basic, name: 普通会员普通会员").encode() + b"\xe9}\n"
    with pytest.raises(ProgramError) as refused:
        load_program(text)
    assert [as_tuple(d)[:4] for d in refused.value.diagnostics] == [
        ("LR101", "(top level)", 3, 31)]
    with pytest.raises(ProgramError) as utf16:
        load_program((META + "tiers: [{id: basic}]\n").encode("utf-16"))
    assert utf16.value.diagnostics[0].message == "the file is UTF-16, not UTF-8"


@pytest.mark.parametrize(("written", "said"), [
    ("95折", "'95折': a 折 discount is more than 0 and at most 10 (what the customer pays, in "
     "tenths) — did you mean 9.5折?"),
    ("88折", "'88折': a 折 discount is more than 0 and at most 10 (what the customer pays, in "
     "tenths) — did you mean 8.8折?"),
    ("0折", "'0折': a 折 discount is more than 0 and at most 10 (what the customer pays, in "
     "tenths)"),
])
def test_a_zhe_discount_out_of_range_suggests_what_shops_mean(written: str, said: str) -> None:
    """95折 and 88折 are how shops write 9.5折 and 8.8折; 0折 was "between 0 and 10"."""
    error = program_error(META + f"tiers:\n  - {{id: basic, discount: {written}}}\n")
    assert [(d.code, d.message + (f" — {d.hint}" if d.hint else ""))
            for d in error.diagnostics] == [("LR203", said)]


def test_a_currency_name_suggests_its_code() -> None:
    error = program_error("program: {id: p, version: 1, currency: RMB, timezone: "
                          "Asia/Shanghai}\ntiers: [{id: basic}]\n")
    assert [(d.code, d.message, d.hint) for d in error.diagnostics] == [
        ("LR203", "currency 'RMB' is not an ISO 4217 code", "did you mean CNY?")]


def test_a_tier_discount_written_as_a_promotions_mapping_says_the_rate_form() -> None:
    """It said "expected an amount such as 12.50, got {percent: '9.5折'}"."""
    error = program_error(META + "tiers:\n  - {id: basic, discount: {percent: 9.5折}}\n")
    assert [(d.code, d.message, d.hint) for d in error.diagnostics] == [
        ("LR203", "a tier's discount is one rate off the purchase, such as 9.5折, 5% or 0.05, "
                  "not a mapping", "write discount: 9.5折")]


@pytest.mark.parametrize(("written", "key", "hint"), [
    ("{spend：20000}", "spend：20000",
     "write spend: 20000 (an ASCII colon and a space), not the full-width '：'"),
    ("{spend:20000}", "spend:20000",
     "write spend: 20000 (an ASCII colon and a space), not ':' with no space"),
])
def test_a_key_run_into_its_value_inside_braces_says_how_to_write_it(
        written: str, key: str, hint: str) -> None:
    """`{spend：20000}` was "unknown key 'spend：20000' — did you mean 'spend'?"."""
    error = program_error(META + f"tiers:\n  - {{id: basic}}\n  - {{id: gold, qualify: "
                          f"{written}}}\n")
    assert [(d.code, d.message, d.hint) for d in error.diagnostics] == [
        ("LR201", f"unknown key {key!r}", hint)]


def test_a_key_in_full_width_letters_is_named() -> None:
    error = program_error(META + "tiers:\n  - {id: basic, ｄｉｓｃｏｕｎｔ: 9折}\n")
    assert [(d.code, d.hint) for d in error.diagnostics] == [
        ("LR201", "did you mean 'discount'? (written here in full-width letters)")]


def test_a_section_with_every_item_commented_out_is_empty() -> None:
    """`promotions:` with every promotion commented out was "expected a list (got null)"."""
    emptied = load_program(META + "tiers: [{id: basic}]\npromotions:\n"
                           "#  - {id: x, bonus_points: 5}\nearn:\n")
    plain = load_program(META + "tiers: [{id: basic}]\n")
    assert emptied.model.promotions == emptied.model.earn == ()
    assert emptied.ref == plain.ref  # the same program, the same hash


def test_a_comment_glued_to_its_value_says_the_space_it_needs() -> None:
    """`discount: 9.5折# pays 95%` quoted the whole comment as the value and said no more."""
    error = program_error(META + "tiers:\n  - id: basic\n    discount: 9.5折# pays 95%\n")
    assert [(d.code, d.hint) for d in error.diagnostics] == [
        ("LR203", "a comment starts with a space before its #: write 9.5折 # pays 95%")]
    assert load_program(META + "tiers:\n  - {id: basic, name: C#-club}\n").model.tiers[0].name
    for written in ("C#", "'9.5折#'", "vip#1"):  # (no comment: no hint, helper-97)
        refused = program_error(META + f"tiers:\n  - id: {written}\n")
        assert [d.hint for d in refused.diagnostics if "comment" in (d.hint or "")] == []


@pytest.mark.parametrize(("written", "sign", "what"), [
    ("*双倍积分*", "*", "an alias (a reference to an &anchor)"),
    ("*VIP*", "*", "an alias (a reference to an &anchor)"),
    ("&双倍", "&", "an anchor (a name for a value, for *alias to repeat)"),
])
def test_a_name_starting_with_a_star_says_yaml_reads_an_alias(written: str, sign: str,
                                                              what: str) -> None:
    """`name: *双倍积分*` was PyYAML's "expected alphabetic or numeric character, but found
    '双'"."""
    error = program_error(META + f"tiers:\n  - id: basic\n    name: {written}\n")
    assert [(as_tuple(d)[:4], d.message, d.hint) for d in error.diagnostics] == [
        (("LR100", "(top level)", 4, 11), f"a value that starts with {sign} is {what} to YAML",
         f'put the value in quotes: "{sign}…"')]


def test_a_list_item_without_its_dash_is_said_at_its_id() -> None:
    """An item whose "- " was left out ran on into the one before: "duplicate key" for each
    of its keys, and no word of the dash."""
    error = program_error(META + "tiers:\n  - id: basic\n    name: a\n    id: gold\n"
                          "    qualify: {spend: 100}\n")
    assert [(as_tuple(d)[:4], d.hint) for d in error.diagnostics] == [
        (("LR108", "tiers[0].id", 5, 5),
         "if this starts another item of the list, begin it with '- '")]


def test_a_schedule_written_as_a_window_says_where_it_belongs() -> None:
    """`window: {freq: weekly}` was "unknown key 'freq'" and no more (helper-95)."""
    error = program_error(META + "tiers: [{id: basic}]\npromotions:\n"
                          "  - {id: x, bonus_points: 5, window: {freq: weekly}}\n")
    assert [(d.code, d.message, d.hint) for d in error.diagnostics] == [
        ("LR201", "unknown key 'freq'", "freq belongs under schedule: (a window is start and "
                                        "end)")]


def test_a_number_where_text_goes_is_said_with_its_quotes() -> None:
    """`id: 2026.10` was "expected text (got 2026.10)" and no more (helper-95)."""
    error = program_error(META + "tiers: [{id: 2026.10}]\n")
    assert [(d.code, d.message, d.hint) for d in error.diagnostics] == [
        ("LR203", "expected text (got 2026.10)",
         "YAML reads it as a number: put it in quotes to keep it as written")]
    # (not where quotes would not help: a time zone is a name such as Asia/Shanghai;
    # helper-99)
    zone = program_error("program: {id: p, version: 1, currency: CNY, timezone: 8}\n"
                         "tiers: [{id: basic}]\n")
    assert [d.hint for d in zone.diagnostics if "quotes" in (d.hint or "")] == []


@pytest.mark.parametrize("rule", ["FREQ=WEEKLY,BYDAY=WE", "FREQ=WEEKLY；BYDAY=WE"])
def test_rrule_parts_run_together_say_the_separator(rule: str) -> None:
    """`WEEKLY,BYDAY=WE` was taken for FREQ's value, with no word of ';' (helper-95)."""
    error = program_error(META + "tiers: [{id: basic}]\npromotions:\n"
                          f'  - {{id: x, bonus_points: 5, schedule: "{rule}"}}\n')
    assert [(d.code, d.hint) for d in error.diagnostics] == [
        ("LR203", "an RRULE separates its parts with ';': FREQ=WEEKLY;BYDAY=WE")]


def test_full_width_digits_where_a_number_goes_are_said_in_ascii() -> None:
    """`bymonthday: ８` was "expected a whole number (got '８')" and no more (helper-95)."""
    error = program_error(META + "tiers: [{id: basic}]\npromotions:\n"
                          "  - {id: x, bonus_points: 5, schedule: {freq: monthly, "
                          "bymonthday: ８}}\n")
    assert [(d.code, d.message, d.hint) for d in error.diagnostics] == [
        ("LR203", "expected a whole number (got '８')", "write it in ASCII: 8")]


def test_the_newest_hints_fire_only_where_they_help() -> None:
    """helper-99: a reward's window has no schedule to move freq to; `5%#gold members` is a
    glued comment too; the first tier's retain reading a purchase is LR410 (LR404 is of
    qualify only); 【app】 inside [...] is a list in full-width brackets."""
    reward = program_error(META + "tiers: [{id: basic}]\nrewards: [{id: drink, points: 200, "
                           "window: {start: 2026-01-01, freq: weekly}}]\n")
    assert [(d.code, d.hint) for d in reward.diagnostics] == [("LR201", None)]
    glued = program_error(META + "tiers:\n  - id: basic\n    discount: 5%#gold members\n")
    assert [d.hint for d in glued.diagnostics] == [
        "a comment starts with a space before its #: write 5% #gold members"]
    first = program_error(META + "tiers: [{id: basic, retain: {when: \"txn.channel == 'app'\"}}]"
                          "\n")
    assert [d.code for d in first.diagnostics] == ["LR410"]
    inside = program_error(META + "tiers: [{id: basic}]\nmultipliers:\n"
                           "  - {id: a, factor: 2, channels: [【app】]}\n")
    assert [(d.code, d.message, d.hint) for d in inside.diagnostics] == [
        ("LR100", "a list in full-width brackets inside [...]",
         "write [app], in ASCII brackets alone")]
