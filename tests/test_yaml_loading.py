"""Tests for loyaltyrules._yaml: safe loading, YAML 1.1 surprises avoided, positions kept."""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from loyaltyrules._errors import Diagnostic, ProgramError
from loyaltyrules._yaml import (
    _DIFFERENT,
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_SOURCE_BYTES,
    Position,
    SourceMap,
    _compose,
    _Converter,
    _FastComposer,
    _syntax_error,
    load_yaml,
)


def load(text: str | bytes, source: str = "shop.yaml") -> Any:
    value, _ = load_yaml(text, source=source)
    return value


def error_of(text: str | bytes, source: str = "shop.yaml") -> ProgramError:
    with pytest.raises(ProgramError) as info:
        load_yaml(text, source=source)
    return info.value


def only_diagnostic(text: str | bytes, source: str = "shop.yaml") -> Diagnostic:
    error = error_of(text, source)
    assert len(error.diagnostics) == 1, error.diagnostics
    return error.diagnostics[0]


def billion_laughs() -> str:
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, 10):
        refs = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def nested_lists(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# -- values ---------------------------------------------------------------------------------


def test_chinese_text_round_trips() -> None:
    """Non-ASCII text such as tier names comes back exactly as written."""
    assert load("name: 金卡\n会员: 银卡\n") == {"name": "金卡", "会员": "银卡"}


def test_decimal_is_exact() -> None:
    """A written decimal becomes the exact Decimal of its text, never a float."""
    value = load("rate: 0.1\n")
    assert value["rate"] == Decimal("0.1")
    assert type(value["rate"]) is Decimal


def test_decimal_forms_keep_their_text() -> None:
    """Every decimal spelling becomes a Decimal built from the literal text."""
    value = load("a: -2.50\nb: .5\nc: 1e3\nd: 1.5E-2\ne: +0.0\n")
    assert value == {
        "a": Decimal("-2.50"),
        "b": Decimal(".5"),
        "c": Decimal("1e3"),
        "d": Decimal("1.5E-2"),
        "e": Decimal("+0.0"),
    }
    assert str(value["a"]) == "-2.50"
    assert all(type(v) is Decimal for v in value.values())


def test_no_floats_are_ever_produced() -> None:
    """Float-looking specials (.inf, .nan) and odd spellings stay strings, not floats."""
    value = load("a: .inf\nb: -.inf\nc: .nan\nd: 1.\ne: 0123e4\n")
    assert value == {"a": ".inf", "b": "-.inf", "c": ".nan", "d": "1.", "e": "0123e4"}


def test_integers_are_plain_decimal_digits() -> None:
    """Plain decimal integers (with optional sign) become int."""
    assert load("a: 0\nb: 42\nc: -7\nd: +3\n") == {"a": 0, "b": 42, "c": -7, "d": 3}
    assert type(load("a: 42\n")["a"]) is int


def test_norway_and_yes_stay_strings() -> None:
    """YAML 1.1 booleans such as NO, yes, on, off, y, n stay strings."""
    value = load("country: NO\na: yes\nb: on\nc: off\nd: y\ne: n\nf: No\ng: YES\n")
    assert value == {
        "country": "NO",
        "a": "yes",
        "b": "on",
        "c": "off",
        "d": "y",
        "e": "n",
        "f": "No",
        "g": "YES",
    }


def test_only_true_and_false_are_booleans() -> None:
    """true/false in the three usual casings are the only booleans."""
    value = load("a: true\nb: True\nc: TRUE\nd: false\ne: False\nf: FALSE\ng: tRUE\n")
    assert value == {
        "a": True,
        "b": True,
        "c": True,
        "d": False,
        "e": False,
        "f": False,
        "g": "tRUE",
    }


def test_leading_zero_stays_string() -> None:
    """A code with a leading zero such as 012 keeps its zero (no octal, no int)."""
    assert load("code: 012\n") == {"code": "012"}


def test_hex_and_underscore_numbers_stay_strings() -> None:
    """0x1F and 1_000 are not numbers in a program, so they stay strings."""
    assert load("a: 0x1F\nb: 1_000\nc: 0o17\n") == {"a": "0x1F", "b": "1_000", "c": "0o17"}


def test_sexagesimal_time_stays_string() -> None:
    """12:30 stays the string "12:30" instead of YAML 1.1's base-60 integer 750."""
    assert load("opens: 12:30\n") == {"opens": "12:30"}


def test_dates_and_timestamps_stay_strings() -> None:
    """Dates and timestamps stay strings so the model validates them."""
    value = load("start: 2026-01-08\nat: 2026-01-08T10:00:00+08:00\nd: 2026-01-08 10:00:00\n")
    assert value == {
        "start": "2026-01-08",
        "at": "2026-01-08T10:00:00+08:00",
        "d": "2026-01-08 10:00:00",
    }


def test_null_spellings() -> None:
    """null, Null, NULL, ~ and an empty value are None; other spellings are strings."""
    value = load("a: null\nb: Null\nc: NULL\nd: ~\ne:\nf: nUll\n")
    assert value == {"a": None, "b": None, "c": None, "d": None, "e": None, "f": "nUll"}


def test_quoted_and_block_scalars_are_strings() -> None:
    """Quoted and block scalars are always strings, whatever they look like."""
    value = load("a: '1'\nb: \"true\"\nc: 'null'\nd: |\n  42\ne: >\n  0.1\n")
    assert value == {"a": "1", "b": "true", "c": "null", "d": "42\n", "e": "0.1\n"}


def test_mapping_keys_are_strings() -> None:
    """Every mapping key becomes its written text, so 2026 and true are string keys."""
    value = load("2026: a\ntrue: b\n0.10: c\nnull: d\n")
    assert value == {"2026": "a", "true": "b", "0.10": "c", "null": "d"}


def test_collections_become_dict_and_list_in_order() -> None:
    """Mappings become insertion-ordered dicts and sequences become lists."""
    value = load("z: 1\na: [1, two, {x: 3}]\nm: 2\n")
    assert value == {"z": 1, "a": [1, "two", {"x": 3}], "m": 2}
    assert list(value) == ["z", "a", "m"]


def test_aliases_expand_to_equal_values() -> None:
    """A small alias is expanded into an equal value at each use."""
    value = load("base: &b {rate: 0.1}\ngold: *b\n")
    assert value == {"base": {"rate": Decimal("0.1")}, "gold": {"rate": Decimal("0.1")}}


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_any_integer_round_trips(number: int) -> None:
    """Any plainly written integer loads as the same int."""
    assert load(f"n: {number}\n") == {"n": number}


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
    )
)
def test_any_decimal_round_trips_exactly(number: Decimal) -> None:
    """Any decimal written with a point loads as the exact same Decimal, digits included."""
    text = f"{number:f}"
    if "." not in text:
        text += ".0"
    value = load(f"n: {text}\n")["n"]
    assert type(value) is Decimal
    assert str(value) == text


