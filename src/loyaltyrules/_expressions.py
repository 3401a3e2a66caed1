"""Condition expressions: simpleeval over a fixed, documented set of names and functions.

An expression is parsed, size-checked, allow-listed node by node and name-checked when the
program loads (:func:`parse_expression`), so a typo such as ``txn.chanel`` is a load error
with a suggestion. At run time it is evaluated by simpleeval over plain values the engine
builds; nothing in the evaluation namespace is a module, a class or a callable other than
the helper functions below.
"""

from __future__ import annotations

import ast
import copy
import decimal
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from simpleeval import (
    DISALLOW_METHODS,
    DISALLOW_PREFIXES,
    MAX_POWER,
    EvalWithCompoundTypes,
    NumberTooHigh,
    safe_power,
)

from ._errors import did_you_mean
from ._money import CONTEXT

__all__ = [
    "DECISION_FIELDS",
    "EVENT_FIELDS",
    "FUNCTIONS",
    "INVARIANT_NAMES",
    "ITEM_FIELDS",
    "MAX_BUILT_LENGTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_EXPRESSION_NODES",
    "MEMBER_FIELDS",
    "NAMES",
    "TXN_FIELDS",
    "Expression",
    "ExpressionError",
    "ExpressionRuntimeError",
    "LimitExceeded",
    "parse_expression",
]

MAX_EXPRESSION_LENGTH = 500
MAX_EXPRESSION_NODES = 120
MAX_EXPRESSION_DEPTH = 16
MAX_INT_LITERAL = 10**15
MAX_STRING_LITERAL = 200
MAX_POWER_EXPONENT = 8
MAX_SEQUENCE_LITERAL = 50
MAX_BUILT_LENGTH = 1000
"""Longest text or list that ``+`` or ``*`` may build while an expression runs."""

# Field name → type name. These tables are the documented vocabulary (docs/expressions.md).
MEMBER_FIELDS: dict[str, str] = {
    "id": "str",
    "tier": "str",
    "tier_rank": "int",
    "points": "int",
    "qualifying_spend": "money",
    "orders": "int",
    "birthday": "date?",
    "joined": "date?",
    "last_purchase": "date?",
    "attrs": "map",
}
TXN_FIELDS: dict[str, str] = {
    "id": "str",
    "amount": "money",
    "channel": "str",
    "store": "str?",
    "at": "datetime",
    "date": "date",
    "weekday": "int",
    "hour": "int",
    "items_count": "int",
    "quantity": "int",
    "shipping": "money",
    "tax": "money",
    "paid_with_points": "money",
    "attrs": "map",
}
ITEM_FIELDS: dict[str, str] = {
    "sku": "str",
    "category": "str",
    "quantity": "int",
    "amount": "money",
    "attrs": "map",
}
_DATE_FIELDS = {"year": "int", "month": "int", "day": "int"}
_DATETIME_FIELDS = {**_DATE_FIELDS, "hour": "int", "minute": "int"}
EVENT_FIELDS: dict[str, str] = {
    "id": "str",
    "type": "str",
    "channel": "str",
    "attrs": "map",
}
DECISION_FIELDS: dict[str, str] = {
    "list_amount": "money",
    "total_discount": "money",
    "goods_paid": "money",
    "payable": "money",
    "paid_with_points": "money",
    "redeemed_points": "int",
    "qualifying_spend": "money",
    "points_total": "int",
    "tier_before": "str",
    "tier_after": "str",
    "tier_changed": "bool",
    "benefits_tier": "str",
    "perks_count": "int",
    "discounts_count": "int",
}
_TYPE_FIELDS: dict[str, dict[str, str]] = {
    "decision": DECISION_FIELDS,
    "event": EVENT_FIELDS,
    "member": MEMBER_FIELDS,
    "txn": TXN_FIELDS,
    "item": ITEM_FIELDS,
    "date": _DATE_FIELDS,
    "date?": _DATE_FIELDS,
    "datetime": _DATETIME_FIELDS,
}

NAMES: dict[str, str] = {
    "member": "member",
    "txn": "txn",
    "items": "list[item]",
    "tier": "str",
    "today": "date",
    "event": "event",
}

# invariants (program-declared properties) may also read the decision
INVARIANT_NAMES: dict[str, str] = {**NAMES, "decision": "decision"}


@dataclass(frozen=True)
class _FunctionSpec:
    min_args: int
    max_args: int | None
    returns: str
    doc: str


FUNCTIONS: dict[str, _FunctionSpec] = {
    "amount_in": _FunctionSpec(1, None, "money", "sum of item amounts in these categories"),
    "quantity_in": _FunctionSpec(1, None, "int", "total quantity of items in these categories"),
    "has_category": _FunctionSpec(1, None, "bool", "some item is in one of these categories"),
    "has_sku": _FunctionSpec(1, None, "bool", "some item has one of these SKUs"),
    "days_since": _FunctionSpec(1, 1, "int", "whole days from a date to today (None if None)"),
    "is_birthday": _FunctionSpec(
        0, 1, "bool", "today is the member's birthday 'date'/'week'/'month'"
    ),
    "date": _FunctionSpec(3, 3, "date", "a date from year, month, day"),
    "year": _FunctionSpec(1, 1, "int", "year of a date"),
    "month": _FunctionSpec(1, 1, "int", "month of a date (1-12)"),
    "day": _FunctionSpec(1, 1, "int", "day of month of a date"),
    "weekday": _FunctionSpec(1, 1, "int", "ISO weekday of a date, Monday = 1 … Sunday = 7"),
    "min": _FunctionSpec(1, None, "any", "smallest argument"),
    "max": _FunctionSpec(1, None, "any", "largest argument"),
    "abs": _FunctionSpec(1, 1, "any", "absolute value"),
    "len": _FunctionSpec(1, 1, "int", "number of elements"),
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.List,
    ast.Tuple,
)

