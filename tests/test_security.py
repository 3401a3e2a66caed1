"""Security suite: break-out and denial-of-service attempts against programs and expressions.

Every attempt must end in a clean, fast refusal: a :class:`ProgramError` when the program
loads, or an :class:`EvaluationError` naming the rule when it runs. Never another exception
type, never a silent "not matched", never success, and always well under a second.

Add new attacks to the tables below; each row says in which phase it must be refused.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import time
import types
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import loyaltyrules as lr
from loyaltyrules._expressions import FUNCTIONS, INVARIANT_NAMES, Expression, Scope

BUDGET = 1.0
"""Seconds any single attempt may take, load and evaluation together."""

MEMBER: dict[str, Any] = {
    "id": "m-1",
    "tier": "basic",
    "points": 100,
    "birthday": "1990-05-08",
    "joined": "2020-01-15",
    "attrs": {"vip": True, "city": "sh"},
}
TXN: dict[str, Any] = {
    "id": "t-1",
    "at": "2026-05-08T10:00:00+08:00",
    "channel": "store",
    "items": [{"sku": "A1", "category": "food", "quantity": 2, "amount": "250.00"}],
}

HEAD = """\
program:
  id: sec
  version: 1
  currency: CNY
  timezone: Asia/Shanghai
tiers:
  - id: basic