# -- tags -----------------------------------------------------------------------------------


def test_explicit_standard_tags_are_allowed() -> None:
    """Explicit standard tags work: !!str keeps 012 as text, !!int/!!float give numbers."""
    value = load("a: !!str 012\nb: !!int 5\nc: !!float 1\nd: !!bool true\ne: !!null ~\n")
    assert value == {"a": "012", "b": 5, "c": Decimal("1"), "d": True, "e": None}
    assert load("a: !!map {x: 1}\nb: !!seq [1]\n") == {"a": {"x": 1}, "b": [1]}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a: !!python/object/apply:os.system ['echo hi']\n", "!!python/object/apply:os.system"),
        ("a: !!python/name:os.system ''\n", "!!python/name:os.system"),
        ("a: !custom 1\n", "!custom"),
        ("a: !!set {x: null}\n", "!!set"),
        ("a: !!binary aGk=\n", "!!binary"),
    ],
)
def test_other_tags_are_refused(text: str, shown: str) -> None:
    """Any non-standard tag (python/..., custom, set, binary) is refused with LR110."""
    diagnostic = only_diagnostic(text)
    assert diagnostic.code == "LR110"
    assert diagnostic.message == f"tag {shown} is not allowed"
    assert (diagnostic.line, diagnostic.column, diagnostic.path) == (1, 4, ("a",))


