"""Decisions and traces: what the engine concluded, and every rule it considered on the way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core import SchemaSerializer

from ._build import (
    _object_new,
    _set_dict,
    _set_extra,
    _set_fields,
    _set_private,
    build,
    builder,
    field_set,
    new,
)
from ._member import MemberState, Money
from ._money import in_exact, plain

__all__ = [
    "Decision",
    "DiscountLine",
    "GiftDecision",
    "HostAction",
    "LifecycleDecision",
    "LifecycleEvent",
    "PerkGrant",
    "PointsLine",
    "ProgramRef",
    "RefundResult",
    "TraceEntry",
    "UsageConsumed",
    "build",
    "builder",
    "field_set",
    "inline_builders",
    "new",
    "pending",
]

Factor = Annotated[Decimal, PlainSerializer(plain, return_type=str)]

RuleKind = Literal["tier", "earn", "multiplier", "birthday", "promotion", "qualification", "cap",
                   "redemption", "behaviour"]
Status = Literal["fired", "not_matched", "skipped", "capped", "error"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=BaseModel)


def inline_builders() -> dict[str, Any]:
    """What generated code (._specialise) makes an output model with, written out in its own
    lines as a builder does it: ``new(cls)``, then the four slots. On the hot path this
    saves the builder's call, about 230 ns a model (a purchase makes four), and the
    decision's pending next state is set as its private slot at once."""
    return {"new": _object_new, "set_dict": _set_dict, "set_fields": _set_fields,
            "set_extra": _set_extra, "set_private": _set_private, "NEXT_STATE": _NEXT,
            "EVENTS": _EVENTS}


_NEXT = "next_state"
_EVENTS = "events"  # (generated code's EVENTS)


def pending(decision: _M, member_after: Callable[..., Any], args: tuple[Any, ...]) -> _M:
    """Leave a just-built decision's ``member_after`` to be made by ``member_after(*args)``
    when first read (:class:`Decision` explains why)."""
    _set_private(decision, {_NEXT: (member_after, args)})
    return decision


class ProgramRef(_Out):
    """Which program produced a decision: its id, version and content hash."""

    id: str
    version: str
    hash: str


def trace_flag(value: object) -> bool:
    """A call's ``trace`` given as other than True or False: 1 or 0, as any number type
    says them (numpy's bool_ and int64 too), else a TypeError — ``trace="no"`` is a
    non-empty string, which Python takes for true, and would switch the trace on."""
    if not isinstance(value, (str, bytes, float, complex, Decimal)) and value is not None:
        with contextlib.suppress(TypeError, ValueError):
            if value == 1 or value == 0:  # (a numpy bool_ is no int: compared)
                return bool(value == 1)
    raise TypeError(f"trace is True or False, got {value!r}")


class TraceEntry(_Out):
    """One rule considered: fired or not, and why (the failing condition and its values)."""

    rule: str
    kind: RuleKind
    status: Status
    reason: str

    def __str__(self) -> str:
        return f"{self.status:<11} {self.kind:<13} {self.rule}: {self.reason}"


class DiscountLine(_Out):
    """A discount and the rule that produced it; ``allocation[i]`` is its part on line ``i``
    (zero on lines outside its scope), and the parts sum exactly to ``amount``."""

    rule: str
    kind: RuleKind
    type: Literal["percent", "amount", "threshold"]
    scope: Literal["basket", "items"]
    amount: Money
    allocation: tuple[Money, ...]


class PointsLine(_Out):
    """Points from one rule: the basis it counted, the multiplier it applied, the result.

    ``detail`` spells the arithmetic out when the decision was made with the trace on; it is
    empty with ``trace=False`` (building the text costs more than the arithmetic)."""

    rule: str
    kind: Literal["earn", "bonus"]
    points: int
    basis: Money
    multiplier: Factor
    detail: str


class PerkGrant(_Out):
    perk: str
    rule: str


class UsageConsumed(_Out):
    rule: str
    period: str


class LifecycleEvent(_Out):
    """Something that happened to a member's account, in time order: points released or
    expired, a tier review, a signal for the host's automation, a refund's effects …"""

    at: datetime
    type: Literal[
        "points_earned", "points_released", "points_expired", "points_redeemed",
        "points_reversed", "points_returned", "points_shortfall", "tier_upgraded",
        "tier_review", "tier_downgraded", "tier_kept", "signal", "reward_redeemed",
        "behaviour_points",
    ]
    rule: str | None = None
    points: int = 0
    tier_from: str | None = None
    tier_to: str | None = None
    detail: str = ""


class HostAction(_Out):
    """Something the host must do for another member (a referral reward): apply it with
    :func:`loyaltyrules.credit` on that member's state, once; its id makes it idempotent.
    ``points`` is a whole number of at least 1."""

    # (bounded as a purchase's id is: the id is kept in the member's state for replays, and
    # a referral's is "referral:" and a member id)
    id: str = Field(min_length=1, max_length=256)
    member_id: str = Field(min_length=1, max_length=128)
    # strict: read in lax mode, true would be 1 point; and 0 or fewer would be reported as a
    # change the ledger never makes (it earns nothing from them)
    points: int = Field(strict=True, ge=1)
    rule: str = Field(min_length=1, max_length=128)
    reason: str = Field(max_length=1000)


