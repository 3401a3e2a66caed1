"""Models made from values the library already guarantees, without validating them again:
decisions on the hot path, and the rare input state the library writes anew (a member's
spend written in the currency's unit). Pydantic's ``model_construct`` and ``model_copy`` do
the same with more work: checks, copies of the fields-set, defaults looked up per call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["build", "builder", "field_set", "new", "shared_keys"]

_M = TypeVar("_M", bound=BaseModel)
_object_new = object.__new__
if BaseModel.__new__ is not object.__new__:  # pragma: no cover - a pydantic that changed this
    raise ImportError("loyaltyrules.build needs pydantic's BaseModel without a __new__")


def build(cls: type[_M], values: dict[str, Any]) -> _M:
    """Construct an output model from values the engine already guarantees, without
    re-validating them (decisions are built on the hot path). ``values`` must hold every field
    with its final type (tuples, Decimals); the JSON round-trip property test pins this."""
    make = _BUILDERS.get(cls)
    if make is None:
        make = builder(cls)
    made: _M = make(values)
    return made


_BUILDERS: dict[type[BaseModel], Callable[[dict[str, Any]], Any]] = {}


def builder(cls: type[_M]) -> Callable[[dict[str, Any]], _M]:
    """:func:`build` for one class, resolved once (and kept): what a caller that makes many
    of one model (trace entries, generated decisions) holds on to."""
    made = _BUILDERS.get(cls)
    if made is not None:
        return made
    fields = field_set(cls)

    # (everything it uses bound as defaults: read as locals, on every output model made)
    def make(values: dict[str, Any], cls: type[_M] = cls, new: Any = _object_new,
             fields: set[str] = fields, set_dict: Any = _set_dict,
             set_fields: Any = _set_fields, set_extra: Any = _set_extra,
             set_private: Any = _set_private) -> _M:
        obj = new(cls)  # BaseModel has no __new__ of its own (checked at import)
        set_dict(obj, values)
        set_fields(obj, fields)
        set_extra(obj, None)
        set_private(obj, None)
        return obj  # type: ignore[no-any-return]

    _BUILDERS[cls] = make
    return make


def field_set(cls: type[BaseModel]) -> set[str]:
    """The fields-set slot's value for ``cls``: one set per class, shared on purpose by every
    object made (pydantic copies it before model_copy updates it)."""
    fields = _FIELD_SETS.get(cls)
    if fields is None:
        fields = _FIELD_SETS[cls] = set(cls.model_fields)
    return fields


_FIELD_SETS: dict[type[BaseModel], set[str]] = {}


def shared_keys(cls: type[BaseModel], values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every field of ``cls`` in order (None, or its value in ``values``), in a dict whose
    copies share one table of keys with every other such dict of ``cls`` (CPython's
    key-sharing dicts, PEP 412, as a plain object's ``__dict__`` has): a copy with its
    values set holds only the values. A run keeps a year of purchase records and points
    lots for every member: on CPython 3.11 a member of ten purchases took 22.5 KB in dicts
    of their own, about 19 KB so. A copy stays so while only existing keys are set (``update``
    with the same keys included); a model's dict copied (``model_copy``) keeps it.
    Elsewhere than CPython, or past its 30 shared keys, it is a plain dict: the same
    values, only larger.

    The table is made on the first call for ``cls``, which must come before more than a
    few instances of ``cls`` are made (``_member`` makes them when it defines the models):
    CPython lowers a class's room for new shared keys with each instance made (so that the
    values of each, sized by that room, stay small), and past a few dozen the table would
    take none of the fields."""
    keys = _SHARED_KEYS.get(cls)
    if keys is None:
        probe = _object_new(cls)
        for name in cls.model_fields:  # (object's setattr: the model's refuses, frozen)
            object.__setattr__(probe, name, None)
        keys = _SHARED_KEYS[cls] = object.__getattribute__(probe, "__dict__").copy()
    keys = keys.copy()
    if values:
        keys.update(values)
    if tuple(keys) != tuple(cls.model_fields):  # pragma: no cover - checked at import
        raise ImportError(f"{cls.__name__}'s values must name its fields, in order")
    return keys


_SHARED_KEYS: dict[type[BaseModel], dict[str, Any]] = {}


_MISSING: Any = object()
_DEFAULTS: dict[type[BaseModel], tuple[dict[str, Any], list[tuple[str, Any]]]] = {}


def new(cls: type[_M], **values: Any) -> _M:
    """:func:`build` with the model's defaults filled in, for values the engine made itself.
    The values are laid out in the model's field order, which is the order JSON is written in."""
    spec = _DEFAULTS.get(cls)
    if spec is None:
        # every field in order with its immutable default (or a marker), resolved once;
        # factories (dicts, lists) are called per object
        spec = _DEFAULTS[cls] = (
            shared_keys(cls, {
                name: _MISSING if field.is_required() or field.default_factory is not None
                else field.get_default() for name, field in cls.model_fields.items()}),
            [(name, field.default_factory) for name, field in cls.model_fields.items()
             if field.default_factory is not None])
    template, factories = spec
    full = template.copy()  # keeps the field order; update() only replaces values
    full.update(values)
    for name, factory in factories:
        if full[name] is _MISSING:
            full[name] = factory()
    return build(cls, full)


# BaseModel's own slots, set directly: the model's __setattr__ refuses (frozen) and is slow


def _slot_setter(name: str) -> Any:
    descriptor = BaseModel.__dict__.get(name)
    if descriptor is not None and hasattr(descriptor, "__set__"):
        return descriptor.__set__
    return lambda obj, value: object.__setattr__(obj, name, value)


_set_dict = _slot_setter("__dict__")  # (its descriptor: cheaper than object.__setattr__)
_set_fields = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")
