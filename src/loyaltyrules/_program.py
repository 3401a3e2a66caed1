"""Loading a program: YAML (or a dict) → validated model → cross-checked, immutable Program.

Every problem is collected before anything runs, and reported at once as one ProgramError
whose diagnostics name file, line, column and the YAML path.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import re
import types
import typing
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from ._compile import Mode, Plan, build_plan
from ._decision import ProgramRef, build
from ._errors import Diagnostic, ProgramError, did_you_mean, plain_words
from ._expressions import Expression, tiers_named
from ._model import (
    REVIEW_TXN_FIELDS,
    Behaviour,
    EarnRule,
    Invariant,
    Meta,
    Multiplier,
    Perk,
    ProgramModel,
    Reward,
    Rule,
    Signal,
    Tier,
    needs_a_purchase,
    purchase_read,
)
from ._money import exact, parse_money, quantum
from ._yaml import SourceMap, load_yaml, read_source

__all__ = ["Program", "load_program"]

_M = TypeVar("_M", bound=BaseModel)


class Program:
    """A loaded, validated program. Immutable: share it freely between threads and calls.

    >>> program = load_program("programs/retail-4tier.yaml")   # doctest: +SKIP
    >>> program.id, program.tier_ids                            # doctest: +SKIP
    ('retail-4tier', ('basic', 'silver', 'gold', 'diamond'))
    """

    __slots__ = (
        "_frozen",
        "_hash",
        "_map",
        "_model",
        "_plans",
        "_quantum",
        "_ref",
        "_source",
        "_tier_rank",
        "_zone",
    )

    def __init__(self, model: ProgramModel, *, source: str = "<program>",
                 source_map: SourceMap | None = None) -> None:
        self._model = model
        self._source = source
        self._map = source_map or SourceMap(source=source, positions={}, key_positions={})
        # (a setting left at its default is left out, written or not: so a setting a later
        # version adds does not change the hash of a program that does not use it)
        canonical = json.dumps(_canonical(model.model_dump(exclude_defaults=True)),
                               sort_keys=True,
                               ensure_ascii=False, separators=(",", ":"), default=str)
        self._hash = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
        self._tier_rank = types.MappingProxyType({t.id: i for i, t in enumerate(model.tiers)})
        self._zone = model.program.zone
        self._quantum = quantum(model.program.units)
        self._ref = build(ProgramRef, {"id": model.program.id, "version": model.program.version,
                                       "hash": self._hash})
        self._plans: dict[Mode, Plan] = {"compiled": build_plan(model, "compiled")}
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError("Program is immutable")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Program is immutable")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Program:
        """Build a program from plain data (as parsed from YAML or JSON); same checks as YAML."""
        return _build(data, SourceMap(source=source, positions={}, key_positions={}))

    def __repr__(self) -> str:
        return f"<Program {self.id} v{self.version} {self._hash[:19]}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its data and source map, loaded (validated, compiled) again on the
        other side: a process pool can be handed a program. The hash is the same."""
        return (_unpickle, (self.to_dict(), self._map))

    def plan(self, mode: Mode = "compiled") -> Plan:
        """The compiled (default) or interpreted plan the engine runs; built once."""
        plan = self._plans.get(mode)
        if plan is None:
            plan = build_plan(self._model, mode)
            self._plans[mode] = plan
        return plan

    @property
    def source_map(self) -> SourceMap:
        """Where each part of the program was written (empty for programs built from dicts)."""
        return self._map

    @property
    def ref(self) -> ProgramRef:
        """Id, version and content hash, as every decision names them."""
        return self._ref

    @property
    def model(self) -> ProgramModel:
        return self._model

    @property
    def id(self) -> str:
        return self._model.program.id

    @property
    def version(self) -> str:
        return self._model.program.version

    @property
    def hash(self) -> str:
        return self._hash

    @property
    def source(self) -> str:
        return self._source

    @property
    def currency(self) -> str:
        return self._model.program.currency

    @property
    def zone(self) -> tzinfo:
        return self._zone

    @property
    def quantum(self) -> Decimal:
        return self._quantum

    @property
    def tiers(self) -> tuple[Tier, ...]:
        return self._model.tiers

    @property
    def tier_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self._model.tiers)

    def tier_rank(self, tier_id: str) -> int:
        return self._tier_rank[tier_id]

    def has_tier(self, tier_id: str) -> bool:
        return tier_id in self._tier_rank

    def to_dict(self) -> dict[str, Any]:
        """The program as plain JSON-ready data; ``Program.from_dict`` of it is the same program."""
        return self._model.model_dump(mode="json", exclude_defaults=True)