_NODE_WORDS: dict[type[ast.AST], str] = {
    ast.ListComp: "list comprehensions",
    ast.SetComp: "set comprehensions",
    ast.DictComp: "dict comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.Lambda: "lambda functions",
    ast.keyword: "keyword arguments (name=value)",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.JoinedStr: "f-strings",
    ast.Starred: "unpacking expressions (*x)",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.Slice: "slices",
    ast.Await: "await expressions",
    ast.Yield: "yield expressions",
    ast.BitAnd: "bitwise operators",
    ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators",
    ast.LShift: "shift operators",
    ast.RShift: "shift operators",
    ast.Invert: "bitwise operators",
    ast.MatMult: "the @ operator",
}


class ExpressionError(ValueError):
    """An expression is not acceptable; the message is written for a program designer."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


class ExpressionRuntimeError(Exception):
    """Evaluating an expression raised; the engine turns this into an EvaluationError."""


def date_field(value: date | datetime | None, name: str) -> int:
    """``.year``/``.month``/… of a date that may be missing (``member.birthday``): one
    message whether the expression is compiled or interpreted."""
    if value is None:
        raise TypeError(f"cannot read .{name} of None (the date is not set)")
    field: int = getattr(value, name)
    return field


class _Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval, with a missing date's field refused as the compiled code refuses it, and
    a host's map read by key whatever the key is called, as the compiled code reads it."""

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr in _DATETIME_FIELDS and self._eval(node.value) is None:
            date_field(None, node.attr)
        if node.attr in DISALLOW_METHODS or node.attr.startswith(_DISALLOWED_PREFIXES):
            # simpleeval refuses these names (format, mro, exec, func_*) on any object
            # before it looks at the object; on a map of attrs they are keys the host sent,
            # data like any other (`member.attrs.format`), not methods: read as the compiled
            # code reads them. (`_` names never get here: refused at load.)
            value = self._eval(node.value)
            if type(value) is _Attrs:
                return value[node.attr]
        return super()._eval_attribute(node)


_DISALLOWED_PREFIXES = tuple(DISALLOW_PREFIXES)


def _singleton(node: ast.AST) -> bool:
    """None, True or False as written: what ``is`` compares with (identity of anything else,
    ``-1000`` or ``(2000 - 1)`` included, depends on the interpreter)."""
    return isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool))


# Values that are wholes, not values: compared, ordered, looked up in or computed with,
# they behave differently in the two evaluation modes (and mean nothing to a designer)
_WHOLES = {"member": "the member", "txn": "the transaction", "event": "the event",
           "item": "a whole item", "decision": "the decision", "map": "a map of attrs",
           "list[item]": "the list of items"}
_RECORDS = {"member", "txn", "event", "item", "decision"}


def _not_a_value(source: str, node: ast.expr, kind: str) -> ExpressionError:
    written = ast.get_source_segment(source, node) or "a value"
    if kind == "map":
        hint = f"use one of its values, such as {written}['vip']"
    elif kind == "list[item]":
        hint = "use len(items), or a field of one item such as items[0].sku"
    else:
        hint = f"use one of its fields, such as {written}.{_EXAMPLE_FIELD[kind]}"
    return ExpressionError(f"`{written}` is {_WHOLES[kind]}, not a value", hint)


_EXAMPLE_FIELD = {"member": "tier", "txn": "amount", "event": "type", "item": "sku",
                  "decision": "payable"}