"""


def program_with(expr: str) -> str:
    """A minimal valid program whose only promotion has ``when: expr`` (a JSON-quoted scalar)."""
    return HEAD + f"promotions:\n  - id: promo\n    when: {json.dumps(expr)}\n    bonus_points: 5\n"


def nested(depth: int, inner: str, left: str = "(", right: str = ")") -> str:
    return left * depth + inner + right * depth


def billion_laughs() -> str:
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, 10):
        refs = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


TEXT_MOD = "% works on numbers only; text cannot be formatted with %"
IS_LITERAL = "`is` only compares with None, True or False; use == for other values"

# -- attacks refused when the program loads ----------------------------------------------------
# (expression, a fragment of the diagnostic's message)

LOAD_ATTACKS: list[Any] = [
    # what a written value already shows cannot work (refused at load since 2026-12-05)
    pytest.param("1/0 == 1", "`1/0` divides by 0, which has no answer", id="literal-div-0"),
    pytest.param("txn.amount % 0 > 1", "`txn.amount % 0` divides by 0", id="literal-mod-0"),
    pytest.param("date(99999, 1, 1) == today", "date(99999, 1, 1) is no date: year 99999 is "
                 "out of range", id="literal-date-out-of-range"),
    pytest.param("len(txn.amount) > 1", "len() counts the elements of a list or the letters "
                 "of text; `txn.amount` is a number", id="len-of-number"),
    # results that are not yes or no (refused at load since 2026-12-05: they failed every
    # evaluation, as EVAL_ATTACKS did)
    pytest.param(nested(200, "1"), "is a number, not yes or no", id="parens-200-deep"),
    pytest.param("txn", "`txn` is the transaction, not a value", id="record-result"),
    pytest.param("txn if True else member", "`txn` is the transaction, not a value",
                 id="ifexp-record-result"),
    pytest.param("member.attrs", "is a map of attrs, not a value", id="map-result"),
    pytest.param("items", "`items` is the list of items, not a value", id="list-result"),
    pytest.param("txn.channel", "`txn.channel` is text, not yes or no", id="text-result"),
    pytest.param("'x' * 1000", "`'x' * 1000` is text, not yes or no", id="kilobyte-result"),
    # values of kinds that never compare (refused at load since a field's type is known)
    pytest.param("txn.channel > 5", "`txn.channel` is text and `5` is a number: they cannot "
                 "be compared", id="str-gt-int"),
    # dunder and private access
    pytest.param("txn.__class__", "attribute '__class__' is not allowed", id="txn-class"),
    pytest.param("items.__class__.__mro__", "attribute '__class__' is not allowed", id="mro"),
    pytest.param("().__class__.__bases__[0].__subclasses__()",
                 "only the documented helper functions can be called", id="subclasses"),
    pytest.param("().__class__.__bases__[0]", "attribute '__class__' is not allowed",
                 id="bases"),
    pytest.param("member.attrs.__dict__", "attribute '__dict__' is not allowed", id="attrs-dict"),
    pytest.param("member.attrs._fields", "attribute '_fields' is not allowed", id="private"),
    pytest.param("txn.__init__.__globals__", "attribute '__init__' is not allowed",
                 id="globals-attr"),
    pytest.param("today.__class__.today()", "only the documented helper functions",
                 id="date-class"),
    pytest.param("txn.__\uff43lass__ == 1", "attribute '__class__' is not allowed",
                 id="nfkc-dunder"),
    pytest.param("txn.\uff3f\uff3fclass\uff3f\uff3f", "not a valid expression", id="fullwidth-"),
    pytest.param("__builtins__", "unknown name '__builtins__'", id="builtins-name"),
    pytest.param("_ == 1", "unknown name '_'", id="underscore"),
    # format tricks
    pytest.param("'{0.__class__}'.format(txn) == ''", "only the documented helper functions",
                 id="str-format"),
    pytest.param("'{vip}'.format_map(member.attrs) == ''", "only the documented helper",
                 id="format-map"),
    pytest.param("txn.channel.format", "cannot read .format of text", id="format-ref"),
    pytest.param("txn.channel.format(txn) == ''", "only the documented helper functions",
                 id="format-call"),
    # text formatting with % (a short literal can ask for a gigabyte)
    pytest.param("'%0999999999d' % 1 == ''", TEXT_MOD, id="percent-width-gigabyte"),
    pytest.param("'%*d' % (999999999, 1) == ''", TEXT_MOD, id="percent-star-width"),
    pytest.param("'%.999999999f' % txn.amount == ''", TEXT_MOD, id="percent-precision"),
    # a whole record, map or the item list where a value belongs (once a run-time error, in
    # words that differed between the two modes)
    pytest.param("'%s' % txn == ''", "`txn` is the transaction, not a value",
                 id="percent-record"),
    pytest.param("'%(id)s' % member == ''", "`member` is the member, not a value",
                 id="percent-mapping"),
    pytest.param("(items + items) * 1000 == []", "`items` is the list of items, not a value",
                 id="items-repeated"),
    pytest.param("min(items[0], txn) == 1", "`items[0]` is a whole item, not a value",
                 id="min-records"),
    pytest.param("year(txn) == 1", "`txn` is the transaction, not a value",
                 id="year-of-record"),
    pytest.param("('%0999999999d' if True else 0) % 1 == ''", TEXT_MOD, id="percent-via-ifexp"),
    pytest.param("max('%0999999999d', '') % 1 == ''", TEXT_MOD, id="percent-via-max"),
    pytest.param("('%0999' + '999999d') % 1 == ''", TEXT_MOD, id="percent-via-concat"),
    pytest.param("(txn.channel or '%0999999999d') % 1 == ''", TEXT_MOD, id="percent-via-or"),
    pytest.param("txn.channel % 1 == ''", TEXT_MOD, id="percent-text-field"),
    pytest.param("tier % 2 == 0", TEXT_MOD, id="percent-tier"),
    # `is` with a number or text: identity depends on the interpreter, and compiling it warns
    # (an error under -W error, which once escaped load_program as a bare SyntaxError)
    pytest.param("100000 is member", IS_LITERAL, id="is-number-literal"),
    pytest.param("'' is ['vip']", IS_LITERAL, id="is-list-literal"),
    pytest.param("txn.channel is 'store'", IS_LITERAL, id="is-text-literal"),
    pytest.param("txn.amount is not 0.1", IS_LITERAL, id="is-not-decimal-literal"),
    # dangerous builtins
    pytest.param("getattr(txn, '__class__')", "unknown function 'getattr'", id="getattr"),
    pytest.param("eval('1') == 1", "unknown function 'eval'", id="eval"),
    pytest.param("exec('import os')", "unknown function 'exec'", id="exec"),
    pytest.param("open('/etc/passwd')", "unknown function 'open'", id="open"),
    pytest.param("__import__('os')", "unknown function '__import__'", id="dunder-import"),
    pytest.param("__import__('os').system('true')", "only the documented helper functions",
                 id="import-system"),
    pytest.param("import os", "not a valid expression", id="import-statement"),
    pytest.param("type(txn)", "unknown function 'type'", id="type"),
    pytest.param("object()", "unknown function 'object'", id="object"),
    pytest.param("vars(txn)", "unknown function 'vars'", id="vars"),
    pytest.param("globals()", "unknown function 'globals'", id="globals"),
    pytest.param("locals()", "unknown function 'locals'", id="locals"),
    pytest.param("compile('1', 'x', 'eval')", "unknown function 'compile'", id="compile"),
    pytest.param("breakpoint()", "unknown function 'breakpoint'", id="breakpoint"),
    pytest.param("input()", "unknown function 'input'", id="input"),
    pytest.param("print(1)", "unknown function 'print'", id="print"),
    pytest.param("dir(txn)", "unknown function 'dir'", id="dir"),
    pytest.param("setattr(txn, 'id', 1)", "unknown function 'setattr'", id="setattr"),
    pytest.param("list(items) == []", "unknown function 'list'", id="list-class"),
    pytest.param("dict() == 1", "unknown function 'dict'", id="dict-class"),
    pytest.param("set() == 1", "unknown function 'set'", id="set-class"),
    pytest.param("tuple(items) == 1", "unknown function 'tuple'", id="tuple-class"),
    pytest.param("str(txn) == ''", "unknown function 'str'", id="str-class"),
    pytest.param("isinstance(txn, txn)", "unknown function 'isinstance'", id="isinstance"),
    pytest.param("len", "'len' is a function; call it like len(…)", id="function-ref"),
    pytest.param("date.today() == today", "only the documented helper functions",
                 id="date-today"),
    pytest.param("date.today", "'date' is a function; call it like date(…)", id="date-ref"),
    # lambdas, comprehensions, walrus, f-strings
    pytest.param("(lambda: True)()", "lambda functions are not allowed", id="lambda-call"),
    pytest.param("[lambda: 1] == []", "lambda functions are not allowed", id="lambda-in-list"),
    pytest.param("[i for i in items] == []", "list comprehensions are not allowed",
                 id="listcomp"),
    pytest.param("{i for i in items} == 1", "set comprehensions are not allowed", id="setcomp"),
    pytest.param("{i: 1 for i in items} == 1", "dict comprehensions are not allowed",
                 id="dictcomp"),
    pytest.param("any(i for i in items)", "generator expressions are not allowed", id="genexp"),
    pytest.param("len([[j for j in items] for i in items]) > 0",
                 "list comprehensions are not allowed", id="nested-comp"),
    pytest.param("len([1 for a in items for b in items for c in items]) > 0",
                 "list comprehensions are not allowed", id="cartesian-comp"),
    pytest.param("(x := 1) == 1", "assignment expressions (:=) are not allowed", id="walrus"),
    pytest.param("f'{txn.channel}' == 'store'", "f-strings are not allowed", id="fstring"),
    pytest.param("f'{txn.__class__}' == ''", "f-strings are not allowed", id="fstring-dunder"),
    pytest.param("f'{1:>999999999}' == ''", "f-strings are not allowed", id="fstring-width"),
    # huge numbers
    pytest.param("9**9**9 > 0", "** needs a whole-number exponent from 0 to 8", id="9-9-9"),
    pytest.param("2**1000000 > 0", "** needs a whole-number exponent from 0 to 8",
                 id="2-pow-million"),
    pytest.param("10**100 > 0", "** needs a whole-number exponent from 0 to 8", id="googol"),
    pytest.param("2**-1 > 0", "** needs a whole-number exponent", id="negative-exponent"),
    pytest.param("2**0.5 > 0", "** needs a whole-number exponent", id="float-exponent"),
    pytest.param("txn.amount ** member.points > 0", "** needs a whole-number exponent",
                 id="variable-exponent"),
    pytest.param("1" + "0" * 400 + " > 0", "is too large", id="huge-int-literal"),
    pytest.param("0x" + "f" * 100 + " > 0", "is too large", id="huge-hex-literal"),
    pytest.param("10000000000000000 > 0", "number 10000000000000000 is too large",
                 id="just-over-int-limit"),
    pytest.param("1e999 > txn.amount", "number 1e999 is too large", id="float-infinity"),
    pytest.param("1 << 100000 > 0", "shift operators are not allowed", id="lshift"),
    pytest.param("~0 == -1", "bitwise operators are not allowed", id="invert"),
    pytest.param("(1 | 2) == 3", "bitwise operators are not allowed", id="bitor"),
    pytest.param("txn.amount @ 2", "the @ operator are not allowed", id="matmul"),
    # huge text and lists built from literals
    pytest.param("'a' * 10**9 == ''", "** needs a whole-number exponent from 0 to 8",
                 id="str-times-10-pow-9"),
    pytest.param("txn.channel == '" + "x" * 201 + "'", "limited to 200 characters",
                 id="long-text-literal"),
    pytest.param("txn.channel in [" + ", ".join(["'x'"] * 60) + "]",
                 "lists are limited to 50 elements", id="big-list-literal"),
    pytest.param("txn.channel in (" + ", ".join(["'x'"] * 60) + ")",
                 "lists are limited to 50 elements", id="big-tuple-literal"),
    pytest.param("{'a': 1} == 1", "dict literals are not allowed", id="dict-literal"),
    pytest.param("{1, 2} == 1", "set literals are not allowed", id="set-literal"),
    pytest.param("{**member} == 1", "dict literals are not allowed", id="dict-unpack"),
    pytest.param("b'x' == b'x'", "literal b'x' is not allowed", id="bytes"),
    pytest.param("1j == 1", "literal 1j is not allowed", id="complex"),
    pytest.param("... == 1", "literal Ellipsis is not allowed", id="ellipsis"),
    # nesting and size
    pytest.param(nested(201, "1"), "too many nested parentheses",
                 id="parens-201-deep"),
    pytest.param(nested(250, "1"), "longer than 500 characters", id="parens-250-deep"),
    pytest.param(nested(100, "1", "[", "]") + " == 1", "nests deeper than 16 levels",
                 id="lists-100-deep"),
    pytest.param("not " * 500 + "True", "longer than 500 characters", id="not-500-deep"),
    pytest.param("not " * 100 + "True", "nests deeper than 16 levels", id="not-100-deep"),
    pytest.param("-" * 400 + "1 == 1", "nests deeper than 16 levels", id="minus-400-deep"),
    pytest.param("+".join(["1"] * 5000) + " > 0", "longer than 500 characters",
                 id="sum-5000-terms"),
    pytest.param("+".join(["1"] * 200) + " > 0", "nests deeper than 16 levels",
                 id="sum-200-terms"),
    pytest.param(" and ".join(["txn.amount > 0"] * 25), "too complex (more than 120 parts)",
                 id="too-many-parts"),
    pytest.param("txn.channel == 'x' or " * 30 + "True", "longer than 500 characters",
                 id="very-long"),
    # slices, starred, subscripts
    pytest.param("txn.channel[0:2] == 'st'", "slices are not allowed", id="slice"),
    pytest.param("items[0:1] == []", "slices are not allowed", id="items-slice"),
    pytest.param("has_sku(*items)", "unpacking expressions (*x) are not allowed",
                 id="starred-call"),
    pytest.param("[*items] == []", "unpacking expressions (*x) are not allowed", id="starred-list"),
    pytest.param("items[member.points].sku == 'x'", "needs a whole-number index",
                 id="items-variable-index"),
    pytest.param("items[10**20].sku == 'x'", "needs a whole-number index", id="items-10-pow-20"),
    pytest.param("items[-1].sku == 'x'", "needs a whole-number index", id="items-negative"),
    pytest.param("items[True].sku == 'x'", "needs a whole-number index", id="items-bool"),
    pytest.param("items['0'].sku == 'x'", "needs a whole-number index", id="items-str"),
    pytest.param("member.attrs[txn.channel] == 1", "needs a quoted key", id="attrs-variable-key"),
    pytest.param("txn['channel'] == 'store'", "cannot index the transaction", id="index-record"),
    pytest.param("txn.channel[0] == 's'", "cannot index text", id="index-str"),
    pytest.param("[1, 2][0] == 1", "cannot index a list", id="index-list"),
    pytest.param("member.attrs['a']['b'] == 1", "cannot index a value the host sends (attrs)",
                 id="index-any"),
    # calls and references to methods
    pytest.param("txn.channel.upper() == 'STORE'", "only the documented helper functions",
                 id="str-method"),
    pytest.param("txn.channel.upper == 1", "cannot read .upper of text",
                 id="str-method-ref"),
    pytest.param("today.replace(1) == today", "only the documented helper functions",
                 id="date-replace"),
    pytest.param("today.replace(year=1) == today", "keyword arguments (name=value) are not allowed",
                 id="date-replace-keyword"),
    pytest.param("today.replace", "date has no field 'replace'", id="date-replace-ref"),
    pytest.param("txn.at.tzinfo", "datetime has no field 'tzinfo'", id="tzinfo"),
    pytest.param("txn.at.astimezone() == 1", "only the documented helper functions",
                 id="astimezone"),
    pytest.param("member.attrs.get('vip')", "only the documented helper functions",
                 id="attrs-get"),
    pytest.param("items.pop() == 1", "only the documented helper functions", id="list-pop"),
    pytest.param("member.attrs.vip.real == 1", "cannot read .real of a value the host sends",
                 id="attr-of-any"),
    pytest.param("max(1, 2, key=abs) == 2", "keyword arguments (name=value) are not allowed",
                 id="keyword"),
    pytest.param("(txn if True else member).id == 'x'", "cannot read .id of a value the host sends",
                 id="ifexp-record"),
    pytest.param("(txn or member).id == 'x'", "cannot read .id of a value the host sends",
                 id="boolop-record"),
    # statements
    pytest.param("1; 2", "not a valid expression", id="two-statements"),
    pytest.param("a = 1", "not a valid expression", id="assignment"),
    pytest.param("txn.id = 'x'", "not a valid expression", id="attribute-assignment"),
    pytest.param("member.points += 1", "not a valid expression", id="augmented-assignment"),
    pytest.param("del txn", "not a valid expression", id="del"),
    pytest.param("assert False", "not a valid expression", id="assert"),
    pytest.param("(yield 1)", "yield expressions are not allowed", id="yield"),
    pytest.param("await txn", "await expressions are not allowed", id="await"),
    pytest.param("True\n; 1", "not a valid expression", id="newline-statement"),
    pytest.param("", "expression is empty", id="empty"),
]


# -- attacks that load but must fail cleanly when they run --------------------------------------
# (id, expression, a fragment of the EvaluationError message — or one per evaluation mode
#  where the two report the same failure in their own words)

# Attacks made of written values alone: each part of an expression made only of written
# values is worked out at load, so these are refused there, in what they raise. Each is also
# in EVAL_ATTACKS below, built of the purchase's own values (X, ONE), where it loads and must
# fail as it runs.
CONSTANT_ATTACKS: list[tuple[str, str, str]] = [
    ("str-times-10-10", "'x' * 100000 * 100000 == ''", "LimitExceeded"),
    ("str-times-billion", "'a' * 1000000000 == ''", "LimitExceeded"),
    ("billion-times-str", "1000000000 * 'a' == ''", "LimitExceeded"),
    ("len-of-big-list", "len([0] * 1000000) > 0", "LimitExceeded"),
    ("str-just-over-limit", "'x' * 1001 == ''", "LimitExceeded"),
    ("repeated-concatenation", "('x' * 1000 + 'x' * 1000 + 'x' * 1000) == ''", "LimitExceeded"),
    ("list-times-100000", "[1] * 100000 == []", "LimitExceeded"),
    ("slow-membership", "('x' * 99999 + 'y') in ['x' * 100000] * 100000", "LimitExceeded"),
    ("slow-list-equality", "['x' * 100000] * 100000 == ['x' * 100000] * 100000",
     "LimitExceeded"),
    ("power-of-power", "((1000000 * 1000000000)**8)**8 > 0", "NumberTooHigh"),
    ("decimal-power", "1e300 ** 8 > 0", "NumberTooHigh"),
    ("product-power", "(1000000 * 10000000000) ** 8 > 0", "NumberTooHigh"),
    ("max-empty", "max([]) == 1", "ValueError: max() arg is an empty sequence"),
    # (lists of lists: a thousand of a thousand of ... each 1,000 long, a million references
    # and more; working this out at load took hours, found by helper-93)
    ("nested-lists", "txn.amount < 0 and len([[[[0]*1000]*1000]*1000]*1000) > 0",
     "LimitExceeded"),
]
X = "(txn.channel * 0 + 'x')"  # 'x', read from the purchase
ONE = "(member.points // 100)"  # 1 (the member has 100 points)

EVAL_ATTACKS: list[tuple[str, str, str | dict[str, str]]] = [
    ("str-times-10-10", f"{X} * 100000 * 100000 == ''",
     "LimitExceeded"),
    ("str-times-billion", f"{X} * 1000000000 == ''",
     "LimitExceeded"),
    ("billion-times-str", f"1000000000 * {X} == ''",
     "LimitExceeded"),
    ("len-of-big-list", f"len([{ONE}] * 1000000) > 0",
     "LimitExceeded"),
    ("str-just-over-limit", f"{X} * 1001 == ''", "LimitExceeded"),
    ("repeated-concatenation", f"({X} * 1000 + {X} * 1000 + {X} * 1000) == ''",
     "LimitExceeded"),
    ("concatenated-field-repeated", "(txn.channel + txn.channel) * 200 == ''", "LimitExceeded"),
    ("list-times-100000", f"[{ONE}] * 100000 == []", "LimitExceeded"),
    ("slow-membership", f"({X} * 99999 + 'y') in [{X} * 100000] * 100000", "LimitExceeded"),
    ("slow-list-equality", f"[{X} * 100000] * 100000 == [{X} * 100000] * 100000",
     "LimitExceeded"),
    ("power-of-power", f"(({ONE} * 1000000 * 1000000000)**8)**8 > 0",
     "NumberTooHigh"),
    ("decimal-power", f"({ONE} * 1e300) ** 8 > 0",
     "NumberTooHigh"),
    ("product-power", f"({ONE} * 1000000 * 10000000000) ** 8 > 0",
     "NumberTooHigh"),
    ("nested-lists", f"len([[{X}] * 1000] * 1000) > 0", "LimitExceeded"),
    ("nested-lists-added", f"len([[{X}] * 600] + [[{X}] * 600]) > 0", "LimitExceeded"),
    ("attrs-keys", "member.attrs.keys", "gave None, not true or false"),
    ("items-far-index", "items[100000000000000].sku == 'x'", "IndexError"),
    ("items-missing-index", "items[3].sku == 'x'", "IndexError"),
    ("int-division-by-zero", "1 / (member.points - 100) == 1",
     "ZeroDivisionError: division by zero"),
    ("decimal-division-by-zero", "txn.amount / (member.points - 100) > 1",
     "DivisionByZero: division by 0"),
    ("decimal-modulo-zero", "txn.amount % (member.points - 100) > 1",
     "InvalidOperation: an operation with no answer"),
    ("host-text-gt-int", "member.attrs.fmt > 5",  # (a field's type is checked at load)
     "TypeError: '>' not supported between instances of 'str' and 'int'"),
    ("str-minus-int", "txn.channel - 1 == 0", "TypeError: unsupported operand type(s) for -"),
    ("date-out-of-range", "date(member.points * 1000, 1, 1) == today",
     "ValueError: year 100000 is out of range"),
    ("days-since-text", "days_since(txn.channel) > 0", "TypeError"),
    ("max-empty", "max([] * member.points) == 1", "ValueError: max() arg is an empty sequence"),
    ("host-format-string", "member.attrs.fmt % 1 == ''",
     "TypeError: % is only for numbers; text formatting is not available"),
    ("host-value-result", "max(member.attrs.vip, 2)", "gave 2, not true or false"),
]

MODES: list[str] = ["compiled", "interpreted"]


def evaluate(program: lr.Program, mode: str, *, trace: bool = True,
             member: dict[str, Any] | None = None) -> lr.Decision:
    return lr.evaluate(program, member or MEMBER, TXN, trace=trace, mode=mode)  # type: ignore[arg-type]


def eval_params() -> Iterator[Any]:
    for ident, expr, fragment in EVAL_ATTACKS:
        for mode in MODES:
            text = fragment if isinstance(fragment, str) else fragment[mode]
            yield pytest.param(expr, text, mode, id=f"{ident}-{mode}")


HOST_MEMBER = {**MEMBER, "attrs": {**MEMBER["attrs"], "fmt": "%099999999d"}}


def _assert_clean_load_refusal(text: str) -> lr.ProgramError:
    start = time.perf_counter()
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(text)
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET, f"refusal took {elapsed:.2f}s"
    assert type(info.value) is lr.ProgramError
    return info.value


@pytest.mark.parametrize(("expr", "fragment"), LOAD_ATTACKS)
def test_attack_refused_at_load(expr: str, fragment: str) -> None:
    """An attack expression is refused when the program loads, quickly and at the `when:` key."""
    error = _assert_clean_load_refusal(program_with(expr))
    assert len(error.diagnostics) == 1, error.diagnostics
    diagnostic = error.diagnostics[0]
    assert diagnostic.path == ("promotions", 0, "when")
    assert (diagnostic.line, diagnostic.column) == (10, 11)
    assert fragment in diagnostic.message


@pytest.mark.parametrize(("expr", "fragment"),
                         [pytest.param(e, f, id=i) for i, e, f in CONSTANT_ATTACKS])
def test_attack_of_written_values_alone_is_refused_at_load(expr: str, fragment: str) -> None:
    """Worked out at load, as it would be on every purchase, it is refused there, quickly,
    at the `when:` key (the limits stop it before anything large is built)."""
    error = _assert_clean_load_refusal(program_with(expr))
    assert [(d.path, d.line, d.column) for d in error.diagnostics] == [
        (("promotions", 0, "when"), 10, 11)]
    message = error.diagnostics[0].message
    assert " cannot work: it raises " in message and fragment in message


@pytest.mark.parametrize(("expr", "fragment", "mode"), list(eval_params()))
def test_attack_refused_at_evaluation(expr: str, fragment: str, mode: str) -> None:
    """An attack that passes the load checks fails its evaluation cleanly, naming the rule."""
    start = time.perf_counter()
    program = lr.load_program(program_with(expr))
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(program, mode, member=HOST_MEMBER)
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET, f"refusal took {elapsed:.2f}s"
    error = info.value
    assert type(error) is lr.EvaluationError
    assert error.rule == "promo"
    assert str(error).startswith("rule 'promo' failed: ")
    assert fragment in str(error)
    assert [(t.rule, t.status) for t in error.trace if t.status == "error"] == [("promo", "error")]


@pytest.mark.parametrize(("expr", "fragment", "mode"), list(eval_params()))
def test_attack_refused_at_evaluation_without_trace(expr: str, fragment: str, mode: str) -> None:
    """With tracing off a failing expression still raises instead of reading as "not matched"."""
    program = lr.load_program(program_with(expr))
    start = time.perf_counter()
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(program, mode, trace=False, member=HOST_MEMBER)
    assert time.perf_counter() - start < BUDGET
    assert info.value.rule == "promo"
    assert fragment in str(info.value)


# -- the same protections in every place a `when:` may be written -------------------------------

PLACES: dict[str, tuple[str, str, str]] = {
    "earn": ("earn:\n  - id: base\n    points: 1\n    when: {when}\n", "base", "earn"),
    # (multipliers only run when some earn rule does)
    "multiplier": (
        "earn:\n  - id: base\n    points: 1\n"
        "multipliers:\n  - id: double\n    factor: 2\n    when: {when}\n",
        "double",
        "multiplier",
    ),
    "qualify": ("  - id: silver\n    qualify: {{when: {when}}}\n", "silver", "qualification"),
    "birthday": (
        "birthday:\n  - id: bday\n    on: birthday_month\n    bonus_points: 9\n    when: {when}\n",
        "bday",
        "birthday",
    ),
    "promotion": ("promotions:\n  - id: promo\n    bonus_points: 5\n    when: {when}\n",
                  "promo", "promotion"),
}


def place_program(place: str, when: str) -> tuple[str, str, str]:
    template, rule, kind = PLACES[place]
    return HEAD + template.format(when=json.dumps(when)), rule, kind


@pytest.mark.parametrize("place", list(PLACES))
def test_every_when_refuses_dunder_access_at_load(place: str) -> None:
    """A dunder attack is refused at load wherever `when:` is allowed, not just in promotions."""
    text, _, _ = place_program(place, "txn.__class__.__subclasses__()")
    error = _assert_clean_load_refusal(text)
    assert [d.path[-1] for d in error.diagnostics] == ["when"]
    assert "only the documented helper functions can be called" in error.diagnostics[0].message


@pytest.mark.parametrize("place", list(PLACES))
def test_every_when_refuses_a_gigabyte_of_written_text_at_load(place: str) -> None:
    """`'a' * 1000000000` is made of written values alone: worked out at load, it is refused
    there in every `when:` (the size limit stops it before it is built), not on every
    purchase. Built of the purchase's own text it fails as it runs (below)."""
    text, _, _ = place_program(place, "'a' * 1000000000 == ''")
    error = _assert_clean_load_refusal(text)
    assert [d.message for d in error.diagnostics] == [
        "`'a' * 1000000000 == ''` cannot work: it raises LimitExceeded: would build text or a "
        "list longer than 1000"]


