"""The ``loyaltyrules`` command: validate, evaluate, run and schema.

The only place with files, terminals and exit codes. Errors are one clear message each on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import functools
import gc
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar

from pydantic import ValidationError

from ._decision import Decision, LifecycleDecision
from ._engine import evaluate
from ._errors import (
    AlreadyApplied,
    InputError,
    LoyaltyError,
    ProgramError,
    did_you_mean,
    show_value,
)
from ._ledger import apply
from ._lifecycle import advance, behaviour, keep_lean, redeem_reward, refund
from ._lint import lint
from ._member import (
    QUOTE_THEN_SPACE,
    DuplicateKey,
    MemberState,
    Transaction,
    coerce,
    fraction_in_attrs,
    no_duplicates,
    spend_in_unit,
    written_once,
)
from ._model import LIST_SECTIONS, ProgramModel
from ._program import Program, load_program
from ._scenario import discover, load_scenarios, run_scenario

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class _Fail(Exception):
    """A one-line failure of the command itself (file missing, bad JSON)."""


class _Closed(_Fail):
    """Standard output was closed by its reader (``| head``) before the command finished."""


def _silence_stdout() -> None:
    """After the reader of standard output went away: what is still buffered (and anything
    printed later) goes nowhere, instead of failing again as Python exits."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # (not a file: a test's captured output)
        pass


class _BadJSON(_Fail):
    """JSON that cannot be read, with where in the text (line and column) when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None
                 ) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


# a whole number outside strings, or a string (skipped whole, so digits inside it are not
# taken for a number); a number with a fraction or an exponent is read as a Decimal, any size
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(\.\d+)?([eE][-+]?\d+)?')


def _loads(text: str, what: str) -> Any:
    """``json.loads`` with numbers read exactly (as Decimal) and a key given twice in one
    object refused; every way JSON text can fail to read is a _BadJSON saying so, never a
    library's exception."""
    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=no_duplicates)
    except DuplicateKey as exc:
        raise _BadJSON(f"{what} gives the key {show_value(exc.key)} twice in one object") \
            from None
    except json.JSONDecodeError as exc:
        raise _BadJSON(f"{what} is not valid JSON: {exc.msg}", exc.lineno, exc.colno) \
            from None
    except RecursionError:
        raise _BadJSON(f"{what} nested too deeply") from None
    except ValueError:  # a whole number longer than Python converts (int_max_str_digits)
        limit = sys.get_int_max_str_digits()
        for match in _TOKENS.finditer(text):
            token = match.group()
            if token[0] != '"' and match.group(1) is None and match.group(2) is None \
                    and len(token.lstrip("-")) > limit:
                start = match.start()
                line = text.count("\n", 0, start) + 1
                raise _BadJSON(f"{what} has a number too long to read (more than {limit} "
                               "digits)", line, start - text.rfind("\n", 0, start)) from None
        raise _BadJSON(f"{what} has a number too long to read (more than {limit} digits)") \
            from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(text: str, where: str, what: str) -> None:
    """JSON may escape one half of a UTF-16 pair alone ("\\ud800"): Python reads it as a
    string that is not text, which no output can write (a decision or state holding it would
    fail when written). Refused where it is read. (Only text with such an escape is looked
    at twice: a pair, an emoji written escaped, is text.)"""
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        data = json.loads(text)
    except ValueError:  # (refused as it is read, with its own message)
        return
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _Fail(f"{where}: {what} holds a lone surrogate escape such as \\ud800 "
                    "(half of a character, not text)") from None