def _canonical(value: Any) -> Any:
    """The program's content for hashing: 0.2, 0.20 and 20% are the same rate, and -0.0 is
    0."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Expression):
        return value.source
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def load_program(source: str | bytes | Path | Mapping[str, Any]) -> Program:
    """Load a program from a YAML file path, YAML text (``str``, or UTF-8 ``bytes``), or a
    dict.

    A ``str`` is read as a path when it is a single line naming a ``.yaml``/``.yml``/``.json``
    file or an existing file; otherwise it is YAML text. Raises :class:`ProgramError`, and
    ``TypeError`` for a source of another kind (``None``, a number, a list).
    """
    if isinstance(source, Mapping):
        return Program.from_dict(source)
    if isinstance(source, (bytes, bytearray)):
        data, smap = load_yaml(bytes(source))
        return _build(data, smap)
    if not isinstance(source, (str, Path)):
        raise TypeError(f"load_program takes a path, YAML text or a mapping, got "
                        f"{type(source).__name__}")
    if isinstance(source, Path) or _looks_like_path(source):
        path = Path(source)
        try:
            raw = read_source(path)
        except OSError as exc:
            raise ProgramError(
                [Diagnostic("LR001", f"cannot read the program: {exc.strerror or exc}",
                            source=str(path))]
            ) from None
        data, smap = load_yaml(raw, source=str(path))
        return _build(data, smap)
    data, smap = load_yaml(source)
    if isinstance(data, str) and "\n" not in source.strip() and (
            "/" in source or "\\" in source or "." in source):
        # one line of text read as YAML is one word: a path whose file is not there (or
        # has no .yaml suffix) was most likely meant
        raise ProgramError([Diagnostic(
            "LR001", "cannot read the program: no such file (a str is a path when it names "
            "an existing regular file or ends in .yaml, .yml or .json; otherwise it is read as "
            "YAML text, and this text is no program)", source=source.strip())])
    return _build(data, smap)


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > 4096:
        return False
    if text.strip().lower().endswith((".yaml", ".yml", ".json")):
        return True
    try:
        return Path(text).is_file()
    except OSError:
        return False


def _unpickle(data: dict[str, Any], smap: SourceMap) -> Program:
    return _build(data, smap)


@exact  # loading computes too (rates, the canonical form hashed): never in a host's context
def _build(data: Any, smap: SourceMap) -> Program:
    if not isinstance(data, Mapping):
        raise ProgramError([smap.diagnostic("LR200", "a program is a mapping of sections "
                                            "(program, tiers, earn, …)", ())])
    problems: list[Diagnostic] = []
    model: ProgramModel | None = None
    try:
        model = ProgramModel.model_validate(dict(data))
    except ValidationError as exc:
        problems += _pydantic_diagnostics(exc, data, smap)
    # YAML reports these itself, with positions; a dict may hold them too, and the content
    # hash could not encode them (a field's own check, say a when:'s, may have said so already)
    reported = {d.path for d in problems}
    problems += [
        smap.diagnostic("LR203", f"\\u{ord(char):04x} on its own is not a character (it is "
                        "half of a UTF-16 surrogate pair)", path)
        for path, char in _lone_surrogates(data, ()) if path not in reported]
    # consistency checks run on every part that validated, so one load reports everything
    problems += _cross_checks(_Parts(data), smap)
    if problems or model is None:
        problems.sort(key=lambda d: (d.line or 0, d.column or 0))
        raise ProgramError(problems)
    return Program(model, source=smap.source, source_map=smap)


def _lone_surrogates(value: Any, path: tuple[str | int, ...],
                     depth: int = 0) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Where text holds a surrogate code point (not a character, not encodable as UTF-8)."""
    if isinstance(value, str):
        found = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
        if found is not None:
            yield path, found
    elif depth > 100:  # pragma: no cover - deeper than any program; the model refuses it
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _lone_surrogates(key, path, depth + 1)
            yield from _lone_surrogates(item, (*path, str(key)), depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _lone_surrogates(item, (*path, index), depth + 1)


# --- turning pydantic's errors into designer-facing diagnostics ---------------------------


def _data_path(loc: tuple[int | str, ...], data: Any) -> tuple[str | int, ...]:
    """Keep the parts of a pydantic location that exist in the document (drop union tags)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_map = isinstance(node, Mapping) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            path.append(part)
            node = node[part]
        elif isinstance(part, str) and isinstance(node, Mapping) and part not in node:
            # a missing or unknown key: name it, even though the document lacks it
            if not part.startswith(("function-", "tagged-union")) and "[" not in part:
                path.append(part)
            break
    return tuple(path)


def _value_before(data: Any, loc: tuple[Any, ...], key: str) -> int | None:
    """The whole number written just before an unknown key ``key`` that has no value of its
    own (``{spend: 10,000}`` reads as spend 10 and a key 000), or None."""
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return None
    if not isinstance(parent, dict) or parent.get(key, 0) is not None:
        return None
    keys = list(parent)
    k = keys.index(key) if key in keys else 0
    value = parent[keys[k - 1]] if k > 0 else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# words designers write for a key that has another name here
_SYNONYMS: Final = {"if": "when", "condition": "when", "conditions": "when", "where": "when",
                    "begin": "start", "from": "start", "starts": "start", "until": "end",
                    "to": "end", "ends": "end", "multiplier": "points_multiplier",
                    "bonus": "bonus_points", "label": "name", "title": "name"}


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed where an unknown key was found, for a did-you-mean suggestion."""
    model: Any = ProgramModel
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    for arg in (annotation, *_flatten_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _flatten_args(annotation: Any) -> Iterator[Any]:
    for arg in typing.get_args(annotation):
        yield arg
        yield from _flatten_args(arg)


# a schedule's keys, which a window written for a schedule holds
_SCHEDULE_KEYS: Final = frozenset({"freq", "interval", "bymonth", "bymonthday", "byweekday",
                                   "bysetpos", "rrule"})

# a # right after a value's text (no space before it), then words, as a comment is
# written (`5%#gold members`, `9.5折# pays 95%`): YAML reads it as part of the value (not
# C#, vip#1 or 9.5折#: no words follow)
_GLUED_COMMENT: Final = re.compile(r"\S(?=#\S*\s+\S)")


def _pydantic_diagnostics(exc: ValidationError, data: Any, smap: SourceMap) -> Iterator[Diagnostic]:
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    errors = exc.errors(include_url=False)
    # the locations that hold another error deeper inside (computed once: a list of
    # thousands of bad entries must not cost thousands squared)
    inner = {tuple(e["loc"])[:n] for e in errors for n in range(len(e["loc"]))}
    for err in errors:
        loc = tuple(err["loc"])
        path = _data_path(loc, data)
        kind = err["type"]
        message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        hint = None
        code = "LR203"
        if kind == "too_short" and loc in inner:
            continue  # "no tiers left" only because a tier inside was wrong: said already
        if kind == "expression":
            code = "LR301"
            message, _, hint_text = message.partition(" — ")
            hint = hint_text or None
            position = smap.locate(path)
        elif kind == "extra_forbidden":
            code = "LR201"
            key = str(path[-1]) if path else "?"
            message = f"unknown key {key!r}"
            allowed = _fields_at(loc)
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            meant = _SYNONYMS.get(key.lower())
            if not close and meant in allowed:  # (another word for the same thing)
                close = [meant]
            hint = f"did you mean {close[0]!r}?" if close else None
            plain_key = unicodedata.normalize("NFKC", key)
            glued = re.fullmatch(r"([A-Za-z_][\w-]*)\s*:\s*(\S.*)", plain_key)
            if glued and glued[1] in allowed:  # ({spend：20000}, {spend:20000}: one key)
                colon = "the full-width '\uff1a'" if "\uff1a" in key else "':' with no space"
                hint = (f"write {glued[1]}: {glued[2]} (an ASCII colon and a space), not "
                        f"{colon}")
            elif plain_key != key and plain_key in allowed:  # ｄｉｓｃｏｕｎｔ
                hint = f"did you mean {plain_key!r}? (written here in full-width letters)"
            elif not close and len(path) >= 2 and path[-2] == "window" \
                    and path[0] in ("birthday", "promotions") \
                    and key in _SCHEDULE_KEYS:  # (window: {freq: weekly}: a schedule's)
                hint = f"{key} belongs under schedule: (a window is start and end)"
            before = _value_before(data, loc, key) if key.isdigit() and len(key) == 3 \
                else None
            if before is not None:  # ({spend: 10,000}: a comma in { } splits the number)
                hint = (f"inside {{ }} a comma separates entries: write {before}{key}, "
                        "without the thousands comma")
            position = smap.locate_key(path)
        elif kind == "missing":
            code = "LR202"
            message = f"missing required key {path[-1]!r}" if path else "missing"
            position = smap.locate(path[:-1])
        else:
            plain = plain_words(err)
            if plain is not None:
                message, hint = plain
            elif " — " in message:
                message, hint = message.split(" — ", 1)
            given = err.get("input")
            if hint is None and isinstance(given, str) and not given.isascii() \
                    and (ascii_twin := unicodedata.normalize("NFKC", given)).isascii():
                hint = f"write it in ASCII: {ascii_twin}"  # (bymonthday: ８, full-width)
            if kind == "string_type" and isinstance(given, (int, Decimal)) \
                    and not isinstance(given, bool) and hint is None and (
                        path[-1:] == ("id",) or (len(path) >= 2 and isinstance(path[-1], int))):
                # (YAML reads 2026.10 as a number, 2026.1: an id or a name of a list, where
                # any text goes, keeps what was written in quotes)
                hint = "YAML reads it as a number: put it in quotes to keep it as written"
            glued = _GLUED_COMMENT.search(given) if isinstance(given, str) else None
            if glued:  # (9.5折# pays 95%: YAML reads a # as a comment after a space only)
                said = (f"a comment starts with a space before its #: write "
                        f"{given[:glued.start() + 1]} {given[glued.start() + 1:]}")
                hint = f"{hint}; {said}" if hint else said
            position = smap.locate(path)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        yield Diagnostic(
            code,
            message,
            path,
            source=smap.source,
            line=position.line if position else None,
            column=position.column if position else None,
            hint=hint,
        )


# --- checks that need the whole program ----------------------------------------------------


class _Parts:
    """The sections of a program item by item, keeping those that validate on their own."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self.tiers: list[tuple[int, Tier]] = self._valid(data, "tiers", Tier)
        self.perks = self._valid(data, "perks", Perk)
        self.earn = self._valid(data, "earn", EarnRule)
        self.multipliers = self._valid(data, "multipliers", Multiplier)
        self.birthday = self._valid(data, "birthday", Rule)
        self.promotions = self._valid(data, "promotions", Rule)
        self.behaviours = self._valid(data, "behaviours", Behaviour)
        self.rewards = self._valid(data, "rewards", Reward)
        self.signals = self._valid(data, "signals", Signal)
        self.invariants = self._valid(data, "invariants", Invariant)
        self.tier_ids = self._ids(data, "tiers")
        self.perk_ids = self._ids(data, "perks")
        self.zone: tzinfo | None = None
        self.meta: Meta | None = None
        with contextlib.suppress(ValidationError, ValueError):
            self.meta = Meta.model_validate(data.get("program"))
            self.zone = self.meta.zone

    @staticmethod
    def _valid(data: Mapping[str, Any], section: str, cls: type[_M]) -> list[tuple[int, _M]]:
        raw = data.get(section)
        out: list[tuple[int, _M]] = []
        if isinstance(raw, list):
            for i, item in enumerate(raw):
                with contextlib.suppress(ValidationError):
                    out.append((i, cls.model_validate(item)))
        return out

    def raw(self, section: str) -> list[tuple[int, Mapping[str, Any]]]:
        items = self._data.get(section)
        if not isinstance(items, list):
            return []
        return [(i, item) for i, item in enumerate(items) if isinstance(item, Mapping)]

    def section(self, name: str) -> Any:
        return self._data.get(name)

    @staticmethod
    def _ids(data: Mapping[str, Any], section: str) -> list[str]:
        raw = data.get(section)
        if not isinstance(raw, list):
            return []
        return [str(item["id"]) for item in raw if isinstance(item, Mapping) and "id" in item]


def _number(value: Any) -> Decimal | None:
    try:
        return parse_money(value)
    except ValueError:
        return None


_SUGGESTION_WORK: Final = 20_000
"""Word-to-id comparisons that did-you-mean hints may make in one load: each hint compares a
word with every id, so thousands of misspelt references to thousands of ids would otherwise
take minutes to report (a real program's hints cost a few hundred)."""


def _money_places(parts: _Parts) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every amount of money a program writes, with its path: thresholds and amounts off."""
    def at(path: tuple[str | int, ...], mapping: Any, *keys: str) -> Iterator[
            tuple[tuple[str | int, ...], Any]]:
        if isinstance(mapping, Mapping):
            for key in keys:
                if key in mapping:
                    yield (*path, key), mapping[key]

    for i, tier in parts.raw("tiers"):
        for criteria in ("qualify", "retain"):
            yield from at(("tiers", i, criteria), tier.get(criteria), "spend")
    for section in ("birthday", "promotions"):
        for i, rule in parts.raw(section):
            yield from at((section, i), rule, "min_amount", "min_paid")
            yield from at((section, i, "discount"), rule.get("discount"),
                          "amount", "threshold", "off")
    for i, reward in parts.raw("rewards"):
        yield from at(("rewards", i), reward, "value")
    for i, signal in parts.raw("signals"):
        yield from at(("signals", i), signal, "spend")


def _instant(moment: datetime) -> datetime:
    """The instant itself: two datetimes of one zone compare by wall time, not instant."""
    return moment.astimezone(UTC)


def _ends_first(start: datetime, end: datetime, zone: tzinfo) -> tuple[str, str | None]:
    """Why a window ends at or before its start: its times written in that order, or a
    local time the clocks skip (a spring-forward gap), which resolves later than written."""
    if start.replace(tzinfo=None) >= end.replace(tzinfo=None) or start.tzinfo is not zone:
        return "the window ends before (or when) it starts", None

    def resolved(name: str, moment: datetime) -> str:
        local = _instant(moment).astimezone(zone)
        text = f"{local.isoformat()} ({_instant(moment).strftime('%H:%M:%S')} UTC)"
        if local.replace(tzinfo=None) == moment.replace(tzinfo=None):
            return f"{name} {text}"
        return (f"{name} {moment.replace(tzinfo=None).isoformat()} is a time the clocks skip "
                f"in {zone} (they go forward {_hours(moment)} that night), so it resolves to "
                f"{text}")

    order = "when" if _instant(end) == _instant(start) else "before"
    return (f"the window ends {order} it starts: {resolved('start', start)}, "
            f"{'at' if order == 'when' else 'after'} {resolved('end', end)}",
            "write times the clocks show that day")


def _hours(moment: datetime) -> str:
    """How far the clocks go forward at the gap ``moment`` falls in (1:00, 0:30)."""
    ahead = moment.replace(fold=1).utcoffset()
    behind = moment.replace(fold=0).utcoffset()
    assert ahead is not None and behind is not None
    minutes = abs(int((behind - ahead).total_seconds())) // 60
    return f"{minutes // 60}:{minutes % 60:02d}"


def _finer_than_currency(parts: _Parts, meta: Meta, smap: SourceMap) -> list[Diagnostic]:
    """Amounts with more decimals than the currency has (JPY ``off: 100.7``): refused like
    such an amount in a transaction, rather than rounded (or made 0) at every purchase."""
    q = quantum(meta.units)
    out = []
    for path, raw in _money_places(parts):
        amount = _number(raw)
        try:
            finer = amount is not None and amount != amount.quantize(q)
        except ArithmeticError:  # too large to have decimals at all: its own check says so
            continue
        if finer:
            out.append(smap.diagnostic(
                "LR203", f"{raw} has more decimals than {meta.currency} allows", path))
    return out


def _reviews_without_a_purchase(parts: _Parts, smap: SourceMap) -> list[Diagnostic]:
    """A tier review judges its members with no purchase (amount 0, channel "", no items),
    so a ``retain.when`` that reads one — or, under reviews, a ``qualify.when`` that cannot
    hold without one, which a tier without ``retain`` is kept by — would load and decide
    every review the same way: ``retain: {when: "txn.channel == 'app'"}`` moved every
    member down."""
    reviews = parts.section("reviews")
    reviewed = isinstance(reviews, Mapping) and bool(
        reviews.get("schedule") is not None or reviews.get("anniversary"))
    out = []
    for i, tier in parts.tiers:
        for key in ("retain", "qualify"):
            criteria = getattr(tier, key, None)
            if criteria is None or criteria.when is None or (i == 0 and key == "qualify"):
                continue  # (the first tier's qualify: LR404 says it)
            # (retain reads no purchase at all; qualify, which purchases are judged by too,
            # may read one where a member alone can meet it otherwise)
            first = purchase_read(criteria.when, REVIEW_TXN_FIELDS) if key == "retain" \
                else needs_a_purchase(criteria.when, REVIEW_TXN_FIELDS)
            if first is None or (key == "qualify" and criteria.match == "any" and (
                    criteria.spend is not None or criteria.points is not None
                    or criteria.orders is not None)):  # (met at a review another way)
                continue
            if key == "retain":
                out.append(smap.diagnostic(
                    "LR410", f"{first} reads a purchase, and retain is judged at reviews, "
                    "where there is none (its amount is 0, its channel empty)",
                    ("tiers", i, key, "when"),
                    "judge the member: member.qualifying_spend, member.orders, member.points, "
                    "member.last_purchase, tier, today"))
            elif reviewed and tier.retain is None:
                out.append(smap.diagnostic(
                    "LR410", f"{first} reads a purchase, and reviews judge tier {tier.id!r} "
                    "by its qualify (it has no retain) with none: every member would be "
                    "judged on an empty purchase", ("tiers", i, key, "when"),
                    "give the tier a retain: with what it takes to stay, judged on the member"))
    return out


def _cross_checks(parts: _Parts, smap: SourceMap) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    tier_ids, perk_ids = parts.tier_ids, parts.perk_ids
    known_tiers, known_perks = set(tier_ids), set(perk_ids)
    budget = [_SUGGESTION_WORK]

    def suggest(word: str, choices: list[str]) -> str | None:
        budget[0] -= len(choices)
        return did_you_mean(word, choices) if budget[0] >= 0 else None

    def dupes(section: str, ids: list[tuple[int, str]]) -> None:
        first: dict[str, int] = {}
        for i, ident in ids:
            if ident in first:
                out.append(smap.diagnostic(
                    "LR401", f"duplicate id {ident!r} (also {section}[{first[ident]}])",
                    (section, i, "id")))
            else:
                first[ident] = i

    dupes("tiers", [(i, t.id) for i, t in parts.tiers])
    dupes("perks", [(i, p.id) for i, p in parts.perks])
    dupes("rewards", [(i, r.id) for i, r in parts.rewards])
    dupes("signals", [(i, s.id) for i, s in parts.signals])
    dupes("invariants", [(i, v.id) for i, v in parts.invariants])
    rule_ids: dict[str, tuple[str, int]] = {}
    # one namespace: a member's usage of a limited rule is kept under the rule's id (and
    # gifting's under "gifting"), so a behaviour and a promotion of one id would share a limit
    sections: list[tuple[str, list[tuple[int, Any]]]] = [
        ("earn", list(parts.earn)), ("multipliers", list(parts.multipliers)),
        ("birthday", list(parts.birthday)), ("promotions", list(parts.promotions)),
        ("behaviours", list(parts.behaviours))]
    for section, items in sections:
        for i, rule in items:
            if rule.id == "gifting":
                out.append(smap.diagnostic(
                    "LR401", "rule id 'gifting' is reserved: members' gifting limits are kept "
                    "under it", (section, i, "id")))
            elif rule.id in rule_ids:
                where = rule_ids[rule.id]
                out.append(smap.diagnostic(
                    "LR401",
                    f"duplicate rule id {rule.id!r} (also {where[0]}[{where[1]}]); "
                    "rule ids must be unique across earn, multipliers, birthday, promotions "
                    "and behaviours",
                    (section, i, "id"),
                ))
            else:
                rule_ids[rule.id] = (section, i)

    def tier_refs(path: tuple[str | int, ...], refs: Any) -> None:
        # a list, or one id written bare (`tiers: gold`), which the models read as a list
        named = [((*path, j), ref) for j, ref in enumerate(refs)] if isinstance(refs, list) \
            else [(path, refs)]
        for where, ref in named:
            if isinstance(ref, (str, int)) and not isinstance(ref, bool) \
                    and str(ref) not in known_tiers:
                out.append(smap.diagnostic("LR402", f"unknown tier {str(ref)!r}", where,
                                           suggest(str(ref), tier_ids)))

    def perk_ref(path: tuple[str | int, ...], ref: Any) -> None:
        if isinstance(ref, (str, int)) and str(ref) not in known_perks:
            hint = suggest(str(ref), perk_ids) or "declare it under perks:"
            out.append(smap.diagnostic("LR403", f"unknown perk {str(ref)!r}", path, hint))

    # references and tier order are checked on the raw items, so an item with a shape
    # mistake still has its references checked in the same load
    raw_tiers = [t for t in parts.raw("tiers")]
    for i, tier in raw_tiers:
        qualify = tier.get("qualify")
        if i == 0 and qualify is not None:
            out.append(smap.diagnostic(
                "LR404", "the first tier is where members start; it cannot have qualify",
                ("tiers", 0, "qualify")))
        if i > 0 and qualify is None:
            out.append(smap.diagnostic(
                "LR405", f"tier {str(tier.get('id'))!r} has no qualify: members could never "
                "reach it", ("tiers", i)))
        perks = tier.get("perks")
        if isinstance(perks, list):
            for j, perk in enumerate(perks):
                perk_ref(("tiers", i, "perks", j), perk)
        elif perks is not None:  # one perk written bare: `perks: gift`
            perk_ref(("tiers", i, "perks"), perks)

    for metric in ("spend", "points", "orders"):
        last: tuple[str, Any] | None = None
        for i, tier in raw_tiers:
            qualify = tier.get("qualify")
            value = _number(qualify.get(metric)) if isinstance(qualify, Mapping) else None
            if value is None:
                continue
            if last is not None and value <= last[1]:
                out.append(smap.diagnostic(
                    "LR406",
                    f"qualify.{metric} must increase along the tiers: "
                    f"{str(tier.get('id'))!r} needs {value} but the lower tier {last[0]!r} "
                    f"already needs {last[1]}",
                    ("tiers", i, "qualify", metric),
                ))
            last = (str(tier.get("id")), value)

    for section in ("earn", "multipliers", "birthday", "promotions", "rewards", "behaviours"):
        for i, item in parts.raw(section):
            if "tiers" in item:
                tier_refs((section, i, "tiers"), item.get("tiers"))
            if section in ("birthday", "promotions", "rewards") and "perk" in item:
                perk_ref((section, i, "perk"), item.get("perk"))
            if section == "birthday" and item.get("on") is None:
                out.append(smap.diagnostic(
                    "LR407", "a birthday rule needs on: birthday, birthday_week or "
                    "birthday_month", (section, i)))
    gifting = parts.section("gifting")
    if isinstance(gifting, Mapping) and "tiers" in gifting:
        tier_refs(("gifting", "tiers"), gifting.get("tiers"))

    # a tier named in a condition (`tier == 'glod'`) is checked like one in a tiers: list
    def when_tiers(path: tuple[str | int, ...], expr: Any) -> None:
        if isinstance(expr, Expression):
            for name in dict.fromkeys(tiers_named(expr)):
                if name not in known_tiers:
                    out.append(smap.diagnostic(
                        "LR402", f"unknown tier {name!r} in the condition", path,
                        suggest(name, tier_ids)))

    for section, items in sections:
        for i, rule in items:
            when_tiers((section, i, "when"), rule.when)
    for i, tier_model in parts.tiers:
        for key in ("qualify", "retain"):
            criteria = getattr(tier_model, key, None)
            if criteria is not None:
                when_tiers(("tiers", i, key, "when"), criteria.when)
    out += _reviews_without_a_purchase(parts, smap)
    windowed: list[tuple[str, list[tuple[int, Any]]]] = [
        *sections[2:4], ("rewards", parts.rewards)]  # birthday, promotions and rewards
    for section, items in windowed:
        for i, r in items:
            if r.window and r.window.start and r.window.end and parts.zone is not None:
                start, end = r.window.bounds(parts.zone)
                if start is not None and end is not None and _instant(end) <= _instant(start):
                    message, hint = _ends_first(start, end, parts.zone)
                    out.append(smap.diagnostic("LR408", message, (section, i, "window", "end"),
                                               hint))
    if parts.meta is not None:
        out += _finer_than_currency(parts, parts.meta, smap)
    for i, e in parts.earn:
        overlap = set(e.categories) & set(e.exclude_categories)
        if overlap:
            out.append(smap.diagnostic(
                "LR409", f"categories both included and excluded: {sorted(overlap)}",
                ("earn", i, "exclude_categories")))
    return out