def _check(tree: ast.Expression, source: str,
           names_in_scope: Mapping[str, str] | None = None, condition: bool = False
           ) -> frozenset[str]:
    scope_names = NAMES if names_in_scope is None else names_in_scope
    count = 0
    used: set[str] = set()

    def depth_walk(node: ast.AST, depth: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_EXPRESSION_NODES:
            raise ExpressionError(
                f"expression is too complex (more than {MAX_EXPRESSION_NODES} parts)"
            )
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_EXPRESSION_DEPTH} levels")
        if not isinstance(node, _ALLOWED_NODES):
            what = _NODE_WORDS.get(type(node), type(node).__name__)
            raise ExpressionError(f"{what} are not allowed in expressions")
        for child in ast.iter_child_nodes(node):
            depth_walk(child, depth + 1)

    depth_walk(tree, 0)

    def type_of(node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            if node.id in scope_names:
                used.add(node.id)
                return scope_names[node.id]
            if node.id in FUNCTIONS:
                raise ExpressionError(f"{node.id!r} is a function; call it like {node.id}(…)")
            known = list(scope_names) + list(FUNCTIONS)
            raise ExpressionError(f"unknown name {node.id!r}", _name_hint(node.id, known))
        if isinstance(node, ast.Attribute):
            base = type_of(node.value)
            if node.attr.startswith("_"):
                raise ExpressionError(f"attribute {node.attr!r} is not allowed")
            if base == "map":
                return "any"
            fields = _TYPE_FIELDS.get(base)
            if fields is None:
                raise ExpressionError(f"cannot read .{node.attr} of {_TYPE_WORDS.get(base, base)}")
            if node.attr not in fields:
                owner = base.rstrip("?")
                raise ExpressionError(
                    f"{owner} has no field {node.attr!r}", did_you_mean(node.attr, list(fields))
                )
            return fields[node.attr]
        if isinstance(node, ast.Subscript):
            base = type_of(node.value)
            index = node.slice
            if base == "list[item]":
                if not (isinstance(index, ast.Constant) and type(index.value) is int):
                    raise ExpressionError("items[...] needs a whole-number index such as items[0]")
                return "item"
            if base == "map":
                if not (isinstance(index, ast.Constant) and isinstance(index.value, str)):
                    raise ExpressionError("attrs[...] needs a quoted key such as attrs['vip']")
                return "any"
            raise ExpressionError(f"cannot index {_TYPE_WORDS.get(base, base)}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ExpressionError("only the documented helper functions can be called")
            name = node.func.id
            spec = FUNCTIONS.get(name)
            if spec is None:
                raise ExpressionError(f"unknown function {name!r}",
                                      did_you_mean(name, list(FUNCTIONS)))
            if node.keywords:
                raise ExpressionError(f"{name}() takes no keyword arguments")
            n = len(node.args)
            if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
                expected = (
                    f"{spec.min_args}" if spec.max_args == spec.min_args
                    else f"at least {spec.min_args}" if spec.max_args is None
                    else f"{spec.min_args} to {spec.max_args}"
                )
                raise ExpressionError(f"{name}() takes {expected} argument(s), got {n}")
            if name == "is_birthday" and node.args:
                arg = node.args[0]
                if not (isinstance(arg, ast.Constant) and arg.value in ("date", "week", "month")):
                    raise ExpressionError("is_birthday() takes 'date', 'week' or 'month'")
            kinds = []
            for arg in node.args:
                kind = type_of(arg)
                if kind in _WHOLES and not (name == "len" and kind in ("map", "list[item]")):
                    raise _not_a_value(source, arg, kind)
                kinds.append(kind)
            _arguments_fit(name, node.args, kinds, source)
            return spec.returns
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or value is None:
                return "bool"
            if isinstance(value, int):
                if abs(value) > MAX_INT_LITERAL:
                    raise ExpressionError(f"number {value} is too large")
                return "int"
            if isinstance(value, float):
                if not math.isfinite(value):
                    written = ast.get_source_segment(source, node) or repr(value)
                    raise ExpressionError(f"number {written} is too large")
                return "money"
            if isinstance(value, str):
                if len(value) > MAX_STRING_LITERAL:
                    raise ExpressionError(
                        f"text literals are limited to {MAX_STRING_LITERAL} characters"
                    )
                return "str"
            raise ExpressionError(f"literal {value!r} is not allowed")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                exp = node.right
                if not (
                    isinstance(exp, ast.Constant)
                    and type(exp.value) is int
                    and 0 <= exp.value <= MAX_POWER_EXPONENT
                ):
                    raise ExpressionError(
                        f"** needs a whole-number exponent from 0 to {MAX_POWER_EXPONENT}"
                    )
            for operand in (node.left, node.right):
                kind = type_of(operand)
                if kind in _WHOLES:
                    raise _not_a_value(source, operand, kind)
            divisor = node.right
            while isinstance(divisor, ast.UnaryOp) and isinstance(divisor.op,
                                                                   (ast.USub, ast.UAdd)):
                divisor = divisor.operand  # (-0 is 0)
            if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and isinstance(
                    divisor, ast.Constant) and not isinstance(divisor.value, (str, bool)) \
                    and divisor.value is not None and divisor.value == 0:
                raise ExpressionError(f"`{ast.get_source_segment(source, node)}` divides by "
                                      "0, which has no answer")
            if isinstance(node.op, ast.Mod) and may_be_text(node.left):
                # '%0999999999d' % 1 would build a gigabyte: % is arithmetic only.
                raise ExpressionError("% works on numbers only; text cannot be formatted with %")
            return "any"
        if isinstance(node, (ast.List, ast.Tuple)):
            if len(node.elts) > MAX_SEQUENCE_LITERAL:
                raise ExpressionError(f"lists are limited to {MAX_SEQUENCE_LITERAL} elements")
            for elt in node.elts:
                type_of(elt)
            return "list"
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            kind = type_of(node.operand)
            if kind in _WHOLES:
                raise _not_a_value(source, node.operand, kind)
            return "any"
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.expr_context, ast.boolop, ast.operator,
                                      ast.unaryop, ast.cmpop)):
                type_of(child)
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            types = [type_of(o) for o in operands]
            for k, op in enumerate(node.ops):
                if isinstance(op, (ast.Is, ast.IsNot)):
                    if not (_singleton(operands[k]) or _singleton(operands[k + 1])):
                        # identity with a number or text depends on the interpreter (and
                        # compiling it warns): only None, True and False go with `is`
                        raise ExpressionError("`is` only compares with None, True or False; "
                                              "use == for other values")
                    continue
                # a whole record or map is only ever looked in (`'vip' in member.attrs`)
                whole = [j for j in (k, k + 1) if types[j] in _WHOLES]
                if isinstance(op, (ast.In, ast.NotIn)):
                    whole = [j for j in whole if j == k or types[j] in _RECORDS]
                if whole:
                    raise _not_a_value(source, operands[whole[0]], types[whole[0]])
            _same_kinds(operands, node.ops, types, source)
        return "any"

    def may_be_text(node: ast.AST) -> bool:
        """Could this (already checked) operand be text from the program's literals or a text
        field? Values of ``attrs`` come from the host and are guarded at run time instead."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            return type_of(node) in ("str", "str?")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in ("min", "max", "abs"):
                return any(may_be_text(arg) for arg in node.args)
            return False
        if isinstance(node, ast.IfExp):
            return may_be_text(node.body) or may_be_text(node.orelse)
        if isinstance(node, ast.BoolOp):
            return any(may_be_text(value) for value in node.values)
        if isinstance(node, ast.BinOp):
            return may_be_text(node.left) or may_be_text(node.right)
        return False

    type_of(tree.body)
    if condition:
        _yes_or_no(tree.body, type_of, source)
    _no_part_of_written_text(tree, source)
    return frozenset(used)


def _no_part_of_written_text(tree: ast.Expression, source: str) -> None:
    """``txn.channel in 'app, wechat'`` asks whether the channel is a part of that text: a
    channel "chat", or "a", would match. Meant is a choice, ``in ('app', 'wechat')``; a
    part of text the host sends (``'vip' in member.attrs.tags``) is another matter."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, ast.Constant) \
                        and isinstance(right.value, str):
                    written = ast.get_source_segment(source, node) or "the expression"
                    choices = [part.strip() for part in re.split("[,，、]+", right.value)
                               if part.strip()]
                    negated = isinstance(op, ast.NotIn)
                    if not choices:
                        raise ExpressionError(
                            f"`{written}` tests for a part of the text {right.value!r}, which "
                            "names no choice at all",
                            "write a choice with parentheses: in ('app', 'web')")
                    if len(choices) == 1:
                        hint = f"write {'!=' if negated else '=='} {choices[0]!r}"
                    else:
                        hint = (f"write a choice with parentheses: {'not in' if negated else 'in'}"
                                f" ({', '.join(repr(c) for c in choices)})")
                    raise ExpressionError(
                        f"`{written}` tests for a part of the text {right.value!r} (so "
                        f"would {right.value[:1]!r}), not for one of a choice", hint)