@pytest.mark.parametrize("place", list(PLACES))
def test_every_when_refuses_text_formatting_at_load(place: str) -> None:
    """`'%0999999999d' % 1` (a gigabyte of zeros) is refused at load in every `when:`."""
    text, _, _ = place_program(place, "'%0999999999d' % 1 == ''")
    error = _assert_clean_load_refusal(text)
    assert [d.message for d in error.diagnostics] == [
        "% works on numbers only; text cannot be formatted with %"
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("member.attrs.level > 5", "TypeError"),
        ("items[3].sku == 'x'", "IndexError"),
        ("1 / (member.points - 100) == 1", "ZeroDivisionError"),
        ("txn.id * 1000000000 == ''", "too long"),
        ("max(member.points, 3)", "gave 100, not true or false"),
    ],
)
def test_every_when_reports_runtime_failure_with_its_rule(
    place: str, expr: str, fragment: str, mode: str
) -> None:
    """A run-time failure in any `when:` raises EvaluationError naming that rule or tier."""
    text, rule, kind = place_program(place, expr)
    program = lr.load_program(text)
    start = time.perf_counter()
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(program, mode)
    assert time.perf_counter() - start < BUDGET
    assert info.value.rule == rule
    assert fragment in str(info.value) or (fragment == "too long" and "LimitExceeded" in str(
        info.value))
    errors = [t for t in info.value.trace if t.status == "error"]
    assert [(t.rule, t.kind) for t in errors] == [(rule, kind)]


