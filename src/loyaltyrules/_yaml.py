"""Safe YAML loading that keeps source positions and avoids YAML 1.1 surprises.

Programs are written by people who are not YAML experts, so the loader is strict where
PyYAML's defaults are surprising: ``NO`` stays the country code, ``012`` stays a code with a
leading zero, ``0.1`` becomes an exact :class:`~decimal.Decimal` and floats never appear.

Only PyYAML's *composer* is used (never a constructor), so no tag can run code; the node
graph is converted here, with limits on size, aliases and depth so that hostile documents
("billion laughs") fail fast with a :class:`~loyaltyrules._errors.ProgramError`.
"""

from __future__ import annotations

import itertools
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import yaml
from yaml.composer import Composer
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from ._errors import Diagnostic, ProgramError

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SOURCE_BYTES",
    "Position",
    "SourceMap",
    "load_yaml",
    "read_source",
]

MAX_SOURCE_BYTES: Final = 1_000_000
"""Larger text is refused before parsing: no real program is this big."""
MAX_ALIASES: Final = 100
"""Alias (``*ref``) events allowed in one document."""
MAX_NODES: Final = 200_000
"""Values produced after alias expansion; stops exponential alias bombs."""
MAX_DEPTH: Final = 64
"""Collection nesting depth; keeps recursion (ours and PyYAML's) bounded."""

_BOM: Final = b"\xef\xbb\xbf"
_MAX_NUMBER_CHARS: Final = 100
"""Longer numerals are refused: nothing in a loyalty program needs them, and huge ints are slow."""
_MAX_EXPONENT: Final = 1000

_Path = tuple[str | int, ...]

_YAML_TAG_PREFIX: Final = "tag:yaml.org,2002:"
_STR: Final = _YAML_TAG_PREFIX + "str"
_INT: Final = _YAML_TAG_PREFIX + "int"
_FLOAT: Final = _YAML_TAG_PREFIX + "float"
_BOOL: Final = _YAML_TAG_PREFIX + "bool"
_NULL: Final = _YAML_TAG_PREFIX + "null"
_MAP: Final = _YAML_TAG_PREFIX + "map"
_SEQ: Final = _YAML_TAG_PREFIX + "seq"
_PLAIN: Final = "tag:loyaltyrules,2026:plain"
"""Marks an untagged plain scalar: resolved by our own rules, not PyYAML's YAML 1.1 ones."""
_SCALAR_TAGS: Final = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})

_NULL_RE: Final = re.compile(r"(?:null|Null|NULL|~|)")
_TRUE_RE: Final = re.compile(r"(?:true|True|TRUE)")
_FALSE_RE: Final = re.compile(r"(?:false|False|FALSE)")
_INT_RE: Final = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DECIMAL_RE: Final = re.compile(
    r"[-+]?(?:0|[1-9][0-9]*)?\.[0-9]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?[eE][-+]?[0-9]+"
)


@dataclass(frozen=True)
class Position:
    """A place in the source text, 1-based as editors show it."""

    line: int
    column: int


def _empty_positions() -> Mapping[_Path, Position]:
    return MappingProxyType({})


def _source_map(source: str, positions: dict[_Path, Position],
                key_positions: dict[_Path, Position]) -> SourceMap:
    return SourceMap(source, MappingProxyType(positions), MappingProxyType(key_positions))


@dataclass(frozen=True)
class SourceMap:
    """Where each value of a loaded document was written, so diagnostics can point at it.

    A program built from a dict has no positions; ``SourceMap(source=...)`` still works and
    simply locates nothing.
    """

    source: str = "<program>"
    positions: Mapping[_Path, Position] = field(default_factory=_empty_positions)
    key_positions: Mapping[_Path, Position] = field(default_factory=_empty_positions)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as plain dicts (a read-only view does not pickle), read-only again after
        return (_source_map, (self.source, dict(self.positions), dict(self.key_positions)))

    def locate(self, path: _Path) -> Position | None:
        """Position of the value at path, else of its key, else of the nearest located ancestor.

        Model errors often concern values that are missing or defaulted; pointing at the
        enclosing mapping is still far better than no position.
        """
        current = tuple(path)
        while True:
            found = self.positions.get(current) or self.key_positions.get(current)
            if found is not None:
                return found
            if not current:
                return None
            current = current[:-1]

    def locate_key(self, path: _Path) -> Position | None:
        """Key position if known (for "unknown field" style errors), else :meth:`locate`."""
        found = self.key_positions.get(tuple(path))
        return found if found is not None else self.locate(path)

    def diagnostic(
        self, code: str, message: str, path: _Path, hint: str | None = None, *,
        at_key: bool = False
    ) -> Diagnostic:
        """Build a Diagnostic filled with source/line/column via :meth:`locate` (of the key,
        with ``at_key``: an unknown key is where it is written, not its value)."""
        position = self.locate_key(path) if at_key else self.locate(path)
        return Diagnostic(
            code=code,
            message=message,
            path=tuple(path),
            source=self.source,
            line=position.line if position else None,
            column=position.column if position else None,
            hint=hint,
        )


