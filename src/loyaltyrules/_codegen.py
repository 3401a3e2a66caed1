"""Compiling condition expressions to Python functions, safely.

Input is only an :class:`Expression` that :func:`parse_expression` already accepted: its tree
holds nothing but allow-listed nodes, known names, checked field names and literal-bounded
operations. The tree is rewritten — names become lookups in one namespace dict, record fields
become item lookups, helpers and ``*``/``**`` become calls to the bounded functions below,
Decimal literals become constants — and compiled with ``compile()``. ``+ * % **`` call the
interpreter's own size-limited operators, so both paths refuse the same values. No text from
the YAML is ever pasted into source code, and the compiled code runs with empty builtins.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ._expressions import (
    _DATETIME_FIELDS,
    _TYPE_FIELDS,
    FUNCTIONS,
    INVARIANT_NAMES,
    Expression,
    ExpressionRuntimeError,
    Scope,
    _safe_add,
    _safe_mod,
    _safe_mult,
    date_field,
    error_words,
    limited_power,
)

__all__ = ["compile_expression"]

_CONTEXT_FUNCTIONS = {"amount_in", "quantity_in", "has_category", "has_sku", "days_since",
                      "is_birthday"}


def _amount_in(ns: dict[str, Any], *cats: str) -> Decimal:
    return sum((i["amount"] for i in ns["items"] if i["category"] in cats), Decimal(0))


def _quantity_in(ns: dict[str, Any], *cats: str) -> int:
    return sum(int(i["quantity"]) for i in ns["items"] if i["category"] in cats)


def _has_category(ns: dict[str, Any], *cats: str) -> bool:
    return any(i["category"] in cats for i in ns["items"])


def _has_sku(ns: dict[str, Any], *skus: str) -> bool:
    return any(i["sku"] in skus for i in ns["items"])


def _days_since(ns: dict[str, Any], d: date | datetime | None) -> int | None:
    if d is None:
        return None
    if isinstance(d, datetime):
        d = d.date()
    days: int = (ns["today"] - d).days
    return days


def _is_birthday(ns: dict[str, Any], kind: str = "date") -> bool:
    test: Callable[[str], bool] = ns["_birthday"]
    return test(kind)


def _attr(attrs: dict[str, Any], key: str) -> Any:
    """Host-defined data: a missing key reads as None (as on the interpreted path)."""
    return attrs.get(key)


_HELPERS: dict[str, Any] = {
    "_attr": _attr,
    "_date_field": date_field,
    # the same size-limited operators the interpreter uses, so both refuse the same values
    "_add": _safe_add,
    "_mul": _safe_mult,
    "_mod": _safe_mod,
    "_pow": limited_power,
    "_f_amount_in": _amount_in,
    "_f_quantity_in": _quantity_in,
    "_f_has_category": _has_category,
    "_f_has_sku": _has_sku,
    "_f_days_since": _days_since,
    "_f_is_birthday": _is_birthday,
    "_f_date": date,
    "_f_year": lambda d: date_field(d, "year"),
    "_f_month": lambda d: date_field(d, "month"),
    "_f_day": lambda d: date_field(d, "day"),
    "_f_weekday": lambda d: d.isoweekday(),
    "_f_min": min,
    "_f_max": max,
    "_f_abs": abs,
    "_f_len": len,
}


class _Rewriter:
    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}

    def const(self, value: Any) -> ast.expr:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return ast.Name(id=name, ctx=ast.Load())

    def gen(self, node: ast.expr) -> tuple[ast.expr, str]:
        if isinstance(node, ast.Name):
            if node.id not in INVARIANT_NAMES:  # parse_expression guarantees this
                raise ValueError(f"unchecked name {node.id!r}")
            return (_lookup(ast.Name(id="ns", ctx=ast.Load()), node.id),
                    INVARIANT_NAMES[node.id])
        if isinstance(node, ast.Attribute):
            value, vtype = self.gen(node.value)
            if node.attr.startswith("_"):
                raise ValueError("private attribute")
            if vtype == "map":
                return _call("_attr", value, ast.Constant(value=node.attr)), "any"
            fields = _TYPE_FIELDS.get(vtype)
            if fields is None or node.attr not in fields:
                raise ValueError(f"unchecked field {node.attr!r}")
            if vtype == "date?":  # may be missing: refused with the interpreter's message
                assert node.attr in _DATETIME_FIELDS
                return _call("_date_field", value, ast.Constant(value=node.attr)), "int"
            if vtype in ("date", "datetime"):
                assert node.attr in _DATETIME_FIELDS
                return ast.Attribute(value=value, attr=node.attr, ctx=ast.Load()), "int"
            return _lookup(value, node.attr), fields[node.attr]
        if isinstance(node, ast.Subscript):
            value, vtype = self.gen(node.value)
            index = node.slice
            if not isinstance(index, ast.Constant) or not isinstance(index.value, (int, str)):
                raise ValueError("unchecked subscript")
            if vtype == "map":
                return _call("_attr", value, ast.Constant(value=index.value)), "any"
            out = ast.Subscript(value=value, slice=ast.Constant(value=index.value), ctx=ast.Load())
            return out, "item" if vtype == "list[item]" else "any"
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ValueError("unchecked call")
            name = node.func.id
            args = [self.gen(a)[0] for a in node.args]
            if name in _CONTEXT_FUNCTIONS:
                args.insert(0, ast.Name(id="ns", ctx=ast.Load()))
            call = ast.Call(func=ast.Name(id=f"_f_{name}", ctx=ast.Load()), args=args,
                            keywords=[])
            return call, FUNCTIONS[name].returns
        if isinstance(node, ast.Constant):
            if isinstance(node.value, Decimal):
                return self.const(node.value), "money"
            if node.value is None or isinstance(node.value, (bool, int, str)):
                return ast.Constant(value=node.value), "any"
            raise ValueError("unchecked constant")
        if isinstance(node, ast.BinOp):
            left, right = self.gen(node.left)[0], self.gen(node.right)[0]
            limited = {ast.Add: "_add", ast.Mult: "_mul", ast.Mod: "_mod", ast.Pow: "_pow"}
            helper = limited.get(type(node.op))
            if helper is not None:
                return _call(helper, left, right), "any"
            if not isinstance(node.op, (ast.Sub, ast.Div, ast.FloorDiv)):
                raise ValueError("unchecked operator")
            return ast.BinOp(left=left, op=type(node.op)(), right=right), "any"
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(op=type(node.op)(), values=[self.gen(v)[0] for v in node.values]), \
                "bool"
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
                raise ValueError("unchecked operator")
            return ast.UnaryOp(op=type(node.op)(), operand=self.gen(node.operand)[0]), "any"
        if isinstance(node, ast.Compare):
            return ast.Compare(left=self.gen(node.left)[0], ops=[type(o)() for o in node.ops],
                               comparators=[self.gen(c)[0] for c in node.comparators]), "bool"
        if isinstance(node, ast.IfExp):
            return ast.IfExp(test=self.gen(node.test)[0], body=self.gen(node.body)[0],
                             orelse=self.gen(node.orelse)[0]), "any"
        if isinstance(node, ast.List):
            return ast.List(elts=[self.gen(e)[0] for e in node.elts], ctx=ast.Load()), "list"
        if isinstance(node, ast.Tuple):
            return ast.Tuple(elts=[self.gen(e)[0] for e in node.elts], ctx=ast.Load()), "list"
        raise ValueError(f"{type(node).__name__} cannot be compiled")


def _lookup(value: ast.expr, key: str) -> ast.expr:
    return ast.Subscript(value=value, slice=ast.Constant(value=key), ctx=ast.Load())


def _call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def compile_expression(expr: Expression, label: str) -> Callable[[Scope], Any]:
    """A function of a :class:`Scope` computing ``expr``; errors become
    :class:`ExpressionRuntimeError`, exactly as the interpreted path reports them."""
    rewriter = _Rewriter()
    body, _ = rewriter.gen(expr.tree.body)
    lam = ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="ns")], kwonlyargs=[],
                           kw_defaults=[], defaults=[]),
        body=body,
    )
    tree = ast.fix_missing_locations(ast.Expression(body=lam))
    code = compile(tree, f"<loyaltyrules expression {label}>", "eval")
    namespace: dict[str, Any] = {"__builtins__": {}, **_HELPERS, **rewriter.constants}
    fn: Callable[[dict[str, Any]], Any] = eval(code, namespace)
    source = expr.source

    def run(scope: Scope) -> Any:
        try:
            return fn(scope.namespace)
        except Exception as exc:  # operand errors, missing keys, None attributes alike
            raise ExpressionRuntimeError(f"`{source}` raised {error_words(exc)}") from None

    return run