@pytest.mark.parametrize("mode", MODES)
def test_division_by_zero_is_refused_at_load_or_fails_at_evaluation(mode: str) -> None:
    """`1/0 == 1` divides by a written 0: refused at load. A 0 worked out as the condition
    runs is an EvaluationError naming the rule, in words (Decimal's own message is
    `[<class 'decimal.DivisionByZero'>]`)."""
    error = _assert_clean_load_refusal(program_with("1/0 == 1"))
    assert [d.message for d in error.diagnostics] == [
        "`1/0` divides by 0, which has no answer"]
    program = lr.load_program(program_with("txn.amount / (member.points - 100) > 1"))
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(program, mode)
    assert str(info.value) == (
        "rule 'promo' failed: `txn.amount / (member.points - 100) > 1` raised DivisionByZero: "
        "division by 0")


@pytest.mark.parametrize("mode", MODES)
def test_type_error_message_is_exact(mode: str) -> None:
    """Comparing nothing (an attribute the member does not have) with a number reports the
    expression and Python's own explanation."""
    program = lr.load_program(program_with("member.attrs.level > 5"))
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(program, mode)
    assert str(info.value) == (
        "rule 'promo' failed: `member.attrs.level > 5` raised TypeError: "
        "'>' not supported between instances of 'NoneType' and 'int'"
    )