class _Mark(NamedTuple):
    """A place in the text (0-based), as PyYAML's marks give it."""

    line: int
    column: int


def _position(mark: Any) -> Position | None:
    """PyYAML marks are 0-based; people count from 1."""
    if mark is None:
        return None
    return Position(line=int(mark.line) + 1, column=int(mark.column) + 1)


def _diag(
    source: str,
    code: str,
    message: str,
    mark: Any = None,
    path: _Path = (),
    hint: str | None = None,
) -> Diagnostic:
    position = _position(mark)
    return Diagnostic(
        code=code,
        message=message,
        path=path,
        source=source,
        line=position.line if position else None,
        column=position.column if position else None,
        hint=hint,
    )


def _fail(diagnostic: Diagnostic) -> ProgramError:
    return ProgramError([diagnostic])


def _show_tag(tag: str) -> str:
    """Write a tag the way it appears in the file (``!!python/...``), not expanded."""
    if tag.startswith(_YAML_TAG_PREFIX):
        return "!!" + tag[len(_YAML_TAG_PREFIX) :]
    return tag


class _Composing:
    """PyYAML's composer with alias and depth limits and our own scalar tagging, over either
    parser (:class:`_Composer`, :class:`_FastComposer`).

    Only the node graph is built; values are produced by :class:`_Converter`.
    """

    _source: str
    _aliases: int
    _depth: int
    # (from the parser and PyYAML's Composer, which the two classes below mix in)
    anchors: dict[str, Node]
    check_event: Any
    peek_event: Any
    get_event: Any
    compose_document: Any

    def _limits(self, source: str) -> None:
        self._source = source
        self._aliases = 0
        self._depth = 0

    def _peek(self) -> Any:
        """Typed access to the next event (the stubs leave it untyped)."""
        return self.peek_event()

    def _next(self) -> Any:
        return self.get_event()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self._peek()
                raise _fail(
                    _diag(
                        self._source,
                        "LR105",
                        f"too many aliases (more than {MAX_ALIASES}); write the values out",
                        event.start_mark,
                    )
                )
            return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
        event = self._peek()
        anchor = getattr(event, "anchor", None)
        if anchor is not None and anchor in self.anchors:
            first = _position(self.anchors[anchor].start_mark)
            where = f" (first defined at line {first.line})" if first else ""
            raise _fail(
                _diag(self._source, "LR100", f"duplicate anchor &{anchor}{where}", event.start_mark)
            )
        if isinstance(event, SequenceStartEvent | MappingStartEvent):
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise _fail(
                        _diag(
                            self._source,
                            "LR106",
                            f"values are nested more than {MAX_DEPTH} levels deep",
                            event.start_mark,
                        )
                    )
                return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
            finally:
                self._depth -= 1
        tag = event.tag if isinstance(event, ScalarEvent) else None
        # (a plain scalar's style: None from PyYAML's parser, "" from libyaml's)
        style = (event.style or None) if isinstance(event, ScalarEvent) else None
        node: Node | None = super().compose_node(parent, index)  # type: ignore[misc]
        if isinstance(node, ScalarNode) and tag in (None, "!"):
            # PyYAML resolved it with YAML 1.1 rules; replace that with ours.
            node.tag = _PLAIN if tag is None and style is None else _STR
            if style is None and not node.value:
                self._empty(event)
        return node

    def _empty(self, event: Any) -> None:
        """An empty plain scalar (``key:`` with no value), which the parsers place apart."""

    def compose_single(self) -> Node:
        """The one document's root node; empty or multi-document streams are refused."""
        self._next()  # STREAM-START
        if self.check_event(StreamEndEvent):
            raise _fail(_diag(self._source, "LR103", "the program is empty"))
        root = self.compose_document()
        if not self.check_event(StreamEndEvent):
            event = self._peek()
            raise _fail(
                _diag(
                    self._source,
                    "LR104",
                    "a program file holds exactly one YAML document, but another one starts here",
                    event.start_mark,
                    hint="remove the '---' separator or split the file",
                )
            )
        if root is None:  # pragma: no cover - compose_document always returns a node
            raise _fail(_diag(self._source, "LR103", "the program is empty"))
        return root  # type: ignore[no-any-return]


class _Composer(_Composing, yaml.SafeLoader):
    """Over PyYAML's own parser, in Python: the reference, and the one whose words and
    positions every syntax error is reported in."""

    def __init__(self, text: str, source: str) -> None:
        yaml.SafeLoader.__init__(self, text)
        self._limits(source)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastComposer(_Composing, CParser, Composer, Resolver):
        """Over libyaml's parser (PyYAML's C extension), the same events about ten times
        faster: a program of 1,000 promotions is parsed in 0.07 s instead of 0.6 s. Used
        for text PyYAML's reader accepts; on any YAML error the text is parsed again by
        :class:`_Composer`, so a mistake is told in the same words and place either way."""

        def __init__(self, text: str, source: str) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            Resolver.__init__(self)
            self._limits(source)

        def _empty(self, event: Any) -> None:
            raise _NotTheSame  # (libyaml marks it elsewhere than PyYAML's parser does)