class RefundResult(_Out):
    transaction_id: str
    amount: Money
    money_refunded: Money
    points_reversed: int
    points_returned: int
    shortfall: int
    shortfall_recovered: int = 0  # of earlier refunds' shortfall, from the points returned
    spend_reversed: Money
    full: bool


class LifecycleDecision(_Out):
    """The outcome of a non-purchase event: time passing, a refund, an action, a reward."""

    program: ProgramRef
    kind: Literal["advance", "refund", "behaviour", "reward", "credit", "gift_out", "gift_in"]
    member_id: str
    event_id: str | None
    at: datetime
    points_change: int
    events: tuple[LifecycleEvent, ...]
    refund: RefundResult | None = None
    reward: str | None = None
    replayed: bool = False
    member_version: int = 0
    # a behaviour's rules, each fired or not and why (None for the other kinds, whose
    # events say what happened)
    trace: tuple[TraceEntry, ...] | None = None
    member_after: MemberState

    def replayed_words(self) -> str:
        """Why a replayed decision changed nothing (an advance has no id to be seen again)."""
        if self.kind == "advance":
            return "the member stands at or past that moment already, nothing changed"
        return "already applied (event id seen before), nothing changed"

    def explain(self) -> str:
        """What happened, for people and the CLI: the events, and for a behaviour which of
        its rules fired and why the others did not."""
        head = f"{self.kind} for member {self.member_id} at {self.at.isoformat()}"
        if self.replayed:
            return f"{head}: {self.replayed_words()}"
        lines = [head + f": points {self.points_change:+d}"]
        lines += [f"  {e.at.isoformat()} {e.type} {e.rule or ''} {e.points:+d} {e.detail}"
                  for e in self.events]
        if self.trace:
            lines.append("rules:")
            lines += [f"  {entry}" for entry in self.trace]
        return "\n".join(lines)


class GiftDecision(_Out):
    """Points given by one member to another: two decisions that apply together or not at
    all (:func:`loyaltyrules.apply_gift`)."""

    gift_id: str
    points: int
    giver: LifecycleDecision
    receiver: LifecycleDecision