@pytest.mark.parametrize("mode", MODES)
def test_short_circuit_does_not_hide_later_failure_when_reached(mode: str) -> None:
    """A failing part after a true part is reached and reported, not skipped as false."""
    program = lr.load_program(program_with("txn.amount > 0 and items[1].sku == 'x'"))
    with pytest.raises(lr.EvaluationError, match="IndexError"):
        evaluate(program, mode)


@pytest.mark.parametrize("mode", MODES)
def test_many_rules_comparing_big_lists_stay_within_budget(mode: str) -> None:
    """Rules that build and compare 100,000-element lists are stopped, not run for seconds.
    (Written values alone are worked out at load, and refused there: the lists are built of
    the purchase's own text.)"""
    expr = " and ".join(["[txn.id]*100000 == [txn.id]*100000"] * 5)
    rules = "".join(
        f"  - id: p{n}\n    bonus_points: 1\n    when: {json.dumps(expr)}\n" for n in range(3)
    )
    program = lr.load_program(HEAD + "promotions:\n" + rules)
    written = " and ".join(["['x'*100000]*100000 == ['x'*100000]*100000"] * 5)
    with pytest.raises(lr.ProgramError, match="would build text or a list longer than 1000"):
        lr.load_program(HEAD + f"promotions:\n  - id: p\n    bonus_points: 1\n    when: "
                        f"{json.dumps(written)}\n")
    start = time.perf_counter()
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(program, mode)
    assert time.perf_counter() - start < BUDGET
    assert info.value.rule == "p0"