else:  # pragma: no cover - PyYAML built without libyaml
    _FastComposer = None  # type: ignore[assignment, misc]


class _NotTheSame(Exception):
    """The text is one where libyaml's parser and PyYAML's may not give the same result."""


# Where the two parsers were seen to differ (tests/test_yaml_loading.py compares them on
# generated and mutated documents), the text goes to PyYAML's parser alone: libyaml accepts
# a tab after `key:`, `|#`, `?` inside a flow collection's plain scalar and tags PyYAML
# refuses (`!'x`), treats a byte-order mark or U+2028 inside the text otherwise, and places
# an empty value (`key:` with nothing after it) elsewhere. (A `!` that starts a token may be
# a tag; one inside a word, "happy birthday!", is not.)
_DIFFERENT: Final = re.compile(
    r"[\t\x85\u2028\u2029\ufeff?]|[|>][-+0-9]{0,2}#|(?:^|[\s\[\]{},])!", re.MULTILINE)


def _compose(text: str, source: str, *, fast: bool = True) -> Node:
    """The document's root node. Raises yaml.YAMLError (in PyYAML's own words) or
    :class:`ProgramError`."""
    if (fast and _FastComposer is not None and not _DIFFERENT.search(text)
            and not yaml.reader.Reader.NON_PRINTABLE.search(text)):
        loader: _Composing | None = None
        try:
            loader = _FastComposer(text, source)
            return loader.compose_single()
        except (yaml.YAMLError, _NotTheSame):
            pass  # (told below as PyYAML's parser tells it)
        finally:
            if loader is not None:
                loader.dispose()  # type: ignore[attr-defined]
    composer = _Composer(text, source)
    try:
        return composer.compose_single()
    finally:
        composer.dispose()


