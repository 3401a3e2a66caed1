"""What a host passes in: the member's state and the transaction, as JSON-round-trippable models.

Money is ``Decimal`` and serialises as a string; a float for money is refused (it cannot be
exact), so JSON readers should parse numbers as Decimal (the CLI does).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from ._errors import InputError, format_path
from ._money import parse_money

__all__ = ["LineItem", "MemberState", "Transaction", "Usage", "coerce"]

_MONEY_SCHEMA = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}


def _amount(value: Any) -> Decimal:
    amount = parse_money(value)
    if amount < 0:
        raise ValueError(f"must not be negative (got {value})")
    return amount


Money = Annotated[
    Decimal,
    BeforeValidator(_amount),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    WithJsonSchema(_MONEY_SCHEMA),
]
Attr = str | int | bool | Annotated[Decimal, BeforeValidator(parse_money),
                                    PlainSerializer(lambda d: format(d, "f"), return_type=str)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Usage(_Input):
    """How often a member used a limited rule in its current period (older periods are dropped)."""

    period: str
    count: int = Field(ge=0)


class MemberState(_Input):
    """Everything the engine needs to know about a member; the host stores it between events."""

    id: str = Field(min_length=1, max_length=128)
    tier: str | None = None
    points: int = 0
    qualifying_spend: Money = Decimal(0)
    orders: int = Field(default=0, ge=0)
    birthday: date | None = None
    joined: date | None = None
    last_purchase: date | None = None
    usage: dict[str, Usage] = Field(default_factory=dict)
    recent_transactions: tuple[str, ...] = ()
    attrs: dict[str, Attr] = Field(default_factory=dict)


class LineItem(_Input):
    """One basket line; ``amount`` is the line's list total (unit price × quantity)."""

    sku: str = Field(min_length=1, max_length=128)
    category: str = Field(default="general", min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    amount: Money
    attrs: dict[str, Attr] = Field(default_factory=dict)


class Transaction(_Input):
    """A purchase. ``at`` must carry a UTC offset: the engine never guesses a zone."""

    id: str = Field(min_length=1, max_length=128)
    member_id: str | None = None
    at: AwareDatetime
    channel: str = Field(default="store", min_length=1, max_length=64)
    store: str | None = None
    items: tuple[LineItem, ...] = Field(min_length=1, max_length=1000)
    shipping: Money = Decimal(0)
    tax: Money = Decimal(0)
    paid_with_points: Money = Decimal(0)
    attrs: dict[str, Attr] = Field(default_factory=dict)


M = TypeVar("M", bound=BaseModel)


def coerce(model: type[M], value: Any, kind: str) -> M:
    """Validate host input into ``model``; the first problem becomes an InputError naming it."""
    if isinstance(value, model):
        return value
    try:
        if isinstance(value, (str, bytes)):
            return model.model_validate_json(value)
        return model.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if isinstance(p, (int, str)))
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        raise InputError(message, field=format_path(loc), kind=kind) from None


def _is_aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None