def test_standard_tag_with_invalid_value_is_refused() -> None:
    """A standard tag on a value it cannot describe (!!int 012, !!bool yes) is refused."""
    error = error_of("a: !!int 012\nb: !!bool yes\nc: !!str {x: 1}\n")
    assert [d.code for d in error.diagnostics] == ["LR110", "LR110", "LR110"]
    assert [d.path for d in error.diagnostics] == [("a",), ("b",), ("c",)]


# -- mapping keys ---------------------------------------------------------------------------


DUPLICATE = "tiers:\n  - name: silver\n  - name: gold\n    discount: 0.1\n    discount: 0.2\n"


def test_duplicate_key_is_refused_at_second_key() -> None:
    """A repeated key is refused at the second key, naming the first one's line."""
    diagnostic = only_diagnostic(DUPLICATE)
    assert diagnostic.code == "LR108"
    assert diagnostic.message == "duplicate key 'discount' (first defined at line 4)"
    assert (diagnostic.line, diagnostic.column) == (5, 5)
    assert diagnostic.path == ("tiers", 1, "discount")


def test_diagnostic_str_format() -> None:
    """A diagnostic renders as file:line:column: path: message [code]."""
    diagnostic = only_diagnostic(DUPLICATE)
    assert str(diagnostic) == (
        "shop.yaml:5:5: tiers[1].discount: duplicate key 'discount' "
        "(first defined at line 4) [LR108]"
    )
    assert str(error_of(DUPLICATE)) == str(diagnostic)


def test_merge_key_is_refused() -> None:
    """The YAML merge key << is refused so every key is written out."""
    diagnostic = only_diagnostic("base: &b {x: 1}\ngold:\n  <<: *b\n  y: 2\n")
    assert diagnostic.code == "LR109"
    assert diagnostic.message == "merge keys (<<) are not supported; write the keys out"
    assert (diagnostic.line, diagnostic.column) == (3, 3)


def test_collection_key_is_refused() -> None:
    """A mapping key that is itself a list or mapping is refused with LR107."""
    diagnostic = only_diagnostic("? [a, b]\n: 1\n")
    assert diagnostic.code == "LR107"
    assert diagnostic.line == 1


def test_all_collectable_problems_are_reported_together() -> None:
    """Independent problems in one document are reported in a single ProgramError."""
    error = error_of("a: 1\na: 2\nb: !custom x\n<<: {c: 1}\n")
    assert [d.code for d in error.diagnostics] == ["LR108", "LR110", "LR109"]
    assert str(error).startswith("3 problems in the program:")


# -- limits ---------------------------------------------------------------------------------


def test_billion_laughs_fails_fast() -> None:
    """An exponential alias bomb is refused with LR105 well under two seconds."""
    started = time.perf_counter()
    diagnostic = only_diagnostic(billion_laughs())
    elapsed = time.perf_counter() - started
    assert diagnostic.code == "LR105"
    assert "document expands to too many values (alias bomb?)" in diagnostic.message
    assert elapsed < 2.0