class _Converter:
    """Turns the node graph into plain Python values, recording positions on the way."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.positions: dict[_Path, Position] = {}
        self.key_positions: dict[_Path, Position] = {}
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple[str, str, int | None, int | None]] = set()
        self._count = 0
        self._measured: dict[int, tuple[int, int]] = {}
        self._active: set[int] = set()

    # -- limits ---------------------------------------------------------------------------

    def measure(self, node: Node, depth: int = 0) -> tuple[int, int]:
        """(values, nesting height) of node after alias expansion, refusing bombs early.

        Memoised per node, so an exponential alias bomb costs only as much as its text.
        """
        key = id(node)
        if key in self._active:
            raise _fail(
                _diag(
                    self.source,
                    "LR105",
                    "an alias refers to the value that contains it (recursive alias)",
                    node.start_mark,
                )
            )
        known = self._measured.get(key)
        if known is None:
            count, height = 1, 0
            if isinstance(node, SequenceNode | MappingNode):
                height = 1
                if depth + 1 > MAX_DEPTH:
                    raise _fail(
                        _diag(
                            self.source,
                            "LR106",
                            f"values are nested more than {MAX_DEPTH} levels deep",
                            node.start_mark,
                        )
                    )
                children: list[Node] = (
                    list(node.value)
                    if isinstance(node, SequenceNode)
                    else [value for _, value in node.value]
                )
                self._active.add(key)
                try:
                    for child in children:
                        child_count, child_height = self.measure(child, depth + 1)
                        count += child_count
                        height = max(height, child_height + 1)
                        self._check_count(count, node)
                finally:
                    self._active.discard(key)
            known = (count, height)
            self._measured[key] = known
        if depth + known[1] > MAX_DEPTH:
            raise _fail(
                _diag(
                    self.source,
                    "LR106",
                    f"values are nested more than {MAX_DEPTH} levels deep",
                    node.start_mark,
                )
            )
        return known

    def _check_count(self, count: int, node: Node) -> None:
        if count > MAX_NODES:
            raise _fail(
                _diag(
                    self.source,
                    "LR105",
                    f"document expands to too many values (alias bomb?); "
                    f"the limit is {MAX_NODES:,}",
                    node.start_mark,
                )
            )

    def _report(
        self, code: str, message: str, mark: Any, path: _Path, hint: str | None = None
    ) -> None:
        diagnostic = _diag(self.source, code, message, mark, path, hint)
        key = (code, message, diagnostic.line, diagnostic.column)
        if key not in self._seen:  # an aliased node would otherwise report once per use
            self._seen.add(key)
            self.diagnostics.append(diagnostic)

    # -- conversion -----------------------------------------------------------------------

    def convert(self, node: Node, path: _Path) -> Any:
        """The Python value of node; problems are collected, limits raise at once."""
        self._count += 1
        self._check_count(self._count, node)
        if len(path) > MAX_DEPTH:  # pragma: no cover - measure() already refused it
            raise _fail(
                _diag(self.source, "LR106", "values are nested too deeply", node.start_mark)
            )
        position = _position(node.start_mark)
        if position is not None:
            self.positions[path] = position
        tag = node.tag
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if tag != _SEQ:
                self._bad_tag(node, path, "a sequence")
                return None
            if node.flow_style:
                self._full_width_separators(node, path)
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if tag != _MAP:
                self._bad_tag(node, path, "a mapping")
                return None
            return self._mapping(node, path)
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover

    def _mapping(self, node: MappingNode, path: _Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Position | None] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            entry = (*path, key)
            key_position = _position(key_node.start_mark)
            if key in first_seen:
                first = first_seen[key]
                where = f" (first defined at line {first.line})" if first is not None else ""
                # (an item of a list whose "- " was left out runs on into the one before:
                # its keys are all that one's again, the first of them its id)
                hint = ("if this starts another item of the list, begin it with '- '"
                        if key == "id" and path and isinstance(path[-1], int)
                        and not node.flow_style else None)
                self._report("LR108", f"duplicate key {key!r}{where}", key_node.start_mark, entry,
                             hint)
                continue
            first_seen[key] = key_position
            if key_position is not None:
                self.key_positions[entry] = key_position
            result[key] = self.convert(value_node, entry)
        return result

    def _key(self, node: Node, path: _Path) -> str | None:
        """A mapping key as text, or None (after reporting) when it cannot be one.

        Keys keep their written text (``2026`` stays ``"2026"``) since keys are names.
        """
        if not isinstance(node, ScalarNode):
            self._report(
                "LR107",
                "a mapping key must be a plain value, not a list or mapping",
                node.start_mark,
                path,
            )
            return None
        text = self._text(node, path)
        if node.tag == _PLAIN and text == "<<":
            self._report(
                "LR109",
                "merge keys (<<) are not supported; write the keys out",
                node.start_mark,
                path,
            )
            return None
        if node.tag not in (_PLAIN, *_SCALAR_TAGS):
            self._bad_tag(node, path, "a key")
            return None
        return text

    def _text(self, node: ScalarNode, path: _Path) -> str:
        """The scalar's text, ``"\\ud83d\\ude00"`` escapes joined into the one character they
        spell; a lone surrogate escape (``"\\ud800"``) is reported: it is not a character,
        and could not even be written as UTF-8 (the content hash would fail on it)."""
        text = str(node.value)
        if not any("\ud800" <= c <= "\udfff" for c in text):
            return text
        out: list[str] = []
        i = 0
        while i < len(text):
            high, low = text[i], text[i + 1 : i + 2]
            if "\ud800" <= high <= "\udbff" and "\udc00" <= low <= "\udfff":
                out.append(chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00)))
                i += 2
            elif "\ud800" <= high <= "\udfff":
                self._report(
                    "LR101",
                    f"\\u{ord(high):04x} on its own is not a character (it is half of a "
                    "UTF-16 surrogate pair)",
                    node.start_mark,
                    path,
                    hint="write the character itself, or a \\U0001F600-style escape",
                )
                return text
            else:
                out.append(high)
                i += 1
        return "".join(out)

    def _full_width_separators(self, node: SequenceNode, path: _Path) -> None:
        """``[app，store]`` is one value, ``app，store``, to YAML (its separator is the ASCII
        comma): the rule would never match, silently. A plain value of a ``[...]`` that holds
        a full-width comma or an enumeration comma (、) is refused at it; a quoted one is text
        meant as text."""
        for index, item in enumerate(node.value):
            if isinstance(item, ScalarNode) and item.tag == _PLAIN and \
                    item.value.startswith("\u3010") and item.value.endswith("\u3011"):
                self._report("LR100", "a list in full-width brackets inside [...]",
                             item.start_mark, (*path, index),
                             f"write [{item.value[1:-1]}], in ASCII brackets alone")
                continue
            if isinstance(item, ScalarNode) and item.tag == _PLAIN:
                at = min((k for k in (item.value.find("\uff0c"), item.value.find("\u3001"))
                          if k >= 0), default=-1)
                if at >= 0:
                    mark = item.start_mark
                    self._report(
                        "LR100", "YAML separates the values of [...] with an ASCII comma",
                        _Mark(mark.line, mark.column + at), (*path, index),
                        f"write ',' (and a space), not {item.value[at]!r}; a name that holds "
                        "one is written in quotes")

    def _scalar(self, node: ScalarNode, path: _Path) -> Any:
        text = self._text(node, path)
        tag = node.tag
        if tag == _STR:
            return text
        if tag == _PLAIN:
            return self._resolve_plain(node, path)
        if tag not in _SCALAR_TAGS:
            self._bad_tag(node, path, "a scalar")
            return None
        if tag == _NULL and _NULL_RE.fullmatch(text):
            return None
        if tag == _BOOL and (_TRUE_RE.fullmatch(text) or _FALSE_RE.fullmatch(text)):
            return _TRUE_RE.fullmatch(text) is not None
        if tag == _INT and _INT_RE.fullmatch(text):
            return self._number(node, path, integer=True)
        if tag == _FLOAT and (_INT_RE.fullmatch(text) or _DECIMAL_RE.fullmatch(text)):
            return self._number(node, path, integer=False)
        self._report(
            "LR110",
            f"{text!r} is not a valid {_show_tag(tag)} value",
            node.start_mark,
            path,
        )
        return None

    def _resolve_plain(self, node: ScalarNode, path: _Path) -> Any:
        """YAML 1.2-like resolution: only null, true/false, plain ints and decimals."""
        text = str(node.value)
        if _NULL_RE.fullmatch(text):
            return None
        if _TRUE_RE.fullmatch(text):
            return True
        if _FALSE_RE.fullmatch(text):
            return False
        if _INT_RE.fullmatch(text):
            return self._number(node, path, integer=True)
        if _DECIMAL_RE.fullmatch(text):
            return self._number(node, path, integer=False)
        return text

    def _number(self, node: ScalarNode, path: _Path, *, integer: bool) -> int | Decimal | None:
        """Exact numbers; absurdly long ones are refused rather than slowly parsed."""
        text = str(node.value)
        number: int | Decimal | None = None
        why = f"is too long (more than {_MAX_NUMBER_CHARS} characters)"
        if len(text) <= _MAX_NUMBER_CHARS:
            if integer:
                number = int(text)
            else:
                decimal = Decimal(text)
                if abs(decimal.adjusted()) <= _MAX_EXPONENT:
                    number = decimal
                elif not decimal:  # (0e999999: zero, written with an absurd exponent)
                    why = f"has an exponent beyond ±{_MAX_EXPONENT}"
                else:  # (1e-999999999 is not large: too small to mean anything)
                    why = "is too small" if decimal.adjusted() < 0 else "is too large"
        if number is None:
            self._report(
                "LR111",
                f"number {text[:20]}{'...' if len(text) > 20 else ''} {why}",
                node.start_mark,
                path,
            )
        return number

    def _bad_tag(self, node: Node, path: _Path, what: str) -> None:
        tag = node.tag
        if tag in _SCALAR_TAGS or tag in (_MAP, _SEQ):
            self._report(
                "LR110", f"tag {_show_tag(tag)} cannot be used on {what}", node.start_mark, path
            )
        else:
            self._report(
                "LR110",
                f"tag {_show_tag(tag)} is not allowed",
                node.start_mark,
                path,
                hint="only !!str, !!int, !!float, !!bool, !!null, !!map and !!seq are allowed",
            )


def _decode(text: str | bytes, source: str) -> str:
    """Text of the program, with size checked on the encoded form and any BOM dropped."""
    if isinstance(text, bytes):
        raw = text[len(_BOM):] if text.startswith(_BOM) else text
        _check_size(len(raw), source)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            # (in characters, as an editor counts them: the line's text before the byte)
            start = raw.rfind(b"\n", 0, exc.start) + 1
            column = len(raw[start:exc.start].decode("utf-8", "replace")) + 1
            utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
            raise _fail(
                Diagnostic(
                    code="LR101",
                    message="the file is UTF-16, not UTF-8" if utf16 else
                    f"the file is not valid UTF-8 (byte {exc.start})",
                    source=source,
                    line=line,
                    column=column,
                    hint="save the file as UTF-8",
                )
            ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    _check_size(len(text.encode("utf-8", "surrogatepass")), source)
    return text


def read_source(path: Path) -> bytes:
    """A program file's bytes, never reading more than the size limit allows: a huge file
    (or ``/dev/zero``) is refused with LR102 instead of being read into memory.

    Raises :class:`OSError` when the file cannot be opened or read."""
    limit = MAX_SOURCE_BYTES + len(_BOM)  # the limit counts the text after a byte-order mark
    with path.open("rb") as handle:
        status = os.fstat(handle.fileno())
        if stat.S_ISREG(status.st_mode) and status.st_size > limit:
            _check_size(status.st_size, str(path))
        raw = handle.read(limit + 1)
    if len(raw) > limit:  # not a regular file, or one that grew: its size is unknown
        raise _fail(
            Diagnostic(
                code="LR102",
                message=f"file is larger than {MAX_SOURCE_BYTES:,} bytes; programs are "
                f"limited to {MAX_SOURCE_BYTES:,} bytes",
                source=str(path),
            )
        )
    return raw


def _check_size(size: int, source: str) -> None:
    if size > MAX_SOURCE_BYTES:
        raise _fail(
            Diagnostic(
                code="LR102",
                message=(
                    f"file is {size:,} bytes; programs are limited to {MAX_SOURCE_BYTES:,} bytes"
                ),
                source=source,
            )
        )


_CANNOT_START: Final = re.compile(r"found character '(.+)' that cannot start any token")


# a line's indentation holding a space that is not one (copied from a web page or a word
# processor, or typed with a Chinese input method)
_ODD_INDENT: Final = re.compile(
    r"(?:^|(?<=[\r\x85\u2028\u2029]))[ ]*([\u00a0\u3000])[ \u00a0\u3000]*", re.MULTILINE)


def _full_width_comma(text: str, index: int) -> tuple[int, int] | None:
    """Where (0-based line and column) a full-width comma was read as part of a plain value
    just before ``index``, where YAML expected a ',': in one of the last two tokens, so
    never in a quoted or block value, a comment, or text lines away ("会员，欢迎" is text
    meant as text)."""
    last: list[yaml.Token] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index > index:
                break
            last = [*last[-1:], token]
    except yaml.YAMLError:
        pass  # (the tokens before the scanner's own error are the ones wanted)
    for token in reversed(last):
        if isinstance(token, yaml.ScalarToken) and token.plain:
            at = text.find("\uff0c", token.start_mark.index, token.end_mark.index)
            if at >= 0:
                line = token.start_mark.line + text.count("\n", token.start_mark.index, at)
                return line, at - (text.rfind("\n", 0, at) + 1)
    return None


def _odd_indent(found: re.Match[str], line: int, column: int, source: str) -> ProgramError:
    """The problem of a line indented with ``found`` (at this 0-based line and column)."""
    name = "a non-breaking space (U+00A0)" if found[1] == "\u00a0" else \
        "a full-width space (U+3000)"
    return _fail(Diagnostic(code="LR100", message=f"this line is indented with {name}",
                            hint="indent with ordinary spaces", source=source, line=line + 1,
                            column=column + 1))


def _blamed_indent(exc: yaml.YAMLError, text: str, odd: list[re.Match[str]], source: str
                   ) -> ProgramError | None:
    """When YAML gives up on text with lines indented with odd spaces: the problem of the one
    on the line it gave up on or the line before (or where the construct it was reading
    started), if with ordinary spaces there the error moves or goes — else None, and the
    error is some other mistake (a paragraph of a | block indented with U+3000 is text)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return None
    context = getattr(exc, "context_mark", None)
    line_start = mark.index - mark.column  # (the problem line's, and the line's before)
    before = max(text.rfind("\n", 0, max(line_start - 1, 0)) + 1, 0)
    end = text.find("\n", mark.index)
    for found in odd:
        at = found.start(1)
        if context is not None and context.index == at:
            line, column = context.line, context.column
        elif before <= at and (end < 0 or at <= end):
            line = mark.line if at >= line_start else mark.line - 1
            column = at - (line_start if at >= line_start else before)
        else:
            continue
        spaced = text[:found.start()] + " " * (found.end() - found.start()) + text[found.end():]
        try:
            _compose(spaced, source)
        except yaml.YAMLError as again:
            moved = getattr(again, "problem_mark", None)
            if moved is not None and moved.index == mark.index:
                continue  # (the same error either way: not this line's doing)
        except ProgramError:
            pass  # (a limit: the document reads on with ordinary spaces)
        return _odd_indent(found, line, column, source)
    return None


