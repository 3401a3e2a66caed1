"""Loading a program: YAML (or a dict) → validated model → cross-checked, immutable Program.

Every problem is collected before anything runs, and reported at once as one ProgramError
whose diagnostics name file, line, column and the YAML path.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ._compile import Mode, Plan, build_plan
from ._decision import ProgramRef, build
from ._errors import Diagnostic, ProgramError
from ._model import ProgramModel, Rule, Tier
from ._money import quantum
from ._yaml import SourceMap, load_yaml

__all__ = ["Program", "load_program"]


class Program:
    """A loaded, validated program. Immutable: share it freely between threads and calls.

    >>> program = load_program("programs/retail-4tier.yaml")   # doctest: +SKIP
    >>> program.id, program.tier_ids                            # doctest: +SKIP
    ('retail-4tier', ('basic', 'silver', 'gold', 'diamond'))
    """

    __slots__ = ("_frozen", "_hash", "_model", "_plans", "_quantum", "_ref", "_source",
                 "_tier_rank", "_zone")

    def __init__(self, model: ProgramModel, *, source: str = "<program>") -> None:
        self._model = model
        self._source = source
        dump = model.model_dump(mode="json")
        canonical = json.dumps(dump, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Program:
        """Build a program from plain data (as parsed from YAML or JSON); same checks as YAML."""
        return _build(data, SourceMap(source=source, positions={}, key_positions={}))

    def __repr__(self) -> str:
        return f"<Program {self.id} v{self.version} {self._hash[:19]}>"

    def plan(self, mode: Mode = "compiled") -> Plan:
        """The compiled (default) or interpreted plan the engine runs; built once."""
        plan = self._plans.get(mode)
        if plan is None:
            plan = build_plan(self._model, mode)
            self._plans[mode] = plan
        return plan

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


def load_program(source: str | Path | Mapping[str, Any]) -> Program:
    """Load a program from a YAML file path, YAML text, or a dict.

    A ``str`` is read as a path when it is a single line naming a ``.yaml``/``.yml``/``.json``
    file or an existing file; otherwise it is YAML text. Raises :class:`ProgramError`.
    """
    if isinstance(source, Mapping):
        return Program.from_dict(source)
    if isinstance(source, Path) or _looks_like_path(source):
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ProgramError(
                [Diagnostic("LR001", f"cannot read the program: {exc.strerror or exc}",
                            source=str(path))]
            ) from None
        data, smap = load_yaml(raw, source=str(path))
        return _build(data, smap)
    data, smap = load_yaml(source)
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


def _build(data: Any, smap: SourceMap) -> Program:
    if not isinstance(data, Mapping):
        raise ProgramError([smap.diagnostic("LR200", "a program is a mapping of sections "
                                            "(program, tiers, earn, …)", ())])
    try:
        model = ProgramModel.model_validate(dict(data))
    except ValidationError as exc:
        raise ProgramError(list(_pydantic_diagnostics(exc, data, smap))) from None
    problems = list(_cross_checks(model, smap))
    if problems:
        raise ProgramError(problems)
    return Program(model, source=smap.source)


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


def _pydantic_diagnostics(exc: ValidationError, data: Any, smap: SourceMap) -> Iterator[Diagnostic]:
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _data_path(loc, data)
        kind = err["type"]
        message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        hint = None
        code = "LR203"
        if kind == "extra_forbidden":
            code = "LR201"
            key = str(path[-1]) if path else "?"
            message = f"unknown key {key!r}"
            close = difflib.get_close_matches(key, _fields_at(loc), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else None
            position = smap.locate_key(path)
        elif kind == "missing":
            code = "LR202"
            message = f"missing required key {path[-1]!r}" if path else "missing"
            position = smap.locate(path[:-1])
        else:
            if " — " in message:
                message, hint = message.split(" — ", 1)
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


def _suggest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _cross_checks(model: ProgramModel, smap: SourceMap) -> Iterator[Diagnostic]:
    tier_ids = [t.id for t in model.tiers]
    perk_ids = [p.id for p in model.perks]

    def dupes(section: str, ids: list[str]) -> Iterator[Diagnostic]:
        first: dict[str, int] = {}
        for i, ident in enumerate(ids):
            if ident in first:
                yield smap.diagnostic(
                    "LR401", f"duplicate id {ident!r} (also {section}[{first[ident]}])",
                    (section, i, "id"))
            else:
                first[ident] = i

    yield from dupes("tiers", tier_ids)
    yield from dupes("perks", perk_ids)
    rule_ids: dict[str, tuple[str | int, ...]] = {}
    for section in ("earn", "multipliers", "birthday", "promotions"):
        for i, rule in enumerate(getattr(model, section)):
            if rule.id in rule_ids:
                where = rule_ids[rule.id]
                yield smap.diagnostic(
                    "LR401",
                    f"duplicate rule id {rule.id!r} (also {where[0]}[{where[1]}]); "
                    "rule ids must be unique across earn, multipliers, birthday and promotions",
                    (section, i, "id"),
                )
            else:
                rule_ids[rule.id] = (section, i)

    def tier_refs(path: tuple[str | int, ...], refs: tuple[str, ...]) -> Iterator[Diagnostic]:
        for j, ref in enumerate(refs):
            if ref not in tier_ids:
                yield smap.diagnostic("LR402", f"unknown tier {ref!r}", (*path, j),
                                      _suggest(ref, tier_ids))

    def perk_ref(path: tuple[str | int, ...], ref: str) -> Iterator[Diagnostic]:
        if ref not in perk_ids:
            hint = _suggest(ref, perk_ids) or "declare it under perks:"
            yield smap.diagnostic("LR403", f"unknown perk {ref!r}", path, hint)

    for i, tier in enumerate(model.tiers):
        if i == 0 and tier.qualify is not None:
            yield smap.diagnostic(
                "LR404", "the first tier is where members start; it cannot have qualify",
                ("tiers", 0, "qualify"))
        if i > 0 and tier.qualify is None:
            yield smap.diagnostic(
                "LR405", f"tier {tier.id!r} has no qualify: members could never reach it",
                ("tiers", i))
        for j, perk in enumerate(tier.perks):
            yield from perk_ref(("tiers", i, "perks", j), perk)

    for metric in ("spend", "points", "orders"):
        last: tuple[int, Any] | None = None
        for i, tier in enumerate(model.tiers):
            value = getattr(tier.qualify, metric) if tier.qualify else None
            if value is None:
                continue
            if last is not None and value <= last[1]:
                prev = model.tiers[last[0]]
                yield smap.diagnostic(
                    "LR406",
                    f"qualify.{metric} must increase along the tiers: {tier.id!r} needs "
                    f"{value} but the lower tier {prev.id!r} already needs {last[1]}",
                    ("tiers", i, "qualify", metric),
                )
            last = (i, value)

    for section in ("earn", "multipliers"):
        for i, rule in enumerate(getattr(model, section)):
            yield from tier_refs((section, i, "tiers"), rule.tiers)
    for section in ("birthday", "promotions"):
        rules: tuple[Rule, ...] = getattr(model, section)
        for i, r in enumerate(rules):
            yield from tier_refs((section, i, "tiers"), r.tiers)
            if r.perk is not None:
                yield from perk_ref((section, i, "perk"), r.perk)
            if section == "birthday" and r.on is None:
                yield smap.diagnostic(
                    "LR407", "a birthday rule needs on: birthday, birthday_week or "
                    "birthday_month", (section, i))
            if r.window and r.window.start and r.window.end:
                start, end = r.window.bounds(model.program.zone)
                if start is not None and end is not None and end <= start:
                    yield smap.diagnostic(
                        "LR408", "the window ends before it starts", (section, i, "window", "end"))
    for i, e in enumerate(model.earn):
        overlap = set(e.categories) & set(e.exclude_categories)
        if overlap:
            yield smap.diagnostic(
                "LR409", f"categories both included and excluded: {sorted(overlap)}",
                ("earn", i, "exclude_categories"))