def _read_text(path: str, what: str, limit: int) -> str:
    """A whole file read as text, up to ``limit`` bytes: a larger one (``/dev/zero``) is
    refused at the bound, not read whole into memory."""
    try:
        if path == "-":  # standard input
            stream = getattr(sys.stdin, "buffer", sys.stdin)
            read = stream.read(limit + 1)
            raw = read.encode("utf-8", "surrogatepass") if isinstance(read, str) else read
        else:
            with open(path, "rb") as handle:
                raw = handle.read(limit + 1)
    except OSError as exc:
        raise _Fail(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise _Fail(f"{path}: {what} file is longer than {limit:,} bytes")
    try:
        # (utf-8-sig: a leading byte-order mark, as Windows tools write, is skipped)
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Fail(f"{path}: {what} is not UTF-8 text") from None
    _refuse_lone_surrogates(text, path, what)
    return text


def _parse_json(path: str, text: str, what: str) -> Any:
    try:
        return _loads(text, what)
    except _BadJSON as exc:
        where = f"{path}:{exc.line}:{exc.column}" if exc.line is not None else path
        raise _Fail(f"{where}: {exc}") from None


def _read_json(path: str, what: str) -> Any:
    """One JSON value (evaluate's member state or transaction), bounded as a line is."""
    return _parse_json(path, _read_text(path, what, MAX_LINE), what)


# The longest line of a JSON Lines input (a transaction, a member state with years of
# records): far above any real one, and a bound on the memory one line can take. A file
# holding one JSON value (--member, --txn) is held to the same.
MAX_LINE = 64 * 1024 * 1024
# The largest --members file written as one JSON list: more members go in a .jsonl file,
# read a line at a time
MAX_MEMBERS_JSON = 256 * 1024 * 1024


def _lines(path: str, what: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a file (or standard input, ``-``) with their line numbers,
    read one line at a time (memory stays bounded by the longest line). Each line is decoded
    on its own, so a line that is not UTF-8 is reported as itself, after every line before
    it was read; a byte-order mark at the start is skipped."""
    try:
        handle: IO[bytes] | IO[str] = (
            getattr(sys.stdin, "buffer", sys.stdin) if path == "-"
            else open(path, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise _Fail(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    raw: bytes | str
    with handle:
        # (each line read up to the bound and no further: a file with no line breaks is
        # refused at the bound, not read whole into memory)
        rows: Iterable[bytes | str] = iter(functools.partial(handle.readline, MAX_LINE + 1), "")
        for number, raw in enumerate(rows, 1):
            if not raw:  # (the end of a binary stream: readline gives b"")
                break
            if len(raw) > MAX_LINE:
                raise _Fail(f"{path}:{number}: {what} line is longer than {MAX_LINE:,} "
                            "characters")
            if isinstance(raw, bytes):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise _Fail(f"{path}:{number}: {what} is not UTF-8 text") from None
            else:  # a text stream given as standard input (tests, embedding hosts)
                line = raw[1:] if number == 1 and raw.startswith("\ufeff") else raw
            if line.strip():
                _refuse_lone_surrogates(line, f"{path}:{number}", what)
                yield number, line


_M = TypeVar("_M", MemberState, Transaction)


def _coerce(model: type[_M], data: Any, kind: str) -> _M:
    """:func:`coerce` of a value read from JSON: there a string is a string, not JSON text
    to be read again (``"{\"id\": \"a\"}"`` is not a member)."""
    if isinstance(data, str):
        raise InputError("expected a mapping (a JSON object), got text", kind=kind)
    return coerce(model, data, kind)


def _transaction(line: str) -> Transaction:
    """Fast path: pydantic parses the JSON line itself. Numbers written as JSON numbers are
    re-read exactly as Decimal (a float could not be exact), then validated the same way."""
    try:
        txn = Transaction.model_validate_json(line)
    except ValidationError:
        pass
    else:
        # pydantic keeps the last of a key given twice: a line holding more keys (`":`) than
        # the transaction read has fields given is read again, refusing it (a string holding
        # `":` is read again too, and passes); one with a space before a colon always is.
        # (written_once, written out for a transaction: this runs for every line of a run,
        # and the general walk of keys_given costs about 1.5 µs more)
        keys = _keys_given(txn)
        if keys is not None:  # (else read again exactly: see fraction_in_attrs)
            if line.count('":') != keys or QUOTE_THEN_SPACE(line) is not None:
                _loads(line, "transactions")
            return txn
    data = _loads(line, "transactions")
    return _coerce(Transaction, data, "transaction")


def _keys_given(txn: Transaction) -> int | None:
    """keys_given of a transaction (attrs hold no objects), or None when its attrs hold a
    number with a fraction (fraction_in_attrs), all in one walk. (Read from the models'
    slots and dicts: each attribute read of a model costs about 400 instructions.)"""
    given = txn.__pydantic_fields_set__
    fields = txn.__dict__
    n = len(given)
    if "attrs" in given and (attrs := fields["attrs"]):
        n += len(attrs)
        for value in attrs.values():
            if type(value) is Decimal:
                return None
    for item in fields["items"]:
        given = item.__pydantic_fields_set__
        n += len(given)
        if "attrs" in given and (attrs := item.__dict__["attrs"]):
            n += len(attrs)
            for value in attrs.values():
                if type(value) is Decimal:
                    return None
    return n


def _member_line(line: str) -> MemberState:
    """A member state's JSON line, read as a transaction's is (see _transaction)."""
    try:
        state = MemberState.model_validate_json(line)
    except ValidationError:
        pass
    else:
        if not written_once(line, state):
            _loads(line, "member states")
        if not fraction_in_attrs(state):
            return state
    return _coerce(MemberState, _loads(line, "member states"), "member")


def _jsonl(path: str, what: str) -> Iterator[tuple[int, Any]]:
    for number, line in _lines(path, what):
        try:
            data = _loads(line, what)
        except _BadJSON as exc:
            raise _Fail(f"{path}:{number}: {exc}") from None
        yield number, data


def _item_lines(text: str) -> list[int]:
    """The line each element of a JSON list starts on. The text was read whole already, so
    it is valid JSON and every element reads again; this costs about three times the whole
    read, so it is done only when a line has to be named."""
    decoder = json.JSONDecoder(parse_float=Decimal)
    lines: list[int] = []
    line, seen = 1, 0
    i = _skip_between(text, text.index("[") + 1)
    while text[i] != "]":
        line += text.count("\n", seen, i)
        seen = i
        lines.append(line)
        _, i = decoder.raw_decode(text, i)
        i = _skip_between(text, i)
    return lines


_BETWEEN = re.compile(r"[ \t\n\r,]*")  # JSON's whitespace, and commas in a valid list


def _skip_between(text: str, i: int) -> int:
    found = _BETWEEN.match(text, i)
    assert found is not None  # the pattern matches the empty string
    return found.end()


def _member_rows(path: str) -> tuple[Iterator[Callable[[], MemberState]], Callable[[int], int]]:
    """How to read each member state of a .jsonl file (one a line, read a line at a time:
    memory holds the states, not the file) or a .json file (a list, or one state), and the
    line the k-th starts on."""
    if path.endswith(".jsonl") or path == "-":  # (standard input is read as JSONL)
        numbers: list[int] = []

        def lines() -> Iterator[Callable[[], MemberState]]:
            for number, line in _lines(path, "member states"):
                numbers.append(number)
                yield functools.partial(_member_line, line)
        return lines(), numbers.__getitem__
    text = _read_text(path, "member states", MAX_MEMBERS_JSON)
    data = _parse_json(path, text, "member states")
    if not isinstance(data, list):
        return iter([functools.partial(_coerce, MemberState, data, "member")]), lambda k: 1
    found: list[list[int]] = []

    def line_of(k: int) -> int:
        if not found:
            found.append(_item_lines(text))
        return found[0][k]
    return (functools.partial(_coerce, MemberState, row, "member") for row in data), line_of


def _load_members(path: str | None, program: Program) -> dict[str, MemberState]:
    """The starting states, each checked against the program before anything runs: a
    malformed state, a spend finer than the currency, a tier the program does not have or
    an id given twice is ``FILE:LINE: …``. Spends are written in the currency's unit, as
    the engine reads them (``100`` as ``100.00``)."""
    if path is None:
        return {}
    members: dict[str, MemberState] = {}
    first: dict[str, int] = {}
    reads, line_of = _member_rows(path)
    for k, read in enumerate(reads):
        try:
            state = spend_in_unit(read(), program.quantum, program.currency)
            if state.tier is not None and state.tier not in program.tier_ids:
                raise InputError(f"unknown tier {state.tier!r}; the program has "
                                 f"{list(program.tier_ids)}", field="tier", kind="member")
            if state.id in members:
                raise InputError(f"{state.id!r} is given twice (first on line "
                                 f"{line_of(first[state.id])}): one starting state per "
                                 "member", field="id", kind="member")
        except (InputError, _BadJSON) as exc:
            raise _Fail(f"{path}:{line_of(k)}: {exc}") from None
        keep_lean(state)  # (a run keeps every state: see keep_lean)
        members[state.id] = state
        first[state.id] = k
    return members


def _dump(model: Any) -> str:
    # pydantic writes the JSON itself (UTF-8, not escaped), twice as fast as via dicts
    text: str = model.model_dump_json(exclude_none=True)
    return text


def _cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.programs:
        try:
            program = load_program(Path(path))
        except ProgramError as exc:
            failed += 1
            for diag in exc.diagnostics:
                print(str(diag), file=sys.stderr)
            continue
        tiers = " → ".join(program.tier_ids)
        print(f"{path}: ok — {program.id} v{program.version}, tiers {tiers}, {program.hash[:19]}")
    return EXIT_ERROR if failed else EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    _one_from_stdin((args.member, "--member"), (args.txn, "--txn"))
    program = load_program(Path(args.program))
    member_data = _read_json(args.member, "member state")
    txn_data = _read_json(args.txn, "transaction")
    member = _coerce(MemberState, member_data, "member")
    decision = evaluate(program, member, _coerce(Transaction, txn_data, "transaction"),
                        trace=not args.no_trace)
    after = apply(member, decision)
    if args.explain:
        print(decision.explain())
    else:
        out = {
            # (the next state once, beside the decision, not also inside it)
            "decision": decision.model_dump(mode="json", exclude_none=True,
                                            exclude={"member_after"}),
            "member_after": after.model_dump(mode="json", exclude_none=True),
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
    return EXIT_OK


def _new_member(member_id: str, kind: str) -> MemberState:
    """The state a member not in --members starts from. Its id is checked as a member's is:
    one of 129 characters is the line's mistake, said as its member_id's."""
    try:
        state = coerce(MemberState, {"id": member_id}, "member")
    except InputError as exc:
        raise InputError(str(exc).removeprefix("member: id: "), field="member_id",
                         kind=kind) from None
    keep_lean(state)  # (its next states copy its dict: see keep_lean)
    return state


_EVENTS = ("purchase", "refund", "behaviour", "reward", "advance")


def _event(program: Any, members: dict[str, MemberState], line: str, *, trace: bool = False
           ) -> tuple[str, Decision | LifecycleDecision]:
    """One line of a mixed stream: a purchase, refund, behaviour, reward or advance event."""
    data = _loads(line, "transactions")
    if not isinstance(data, dict):
        raise _Fail("each line is a JSON object")
    kind = data.pop("type", "purchase")
    member_id = data.pop("member_id", None)
    if kind not in _EVENTS:
        raise _Fail(f"type {show_value(kind)} is not one of {', '.join(_EVENTS)}")
    if not isinstance(member_id, str) or not member_id:
        raise InputError("each event in a stream needs a member_id", field="member_id",
                         kind=str(kind))
    member = members.get(member_id) or _new_member(member_id, str(kind))
    if kind == "purchase":
        return member_id, evaluate(program, member, {**data, "member_id": member_id},
                                   trace=trace)
    if kind == "refund":
        return member_id, refund(program, member, data)
    if kind == "behaviour":
        if "event" not in data:  # (the line says event; the library's field is type)
            raise InputError("required", field="event", kind="behaviour")
        data["type"] = data.pop("event")
        try:
            return member_id, behaviour(program, member, data, trace=trace)
        except InputError as exc:
            if exc.field != "type":
                raise
            raise InputError(str(exc).removeprefix(f"{exc.kind}: type: "), field="event",
                             kind=exc.kind) from None
    if kind == "reward":
        return member_id, redeem_reward(program, member, data)
    unknown = sorted(set(data) - {"until"})
    if unknown:
        hint = did_you_mean(unknown[0], ["until"])
        raise InputError(f"unknown field; {hint}" if hint else "unknown field",
                         field=unknown[0], kind="advance")
    if "until" not in data:
        raise InputError("required", field="until", kind="advance")
    return member_id, advance(program, member, data["until"])


def _shown(text: str) -> str:
    """An id from the input as a text line writes it: a control character (a newline, a
    terminal escape) escaped as an error message quotes it, so a line stays one line and
    says what it was given."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text_line(d: Decision | LifecycleDecision) -> str:
    if isinstance(d, LifecycleDecision):
        what = ", ".join(f"{e.type}{' ' + e.rule if e.rule else ''} {e.points:+d}"
                         if e.points else f"{e.type}{' ' + e.rule if e.rule else ''}"
                         for e in d.events) or "nothing due"
        if d.replayed:  # (as the JSON line's "replayed": true says it)
            what = d.replayed_words()
        return (f"{_shown(d.event_id or '-'):<8} {_shown(d.member_id):<12} {d.at.date()} "
                f"{d.kind:<14} "
                f"points {d.points_change:+d} → {d.member_after.points}: {what}")
    tier = d.tier_before if not d.tier_changed else f"{d.tier_before}→{d.tier_after}"
    perks = f" perks {','.join(p.perk for p in d.perks)}" if d.perks else ""
    rules = ",".join(d.rules_fired)
    return (
        f"{_shown(d.transaction_id):<8} {_shown(d.member_id):<12} {d.local_date} {tier:<14} "
        f"list {d.list_amount:>10} pay {d.payable:>10} {d.currency} points +{d.points_total:<5}"
        f"{perks} [{rules}]"
    )


def _cmd_run(args: argparse.Namespace) -> int:
    # Reading members, evaluating and applying events and writing the states make no
    # reference cycles (tests/test_cli.py checks that the cyclic garbage of a run does not
    # grow with its members or events), so everything is freed by reference counting and
    # the cycle collector, which would walk every member's lots and purchase records again
    # and again, is paused for the whole run (a stream is about 15% faster, writing the
    # states about 40%; memory is the same), then restored as it was.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        if collecting:
            gc.enable()


def _one_from_stdin(*given: tuple[str | None, str]) -> None:
    """Refuse two inputs both read from standard input (``-``): it holds one."""
    named = [name for path, name in given if path == "-"]
    if len(named) > 1:
        raise _Fail(f"{' and '.join(named)} both name standard input (-): give one of them "
                    "as a file")


def _run(args: argparse.Namespace) -> int:
    _one_from_stdin((args.transactions, "TRANSACTIONS"), (args.members, "--members"))
    if args.state_out:  # (before anything is read: the states would be written over it)
        for given, what in ((args.program, "the program"), (args.transactions, "the events")):
            if _same_file(args.state_out, given):
                raise _Fail(f"{args.state_out}: --state-out names {what} file; the states "
                            "would be written over it (give another file)")
    program = load_program(Path(args.program))
    members = _load_members(args.members, program)
    out: TextIO = sys.stdout
    progress = sys.stderr.isatty() and not args.quiet
    started = time.perf_counter()
    count, replays, kinds, repeated = _stream(args, program, members, out, progress, started)
    if progress and count >= _PROGRESS_EVERY:
        print(file=sys.stderr)
    try:
        out.flush()  # (before the states: a run whose decisions were not all written is
    except BrokenPipeError:  # not a finished run)
        raise _Closed(f"{args.transactions}: output closed before the last decisions were "
                      f"written{_NO_STATES if args.state_out else ''}") from None
    if args.state_out:
        try:
            with open(args.state_out, "w", encoding="utf-8") as handle:
                for state in members.values():
                    handle.write(_dump(state) + "\n")
        except OSError as exc:
            raise _Fail(f"{args.state_out}: cannot write the member states: "
                        f"{exc.strerror or exc}") from None
    if args.format == "text" and not args.quiet:
        elapsed = time.perf_counter() - started
        again = f" ({replays} repeated purchases skipped)" if replays else ""
        if repeated:  # (refunds and other events seen before: each line says so)
            again += f" ({_plural(repeated, 'repeated event')} changed nothing)"
        print(f"{_events_said(count, kinds)} for {_plural(len(members), 'member')} in "
              f"{elapsed:.3f} s{again}", file=sys.stderr)
    elif replays and args.format == "jsonl":  # (no line says so: told on stderr, even --quiet)
        print(f"loyaltyrules: {args.transactions}: {replays} repeated purchases skipped (ids "
              "already applied to their member: a retry, or an id reused)", file=sys.stderr)
    return EXIT_OK


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (a link to it, say), or would once ``a`` is made;
    ``b`` may be ``-``, standard input, redirected from a file (``< events.jsonl``)."""
    if b == "-":
        try:
            held, named = os.fstat(sys.stdin.fileno()), os.stat(a)
        except (OSError, ValueError, AttributeError):  # (no such file yet, or no descriptor)
            return False
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
    try:
        return os.path.samefile(a, b)
    except OSError:  # (one of them does not exist yet: compared as written, resolved)
        return Path(a).resolve() == Path(b).resolve()


_NO_STATES = "; the member states were not written"
_PROGRESS_EVERY = 10_000  # events between two progress lines on a terminal


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _events_said(count: int, kinds: dict[str, int]) -> str:
    """"3 transactions", or for a mixed stream "5 events (3 purchases, 1 refund, 1
    advance)": a refund or an advance is no transaction."""
    if set(kinds) <= {"purchase"}:
        return _plural(count, "transaction")
    return _plural(count, "event") + " (" + ", ".join(
        _plural(n, kind) for kind, n in kinds.items()) + ")"


def _stream(args: argparse.Namespace, program: Any, members: dict[str, MemberState],
            out: TextIO, progress: bool, started: float
            ) -> tuple[int, int, dict[str, int], int]:
    count = replays = repeated = 0
    kinds: dict[str, int] = {}  # events by kind, in the order first seen
    for number, line in _lines(args.transactions, "transactions"):
        try:
            if '"type"' in line:
                member_id, decision = _event(program, members, line, trace=args.trace)
            else:
                txn = _transaction(line)
                if not txn.member_id:
                    raise InputError("each transaction in a stream needs a member_id",
                                     field="member_id", kind="transaction")
                member_id = txn.member_id
                member = members.get(member_id) or _new_member(member_id, "transaction")
                decision = evaluate(program, member, txn, trace=args.trace)
            member = members.get(member_id) or MemberState(id=member_id)
            members[member_id] = apply(member, decision)
        except AlreadyApplied as exc:
            replays += 1  # the same purchase twice in a stream: applied once, as retries are
            if args.format == "text":  # (said where the decision would have been)
                out.write(f"{_shown(exc.transaction_id):<8} skipped: line {number} repeats a "
                          "purchase id already applied to its member (a retry, or the id reused)\n")
            continue
        except (LoyaltyError, _Fail) as exc:
            raise _Fail(f"{args.transactions}:{number}: {exc}") from None
        except RecursionError:  # (JSON nested less than the reader's limit, more than ours)
            raise _Fail(f"{args.transactions}:{number}: transactions nested too deeply") \
                from None
        count += 1
        kind = decision.kind if isinstance(decision, LifecycleDecision) else "purchase"
        if kind not in ("purchase", "advance") and decision.replayed:  # type: ignore[union-attr]
            repeated += 1  # (an advance to a moment passed already repeats no event)
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            if args.format == "text":
                out.write(_text_line(decision) + "\n")
            else:
                # the next states go to --state-out; each decision line stays small
                out.write(decision.model_dump_json(exclude_none=True,
                                                   exclude={"member_after"}) + "\n")
        except BrokenPipeError:
            raise _Closed(f"{args.transactions}:{number}: output closed, the run stopped "
                          f"here{_NO_STATES if args.state_out else ''}") from None
        if progress and count % _PROGRESS_EVERY == 0:
            rate = count / max(time.perf_counter() - started, 1e-9)
            said = "transactions" if set(kinds) <= {"purchase"} else "events"  # (as said at
            # the end); each line clears what a longer one before it left on the terminal
            print(f"\r{count:,} {said}, {_plural(len(members), 'member')}, {rate:,.0f}/s"
                  "\x1b[K",
                  end="", file=sys.stderr, flush=True)
    return count, replays, kinds, repeated


def _a_day(text: str) -> date:
    """``--today``: a date, or a wrong command line (exit 2, as for every other option)."""
    try:
        # (YYYY-MM-DD only: Python also reads 20260301 and 2026-W10-1, which the message
        # and the help do not promise)
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-03-01") \
            from None


def _loaded(paths: list[str]) -> Iterator[tuple[str, Program | None]]:
    """Each program named, or None for one that cannot be read — its problems told, as
    `validate` and `test` tell them — so the others are still linted or checked."""
    for path in paths:
        try:
            yield path, load_program(Path(path))
        except ProgramError as exc:
            for diag in exc.diagnostics:
                print(f"loyaltyrules: {diag}", file=sys.stderr)
            yield path, None


def _cmd_lint(args: argparse.Namespace) -> int:
    today = args.today or date.today()
    worst = 0
    unread = False
    for path, program in _loaded(args.programs):
        if program is None:
            unread = True
            continue
        findings = lint(program, today=today)
        for finding in findings:
            print(str(finding))
            if finding.severity == "error":
                worst = max(worst, 2)
            elif finding.severity == "warning":
                worst = max(worst, 1)
        if not findings:
            print(f"{path}: no findings")
    fail_at = {"error": 2, "warning": 1, "never": 3}[args.fail_on]
    return EXIT_ERROR if worst >= fail_at or unread else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        from ._check import check
    except ImportError as exc:
        raise _Fail(f"loyaltyrules check needs hypothesis ({exc.name} is missing): "
                    "pip install 'loyaltyrules[test]'") from None
    failed = False
    for _, program in _loaded(args.programs):
        if program is None:
            failed = True
            continue
        report = check(program, examples=args.examples, seed=args.seed,
                       deadline_s=args.deadline)
        print(report.render())
        failed = failed or not report.ok
    return EXIT_ERROR if failed else EXIT_OK


def _cmd_test(args: argparse.Namespace) -> int:
    files = list(discover(args.paths))
    if not files:
        raise _Fail(f"no scenario files (*.scenarios.yaml) in {', '.join(args.paths)}")
    passed = failed = 0
    closed = False

    def say(text: str, *, end: bool = False) -> None:
        # a reader that stops reading (| head) does not stop the scenarios: the exit code
        # still says whether every one passed
        nonlocal closed
        if closed:
            return
        try:
            print(text)
            if end:
                sys.stdout.flush()
        except BrokenPipeError:
            closed = True
            _silence_stdout()

    broken = 0
    loaded = []
    for path in files:  # every file is read (and its problems told) before any scenario runs
        try:
            loaded.append(load_scenarios(path))
        except ProgramError as exc:  # this file is reported and not run; the others are
            broken += 1
            for diag in exc.diagnostics:
                print(f"loyaltyrules: {diag}", file=sys.stderr)
    for program, scenarios in loaded:
        for scenario in scenarios:
            result = run_scenario(program, scenario)
            if result.ok:
                passed += 1
                if args.verbose:
                    say(result.render())
            else:
                failed += 1
                say(result.render())
    not_run = f", {broken} scenario file{'s' if broken > 1 else ''} not run" if broken else ""
    say(f"{passed} passed, {failed} failed{not_run}", end=True)
    return EXIT_ERROR if failed or broken else EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(program_schema(), ensure_ascii=False, indent=2))
    return EXIT_OK