def _plain_starts(root: Node) -> dict[int, Mark]:
    """Where each plain (unquoted, not block) scalar of the document starts, by index."""
    starts: dict[int, Mark] = {}
    seen: set[int] = set()  # (each node once: aliases share nodes, and may be many)
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if not node.style:  # (None from PyYAML's parser, "" from libyaml's)
                starts[node.start_mark.index] = node.start_mark
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                todo += (key, value)
        elif isinstance(node, SequenceNode):
            todo += node.value
    return starts


def _plain_syntax(exc: yaml.MarkedYAMLError, text: str
                  ) -> tuple[str, str | None, bool | tuple[int, int]] | None:
    """PyYAML's parser words in a designer's: (message, hint, point at where the construct
    started rather than where the parser gave up — or at this 0-based line and column), or
    None to keep PyYAML's message."""
    problem, context = exc.problem or "", exc.context or ""
    start = _CANNOT_START.fullmatch(problem)
    if start and start[1] == "\\t":
        mark = exc.problem_mark
        rows = text.splitlines()
        before = rows[mark.line][: mark.column] if mark is not None and mark.line < len(rows) \
            else ""
        if before.strip(" \t"):
            return "YAML does not accept a tab here; use spaces", None, False
        return "tabs cannot indent YAML; use spaces", None, False
    if start:
        return (f"a plain value cannot start with {start[1]!r}",
                "put the value in quotes", False)
    if problem.startswith("expected <block end>, but found '<scalar>'"):
        return ("unexpected text after a complete value",
                "a value that starts with a quote, [ or { must end there: quote the whole "
                "value, e.g. when: \"[txn.channel] == ['app']\"", False)
    if problem.startswith("expected <block end>, but found"):
        return ("this line is not indented like the lines above it",
                "the keys of one mapping, and the items of one list, start in the same column",
                False)
    if problem.startswith("expected alphabetic or numeric character") and context in (
            "while scanning an alias", "while scanning an anchor"):
        sign = "*" if "alias" in context else "&"
        what = ("an alias (a reference to an &anchor)" if sign == "*"
                else "an anchor (a name for a value, for *alias to repeat)")
        return (f"a value that starts with {sign} is {what} to YAML",
                f"put the value in quotes: \"{sign}…\"", True)
    if problem == "found unexpected end of stream" and "quoted scalar" in context:
        return "the quoted value starting here is never closed", "add the closing quote", True
    if problem.startswith("expected ',' or ") and exc.problem_mark is not None:
        comma = _full_width_comma(text, exc.problem_mark.index)
        if comma is not None:
            return ("YAML separates the values of [...] and {...} with an ASCII comma",
                    "write ',' (and a space), not the full-width '\uff0c'", comma)
    if problem.startswith("expected '<document start>'") and exc.problem_mark is not None:
        rows = text.splitlines()
        ends = [k for k, row in enumerate(rows[:exc.problem_mark.line + 1])
                if row.rstrip() == "..."]
        if ends:
            return ("a line of '...' ends the YAML document, and more follows it",
                    "remove the '...' line", (ends[-1], 0))
    if problem == "mapping values are not allowed here":
        return ("': ' cannot appear inside a plain value",
                "put the value in quotes if it contains ': '", False)
    if problem == "could not find expected ':'" and exc.problem_mark is not None:
        line = exc.problem_mark.line
        nearby = text.splitlines()[max(0, line - 1) : line + 1]
        if any("\uff1a" in row for row in nearby):
            return (problem, "write ':' (an ASCII colon followed by a space), not the "
                    "full-width '\uff1a'", False)
        # the line before, a key and its value run together: `discount:9.5折`, `discount 8折`
        # (the key the parser was reading: where it started, not the line before the one
        # it gave up on — a blank line or the end of the file may come between)
        key_line = exc.context_mark.line if exc.context_mark is not None else line - 1
        rows = text.splitlines()
        row = rows[key_line].split(" #")[0] if 0 <= key_line < len(rows) else ""
        at = (key_line, len(row) - len(row.lstrip(" -")))
        before = row.strip()
        # `discount:` and a non-breaking or full-width space: no space to YAML, so the key
        # runs on into its value (`discount:\xa09.5折`), and the parser gives up a line later
        odd = re.fullmatch("(?:- )?([A-Za-z_][\\w-]*):([\u00a0\u3000])[ \u00a0\u3000]*(.*)",
                           before)
        if odd:
            name = ("a non-breaking space (U+00A0)" if odd[2] == "\u00a0"
                    else "a full-width space (U+3000)")
            return (f"the space after '{odd[1]}:' is {name}, which YAML does not read as a "
                    "space", f"write {odd[1]}: {odd[3]} (an ordinary space after the colon)",
                    (key_line, row.index(odd[2])))
        glued = re.fullmatch(r"(?:- )?([A-Za-z_][\w-]*):(\S.*)", before)
        if glued:
            return ("a key and its value need ': ' between them",
                    f"write {glued[1]}: {glued[2]} (a space after the colon)", at)
        spaced = re.fullmatch(r"(?:- )?([A-Za-z_][\w-]*) +([^:]+)", before)
        if spaced:
            return ("a key and its value need ': ' between them",
                    f"write {spaced[1]}: {spaced[2]}", at)
    return None