def test_value_count_limit_counts_expanded_aliases() -> None:
    """A document whose aliases expand past MAX_NODES values is refused with LR105."""
    block = "[" + ", ".join(["x"] * (MAX_NODES // MAX_ALIASES)) + "]"
    uses = ", ".join(["*big"] * MAX_ALIASES)
    diagnostic = only_diagnostic(f"big: &big {block}\nall: [{uses}]\n")
    assert diagnostic.code == "LR105"
    assert "too many values" in diagnostic.message


def test_alias_count_limit() -> None:
    """More than MAX_ALIASES alias uses are refused, exactly MAX_ALIASES are fine."""
    allowed = "a: &a 1\nb: [" + ", ".join(["*a"] * MAX_ALIASES) + "]\n"
    assert load(allowed)["b"] == [1] * MAX_ALIASES
    diagnostic = only_diagnostic("a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n")
    assert diagnostic.code == "LR105"
    assert diagnostic.line == 2


def test_recursive_alias_is_refused() -> None:
    """An alias to the collection that contains it is refused rather than looping."""
    assert only_diagnostic("a: &a [1, *a]\n").code == "LR105"


def test_depth_limit() -> None:
    """Nesting up to MAX_DEPTH collections loads; one more is refused with LR106."""
    assert load(f"{nested_lists(MAX_DEPTH)}\n") is not None
    diagnostic = only_diagnostic(f"{nested_lists(MAX_DEPTH + 1)}\n")
    assert diagnostic.code == "LR106"
    assert diagnostic.line == 1


def test_very_deep_nesting_is_refused_without_recursion_error() -> None:
    """Thousands of open brackets are refused with LR106, not a RecursionError."""
    assert only_diagnostic("[" * 50_000).code == "LR106"


def test_depth_limit_applies_after_alias_expansion() -> None:
    """Aliases cannot stack nesting beyond MAX_DEPTH."""
    inner = nested_lists(MAX_DEPTH - 5)
    text = f"a: &a {inner}\nb: {'[' * 10}*a{']' * 10}\n"
    assert only_diagnostic(text).code == "LR106"


def test_oversized_text_is_refused() -> None:
    """Text over MAX_SOURCE_BYTES (UTF-8 size) is refused with LR102 before parsing."""
    diagnostic = only_diagnostic("#" * (MAX_SOURCE_BYTES + 1))
    assert diagnostic.code == "LR102"
    assert diagnostic.message == (
        "file is 1,000,001 bytes; programs are limited to 1,000,000 bytes"
    )
    # 金 is three bytes in UTF-8, so this is small in characters but too big in bytes.
    text = "a: " + "金" * (MAX_SOURCE_BYTES // 3)
    assert only_diagnostic(text).code == "LR102"
    assert only_diagnostic(b"{" * (MAX_SOURCE_BYTES + 1)).code == "LR102"


# -- document structure and syntax ----------------------------------------------------------


def test_syntax_error_is_positioned() -> None:
    """A YAML syntax error is reported as LR100 at the problem's line and column."""
    diagnostic = only_diagnostic("tiers:\n  - name: a\n    discount\n    x: 1\n")
    assert str(diagnostic) == "shop.yaml:4:5: (top level): could not find expected ':' [LR100]"


@pytest.mark.parametrize(("text", "expected"), [
    ("a:\n\tb: 1\n", "shop.yaml:2:1: (top level): tabs cannot indent YAML; use spaces [LR100]"),
    ("a:\t1\n", "shop.yaml:1:3: (top level): YAML does not accept a tab here; use spaces [LR100]"),
    ("tiers:\n  - id: gold\n    qualify:\n      spend: 100\n     discount: 8\n",
     "shop.yaml:5:6: (top level): this line is not indented like the lines above it — the keys "
     "of one mapping, and the items of one list, start in the same column [LR100]"),
    ("when: [txn.channel] == ['app']\n",
     "shop.yaml:1:21: (top level): unexpected text after a complete value — a value that "
     "starts with a quote, [ or { must end there: quote the whole value, e.g. "
     "when: \"[txn.channel] == ['app']\" [LR100]"),
    ('a: 1\nb: "abc\nc: 1\n', "shop.yaml:2:4: (top level): the quoted value starting here is "
     "never closed — add the closing quote [LR100]"),
    ("a: b: c\n", "shop.yaml:1:5: (top level): ': ' cannot appear inside a plain value — put "
     "the value in quotes if it contains ': ' [LR100]"),
    ("a: @x\n", "shop.yaml:1:4: (top level): a plain value cannot start with '@' — put the "
     "value in quotes [LR100]"),
    ("a: 1\nb\uff1a5\nc: 2\n", "shop.yaml:3:1: (top level): could not find expected ':' — "
     "write ':' (an ASCII colon followed by a space), not the full-width '\uff1a' [LR100]"),
    # (found by helper-56: PyYAML's words, at the colon after it, for a full-width comma;
    # the key '\xa0 - {id' unknown for a non-breaking space; '<document start>' for '...')
    ("tiers:\n  - {id: basic\uff0c discount: 10%}\n",
     "shop.yaml:2:15: (top level): YAML separates the values of [...] and {...} with an "
     "ASCII comma — write ',' (and a space), not the full-width '\uff0c' [LR100]"),
    ("a: 1\ntiers:\n\u00a0 - {id: basic}\n", "shop.yaml:3:1: (top level): this line is "
     "indented with a non-breaking space (U+00A0) — indent with ordinary spaces [LR100]"),
    ("tiers:\n\u3000- {id: basic}\n", "shop.yaml:2:1: (top level): this line is indented "
     "with a full-width space (U+3000) — indent with ordinary spaces [LR100]"),
    # (found by helper-60: libyaml's parser marks a plain scalar's style "", not None)
    ("program:\n  id: p\n  \u3000version: 1\n", "shop.yaml:3:3: (top level): this line is "
     "indented with a full-width space (U+3000) — indent with ordinary spaces [LR100]"),
    ("program:\n\u3000\u3000id: p\n  version: 1\n", "shop.yaml:2:1: (top level): this line "
     "is indented with a full-width space (U+3000) — indent with ordinary spaces [LR100]"),
    # (found by helper-60: the full-width comma inside a quoted value on the line before
    # was blamed, not the space that YAML gave up at)
    ('program: {id: p, name: "会员，欢迎"}\ntiers: [{id: basic} {id: gold}]\n',
     "shop.yaml:2:21: (top level): expected ',' or ']', but got '{' [LR100]"),
    ("tiers: [{id: '会员，欢迎'}\uff0c {id: c}]\n",
     "shop.yaml:1:22: (top level): YAML separates the values of [...] and {...} with an "
     "ASCII comma — write ',' (and a space), not the full-width '\uff0c' [LR100]"),
    # (found by helper-61: an apostrophe in a plain value hid the comma; a comma in a comment
    # or a block value on the line before was blamed; YAML giving up two lines below the odd
    # indent, or on another mistake below a U+3000 paragraph; lines ended by CR alone)
    ("tiers: [{id: a, name: Kid's day}\uff0c{id: b}]\n", "shop.yaml:1:33: (top level): YAML "
     "separates the values of [...] and {...} with an ASCII comma — write ',' (and a space), "
     "not the full-width '\uff0c' [LR100]"),
    ("# 会员\uff0c欢迎\ntiers: [{id: basic} {id: gold}]\n",
     "shop.yaml:2:21: (top level): expected ',' or ']', but got '{' [LR100]"),
    ("desc: |\n  会员\uff0c欢迎\ntiers: [{id: basic} {id: gold}]\n",
     "shop.yaml:3:21: (top level): expected ',' or ']', but got '{' [LR100]"),
    ("a:\n  b: foo\n  \u3000bar\n\n  # c\n  d: 1\n", "shop.yaml:3:3: (top level): this line "
     "is indented with a full-width space (U+3000) — indent with ordinary spaces [LR100]"),
    ("desc: |\n  \u3000第一段\nb: x: y\n", "shop.yaml:3:5: (top level): ': ' cannot appear "
     "inside a plain value — put the value in quotes if it contains ': ' [LR100]"),
    ("a: 1\r\u3000b: 2\r", "shop.yaml:2:1: (top level): this line is indented with a "
     "full-width space (U+3000) — indent with ordinary spaces [LR100]"),
    ("a: 1\n...\ntiers: []\n", "shop.yaml:2:1: (top level): a line of '...' ends the YAML "
     "document, and more follows it — remove the '...' line [LR100]"),
    # a key and its value run together: YAML gives up on the next line
    ("tiers:\n  - id: a\n    discount:9.5折\n  - id: b\n",
     "shop.yaml:3:5: (top level): a key and its value need ': ' between them — write "
     "discount: 9.5折 (a space after the colon) [LR100]"),
    ("tiers:\n  - id: a\n    discount 8折   # gold\n  - id: b\n",
     "shop.yaml:3:5: (top level): a key and its value need ': ' between them — write "
     "discount: 8折 [LR100]"),
    ("tiers:\n  - id: a\n    discount:9.5折\n\n  - id: b\n",  # (found by helper-54: a blank
     # line between, and the end of the file, made it read the wrong line)
     "shop.yaml:3:5: (top level): a key and its value need ': ' between them — write "
     "discount: 9.5折 (a space after the colon) [LR100]"),
    ("tags:\n  - summer sale\nlabel New Menu",
     "shop.yaml:3:1: (top level): a key and its value need ': ' between them — write "
     "label: New Menu [LR100]"),
    # an unclosed quote in { }: closed before the }, the document reads on
    ('perks:\n  - {id: a, name: "Free refills}\n  - {id: b, name: "B"}\n  - {id: c}\n',
     "shop.yaml:2:19: (top level): the quoted value starting here is not closed on its line, "
     "so YAML read on to line 3 and gave up there — add the closing \" at the end of this "
     "value [LR100]"),
    # lines ended by CR alone (found by helper-54: an IndexError)
    ('program:\r  id: "p\r  version: 1\r  name: "x"\r',
     "shop.yaml:2:7: (top level): the quoted value starting here is not closed on its line, "
     "so YAML read on to line 4 and gave up there — add the closing \" at the end of this "
     "value [LR100]"),
    # a double quote not closed on its line: YAML reads on to the next quote, lines away
    ('tiers:\n  - id: a\n    when: "txn.amount >= 10   # big\n  - id: b\n    name: "Gold"\n'
     '  - id: c\n',
     "shop.yaml:3:11: (top level): the quoted value starting here is not closed on its line, "
     "so YAML read on to line 5 and gave up there — add the closing \" at the end of this "
     "value [LR100]"),
])
def test_syntax_errors_are_told_in_plain_words(text: str, expected: str) -> None:
    """PyYAML's parser words ("found character '\\t' that cannot start any token",
    "expected <block end>, but found '<block mapping start>'") are said plainly, with what
    to do; an unclosed quote is reported where it opens."""
    assert str(only_diagnostic(text)) == expected


@pytest.mark.parametrize(("text", "value"), [
    # a paragraph indented the Chinese way, two full-width spaces, in a block value
    ("description: |\n  \u3000\u3000会员享受优先服务。\n",
     {"description": "\u3000\u3000会员享受优先服务。\n"}),
    ('description: "会员\n  \u3000\u3000优先"\n', {"description": "会员 \u3000\u3000优先"}),
    ("description: 会员\n  \u3000优先\n", {"description": "会员 \u3000优先"}),
    ("name: \"\u00a0金卡\"\n", {"name": "\u00a0金卡"}),
])
def test_odd_spaces_inside_a_value_are_text(text: str, value: dict[str, str]) -> None:
    """Only a key or value that starts with U+00A0 or U+3000 is taken for a mistyped
    indentation; inside a block, quoted or continued value the same space is text
    (found by helper-60: a U+3000 paragraph indent in a ``|`` block was refused)."""
    assert load(text) == value


def test_undefined_alias_is_a_syntax_error() -> None:
    """An alias to an unknown anchor is reported as LR100 at the alias."""
    diagnostic = only_diagnostic("a: 1\nb: *missing\n")
    assert diagnostic.code == "LR100"
    assert (diagnostic.line, diagnostic.column) == (2, 4)


def test_multiple_documents_are_refused() -> None:
    """A file with two YAML documents is refused with LR104 at the second one."""
    diagnostic = only_diagnostic("a: 1\n---\nb: 2\n")
    assert diagnostic.code == "LR104"
    assert diagnostic.line == 2


@pytest.mark.parametrize("text", ["", "   \n", "# just a comment\n", "---\n"])
def test_empty_document_is_refused(text: str) -> None:
    """An empty file (or only comments or a bare ---) is refused with LR103."""
    diagnostic = only_diagnostic(text)
    assert diagnostic.code == "LR103"
    assert diagnostic.message == "the program is empty"


# -- encoding -------------------------------------------------------------------------------


def test_bytes_with_bom_are_accepted() -> None:
    """UTF-8 bytes with a BOM load, and positions ignore the BOM."""
    value, source_map = load_yaml("\ufeffname: 金卡\n".encode())
    assert value == {"name": "金卡"}
    assert source_map.locate(("name",)) == Position(1, 7)
    value, source_map = load_yaml("\ufeffname: 金卡\n")
    assert value == {"name": "金卡"}
    assert source_map.locate(("name",)) == Position(1, 7)


def test_invalid_utf8_is_refused() -> None:
    """Bytes that are not UTF-8 are refused with LR101 at the offending byte's line."""
    diagnostic = only_diagnostic(b"a: 1\nname: \xbd\xf0\n")
    assert diagnostic.code == "LR101"
    assert (diagnostic.line, diagnostic.column) == (2, 7)


def test_control_characters_are_refused() -> None:
    """Control characters YAML forbids are refused with LR101 at their position."""
    diagnostic = only_diagnostic("a: 1\nb: x\x01\n")
    assert diagnostic.code == "LR101"
    assert (diagnostic.line, diagnostic.column) == (2, 5)


def test_a_lone_surrogate_escape_is_refused_where_it_was_written() -> None:
    """`name: "\\ud800"` is half a character: it is LR101 at the value (before, the content
    hash raised a bare UnicodeEncodeError), in a key too, and every one is reported."""
    error = error_of('a: "x\\ud800"\n"\\udc00": 1\n')
    assert [str(d) for d in error.diagnostics] == [
        "shop.yaml:1:4: a: \\ud800 on its own is not a character (it is half of a UTF-16 "
        "surrogate pair) — write the character itself, or a \\U0001F600-style escape [LR101]",
        "shop.yaml:2:1: (top level): \\udc00 on its own is not a character (it is half of a "
        "UTF-16 surrogate pair) — write the character itself, or a \\U0001F600-style escape "
        "[LR101]",
    ]


def test_a_surrogate_pair_escape_is_one_character() -> None:
    """`"\\ud83d\\ude00"` (as JSON writes 😀) is read as the one character it spells."""
    assert load('a: "\\ud83d\\ude00 \\U0001F600"\n') == {"a": "😀 😀"}


# -- positions ------------------------------------------------------------------------------

POSITIONED = """\
name: 金卡
tiers:
  - name: silver
    discount: 0.05
  - name: gold
    discount: 0.1
"""


def test_positions_of_nested_values() -> None:
    """Each value's path maps to its 1-based line and column, and keys to theirs."""
    _, source_map = load_yaml(POSITIONED, source="shop.yaml")
    assert source_map.source == "shop.yaml"
    assert source_map.positions[()] == Position(1, 1)
    assert source_map.positions[("name",)] == Position(1, 7)
    assert source_map.positions[("tiers", 1)] == Position(5, 5)
    assert source_map.positions[("tiers", 1, "discount")] == Position(6, 15)
    assert source_map.key_positions[("tiers", 1, "discount")] == Position(6, 5)
    assert source_map.locate_key(("tiers", 1, "discount")) == Position(6, 5)


def test_locate_falls_back_to_nearest_ancestor() -> None:
    """A path with no position of its own is located at its nearest located ancestor."""
    _, source_map = load_yaml(POSITIONED)
    assert source_map.locate(("tiers", 1, "points", "rate")) == Position(5, 5)
    assert source_map.locate_key(("tiers", 1, "missing")) == Position(5, 5)
    assert source_map.locate(("unknown",)) == Position(1, 1)


def test_source_map_without_positions_locates_nothing() -> None:
    """A SourceMap for a program built from a dict has no positions and locates None."""
    source_map = SourceMap(source="<dict>")
    assert source_map.locate(("a", 1)) is None
    diagnostic = source_map.diagnostic("LR200", "bad", ("a", 1))
    assert str(diagnostic) == "<dict>: a[1]: bad [LR200]"


def test_source_map_builds_positioned_diagnostics() -> None:
    """SourceMap.diagnostic fills source, line and column from the path."""
    _, source_map = load_yaml(POSITIONED, source="shop.yaml")
    diagnostic = source_map.diagnostic(
        "LR201", "discount must be below 1", ("tiers", 1, "discount"), hint="write 0.1 for 10%"
    )
    assert (diagnostic.line, diagnostic.column) == (6, 15)
    assert str(diagnostic) == (
        "shop.yaml:6:15: tiers[1].discount: discount must be below 1 — write 0.1 for 10% [LR201]"
    )


def test_aliased_values_have_positions() -> None:
    """Values reached through an alias get positions (those of the anchored node)."""
    value, source_map = load_yaml("base: &b {rate: 0.1}\ngold: *b\n")
    assert value["gold"] == {"rate": Decimal("0.1")}
    assert source_map.locate(("gold", "rate")) == Position(1, 17)
    assert source_map.key_positions[("gold",)] == Position(2, 1)


# -- the two parsers ------------------------------------------------------------------------
# Text is parsed by libyaml (PyYAML's C extension) when PyYAML has it, ten times faster, and
# by PyYAML's own parser where the two may differ or libyaml finds a mistake: either way the
# same values, the same positions and the same errors, in PyYAML's words.

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted(ROOT.glob("programs/**/*.yaml"))
needs_libyaml = pytest.mark.skipif(_FastComposer is None, reason="PyYAML without libyaml")

# YAML's own characters, the ones the parsers were seen to treat apart (tab, `?`, `!`, a
# byte-order mark, U+2028, NEL, `|#`), line ends of every kind, and words
PIECES = ["a", "b", ":", " ", "  ", "\n", "\r\n", "\r", "\t", "- ", "-", "[", "]", "{", "}",
          ",", "#", "'", '"', "&x", "*x", "!", "!!str ", "|", ">", "?", "%", "@", "`", "1",
          ".", "金", "\\", "---", "...", "0.5", "~", "null", "yes", "\u2028", "\x85", "\ufeff"]


def _outcome(text: str, *, fast: bool) -> tuple[Any, ...]:
    """What loading ``text`` gives by one way of parsing it: values, positions and
    diagnostics, or the error and where it was told."""
    try:
        root = _compose(text, "t.yaml", fast=fast)
    except yaml.YAMLError as exc:
        return ("syntax", str(_syntax_error(exc, text, "t.yaml")))
    except ProgramError as exc:
        return ("program", str(exc))
    converter = _Converter("t.yaml")
    try:
        converter.measure(root)
        value = converter.convert(root, ())
    except ProgramError as exc:
        return ("converted", str(exc))
    return ("loaded", repr(value), sorted(converter.positions.items()),
            sorted(converter.key_positions.items()), [str(d) for d in converter.diagnostics])


@needs_libyaml
@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14).map("".join))
def test_both_parsers_load_any_text_alike(text: str) -> None:
    assert _outcome(text, fast=True) == _outcome(text, fast=False)


@needs_libyaml
@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(BUNDLED), st.lists(st.tuples(
    st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 200), st.sampled_from(PIECES)),
    min_size=1, max_size=3))