@pytest.mark.parametrize("mode", MODES)
def test_failing_rule_after_matching_rules_still_raises(mode: str) -> None:
    """One broken rule among working ones stops the evaluation; it is never dropped quietly."""
    text = HEAD + (
        "promotions:\n"
        "  - id: fine\n    bonus_points: 1\n    when: txn.amount > 0\n"
        "  - id: broken\n    bonus_points: 1\n    when: member.attrs.level > 5\n"
        "  - id: also-fine\n    bonus_points: 1\n    when: txn.amount > 0\n"
    )
    with pytest.raises(lr.EvaluationError) as info:
        evaluate(lr.load_program(text), mode)
    assert info.value.rule == "broken"



# -- YAML-level attacks ---------------------------------------------------------------------------


def test_alias_bomb_in_program_is_refused() -> None:
    """A billion-laughs alias bomb inside a program is refused quickly as a ProgramError."""
    text = HEAD + billion_laughs()
    error = _assert_clean_load_refusal(text)
    assert [d.code for d in error.diagnostics] == ["LR105"]


def test_alias_bomb_in_when_is_refused() -> None:
    """An alias bomb aimed at a `when:` value is refused before any expression is parsed."""
    text = billion_laughs() + HEAD + "promotions:\n  - id: promo\n    bonus_points: 5\n" \
        "    when: *lol9\n"
    error = _assert_clean_load_refusal(text)
    assert [d.code for d in error.diagnostics] == ["LR105"]


@pytest.mark.parametrize(
    "tag",
    [
        '!!python/object/apply:os.system ["echo hi"]',
        '!!python/object/new:os.system ["echo hi"]',
        "!!python/name:os.system",
        "!!python/module:os",
        '!!python/object/apply:builtins.eval ["1"]',
    ],
)
def test_python_tags_are_refused(tag: str) -> None:
    """Python-object YAML tags are refused as diagnostics (LR110), never constructed."""
    text = HEAD + f"promotions:\n  - id: promo\n    bonus_points: 5\n    when: {tag}\n"
    error = _assert_clean_load_refusal(text)
    assert [d.code for d in error.diagnostics] == ["LR110"]
    assert "is not allowed" in error.diagnostics[0].message


def test_oversized_text_is_refused() -> None:
    """Program text over 1 MB is refused before it is parsed."""
    text = program_with("txn.amount > 0") + "#" + "x" * 1_100_000 + "\n"
    error = _assert_clean_load_refusal(text)
    assert [d.code for d in error.diagnostics] == ["LR102"]


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """A program file over 1 MB is refused before it is parsed."""
    path = tmp_path / "huge.yaml"
    path.write_text(program_with("txn.amount > 0") + "# " + "x" * 1_100_000 + "\n")
    start = time.perf_counter()
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(path)
    assert time.perf_counter() - start < BUDGET
    assert [d.code for d in info.value.diagnostics] == ["LR102"]


def test_a_huge_file_is_refused_without_being_read(tmp_path: Path) -> None:
    """A 10 GB (sparse) program file is refused from its size; before, the whole file was
    read into memory first (`loyaltyrules validate` of a huge file: MemoryError)."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(10_000_000_000)
    start = time.perf_counter()
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(path)
    assert time.perf_counter() - start < BUDGET
    assert [str(d) for d in info.value.diagnostics] == [
        f"{path}: (top level): file is 10,000,000,000 bytes; programs are limited to "
        "1,000,000 bytes [LR102]"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused_after_the_limit() -> None:
    """A file with no size (a device, a pipe) is read only up to the limit: /dev/zero gives
    LR102 at once instead of filling memory."""
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(Path("/dev/zero"))
    assert [str(d) for d in info.value.diagnostics] == [
        "/dev/zero: (top level): file is larger than 1,000,000 bytes; programs are limited to "
        "1,000,000 bytes [LR102]"]


HEAD_PROGRAM = {"id": "sec", "version": "1", "currency": "CNY", "timezone": "Asia/Shanghai"}


def _timed_refusal(data: dict[str, Any]) -> tuple[float, lr.ProgramError]:
    start = time.perf_counter()
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(data)
    return time.perf_counter() - start, info.value


def test_a_program_with_thousands_of_tiers_is_refused_at_once() -> None:
    """2,000 tiers took 4.4 s to load (20,000: minutes and gigabytes: each tier's
    qualification was compiled with every tier above it); more than 100 are refused."""
    tiers = [{"id": "t0"}] + [{"id": f"t{i}", "qualify": {"spend": i}} for i in range(1, 2000)]
    elapsed, error = _timed_refusal({"program": HEAD_PROGRAM, "tiers": tiers})
    assert elapsed < BUDGET
    assert [str(d) for d in error.diagnostics] == [
        "<dict>: tiers: a program has at most 100 tiers (got 2,000) — real programs have "
        "fewer than ten [LR203]"]
    lr.load_program({"program": HEAD_PROGRAM, "tiers": tiers[:100]})


def test_thousands_of_mistakes_are_reported_quickly() -> None:
    """Reporting scaled with the square of the mistakes: 2,000 empty category names took
    8 s (each checked against every other error), 2,000 misspelt perks among 2,000 declared
    took a minute of did-you-mean searching. Every mistake is still reported."""
    elapsed, error = _timed_refusal({
        "program": HEAD_PROGRAM, "tiers": [{"id": "basic"}],
        "promotions": [{"id": "p", "bonus_points": 1, "categories": [""] * 2000}]})
    assert elapsed < BUDGET and len(error.diagnostics) == 2000
    elapsed, error = _timed_refusal({
        "program": HEAD_PROGRAM, "perks": [{"id": f"perk{i}"} for i in range(2000)],
        "tiers": [{"id": "basic", "perks": [f"prek{i}" for i in range(2000)]}]})
    assert elapsed < BUDGET and len(error.diagnostics) == 2000
    assert error.diagnostics[0].hint == "did you mean 'perk0'?"


def _promotions_benchmark() -> Any:
    """benchmarks/promotions.py, the generator of the large programs below."""
    spec = importlib.util.spec_from_file_location(
        "_promotions_benchmark", Path(__file__).resolve().parent.parent / "benchmarks"
        / "promotions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_seconds(make: Any, count: int) -> float:
    """The fastest of three loads: a program's cost, not the machine's other work."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        make(count)
        times.append(time.perf_counter() - start)
    return min(times)