def _lines_of(text: str) -> list[str]:
    """The lines as YAML counts them (LF, CRLF, CR, NEL, LS and PS end one), each with its
    own ending, so they join back into the text."""
    return re.split(r"(?<=\r\n)|(?<=[\n\x85\u2028\u2029])|(?<=\r)(?!\n)", text)


def _unclosed_quotes(rows: list[str], before: int) -> Iterator[tuple[int, int]]:
    """(line, column), 0-based, of each double quote that opens a value and is not closed on
    its line, in lines before ``before``: a missing closing quote makes YAML read on, often
    many lines, and give up far from it. Only a quote where a value can start counts (after
    ': ', '- ', '[', '{', ',' or the indentation): `12" pizza` is a plain value."""
    for number, row in enumerate(rows[:before]):
        opened, k = -1, 0
        while k < len(row):
            char = row[k]
            if opened >= 0:
                if char == "\\":
                    k += 1
                elif char == '"':
                    opened = -1
            elif char == "#" and (k == 0 or row[k - 1] in " \t"):
                break
            elif char == "'" and _starts_value(row, k):  # ('' is a quote inside)
                close = row.find("'", k + 1)
                while close >= 0 and row[close + 1:close + 2] == "'":
                    close = row.find("'", close + 2)
                if close < 0:
                    break
                k = close
            elif char == '"' and _starts_value(row, k):
                opened = k
            k += 1
        if opened >= 0:
            yield number, opened