def _yes_or_no(node: ast.expr, type_of: Callable[[ast.AST], str], source: str) -> None:
    """Every expression is a condition: one that can only work out a number, text, a date or
    a list (``txn.amount``, ``txn.amount >= 1,000``) would load and fail on every purchase
    it is asked of ("gave (True, 0), not true or false"), so it is refused here."""
    if isinstance(node, (ast.Compare, ast.UnaryOp)) and not (
            isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not)):
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _yes_or_no(value, type_of, source)
        return
    if isinstance(node, ast.IfExp):
        _yes_or_no(node.body, type_of, source)
        _yes_or_no(node.orelse, type_of, source)
        return
    written = ast.get_source_segment(source, node) or "the expression"
    if isinstance(node, ast.Tuple):
        raise ExpressionError(
            f"`{written}` is a list of values (a comma separates values), not yes or no",
            "write numbers without thousands commas (1000, not 1,000), and a choice "
            "with parentheses: txn.channel in ('app', 'store')")
    if isinstance(node, ast.BinOp):
        sides = (node.left, node.right)
        text = any((isinstance(n, ast.Constant) and isinstance(n.value, str))
                   or type_of(n) in ("str", "str?") for n in sides)
        kind = "text" if text else "a number"
    elif isinstance(node, ast.UnaryOp):
        kind = "a number"
    elif isinstance(node, ast.Constant):
        constant = node.value
        if isinstance(constant, bool):
            return
        kind = ("nothing" if constant is None else "text" if isinstance(constant, str)
                else "a number")
    else:
        kind_of = type_of(node)
        if kind_of in _WHOLES:
            raise _not_a_value(source, node, kind_of)
        found = _NOT_YES_NO.get(kind_of)
        if found is None:  # yes/no, or a host's value (attrs) that may be
            return
        kind = found
    raise ExpressionError(f"`{written}` is {kind}, not yes or no",
                          "compare it, e.g. txn.amount >= 100, or test it, e.g. "
                          "member.birthday is not None")


# a value's kind in a designer's words, for messages
_TYPE_WORDS = {"any": "a value the host sends (attrs) or a helper gives", "money": "a number",
               "money?": "a number", "int": "a whole number", "int?": "a whole number",
               "str": "text", "str?": "text", "bool": "yes or no", "list": "a list",
               "list[item]": "the list of items (use items[0] for the first)",
               "date": "a date (it has year, month, day)", "date?": "a date",
               "datetime": "a date-time", "member": "the member", "txn": "the transaction",
               "event": "the event", "item": "an item", "decision": "the decision",
               "map": "attrs (use attrs['key'])"}


_NOT_COUNTED = {"money", "money?", "int", "int?", "date", "date?", "datetime", "bool"}


def _arguments_fit(name: str, args: list[ast.expr], kinds: list[str], source: str) -> None:
    """Arguments the checker can see are wrong, refused at load rather than failing on
    every purchase: a date that does not exist, len() of a number, max() of one number."""
    if name == "date" and all(isinstance(a, ast.Constant) and type(a.value) is int
                              for a in args):
        year, month, day = (a.value for a in args)  # type: ignore[attr-defined]
        try:
            date(year, month, day)
        except ValueError as exc:
            raise ExpressionError(f"date({year}, {month}, {day}) is no date: {exc}") from None
    if name == "len" and kinds[0] in _NOT_COUNTED:
        written = ast.get_source_segment(source, args[0]) or "it"
        what = ("nothing" if isinstance(args[0], ast.Constant) and args[0].value is None
                else _TYPE_WORDS[kinds[0]])
        raise ExpressionError(f"len() counts the elements of a list or the letters of text; "
                              f"`{written}` is {what}")
    if name in ("min", "max") and len(args) == 1 and kinds[0] in _NOT_COUNTED:
        written = ast.get_source_segment(source, args[0]) or "it"
        raise ExpressionError(f"{name}() of one value needs a list; `{written}` is "
                              f"{_TYPE_WORDS[kinds[0]]}", f"{name}(a, b) compares two values")