def test_a_thousand_promotions_cost_ten_times_a_hundred_to_load() -> None:
    """The benchmark's 1,000-promotion program (benchmarks/promotions.py) loads at most a
    few times slower per promotion than 100 do: no section costs the square of its length
    (which would be 100 times the cost). How long it takes (0.1–0.2 s here, the performance
    issue's bound is 1 s) is benchmarked, not asserted (`python -m benchmarks.run`)."""
    module = _promotions_benchmark()
    assert len(module.many_promotions_program(1000).model.promotions) == 1000
    small = _load_seconds(module.many_promotions_program, 100)
    large = _load_seconds(module.many_promotions_program, 1000)
    assert large < 30 * small, (small, large)


def test_a_thousand_earn_rules_cost_ten_times_a_hundred_to_load() -> None:
    """Regression: a program of 1,000 earn rules took 1.8–3 s to load, every rule written
    out in the generated decision and again in its traced twin, and compiled. Past 64 earn
    rules (or multipliers) the generated decision runs the plan's loop over them, and the
    engine writes the trace, as for promotions (0.09 s here for 1,000)."""
    module = _promotions_benchmark()
    assert len(module.many_earn_rules_program(1000).model.earn) == 1000
    small = _load_seconds(module.many_earn_rules_program, 100)
    large = _load_seconds(module.many_earn_rules_program, 1000)
    assert large < 30 * small, (small, large)


def test_a_thousand_earn_rules_earn_what_they_earned_when_written_out() -> None:
    """The fast-loading program of 1,000 earn rules earns, compiled, exactly what it earned
    when every rule was written out (the totals pinned from then) and what the plan
    interpreter gives, trace on and off."""
    program = _promotions_benchmark().many_earn_rules_program(1000)
    assert "earn_lines(" in (program.plan().decide.__doc__ or "")  # (not written out)
    cases = [
        ({"id": "m1", "tier": "gold"},
         {"id": "t1", "at": "2026-05-08T10:00:00+08:00", "channel": "online",
          "items": [{"sku": "a", "category": "beauty", "amount": "250.00"},
                    {"sku": "b", "category": "food", "amount": "99.99"}]},
         56574, 679),
        ({"id": "m2", "tier": "basic"},
         {"id": "t2", "at": "2026-11-11T20:00:00+08:00", "channel": "store",
          "items": [{"sku": "c", "category": "toys", "amount": "35.50"}]},
         6582, 598),
        ({"id": "m3", "tier": "basic", "points": 500},
         {"id": "t3", "at": "2026-02-01T09:00:00+08:00", "channel": "app",
          "items": [{"sku": "d", "category": "home", "amount": "1200.00"},
                    {"sku": "e", "category": "books", "amount": "18.80"}],
          "shipping": "12.00", "paid_with_points": "100.00"},
         188544, 677),
    ]
    for member, txn, points, lines in cases:
        for trace in (False, True):
            compiled = lr.evaluate(program, member, txn, trace=trace)
            assert (compiled.points_total, len(compiled.points)) == (points, lines)
            assert compiled.model_dump_json() == lr.evaluate(
                program, member, txn, trace=trace, mode="interpreted").model_dump_json()


def test_many_large_when_values_stay_fast() -> None:
    """Hundreds of maximum-size expressions in one program still load within the budget."""
    expr = " and ".join(["txn.amount > 1"] * 13)
    rules = "".join(
        f"  - id: p{n}\n    bonus_points: 1\n    when: {json.dumps(expr)}\n" for n in range(300)
    )
    start = time.perf_counter()
    program = lr.load_program(HEAD + "promotions:\n" + rules)
    decision = lr.evaluate(program, MEMBER, TXN)
    assert time.perf_counter() - start < 3 * BUDGET
    assert decision.points_total == 300


# -- nothing is ever executed ----------------------------------------------------------------------


def sentinel_attacks(sentinel: Path) -> Iterator[str]:
    target = str(sentinel)
    command = json.dumps(f"touch {target}")
    yield HEAD + f"promotions:\n  - id: p\n    bonus_points: 1\n" \
        f"    when: !!python/object/apply:os.system [{command}]\n"
    yield HEAD + f"x: !!python/object/apply:subprocess.call [[touch, {json.dumps(target)}]]\n"
    yield HEAD + f"x: !!python/object/apply:builtins.open [{json.dumps(target)}, w]\n"
    for expr in (
        f"open({target!r}, 'w')",
        f"__import__('os').system('touch {target}')",
        f"__import__('pathlib').Path({target!r}).touch()",
        f"exec(\"open({target!r}, 'w')\")",
        f"eval(\"__import__('os').system('touch {target}')\")",
        f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']"
        f"[0](['touch', {target!r}])",
    ):
        yield program_with(expr)


def test_load_program_never_executes_anything(tmp_path: Path) -> None:
    """Loading hostile programs never runs code: the sentinel file is never created."""
    sentinel = tmp_path / "pwned"
    attempts = list(sentinel_attacks(sentinel))
    assert len(attempts) == 9
    for text in attempts:
        start = time.perf_counter()
        with pytest.raises(lr.ProgramError):
            lr.load_program(text)
        assert time.perf_counter() - start < BUDGET
        assert not sentinel.exists()