class Decision(_Out):
    """The outcome of one transaction for one member; apply it to get the member's next state.

    ``line_paid[i]`` is what line ``i`` of the transaction costs after every discount (its
    list amount minus its parts of each discount's ``allocation``)."""

    program: ProgramRef
    member_id: str
    transaction_id: str
    at: datetime
    local_date: date
    currency: str
    tier_before: str
    tier_after: str
    tier_changed: bool
    benefits_tier: str
    list_amount: Money
    discounts: tuple[DiscountLine, ...]
    total_discount: Money
    line_paid: tuple[Money, ...]
    goods_paid: Money
    shipping: Money
    tax: Money
    paid_with_points: Money
    payable: Money
    qualifying_spend: Money
    points: tuple[PointsLine, ...]
    points_total: int
    perks: tuple[PerkGrant, ...]
    usage: tuple[UsageConsumed, ...]
    rules_fired: tuple[str, ...]
    trace: tuple[TraceEntry, ...] | None = None
    redeemed_points: int = 0
    events: tuple[LifecycleEvent, ...] = ()
    outbox: tuple[HostAction, ...] = ()
    member_version: int = 0
    member_after: MemberState | None = None

    # The next state is built when first read, and so are the events of a purchase that
    # only earned points (and maybe moved up a tier), with the two fields after them. A
    # checkout that only prices a basket, or a host that keeps decisions and not states,
    # never pays for them; reading them (``apply``, serialising, comparing, copying,
    # pickling) builds them once, from values fixed at evaluation, so they are the same
    # whenever read. Anything that could fail was checked at evaluation. Fields are added
    # in their order (JSON is written in the order of the decision's dict): the events and
    # the two after them, then the next state, the last field.

    def _settle(self) -> None:
        values = self.__dict__
        if "member_after" in values:
            # (another thread may have stored it and not yet let go of what it was made
            # from: a copy or comparison made now would carry that along, and pickle fail)
            if self.__pydantic_private__ is not None:
                _set_private(self, None)
            return
        pending = self.__pydantic_private__
        if pending is None:  # another thread has just stored it
            return
        if _EVENTS in pending:
            self._settle_events()
        make, args = pending[_NEXT]
        state = in_exact(make, *args)  # (read maybe in the host's own Decimal context)
        # two threads reading it first at once may both build it; the first one stored is
        # the one every reader gets (setdefault is atomic), so it is still "built once"
        values.setdefault("member_after", state)
        _set_private(self, None)

    def _settle_events(self) -> None:
        values = self.__dict__
        if "member_version" in values:  # (the last of the three)
            return
        pending = self.__pydantic_private__
        if pending is None:  # another thread has just stored them
            return
        make, args, version = pending[_EVENTS]
        events = make(*args)  # (no arithmetic: the host's Decimal context is no matter)
        values.setdefault("events", events)  # (each thread adds them in the same order)
        values.setdefault("outbox", ())
        values.setdefault("member_version", version)

    if not TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any:
            if name == "member_after":
                self._settle()
                return self.__dict__["member_after"]
            if name in _LEFT_WITH_EVENTS:
                self._settle_events()
                return self.__dict__[name]
            return super().__getattr__(name)

    # every way of serialising (model_dump, nested in another model, a TypeAdapter) goes
    # through here. No return annotation on purpose: with one, pydantic would take it as the
    # serialisation JSON schema instead of the model's own fields.
    @model_serializer(mode="wrap")
    def _serialise(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        self._settle()
        return handler(self)

    # Called directly (not nested in another model), model_dump and model_dump_json build the
    # next state first and then write the fields with a serializer of the fields alone: the
    # same output as pydantic's own, without its second pass through the wrapping serializer
    # above (see _FIELDS_ONLY). Every keyword is pydantic's own, passed on as it would be.
    # (A subclass, with fields of its own, is written by its own serializer.)
    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        if type(self) is not Decision:
            return super().model_dump(**kwargs)
        self._settle()
        dumped: dict[str, Any] = _FIELDS_ONLY.to_python(self, **kwargs)
        return dumped

    def model_dump_json(self, **kwargs: Any) -> str:
        if type(self) is not Decision:
            return super().model_dump_json(**kwargs)
        self._settle()
        return _FIELDS_ONLY.to_json(self, **kwargs).decode()

    def model_copy(self, *args: Any, **kwargs: Any) -> Decision:
        self._settle()
        return super().model_copy(*args, **kwargs)

    def __copy__(self) -> Decision:
        self._settle()
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Decision:
        self._settle()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        self._settle()
        return super().__getstate__()

    def __eq__(self, other: object) -> bool:
        self._settle()
        if isinstance(other, Decision):
            other._settle()
        return super().__eq__(other)

    def __hash__(self) -> int:
        self._settle()
        return super().__hash__()

    def __iter__(self) -> Any:
        self._settle()
        return super().__iter__()

    def __repr_args__(self) -> Any:
        self._settle()
        return super().__repr_args__()

    def explain(self) -> str:
        """A human-readable account of the decision, for people and the CLI's --explain."""
        cur = self.currency
        out = [
            f"Decision for member {self.member_id}, transaction {self.transaction_id} "
            f"({self.local_date.isoformat()}), program {self.program.id} v{self.program.version}",
            f"  tier: {self.tier_before}"
            + (f" → {self.tier_after} (upgraded)" if self.tier_changed else "")
            + f"; benefits of {self.benefits_tier} applied",
            f"  list amount {self.list_amount} {cur}",
        ]
        for d in self.discounts:
            out.append(f"  - {d.amount} {cur} {d.type} discount ({d.kind} {d.rule}, {d.scope})")
        # every term of payable = goods paid + shipping + tax − paid with points, when present
        if self.shipping:
            out.append(f"  + {plain(self.shipping)} {cur} shipping")
        if self.tax:
            out.append(f"  + {plain(self.tax)} {cur} tax")
        if self.paid_with_points:
            spent = f" ({self.redeemed_points} points)" if self.redeemed_points else ""
            out.append(f"  - {plain(self.paid_with_points)} {cur} paid with points{spent}")
        out.append(f"  payable {self.payable} {cur}; qualifying spend {self.qualifying_spend}")
        for p in self.points:
            # (a decision made without its trace has no details to give)
            out.append(f"  + {p.points} points ({p.kind} {p.rule}: {p.detail})" if p.detail
                       else f"  + {p.points} points ({p.kind} {p.rule})")
        out.append(f"  points total {self.points_total}")
        for g in self.perks:
            out.append(f"  perk {g.perk} (from {g.rule})")
        if self.trace is not None:
            out.append("  trace:")
            out += [f"    {entry}" for entry in self.trace]
        return "\n".join(out)


# Decision's own serializer wraps its fields' (so that serialising builds a pending next state
# first), and pydantic serialises through a wrapping function twice: to Python values, then
# those to JSON. A decision whose next state is built needs no wrapping: Decision's fields
# alone, used by model_dump and model_dump_json (same output; tests/test_engine.py and
# tests/test_cli.py compare them), a third fewer instructions for every decision written.
# (A model used in two places of the schema, such as RedeemedPart in a purchase record, makes
# pydantic wrap the whole schema in "definitions": the decision's own is then the inner one.)
def _fields_only(schema: Any) -> SchemaSerializer:
    if schema["type"] == "definitions":
        inner = {key: value for key, value in schema["schema"].items()
                 if key != "serialization"}
        return SchemaSerializer({**schema, "schema": inner})
    return SchemaSerializer({key: value for key, value in schema.items()
                             if key != "serialization"})


_FIELDS_ONLY = _fields_only(Decision.__pydantic_core_schema__)
_LEFT_WITH_EVENTS = ("events", "outbox", "member_version")
if tuple(Decision.model_fields)[-4:] != (*_LEFT_WITH_EVENTS, "member_after"):
    raise ImportError("Decision's last fields must be those a pending decision leaves")