def _starts_value(row: str, k: int) -> bool:
    before = row[:k].rstrip(" \t")
    return not before or before.endswith((":", "-", "[", "{", ",", "?"))


def _missing_close(text: str, source: str, line: int) -> tuple[int, int] | None:
    """The opening quote whose missing closing quote explains an error found on ``line``:
    the first that, closed at the end of its value (its line's end, or before a flow
    mapping's or list's closing bracket), lets the document read past the error."""
    rows = _lines_of(text)
    for number, column in itertools.islice(_unclosed_quotes(rows, line), 5):
        row = rows[number]
        body = row.rstrip("\r\n\x85\u2028\u2029")
        comment = re.search(r"\s#", body[column:])
        end = column + comment.start() if comment else len(body)
        content = body[:end].rstrip()
        ends = [len(content), *[k for k in range(len(content) - 1, column, -1)
                                if content[k] in "]},"][:2]]
        for cut in ends:
            fixed = "".join([*rows[:number], content[:cut] + '"' + body[cut:]
                             + row[len(body):], *rows[number + 1:]])
            try:
                _compose(fixed, source, fast=False)
            except yaml.MarkedYAMLError as again:
                mark = again.problem_mark or again.context_mark
                if mark is None or mark.line <= line:
                    continue
            except (yaml.YAMLError, ProgramError):
                continue
            return number, column
    return None