def _name_hint(name: str, known: list[str]) -> str | None:
    """What an unknown name probably meant: a capital's slip, a field without its owner
    (`channel` for `txn.channel`), `decision` outside an invariant, a word meant as text."""
    lowered = name.lower()
    if lowered in ("true", "false", "yes", "no"):
        return f"write {'True' if lowered in ('true', 'yes') else 'False'}, with a capital"
    if lowered in ("null", "none", "nil", "undefined"):
        return "write None, with a capital, for a value that is not there"
    if lowered in known:
        return f"did you mean {lowered!r}? (names are in lower case)"
    if lowered == "decision":
        return "decision is read only in invariants[].expect, after the purchase is decided"
    if lowered in ("now", "date_today", "current_date"):
        return "did you mean today (the purchase's local date) or txn.at (its moment)?"
    owners = [f"{owner}.{lowered}" for owner, fields in (
        ("txn", TXN_FIELDS), ("member", MEMBER_FIELDS), ("event", EVENT_FIELDS))
        if lowered in fields and owner in known]
    if owners:
        return f"did you mean {' or '.join(owners)}?"
    return did_you_mean(name, known) or f"text is written in quotes: '{name}'"


# What a compared value is, where the checker knows: values of different kinds are never
# equal, and ordering them raises at run time (a date and the text '2026-11-11', say)
_KINDS = {"money": "a number", "int": "a number", "str": "text", "str?": "text",
          "date": "a date", "date?": "a date", "datetime": "a date-time"}
# ... and what a condition cannot be (the same words; a value that may be missing too)
_NOT_YES_NO = {**_KINDS, "int?": "a number", "money?": "a number", "list": "a list"}


def _same_kinds(operands: list[ast.expr], ops: list[ast.cmpop], types: list[str],
                source: str) -> None:
    for k, op in enumerate(ops):
        if isinstance(op, (ast.In, ast.NotIn, ast.Is, ast.IsNot)):
            continue
        left, right = _KINDS.get(types[k]), _KINDS.get(types[k + 1])
        if left is None or right is None or left == right:
            continue
        a = ast.get_source_segment(source, operands[k]) or "a value"
        b = ast.get_source_segment(source, operands[k + 1]) or "a value"
        never = "are never equal" if isinstance(op, (ast.Eq, ast.NotEq)) else \
            "cannot be compared"
        hint = None
        if {left, right} == {"a date", "text"}:
            hint = "write a date as date(2026, 11, 11)"
        elif {left, right} == {"a number", "text"}:
            text_side = operands[k] if left == "text" else operands[k + 1]
            hint = "write a number without quotes" if isinstance(text_side, ast.Constant) \
                else "write text in quotes, as in txn.channel == 'online'"
        elif {left, right} == {"a date", "a date-time"}:
            hint = "compare dates with today or txn.date, times with txn.at"
        raise ExpressionError(f"`{a}` is {left} and `{b}` is {right}: they {never}", hint)