def program_schema() -> dict[str, Any]:
    """JSON Schema of the program format, for editors (YAML language servers read it)."""
    schema = ProgramModel.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "loyaltyrules program"
    _bounds_in_json_schema_words(schema)
    # a list section with nothing under it (its items commented out) is no items
    for name in LIST_SECTIONS:
        section = schema["properties"][name]
        schema["properties"][name] = {"anyOf": [section, {"type": "null"}],
                                      **{k: v for k, v in section.items()
                                         if k in ("title", "default")}}
    return schema


# pydantic writes a bound given on an optional field (`int | None = Field(ge=1)`) into the
# integer branch in its own words, which JSON Schema does not know: an editor would accept
# `times: 0` that loading refuses
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _bounds_in_json_schema_words(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for ours, theirs in _BOUNDS.items():
                if isinstance(node.get(ours), int | float):
                    node[theirs] = node.pop(ours)
        for value in node.values():
            _bounds_in_json_schema_words(value)
    elif isinstance(node, list):
        for value in node:
            _bounds_in_json_schema_words(value)


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loyaltyrules",
        description="Run loyalty programs written in YAML: validate them, evaluate "
        "transactions, stream members' histories.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="load programs and report every problem")
    p.add_argument("programs", nargs="+", metavar="PROGRAM")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("evaluate", help="evaluate one transaction for one member")
    p.add_argument("program", metavar="PROGRAM")
    p.add_argument("--member", required=True, metavar="FILE", help="member state (JSON; "
                   "'-' reads standard input)")
    p.add_argument("--txn", required=True, metavar="FILE", help="transaction (JSON; '-' "
                   "reads standard input)")
    p.add_argument("--explain", action="store_true", help="human-readable explanation")
    p.add_argument("--no-trace", action="store_true", help="leave the rule trace out")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("run", help="evaluate a stream of transactions, carrying member state")
    p.add_argument("program", metavar="PROGRAM")
    p.add_argument("transactions", metavar="TRANSACTIONS.jsonl", help="one transaction per "
                   "line, each with member_id ('-' reads standard input); a line with "
                   '"type" may also be a refund, behaviour, reward or advance event')
    p.add_argument("--members", metavar="FILE", help="starting member states (.json list "
                   "or .jsonl; '-' reads JSONL from standard input); unknown members start at "
                   "the first tier")
    p.add_argument("--format", choices=("jsonl", "text"), default="jsonl")
    p.add_argument("--trace", action="store_true", help="include the rule trace in decisions")
    p.add_argument("--state-out", metavar="FILE", help="write final member states as JSONL")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("lint", help="report design smells in programs, without running them")
    p.add_argument("programs", nargs="+", metavar="PROGRAM")
    p.add_argument("--today", type=_a_day, metavar="YYYY-MM-DD",
                   help="the date windows are judged against "
                   "(default: today, from this machine's clock)")
    p.add_argument("--fail-on", choices=("error", "warning", "never"), default="error",
                   help="exit 1 when a finding this severe (or worse) is found")
    p.set_defaults(func=_cmd_lint)

    p = sub.add_parser("check", help="check invariants on generated members and purchases")
    p.add_argument("programs", nargs="+", metavar="PROGRAM")
    p.add_argument("--examples", type=_at_least_one, default=200, metavar="N",
                   help="generated examples per invariant (default 200)")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="repeat a run exactly (the seed of every run is printed), unless "
                        "the time limit cuts it short")
    p.add_argument("--deadline", type=_at_least_one, default=50, metavar="SECONDS",
                   help="time limit per program (default 50 s); a run it cuts short says so "
                        "and is not exactly repeatable")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("test", help="run scenario files (*.scenarios.yaml)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing scenarios too")
    p.set_defaults(func=_cmd_test)

    p = sub.add_parser("schema", help="print the JSON Schema of the program format")
    p.set_defaults(func=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if sys.stderr is not None:
        return _main(argv)
    # Started with standard error closed (`2>&-`, as cron and daemons may): what would be
    # said there (progress, the summary, an error) goes nowhere and the exit code still
    # tells; print(file=None) would write it into the output instead.
    closed = sys.stderr
    with open(os.devnull, "w", encoding="utf-8") as nowhere:
        sys.stderr = nowhere
        try:
            return _main(argv)
        finally:
            sys.stderr = closed


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if sys.stdout is None:  # (started with standard output closed: `>&-`)
        if sys.stderr is not None:
            print("loyaltyrules: standard output is closed", file=sys.stderr)
        return EXIT_ERROR
    # (a file name that is not UTF-8, r\xff.yaml, is read with its bytes escaped as
    # \udcff; written back so on both streams, as ls does, rather than failing the command
    # or spelling it \udcff on standard error)
    restore = [_escape_file_names(stream) for stream in (sys.stdout, sys.stderr)]
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # (inside: a reader gone before the end is not a success)
        return code
    except _Closed as exc:
        _silence_stdout()
        print(f"loyaltyrules: {exc}", file=sys.stderr)
    except ProgramError as exc:
        for diag in exc.diagnostics:
            print(f"loyaltyrules: {diag}", file=sys.stderr)
    except (LoyaltyError, _Fail) as exc:
        print(f"loyaltyrules: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("loyaltyrules: interrupted", file=sys.stderr)
    except BrokenPipeError:  # the reader of the output went away before the command ended
        _silence_stdout()
        print("loyaltyrules: output closed before the command finished", file=sys.stderr)
    except OSError as exc:  # writing failed: a full disk, a file that cannot be written
        _silence_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"loyaltyrules: cannot write the output{where}: {exc.strerror or exc}",
              file=sys.stderr)
    except UnicodeEncodeError as exc:  # (input text is checked as read: this is the output's)
        _silence_stdout()
        fix = ("run with PYTHONIOENCODING=utf-8"
               if exc.encoding.replace("-", "").lower() not in ("utf8", "utf_8")
               else f"{exc.object[exc.start:exc.end]!a} is not a character any encoding has")
        print(f"loyaltyrules: the output has characters {exc.encoding} cannot write: {fix}",
              file=sys.stderr)
    except Exception as exc:  # the promise is one line, never a traceback
        print(f"loyaltyrules: internal error ({type(exc).__name__}: {exc}) — this is a bug in "
              "loyaltyrules, please report it with the input that caused it", file=sys.stderr)
    finally:
        for undo in restore:
            if undo is not None:
                undo()
    return EXIT_ERROR


def _names_back(otherwise: str) -> Callable[[UnicodeError], tuple[str | bytes, int]]:
    """An encoding error handler writing a file name's escaped bytes (\udc80-\udcff) back
    as the bytes they were, and anything else as ``otherwise`` (the stream's own) does."""
    fallback = codecs.lookup_error(otherwise)

    def handle(exc: UnicodeError) -> tuple[str | bytes, int]:
        if isinstance(exc, UnicodeEncodeError):
            chunk = exc.object[exc.start:exc.end]
            if all("\udc80" <= c <= "\udcff" for c in chunk):
                return bytes(ord(c) - 0xDC00 for c in chunk), exc.end
        result: tuple[str | bytes, int] = fallback(exc)
        return result
    return handle


for _errors in ("strict", "backslashreplace"):
    codecs.register_error(f"loyaltyrules-names-{_errors}", _names_back(_errors))


def _escape_file_names(stream: Any) -> Callable[[], None] | None:
    """Set ``stream`` to write escaped file-name bytes back; returns what sets it back, or
    None when it is not a text stream that refuses or spells them out."""
    errors = getattr(stream, "errors", None)
    if errors not in ("strict", "backslashreplace") or not hasattr(stream, "reconfigure"):
        return None
    try:
        stream.reconfigure(errors=f"loyaltyrules-names-{errors}")
    except Exception:  # (a stream that cannot change: written as it is)
        return None

    def undo() -> None:
        with contextlib.suppress(Exception):  # (closed meanwhile: nothing to set back)
            stream.reconfigure(errors=errors)
    return undo


if __name__ == "__main__":
    raise SystemExit(main())