def _syntax_error(exc: yaml.YAMLError, text: str, source: str) -> ProgramError:
    """A PyYAML error as a diagnostic at the place the problem was found."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        ended = exc.problem == "found unexpected end of stream"  # (said as never closed)
        found = (_missing_close(text, source, mark.line)
                 if mark is not None and not ended else None)
        if found is not None and mark is not None:
            return _fail(Diagnostic(
                code="LR100", message="the quoted value starting here is not closed on its "
                f"line, so YAML read on to line {mark.line + 1} and gave up there",
                hint='add the closing " at the end of this value', source=source,
                line=found[0] + 1, column=found[1] + 1))
        message = exc.problem or exc.context or "invalid YAML"
        plain = _plain_syntax(exc, text)
        if plain is not None:
            message, hint, at_start = plain
            if isinstance(at_start, tuple):
                return _fail(Diagnostic(code="LR100", message=message, hint=hint,
                                        source=source, line=at_start[0] + 1,
                                        column=at_start[1] + 1))
            if at_start and exc.context_mark is not None:
                mark = exc.context_mark
            return _fail(_diag(source, "LR100", message, mark, hint=hint))
        return _fail(_diag(source, "LR100", message, mark))
    if isinstance(exc, yaml.reader.ReaderError):
        index = int(exc.position)
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        character = exc.character
        code_point = ord(character) if isinstance(character, str) else int(character)
        return _fail(
            Diagnostic(
                code="LR101",
                message=f"unacceptable character #x{code_point:04x}: {exc.reason}",
                source=source,
                line=line,
                column=column,
            )
        )
    return _fail(Diagnostic(code="LR100", message=str(exc), source=source))


def load_yaml(text: str | bytes, *, source: str = "<program>") -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values plus where each was written.

    Raises :class:`ProgramError` (every problem found, or the first fatal one) instead of
    PyYAML's exceptions, so callers handle one error type with positions.
    """
    decoded = _decode(text, source)
    # (a fast test first: almost no program holds either space)
    odd = list(_ODD_INDENT.finditer(decoded)) if (
        "\u00a0" in decoded or "\u3000" in decoded) else []
    try:
        root = _compose(decoded, source)
    except yaml.YAMLError as exc:
        blamed = _blamed_indent(exc, decoded, odd, source) if odd else None
        raise (blamed or _syntax_error(exc, decoded, source)) from None
    except RecursionError:  # pragma: no cover - the depth limit should prevent this
        raise _fail(_diag(source, "LR106", "values are nested too deeply")) from None
    if odd:
        # YAML reads such a line as text: a key "\xa0 - {id" the model then calls unknown.
        # Inside a block or quoted value the same space is text meant as text (a paragraph
        # indented with U+3000): only a plain key or value that starts with it is refused
        starts = _plain_starts(root)
        for found in odd:
            mark = starts.get(found.start(1))
            if mark is not None:
                raise _odd_indent(found, mark.line, mark.column, source)

    if isinstance(root, ScalarNode) and root.tag == _PLAIN and root.value == "":
        raise _fail(_diag(source, "LR103", "the program is empty", root.start_mark))

    converter = _Converter(source)
    converter.measure(root)
    value = converter.convert(root, ())
    if converter.diagnostics:
        raise ProgramError(converter.diagnostics)
    return value, SourceMap(
        source=source,
        positions=MappingProxyType(converter.positions),
        key_positions=MappingProxyType(converter.key_positions),
    )