def tiers_named(expr: Expression) -> list[str]:
    """The text literals ``expr`` compares a tier with (``tier == 'gold'``, ``member.tier in
    ['gold', 'diamond']``): what the program's tier ids can be checked against at load."""
    def is_tier(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id == "tier") or (
            isinstance(node, ast.Attribute) and node.attr == "tier"
            and isinstance(node.value, ast.Name) and node.value.id == "member")

    def texts(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [e.value for e in node.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return []

    found: list[str] = []
    for node in ast.walk(expr.tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for k in range(len(node.ops)):
                left, right = operands[k], operands[k + 1]
                if is_tier(left):
                    found += texts(right)
                elif is_tier(right):
                    found += texts(left)
    return found


class _DecimalLiterals(ast.NodeTransformer):
    """Turn float literals into exact Decimals, so ``amount * 0.1`` stays exact money: read
    from the text as written (``9.999999999999999999`` is not the float 10.0, and ``1e-400``
    is not 0)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, float):
            written = ast.get_source_segment(self.source, node)
            exact: Any = Decimal(written if written is not None else repr(node.value))
            return ast.copy_location(ast.Constant(value=exact), node)
        return node


@dataclass(frozen=True)
class Expression:
    """A parsed, checked condition. ``repr`` shows its source, as a trace does."""

    source: str
    tree: ast.Expression = field(repr=False, compare=False)
    names: frozenset[str] = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __str__(self) -> str:
        return self.source

    def evaluate(self, scope: Scope) -> Any:
        try:
            return scope.evaluator.eval(self.source, previously_parsed=self.tree.body)
        except ExpressionRuntimeError:
            raise
        except Exception as exc:  # simpleeval and operand errors alike
            raise ExpressionRuntimeError(f"`{self.source}` raised {error_words(exc)}") from None

    def explain(self, scope: Scope) -> str:
        """Why a condition came out false: the first failing part and the values it read."""
        node: ast.expr = self.tree.body
        while isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for part in node.values:
                try:
                    held = self._eval_node(part, scope)
                except Exception:  # (the explanation must never fail: a part that cannot
                    held = False  # be read is where it stops, its values shown as errors)
                if not held:
                    node = part
                    break
            else:
                break
        values: list[str] = []
        for ref in _references(node):
            text = ast.unparse(ref)
            try:
                shown = _show(self._eval_node(ref, scope))
            except Exception as exc:  # the explanation must never fail
                shown = f"<{type(exc).__name__}>"
            entry = f"{text} = {shown}"
            if entry not in values:
                values.append(entry)
        written = ast.unparse(_restore_literals(node))
        suffix = f" ({', '.join(values)})" if values else ""
        return f"`{written}` is false{suffix}"

    def _eval_node(self, node: ast.expr, scope: Scope) -> Any:
        return scope.evaluator.eval(self.source, previously_parsed=node)


class _AsWritten(ast.NodeTransformer):
    """Decimal constants back to their text (a name unparses as its text). A class of its
    own, not one made per call: a class is a reference cycle, and every explanation made
    one for the cycle collector (11,400 objects for 100 behaviours)."""

    def visit_Constant(self, n: ast.Constant) -> ast.AST:
        if isinstance(n.value, Decimal):
            return ast.Name(id=str(n.value))
        return n


def _restore_literals(node: ast.expr) -> ast.expr:
    # Work on a copy: unparsing the Decimal constants first would print them as Decimal('0.1').
    restored: ast.expr = _AsWritten().visit(copy.deepcopy(node))
    return restored


def _references(node: ast.expr) -> list[ast.expr]:
    """The outermost name/attribute/call sub-expressions whose values explain a result."""
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
        return [node]
    out: list[ast.expr] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            out.extend(_references(child))
    return out


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (_Record, Mapping)):
        return "{…}"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    return repr(value)


def parse_expression(source: str, *, invariant: bool = False, condition: bool = False
                     ) -> Expression:
    """Parse and check an expression once, at load; raises :class:`ExpressionError`.
    ``condition``: it must work out yes or no (every expression field of a program is one;
    the tests also parse values)."""
    if not isinstance(source, str):
        raise ExpressionError(f"expected an expression as text, got {source!r}")
    text = source.strip()
    if not text:
        raise ExpressionError("expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        said, hint = exc.msg, None
        if said.startswith("leading zeros"):  # (Python's words speak of octal numbers)
            said, hint = "a number cannot start with 0", _syntax_hint(text)
        elif said == "invalid syntax":  # (the words of a slip: what was probably meant)
            hint = _syntax_hint(text)
        elif said.startswith("invalid character"):  # （）, １０, ‘app’: the ASCII twin
            found = re.search(r"'(.)'", said)
            char = found.group(1) if found else ""
            plain = unicodedata.normalize("NFKC", char)
            if char in _QUOTES:
                hint = "quote text with ' or \" (ASCII quotes), such as 'app'"
            elif char in "¥￥€£":
                hint = f"write an amount as a number: 100, not {char}100"
            elif plain != char and plain.isascii():
                hint = f"write {plain!r} (ASCII), not {char!r}"
        raise ExpressionError(f"not a valid expression{where}: {said}", hint) from None
    except ValueError as exc:  # null bytes, lone surrogates
        raise ExpressionError(f"not a valid expression: {exc}") from None
    names = _check(tree, text, INVARIANT_NAMES if invariant else None, condition)
    tree = _DecimalLiterals(text).visit(tree)
    _constants_work(tree.body, text)
    return Expression(source=text, tree=tree, names=names)


# the helpers whose value depends on their arguments alone: a call of one on written values
# is itself a written value
_PURE = frozenset({"date", "year", "month", "day", "weekday", "min", "max", "abs", "len"})


def _constant(node: ast.expr) -> bool:
    """Whether ``node`` reads nothing of a purchase: written values, and the pure helpers
    of written values."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Name) and node.func.id in _PURE and not node.keywords
                and all(_constant(a) for a in node.args))
    if isinstance(node, ast.Name):
        return False
    return all(_constant(child) for child in ast.iter_child_nodes(node)
               if isinstance(child, ast.expr))


def _constants_work(node: ast.expr, source: str) -> None:
    """Each part made of written values alone (``'a' * 1001``, ``min([])``) worked out now,
    as it would be on every purchase: one that cannot work is refused at load, not an error
    on every purchase. (The checks before refused what its kinds show: ``1 / 0``.)"""
    if _constant(node):
        if isinstance(node, ast.Constant):
            return
        try:
            # (an evaluator of its own: simpleeval keeps the expression on the evaluator, so
            # one shared by threads loading programs at once could mix them up)
            with decimal.localcontext(CONTEXT):
                _evaluator(dict(_PURE_FUNCTIONS), {}).eval(source, previously_parsed=node)
        except Exception as exc:  # simpleeval's and the operands' own errors alike
            written = ast.get_source_segment(source, node) or ast.unparse(node)
            raise ExpressionError(f"`{written}` cannot work: it raises {error_words(exc)}",
                                  "it is made of written values only, so it fails on every "
                                  "purchase") from None
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            _constants_work(child, source)


# Slips from other languages and spreadsheets, looked for outside quoted text, and what to
# write instead
_SLIPS: tuple[tuple[str, str], ...] = (
    (r"===", "compare with =="),
    (r"<>", "write != for 'is not equal to'"),
    (r"=>", "write >= for 'at least'"),
    (r"=<", "write <= for 'at most'"),
    (r"(?<![=!<>])=(?![=<>])", "compare with == (a single = gives a value a name, which an "
                               "expression cannot)"),
    (r"&&", "write and, not &&"),
    (r"\|\|", "write or, not ||"),
    (r"!(?!=)", "write not, not !"),
    (r"\b(?:AND|OR|NOT|And|Or|Not)\b", "write and, or, not in lower case"),
    (r"\b\d{4}-\d{1,2}-\d{1,2}\b", "write a date as date(2026, 1, 1), or compare with "
                                     "a date field"),
    (r"\d,\d{3}\b", "write numbers without thousands commas: 1000, not 1,000"),
    (r"并且|而且|和|且", "write and, not 并且"),
    (r"或者|或", "write or, not 或者"),
    (r"\d\s*(?:元|块|RMB)", "write an amount as a number: 100, not 100元"),
    (r"\$\s*\d", "write an amount as a number: 100, not $100"),
    (r"\b\d{1,2}:\d{2}\b", "compare a time by its hour: txn.hour >= 10"),
    (r"(?:\band|\bor|\bnot|[-+*/%<>=!(,])\s*$", "the expression ends before it is complete: "
                                             "something must follow its last word"),
)

# characters a Chinese input method writes where an expression needs its ASCII twin
_QUOTES = {"\u2018", "\u2019", "\u201c", "\u201d", "\u300c", "\u300d"}


def _syntax_hint(text: str) -> str | None:
    """What a designer probably meant, for an expression Python cannot read."""
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: "_" * len(m.group()), text)
    for pattern, hint in _SLIPS:
        if re.search(pattern, bare):
            return hint
    return None


def error_words(exc: Exception) -> str:
    """``Type: message`` of an error an expression raised, with Decimal's signals (whose
    message is a list of classes, ``[<class 'decimal.DivisionByZero'>]``) said in words."""
    said = str(exc)
    if isinstance(exc, decimal.DecimalException) and said.startswith("[<class"):
        said = ("division by 0" if isinstance(exc, decimal.DivisionByZero)
                else "a number too large" if isinstance(exc, decimal.Overflow)
                else "an operation with no answer (such as x % 0 or 0 / 0)")
    return f"{type(exc).__name__}: {said}"


class LimitExceeded(ArithmeticError):
    """An expression tried to build a value larger than the run-time limits allow."""


_SEQUENCES = (str, bytes, list, tuple)


def limited_power(base: Any, exponent: Any) -> Any:
    """``**`` within simpleeval's limit on its operands (its own refusal reads "Sorry! I
    don't want to evaluate …")."""
    try:
        return safe_power(base, exponent)
    except NumberTooHigh:
        def side(n: Any) -> str:  # ((-5) ** 2, as the expression would be written)
            return f"({n})" if isinstance(n, int | Decimal) and n < 0 else f"{n}"
        raise NumberTooHigh(f"{side(base)} ** {side(exponent)}: each side of ** may be at "
                            f"most {MAX_POWER:,} (as a number, either sign)") from None


def _size(value: Any) -> int:
    """What text or a list holds, a list's lists counted all the way down: `[[0] * 1000] *
    1000` holds a million references (each list is walked, by simpleeval's check of every
    value it makes, and by a comparison), though it is 1,000 long. Counting stops past the
    limit; a list the limits let be built holds at most a few times as many."""
    if not isinstance(value, (list, tuple)):
        return len(value)
    size = len(value)
    for element in value:
        if size > MAX_BUILT_LENGTH:
            break
        if isinstance(element, (list, tuple)):
            size += _size(element)
    return size


def _safe_add(a: Any, b: Any) -> Any:
    if (
        isinstance(a, _SEQUENCES)
        and isinstance(b, _SEQUENCES)
        and _size(a) + _size(b) > MAX_BUILT_LENGTH
    ):
        raise LimitExceeded(f"would build text or a list longer than {MAX_BUILT_LENGTH}")
    return a + b


def _safe_mult(a: Any, b: Any) -> Any:
    for seq, times in ((a, b), (b, a)):
        if (
            isinstance(seq, _SEQUENCES)
            and isinstance(times, int)
            and _size(seq) * times > MAX_BUILT_LENGTH
        ):
            raise LimitExceeded(f"would build text or a list longer than {MAX_BUILT_LENGTH}")
    return a * b


def _safe_mod(a: Any, b: Any) -> Any:
    # ``'%0999999999d' % 1`` would build a gigabyte: text formatting is not part of the language.
    if isinstance(a, (str, bytes)):
        raise TypeError("% is only for numbers; text formatting is not available")
    return a % b


# Exactly the operators the checker allows; everything that can build values is size-limited.
_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: _safe_add,
    ast.Sub: operator.sub,
    ast.Mult: _safe_mult,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _safe_mod,
    ast.Pow: limited_power,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda x, y: operator.contains(y, x),
    ast.NotIn: lambda x, y: not operator.contains(y, x),
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}