def test_both_parsers_load_a_program_with_a_typing_mistake_alike(
        path: Path, edits: list[tuple[int, int, int, str]]) -> None:
    """A bundled program with a character dropped or typed in, a line doubled or dropped."""
    lines = path.read_text(encoding="utf-8").split("\n")
    for op, at, column, piece in edits:
        k = at % len(lines)
        line = lines[k]
        spot = column % (len(line) + 1)
        if op == 0:
            lines[k] = line[:spot] + line[spot + 1:]
        elif op == 1:
            lines[k] = line[:spot] + piece + line[spot:]
        elif op == 2:
            lines.insert(k, line)
        elif len(lines) > 1:
            del lines[k]
    text = "\n".join(lines)
    assert _outcome(text, fast=True) == _outcome(text, fast=False)


@needs_libyaml
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_programs_are_parsed_by_libyaml_alike(path: Path) -> None:
    """The bundled programs and scenarios take the fast way, and load exactly as by
    PyYAML's own parser."""
    text = path.read_text(encoding="utf-8")
    assert _DIFFERENT.search(text) is None
    fast = _FastComposer(text, "t.yaml")
    try:
        fast.compose_single()  # (raises if it would fall back to PyYAML's parser)
    finally:
        fast.dispose()
    assert _outcome(text, fast=True) == _outcome(text, fast=False)
    assert _outcome(text, fast=True)[0] == "loaded"


@needs_libyaml
def test_a_program_of_1000_promotions_is_parsed_by_libyaml() -> None:
    """The benchmark's 1,000-promotion file takes the fast way (about 0.1 s to parse where
    PyYAML's parser takes 0.6 s), and loads as by PyYAML's own parser."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.promotions import many_promotions_yaml

    text = many_promotions_yaml(1000)
    assert _DIFFERENT.search(text) is None
    fast = _FastComposer(text, "t.yaml")
    try:
        fast.compose_single()
    finally:
        fast.dispose()
    assert _outcome(text, fast=True) == _outcome(text, fast=False)
