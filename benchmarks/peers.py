"""The reference decision in two peer rules engines a team might pick instead of this library.

Each peer computes exactly what ``benchmarks.handwritten.decide`` returns,
``(payable, points, tier_after, gift)``, with the rule logic inside the engine:

* ``zen-engine``: GoRules zen-engine (``pip install zen-engine``, module ``zen``, Rust core). A JDM
  decision graph: input → "Tier benefits" decision table → "Discount" expression node →
  "11.11 promotion" and "Upgrade" decision tables → "Decision" expression node → output,
  held by a ``ZenEngine`` with a static loader (or, ``api="decision"``, by
  ``create_decision``: same answers, ~110 µs slower per call in zen-engine 2.1.3).
* ``datalogic-py``: datalogic-py (``pip install datalogic-py``, module ``datalogic_py``, Rust
  core), a compiled JsonLogic engine, in two variants: one rule per concern (discount,
  points, bonus, gift, tier) evaluated in sequence with each rule's results added to the
  data the next one sees, or everything hand-fused into one rule.

Only input shaping happens in Python before the engine runs (``Decimal`` amounts to integer
cents, the date to year/month/day, each line's position), and only converting the engine's
numbers back to ``Decimal``/``int`` after. All engine arithmetic is on integer cents, so the
engines' number types (zen: decimal, datalogic: i64/f64) never round a money value.

How the money arithmetic maps to integer cents (``A`` = amount, ``c`` = a line's cents):

* discount ``D = floor((A * rate% + 50) / 100)``: ``quantize(0.01, ROUND_HALF_UP)`` of
  ``amount * rate``; paid ``P = A - D``.
* the discount split over lines, largest remainder first: line ``k`` gets
  ``floor(D * c_k / A)`` cents, plus one more if it is among the first ``left`` lines ordered
  by remainder ``D * c_k mod A`` (descending), then position; ``left = D - sum(floors)``.
  For a single line or no discount this reduces to the hand-written ``else`` branch (the
  line's share is all of ``D``, or nothing), so the engines need no special case for it.
* base points ``floor((P + 2 * beauty_paid) / 1000)`` (10 points per ¥100, beauty 3×), times
  the tier multiplier in tenths (10/12/15/20), doubled in the birthday month, ``// 10``.

``floor(x / y)`` is exact here in every engine: the operands are integers well below 2**53,
so even an f64 quotient cannot round across an integer.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from .cases import Case

Decision = tuple[Decimal, int, str, bool]
Prepare = Callable[[Case], Any]
Evaluate = Callable[[Any], Decision]

_MODULES = {"zen-engine": "zen", "datalogic-py": "datalogic_py"}  # distribution → module


def available() -> dict[str, str | None]:
    """Peer engine (its PyPI name: ``zen-engine``, ``datalogic-py``) → ``None`` if usable here,
    else the reason it is not."""
    out: dict[str, str | None] = {}
    for dist, module in _MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            out[dist] = f"{dist} not installed ({exc})"
        else:
            out[dist] = None
    return out


def _shape(case: Case) -> dict[str, Any]:
    """The case as plain JSON-shaped data in integer cents: the input both engines take."""
    return {
        "tier": case.tier,
        "birthMonth": case.birth_month,
        "spend": int(case.spend * 100),
        "giftYear": case.gift_year,
        "year": case.day.year,
        "month": case.day.month,
        "day": case.day.day,
        "channel": case.channel,
        "lines": [{"k": k, "c": int(amount * 100), "cat": category}
                  for k, (_sku, category, amount) in enumerate(case.items)],
    }


def _money(cents: Any) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


# --------------------------------------------------------------------------- zen-engine


def _node(node_id: str, kind: str, name: str, x: int, content: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "type": kind, "name": name,
                            "position": {"x": x, "y": 100}}
    if content is not None:
        node["content"] = content
    return node


def _table(hit_policy: str, inputs: list[tuple[str, str]], outputs: list[str],
           rows: list[list[str]]) -> dict[str, Any]:
    """A decision table: inputs (name, field expression), output fields, rows of cells."""
    in_ids = [f"in{n}" for n in range(len(inputs))]
    out_ids = [f"out{n}" for n in range(len(outputs))]
    rules = []
    for r, row in enumerate(rows):
        assert len(row) == len(inputs) + len(outputs)
        rules.append({"_id": f"row{r}", **dict(zip(in_ids + out_ids, row, strict=True))})
    return {
        "hitPolicy": hit_policy,
        "passThrough": True,
        "inputField": None,
        "outputPath": None,
        "executionMode": "single",
        "inputs": [{"id": i, "name": name, "field": field}
                   for i, (name, field) in zip(in_ids, inputs, strict=True)],
        "outputs": [{"id": o, "name": field, "field": field}
                    for o, field in zip(out_ids, outputs, strict=True)],
        "rules": rules,
    }


def _expressions(pairs: list[tuple[str, str]], *, pass_through: bool) -> dict[str, Any]:
    """An expression node; later expressions read earlier ones as ``$.key``."""
    return {
        "passThrough": pass_through,
        "inputField": None,
        "outputPath": None,
        "executionMode": "single",
        "expressions": [{"id": f"e{n}", "key": key, "value": value}
                        for n, (key, value) in enumerate(pairs)],
    }


# remainder of line `x` when the discount is split over the lines by amount
_REM = "($.discount * {x}.c % $.amount)"
_AHEAD = (  # lines `o` ahead of line `l` in largest-remainder order
    f"count(lines as o, {_REM.format(x='o')} > {_REM.format(x='l')}"
    f" or ({_REM.format(x='o')} == {_REM.format(x='l')} and o.k < l.k))"
)

ZEN_GRAPH: dict[str, Any] = {
    "contentType": "application/vnd.gorules.decision",
    "nodes": [
        _node("request", "inputNode", "Request", 0),
        _node("tiers", "decisionTableNode", "Tier benefits", 200, _table(
            "first", [("Tier", "tier")], ["rate", "mult10", "rank"],
            [['"basic"', "0", "10", "0"],
             ['"silver"', "5", "12", "1"],
             ['"gold"', "10", "15", "2"],
             ['"diamond"', "15", "20", "3"]])),
        _node("discount", "expressionNode", "Discount", 400, _expressions([
            ("amount", "sum(map(lines, #.c))"),
            ("discount", "floor(($.amount * rate + 50) / 100)"),
            ("paid", "$.amount - $.discount"),
            ("left", "$.discount - sum(map(lines, floor($.discount * #.c / $.amount)))"),
            ("beautyPaid",
             f'sum(map(filter(lines, #.cat == "beauty") as l, l.c'
             f" - floor($.discount * l.c / $.amount) - ({_AHEAD} < $.left ? 1 : 0)))"),
        ], pass_through=True)),
        _node("promotion", "decisionTableNode", "11.11 promotion", 600, _table(
            "first",
            [("Month", "month"), ("Day", "day"), ("Channel", "channel"), ("Paid", "paid")],
            ["bonus"],
            [["11", "11", '"online"', ">= 30000", "500"],
             ["", "", "", "", "0"]])),
        _node("upgrade", "decisionTableNode", "Upgrade", 800, _table(
            "first", [("Qualifying spend", "spend + amount")], ["upgradeTo", "upgradeRank"],
            [[">= 5000000", '"diamond"', "3"],
             [">= 2000000", '"gold"', "2"],
             [">= 500000", '"silver"', "1"],
             ["", '"basic"', "0"]])),
        _node("decision", "expressionNode", "Decision", 1000, _expressions([
            ("birthday", "month == birthMonth"),
            ("payable", "paid"),
            ("points", "floor(floor((paid + 2 * beautyPaid) / 1000) * mult10"
                       " * ($.birthday ? 2 : 1) / 10) + bonus"),
            ("tierAfter", "upgradeRank > rank ? upgradeTo : tier"),
            ("gift", "$.birthday and giftYear != year"),
        ], pass_through=False)),
        _node("response", "outputNode", "Response", 1200),
    ],
    "edges": [
        {"id": f"edge{n}", "type": "edge", "sourceId": a, "targetId": b}
        for n, (a, b) in enumerate([("request", "tiers"), ("tiers", "discount"),
                                    ("discount", "promotion"), ("promotion", "upgrade"),
                                    ("upgrade", "decision"), ("decision", "response")])
    ],
}


def make_zen(api: Literal["engine", "decision"] = "engine", *, trace: bool = False
             ) -> tuple[Prepare, Evaluate]:
    """(prepare, evaluate) for the reference decision as a zen-engine JDM graph.

    ``api="engine"`` (default): ``ZenEngine({"loader": {"type": "static", ...}})`` holding the
    graph, evaluated with ``engine.evaluate(key, input)``. ``api="decision"``:
    ``engine.create_decision(content)`` and ``decision.evaluate(input)``, same graph and same
    answers, but in zen-engine 2.1.3 that call costs ~110 µs more per evaluation whatever the
    graph (a trivial input → output graph: ~2.5 µs the first way, ~110 µs this way; see
    gorules/zen#441, open, a ~30× slowdown of the Python binding since 0.38.4), so the
    default is the first, which measures the engine rather than that overhead.

    ``trace=True`` evaluates with zen-engine's own trace on (``{"trace": True}``): each node's
    input, output and expression results, returned with the answer as Python dicts — zen's
    explanation of a decision, the counterpart of loyaltyrules' full trace. ``evaluate``
    checks that it came back (every node of the graph traced).
    """
    import zen

    options = {"trace": True} if trace else None
    evaluate_graph: Callable[[dict[str, Any]], Any]
    if api == "engine":
        engine = zen.ZenEngine({"loader": {"type": "static", "content": {"ref": ZEN_GRAPH}}})
        evaluate_key = engine.evaluate
        engine.get_decision("ref").validate()  # graph shape only: a bad expression fails later

        if trace:
            def evaluate_graph(data: dict[str, Any]) -> Any:
                return evaluate_key("ref", data, options)
        else:  # (the call as it was timed before the trace row: two arguments)
            def evaluate_graph(data: dict[str, Any]) -> Any:
                return evaluate_key("ref", data)
    elif api == "decision":
        evaluate_decision = zen.ZenEngine().create_decision(json.dumps(ZEN_GRAPH)).evaluate
        evaluate_graph = (evaluate_decision if not trace
                          else lambda data: evaluate_decision(data, options))
    else:
        raise ValueError(f"api must be 'engine' or 'decision', not {api!r}")

    def evaluate(data: dict[str, Any]) -> Decision:
        r = evaluate_graph(data)["result"]
        return _money(r["payable"]), int(r["points"]), r["tierAfter"], r["gift"]

    nodes = len(ZEN_GRAPH["nodes"])

    def evaluate_traced(data: dict[str, Any]) -> Decision:
        response = evaluate_graph(data)
        if len(response["trace"]) != nodes:  # (a dict read and a len: ~0.1 µs of ~100)
            raise AssertionError(f"zen-engine traced only {sorted(response['trace'])}")
        r = response["result"]
        return _money(r["payable"]), int(r["points"]), r["tierAfter"], r["gift"]

    if trace:
        return _shape, evaluate_traced

    return _shape, evaluate


# -------------------------------------------------------------------------- datalogic-py
# JsonLogic has no variables, so a value used many times is either recomputed or bound by
# `_let`: `reduce` over a one-element array runs its body once with `current` = that element.
# Inside an iteration (map, sort key, reduce body) `{"val": [[1], name]}` reads the scope one
# level up; the rules below never need more than one level. (In datalogic-py 5.9 `[[2]]` is
# not two levels up: `[[1]]` and `[[2]]` both read the parent scope and `[[3]]` the one above,
# so deeper reads would be fragile; `{"var": "x"}` inside an iteration reads the item.)

JsonLogic = Any


def _var(path: str) -> JsonLogic:
    return {"var": path}


def _up(key: str) -> JsonLogic:
    """``key`` of the scope one level up (the data, or the tuple bound by ``_let``)."""
    return {"val": [[1], key]}


def _let(values: list[JsonLogic], body: JsonLogic) -> JsonLogic:
    """``body`` with ``current.0``, ``current.1``, ... bound to ``values`` (evaluated once)."""
    return {"reduce": [[values], body, None]}


def _idiv(a: JsonLogic, b: JsonLogic) -> JsonLogic:
    return {"floor": {"/": [a, b]}}


def _sum(array: JsonLogic, term: JsonLogic) -> JsonLogic:
    """Sum of ``term`` over ``array`` (``term`` reads the item as ``current.*``)."""
    return {"reduce": [array, {"+": [_var("accumulator"), term]}, 0]}


def _lookup(key: JsonLogic, table: dict[str, int], default: int) -> JsonLogic:
    args: list[JsonLogic] = []
    for name, value in table.items():
        args += [{"==": [key, name]}, value]
    return {"if": [*args, default]}


def _discount_split(tier: JsonLogic, lines: JsonLogic) -> tuple[JsonLogic, JsonLogic]:
    """(the ``_let`` binding ``[A, D]``, beauty paid cents) as seen inside that ``_let``.

    ``tier`` and ``lines`` are how the data's fields read where the ``_let`` is evaluated;
    the returned beauty expression reads ``lines`` one level up from inside the ``_let``.
    """
    amount = _sum(lines, _var("current.c"))
    rate = _lookup(tier, {"silver": 5, "gold": 10, "diamond": 15}, 0)
    binding = [amount, _idiv({"+": [{"*": [amount, rate]}, 50]}, 100)]
    d = _var("current.1")
    # inside a reduce body over the lines, A and D are one level up
    share_floor = _idiv({"*": [_up("1"), _var("current.c")]}, _up("0"))
    left = {"-": [d, _sum(_up("lines"), share_floor)]}
    beauty_floor_paid = _sum(_up("lines"), {"if": [
        {"==": [_var("current.cat"), "beauty"]},
        {"-": [_var("current.c"), share_floor]}, 0]})
    # inside the sort key the line is the data and A, D are one level up
    remainder = {"%": [{"*": [_up("1"), _var("c")]}, _up("0")]}
    order_key = {"-": [{"*": [remainder, 8]}, _var("k")]}  # remainder desc, then position
    first = {"slice": [{"sort": [_up("lines"), False, order_key]}, 0, left]}
    beauty_extra = _sum(first, {"if": [{"==": [_var("current.cat"), "beauty"]}, 1, 0]})
    return binding, {"-": [beauty_floor_paid, beauty_extra]}


def _points(paid: JsonLogic, beauty_paid: JsonLogic, tier: JsonLogic,
            month: JsonLogic, birth_month: JsonLogic) -> JsonLogic:
    base = _idiv({"+": [paid, {"*": [2, beauty_paid]}]}, 1000)
    mult10 = _lookup(tier, {"silver": 12, "gold": 15, "diamond": 20}, 10)
    birthday = {"if": [{"==": [month, birth_month]}, 2, 1]}
    return _idiv({"*": [base, mult10, birthday]}, 10)


def _bonus(month: JsonLogic, day: JsonLogic, channel: JsonLogic, paid: JsonLogic
           ) -> JsonLogic:
    return {"if": [{"and": [{"==": [month, 11]}, {"==": [day, 11]},
                            {"==": [channel, "online"]}, {">=": [paid, 30000]}]}, 500, 0]}


def _gift(month: JsonLogic, birth_month: JsonLogic, gift_year: JsonLogic, year: JsonLogic
          ) -> JsonLogic:
    return {"and": [{"==": [month, birth_month]}, {"!=": [gift_year, year]}]}


def _tier_after(tier: JsonLogic, new_spend: JsonLogic) -> JsonLogic:
    rank = _lookup(tier, {"silver": 1, "gold": 2, "diamond": 3}, 0)
    steps: list[JsonLogic] = []
    for threshold, name, name_rank in ((5000000, "diamond", 3), (2000000, "gold", 2),
                                       (500000, "silver", 1)):
        steps += [{">=": [new_spend, threshold]},
                  {"if": [{">": [name_rank, rank]}, name, tier]}]
    return {"if": [*steps, tier]}


def _concern_rules() -> dict[str, JsonLogic]:
    """One JsonLogic rule per concern; each later rule reads earlier results from the data."""
    binding, beauty_paid = _discount_split(_var("tier"), _var("lines"))
    a, d = _var("current.0"), _var("current.1")
    return {
        # → [amount, paid, beauty paid], all in cents
        "discount": _let(binding, [a, {"-": [a, d]}, beauty_paid]),
        "points": _points(_var("paid"), _var("beautyPaid"), _var("tier"), _var("month"),
                          _var("birthMonth")),
        "bonus": {"+": [_var("points"),
                        _bonus(_var("month"), _var("day"), _var("channel"), _var("paid"))]},
        "gift": _gift(_var("month"), _var("birthMonth"), _var("giftYear"), _var("year")),
        "tier": _tier_after(_var("tier"), {"+": [_var("spend"), _var("amount")]}),
    }


def _fused_rule() -> JsonLogic:
    """Everything in one rule → [payable cents, points, tier after, gift]."""
    binding, beauty_paid = _discount_split(_var("tier"), _var("lines"))
    a, d = _var("current.0"), _var("current.1")
    paid = {"-": [a, d]}
    tier, month = _up("tier"), _up("month")
    points = {"+": [_points(paid, beauty_paid, tier, month, _up("birthMonth")),
                    _bonus(month, _up("day"), _up("channel"), paid)]}
    return _let(binding, [
        paid,
        points,
        _tier_after(tier, {"+": [_up("spend"), a]}),
        _gift(month, _up("birthMonth"), _up("giftYear"), _up("year")),
    ])


def make_datalogic(fused: bool) -> tuple[Prepare, Evaluate]:
    """(prepare, evaluate) for the reference decision in JsonLogic on datalogic-py.

    ``fused=False``: five rules (discount, points, bonus, gift, tier) run in sequence, each
    rule's results added to a copy of the data for the next. ``fused=True``: one rule.
    """
    import datalogic_py

    engine = datalogic_py.Engine()
    if fused:
        rule = engine.compile_checked(_fused_rule()).evaluate

        def evaluate_fused(data: dict[str, Any]) -> Decision:
            paid, points, tier, gift = rule(data)
            return _money(paid), int(points), tier, gift

        return _shape, evaluate_fused

    rules = {name: engine.compile_checked(r).evaluate for name, r in _concern_rules().items()}
    discount, points_rule, bonus = rules["discount"], rules["points"], rules["bonus"]
    gift_rule, tier_rule = rules["gift"], rules["tier"]

    def evaluate_concerns(prepared: dict[str, Any]) -> Decision:
        data = dict(prepared)
        data["amount"], data["paid"], data["beautyPaid"] = discount(data)
        data["points"] = points_rule(data)
        points = bonus(data)
        return _money(data["paid"]), int(points), tier_rule(data), gift_rule(data)

    return _shape, evaluate_concerns