# The AST node kinds the evaluator will run; simpleeval's others (comprehensions, dicts, sets,
# f-strings, slices, assignment, import …) are dropped, so even a tree that never went through
# the checker cannot use them.
_RUNTIME_NODES: frozenset[type[ast.AST]] = frozenset(
    {
        ast.BoolOp,
        ast.BinOp,
        ast.UnaryOp,
        ast.Compare,
        ast.IfExp,
        ast.Call,
        ast.Name,
        ast.Attribute,
        ast.Subscript,
        ast.Constant,
        ast.List,
        ast.Tuple,
    }
)


class _PublicNames:
    """Attribute names a record may be asked for: anything not starting with ``_``."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("_")


class _Record:
    """A read-only bag of fields; expressions see ``member.tier``, never methods or internals."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    # `'vip' in member.attrs` and len(...) behave as on the compiled path's plain dicts
    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __len__(self) -> int:
        return len(self._fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only")


class _Attrs(_Record):
    """Host-defined data: a key the host did not send reads as None, not as an error."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._fields.get(name)

    def __getitem__(self, key: str) -> Any:
        return self._fields.get(key)


@dataclass
class Scope:
    """Everything one evaluation's expressions may see, built once per transaction."""

    member: Mapping[str, Any]
    txn: Mapping[str, Any]
    items: list[Mapping[str, Any]]
    today: date
    birthday_test: Callable[[str], bool]
    event: Mapping[str, Any] | None = None
    decision: Mapping[str, Any] | None = None
    _evaluator: EvalWithCompoundTypes | None = field(default=None, repr=False)
    _namespace: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def event_view(self) -> Mapping[str, Any]:
        """The event being evaluated; for a purchase, the transaction as an event."""
        if self.event is not None:
            return self.event
        return {"id": self.txn.get("id"), "type": "purchase",
                "channel": self.txn.get("channel"), "attrs": self.txn.get("attrs", {})}

    @property
    def namespace(self) -> dict[str, Any]:
        """Plain data for compiled expressions (see _codegen): records are dicts."""
        if self._namespace is None:
            self._namespace = {
                "member": self.member,
                "txn": self.txn,
                "items": self.items,
                "tier": self.member["tier"],
                "today": self.today,
                "event": self.event_view,
                "decision": self.decision or {},
                "_birthday": self.birthday_test,
            }
        return self._namespace

    @property
    def evaluator(self) -> EvalWithCompoundTypes:
        if self._evaluator is None:
            self._evaluator = self._build()
        return self._evaluator

    def release(self) -> None:
        """Let the interpreter go at once: simpleeval's evaluator keeps its own bound
        methods (``nodes``), a reference cycle only the cycle collector would free — which
        `loyaltyrules run` pauses, and which would otherwise find one per explanation."""
        if self._evaluator is not None:
            self._evaluator.nodes = {}
            self._evaluator = None

    def _build(self) -> EvalWithCompoundTypes:
        items = [_Record({**i, "attrs": _Attrs(i.get("attrs", {}))}) for i in self.items]
        member = _Record({**self.member, "attrs": _Attrs(self.member.get("attrs", {}))})
        txn = _Record({**self.txn, "attrs": _Attrs(self.txn.get("attrs", {}))})
        raw_items = self.items
        today = self.today

        def amount_in(*cats: str) -> Decimal:
            return sum((i["amount"] for i in raw_items if i["category"] in cats), Decimal(0))

        def quantity_in(*cats: str) -> int:
            return sum(int(i["quantity"]) for i in raw_items if i["category"] in cats)

        def has_category(*cats: str) -> bool:
            return any(i["category"] in cats for i in raw_items)

        def has_sku(*skus: str) -> bool:
            return any(i["sku"] in skus for i in raw_items)

        def days_since(d: date | datetime | None) -> int | None:
            if d is None:
                return None
            if isinstance(d, datetime):
                d = d.date()
            return (today - d).days

        birthday_test = self.birthday_test  # (not self: a function the scope holds)

        def is_birthday(kind: str = "date") -> bool:
            return birthday_test(kind)

        functions: dict[str, Callable[..., Any]] = {
            "amount_in": amount_in,
            "quantity_in": quantity_in,
            "has_category": has_category,
            "has_sku": has_sku,
            "days_since": days_since,
            "is_birthday": is_birthday,
            **_PURE_FUNCTIONS,
        }
        names = {
            "member": member,
            "txn": txn,
            "items": items,
            "tier": self.member["tier"],
            "today": today,
            "event": _Record({**self.event_view, "attrs": _Attrs(self.event_view["attrs"])}),
            "decision": _Record(self.decision or {}),
        }
        return _evaluator(functions, names)


def _evaluator(functions: dict[str, Callable[..., Any]], names: dict[str, Any]
               ) -> EvalWithCompoundTypes:
    evaluator = _Evaluator(
        operators=dict(_OPERATORS),
        functions=dict(functions),
        names=names,
        allowed_attrs={
            _Record: _PublicNames(),
            _Attrs: _PublicNames(),
            date: frozenset(_DATE_FIELDS),
            datetime: frozenset(_DATETIME_FIELDS),
        },
    )
    # EvalWithCompoundTypes adds the list/tuple/dict/set classes as callable functions:
    # take them out again, so the evaluator holds exactly the documented helpers.
    evaluator.functions = functions
    evaluator.nodes = {
        kind: handler for kind, handler in evaluator.nodes.items() if kind in _RUNTIME_NODES
    }
    return evaluator


def _weekday(d: date) -> int:
    return d.isoweekday()


def _make_date(year: int, month: int, day: int) -> date:
    # a function, not the ``date`` class: its today()/fromtimestamp() stay out of reach
    return date(year, month, day)


def _year(d: date | None) -> int:
    return date_field(d, "year")


def _month(d: date | None) -> int:
    return date_field(d, "month")


def _day(d: date | None) -> int:
    return date_field(d, "day")


# the helpers that read nothing of a purchase (see _PURE)
_PURE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "date": _make_date, "year": _year, "month": _month, "day": _day, "weekday": _weekday,
    "min": min, "max": max, "abs": abs, "len": len}