def test_load_program_from_dict_never_executes_anything(tmp_path: Path) -> None:
    """A dict program carrying hostile expressions is refused the same way as YAML."""
    sentinel = tmp_path / "pwned"
    data = {
        "program": {"id": "sec", "version": "1", "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}],
        "promotions": [
            {"id": "p", "bonus_points": 1,
             "when": f"__import__('os').system('touch {sentinel}')"},
        ],
    }
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(data)
    assert not sentinel.exists()
    assert info.value.diagnostics[0].path == ("promotions", 0, "when")


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("txn.id == '\x00'", "null bytes"),
        ("txn.id == '\ud800'", "surrogates not allowed"),
        ("txn.id\x00 == 'x'", "null bytes"),
    ],
)
def test_unparseable_text_from_a_dict_is_a_program_error(expr: str, fragment: str) -> None:
    """Text YAML could never carry (NUL, lone surrogates) still gives a clean ProgramError."""
    data = {
        "program": {"id": "sec", "version": "1", "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}],
        "promotions": [{"id": "p", "bonus_points": 1, "when": expr}],
    }
    with pytest.raises(lr.ProgramError) as info:
        lr.load_program(data)
    assert fragment in info.value.diagnostics[0].message


# -- what the evaluator can reach at run time ----------------------------------------------------


def runtime_scope() -> Scope:
    return Scope(
        member={"id": "m-1", "tier": "basic", "tier_rank": 0, "points": 1,
                "qualifying_spend": Decimal(0), "orders": 0, "birthday": date(1990, 5, 8),
                "joined": None, "last_purchase": None, "attrs": {"vip": True}},
        txn={"id": "t-1", "amount": Decimal("250.00"), "channel": "store", "store": None,
             "at": datetime(2026, 5, 8, 10, tzinfo=timezone(timedelta(hours=8))),
             "date": date(2026, 5, 8), "weekday": 5, "hour": 10, "items_count": 1,
             "quantity": 2, "shipping": Decimal(0), "tax": Decimal(0),
             "paid_with_points": Decimal(0), "attrs": {}},
        items=[{"sku": "A1", "category": "food", "quantity": 2, "amount": Decimal("250.00"),
                "attrs": {"organic": True}}],
        today=date(2026, 5, 8),
        birthday_test=lambda kind: False,
    )


SAFE_LEAF_TYPES = (str, int, bool, Decimal, date, datetime, type(None))
DOCUMENTED_BUILTINS = {min, max, abs, len}


def reachable_values(value: Any, depth: int = 0) -> Iterator[Any]:
    """Every value an expression could read from value by attributes and indexes."""
    assert depth < 10
    yield value
    if isinstance(value, (list, tuple)):
        for element in value:
            yield from reachable_values(element, depth + 1)
    elif not isinstance(value, SAFE_LEAF_TYPES):
        public = [name for name in dir(value) if not name.startswith("_")]
        assert public == [], f"{type(value).__name__} exposes {public}"
        fields = object.__getattribute__(value, "_fields")
        for field_value in fields.values():
            yield from reachable_values(field_value, depth + 1)


def test_runtime_functions_are_exactly_the_documented_helpers() -> None:
    """The evaluator offers exactly the documented functions: no classes, modules or extras."""
    evaluator = runtime_scope().evaluator
    assert set(evaluator.functions) == set(FUNCTIONS)
    for name, function in evaluator.functions.items():
        assert not isinstance(function, type), f"{name} is the class {function!r}"
        assert not isinstance(function, types.ModuleType), name
        assert isinstance(function, (types.FunctionType, types.BuiltinFunctionType)), name
        if isinstance(function, types.BuiltinFunctionType):
            assert function in DOCUMENTED_BUILTINS, name
            assert getattr(builtins, name) is function
        else:
            assert function.__module__ == "loyaltyrules._expressions", name


def test_runtime_names_hold_only_plain_values() -> None:
    """The names hold records, lists, text, numbers and dates: nothing callable or importable."""
    evaluator = runtime_scope().evaluator
    assert set(evaluator.names) == set(INVARIANT_NAMES)
    seen = 0
    for value in evaluator.names.values():
        for reached in reachable_values(value):
            seen += 1
            assert not isinstance(reached, (type, types.ModuleType))
            assert not callable(reached), repr(reached)
    assert seen > 20


def test_runtime_evaluator_runs_only_checked_syntax() -> None:
    """Even a tree that skipped the load checks cannot use comprehensions, f-strings or shifts."""
    import ast

    evaluator = runtime_scope().evaluator
    forbidden = {ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp, ast.Dict, ast.Set,
                 ast.JoinedStr, ast.FormattedValue, ast.Slice, ast.Assign, ast.AugAssign,
                 ast.Import, ast.Lambda, ast.NamedExpr, ast.keyword}
    assert not forbidden & set(evaluator.nodes)
    assert not {ast.LShift, ast.RShift, ast.BitOr, ast.BitAnd, ast.BitXor, ast.Invert,
                ast.MatMult} & set(evaluator.operators)
    unchecked: list[tuple[str, str]] = [
        ("[c for c in items]", "FeatureNotAvailable"),
        ("f'{txn}'", "FeatureNotAvailable"),
        ("today.replace(year=1)", "FeatureNotAvailable"),
        ("txn.channel.upper()", "FeatureNotAvailable"),
        ("list(items)", "FunctionNotDefined"),
        ("1 << 2", "OperatorNotDefined"),
    ]
    scope = runtime_scope()
    for source, error in unchecked:
        tree = ast.parse(source, mode="eval")
        expression = Expression(source=source, tree=tree, names=frozenset())
        with pytest.raises(Exception) as info:
            expression.evaluate(scope)
        assert type(info.value).__name__ == "ExpressionRuntimeError"
        assert error in str(info.value), (source, str(info.value))


def test_records_expose_no_methods() -> None:
    """member, txn and items[0] records answer only their fields, never a method or internal."""
    evaluator = runtime_scope().evaluator
    for record in (evaluator.names["member"], evaluator.names["txn"], evaluator.names["items"][0]):
        assert [name for name in dir(record) if not name.startswith("_")] == []
        with pytest.raises(AttributeError):
            record.keys  # noqa: B018
        with pytest.raises(AttributeError):
            record.anything = 1



@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("expr", [
    "member.attrs.keys == 1",
    "member.attrs['__class__'] == 1",
    "items[0].attrs['__init__'] == 1",
    "txn.attrs.nothing == 1",
])
def test_host_data_keys_never_reach_methods_or_internals(expr: str, mode: str) -> None:
    """attrs are host data only: a method or dunder name is just a key the host did not send
    (None), so these conditions are false instead of reaching anything."""
    program = lr.load_program(program_with(expr))
    decision = evaluate(program, mode)
    assert "promo" not in decision.rules_fired
