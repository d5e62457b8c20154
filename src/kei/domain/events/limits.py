"""What a writer may put in an event: every payload field's range and shape.

A value is signed into the log for ever, and every reader folds it, so a value no
reader can hold (an integer wider than a 64-bit column, a NUL that PostgreSQL text
refuses, a timestamp past year 9999) must be refused *before* it is signed.
``Ledger.append`` calls ``check_batch`` first: a bad value is an ``InputError``
naming the event type, the field and the limit, and nothing is appended.

The limits are declared once, as a ``Rule`` per field name, in ``fields.py``
(covering every field of every payload and nested struct: a test checks none is
missing), with the sizes in ``kei.limits``, and documented in ``docs/events.md``
("Field limits"). Each payload type gets a twin Struct carrying the constraints
(``twins.py``): msgspec converts the payload's attributes into its twin, which checks
every type, enum value, integer range, length and nested struct at C speed. What
msgspec cannot check cheaply (control characters, blank identifiers, NUL, lone
surrogates) is checked on the strings afterwards (``strings.py``): those of a whole
batch are joined and judged in a few C-level calls. This module puts them together.

Kinds of field:

- ``ID``: an identifier (agent id, branch, model, memory key, tag, key name...): at
  most 256 characters, no control character (C0, DEL, C1, U+2028/U+2029), not blank
  unless the rule allows ``""``.
- ``STREAM``: a stream name: the same, at most 1,024 characters.
- ``PATH``: a file path: the same, at most 4,096 characters.
- ``TEXT``: free text (summaries, reasons, memory values, trace text): at most
  1,048,576 characters, no NUL; newlines and other control characters allowed (they
  are neutralised when printed); not blank where the rule needs a value.
- ``COUNT``: an integer 0 .. 2^63-1 (token counts, durations, depths, versions).
- ``MONEY``: integer micro-cents, -10^15 .. 10^15 (ten million dollars either way:
  sums of many such amounts still fit a 64-bit column).
- ``TIME``: integer microseconds since the epoch, 0 .. 253,402,300,799,999,999 (the
  last microsecond of year 9999, the last a calendar date can show).
- ``INT``: any signed 64-bit integer.
- ``FLOAT``: a finite float. ``LIST``: a tuple of at most 10,000 items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, NoReturn, TypeVar

import msgspec
from msgspec import Struct

from kei.domain.events import REGISTRY, Payload, event_type_of
from kei.domain.events.fields import INT64_MAX
from kei.domain.events.strings import (
    CONTROL,
    Check,
    Collect,
    clean_strings,
    collector,
    group_collector,
    slow_check,
)
from kei.domain.events.twins import converter, group_converter, mirror
from kei.errors import InputError
from kei.limits import LIMITS

_HINT: Final = "see the field limits in docs/events.md; nothing was appended"


# -- the whole check -------------------------------------------------------------------


class _Checker(Struct, frozen=True):
    name: str
    decode: Callable[[Any], Any]
    collect: Collect
    slow: Check


_NAMES: Final = {t.payload_type: t.name for t in REGISTRY.values()}
_V = TypeVar("_V")


class _PerType(Generic[_V]):
    """A registered payload type's checker, built on first use: building all of them
    (a twin Struct per type) would cost every short write command its start-up."""

    def __init__(self, make: Callable[[type[Payload]], _V]) -> None:
        self._make = make
        self._made: dict[type[Payload], _V] = {}

    def get(self, kind: type[Any]) -> _V | None:
        made = self._made.get(kind)
        if made is None and kind in _NAMES:
            made = self._made[kind] = self._make(kind)
        return made

    def __getitem__(self, kind: type[Any]) -> _V:
        made = self.get(kind)
        if made is None:
            raise KeyError(kind)
        return made

    def __contains__(self, kind: object) -> bool:
        return kind in _NAMES


def _checker(kind: type[Payload]) -> _Checker:
    return _Checker(_NAMES[kind], converter(mirror(kind)), collector(kind), slow_check(kind))


def _fast(kind: type[Payload]) -> tuple[Callable[[Any], Any], Any]:
    return group_converter(mirror(kind)), group_collector(kind)


_CHECKERS: Final = _PerType(_checker)
_FAST: Final = _PerType(_fast)
_ENCODE: Final = msgspec.msgpack.Encoder().encode
_NOT_ENCODABLE: Final = (TypeError, UnicodeEncodeError, OverflowError)


def payload_problem(payload: Payload) -> str | None:
    """What makes ``payload`` unfit to sign, as ``<event type>: field <name> <problem>``,
    or None when every field is within its limits."""
    checker = _CHECKERS.get(type(payload))
    if checker is None:
        return f"unknown event type {type(payload).__name__}"
    try:
        checker.decode(payload)
        _ENCODE(payload)
    except msgspec.ValidationError as exc:
        return f"{checker.name}: {_field_message(str(exc))}"
    except _NOT_ENCODABLE as exc:
        return f"{checker.name}: a value cannot be encoded ({exc})"
    ids: list[str] = []
    texts: list[str] = []
    checker.collect(payload, ids, texts)
    if clean_strings(ids, texts):
        return None
    found = _nested_problem(payload, checker.slow)
    return None if found is None else f"{checker.name}: field {found}"


def _nested_problem(p: Any, slow: Check) -> str | None:
    """The first bad string of ``p`` or of a struct inside it, by its path."""
    found = slow(p)
    if found is not None:
        return found
    for f in msgspec.structs.fields(type(p)):
        value = getattr(p, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for i, item in enumerate(items):
            if isinstance(item, msgspec.Struct):
                inner = _nested_problem(item, slow_check(type(item)))
                if inner is not None:
                    where = f"[{i}]" if isinstance(value, tuple) else ""
                    return f"{f.name}{where}.{inner}"
    return None


def _field_message(msgspec_message: str) -> str:
    """msgspec's ``Expected `int` <= 9 - at `$.usage.input_tokens``` as
    ``field usage.input_tokens: expected `int` <= 9``."""
    text, _, where = msgspec_message.rpartition(" - at `")
    if not text:
        return msgspec_message
    path = where.rstrip("`").removeprefix("$.").removeprefix("$")
    return f"field {path or '(payload)'}: {text[:1].lower()}{text[1:]}"


def check_payload(payload: Payload) -> None:
    """Raise InputError when ``payload`` holds a value outside its field's limits."""
    problem = payload_problem(payload)
    if problem is not None:
        raise InputError(problem, hint=_HINT)


def check_batch(events: Sequence[Any]) -> list[str] | None:
    """Check every event of a batch (``NewEvent``-like: ``stream``, ``payload``,
    ``expected_version``) before any is signed; InputError naming the first bad one.

    Returns every string of the batch (streams, identifiers, free text; not the
    values of enum fields, which can only be their literals) when the fast check
    gathered them, for the leak matrix to scan in one pass (``leak_guard``); None
    when the batch took the slow path.

    This runs on every append (``bench/append_batch.py``), so the per-event work is
    one ``msgspec.convert`` (types, ranges, lengths) and gathering the strings;
    the strings of the whole batch (streams included) are then judged in a few
    C-level calls. Only a batch that fails any of it is checked again event by
    event, to name the culprit."""
    if len(events) == 1:  # one event per append: no grouping to pay for
        return _check_one(events)
    ids: list[str] = []
    texts: list[str] = []
    payloads = [e.payload for e in events]
    clean = True
    try:
        for kind in set(map(type, payloads)):
            convert, collect = _FAST[kind]
            group = [p for p in payloads if type(p) is kind] if len(payloads) > 1 else payloads
            convert(group)
            collect(group, ids, texts)
        for event in events:
            if event.expected_version is not None:
                clean = clean and _stream_problem(event.stream, event.expected_version) is None
        streams = [e.stream for e in events]  # payload strings: lengths checked by msgspec
        ids += streams
        clean = (
            clean
            and clean_strings(ids, texts)
            and max(map(len, streams), default=0) <= LIMITS.max_stream_chars
        )
    except (KeyError, msgspec.ValidationError, *_NOT_ENCODABLE):  # TypeError: a non-text stream
        clean = False
    if clean:
        return ids + texts
    for i, event in enumerate(events):
        if type(event.payload) not in _CHECKERS:
            event_type_of(event.payload)  # raises: unknown event type
        if _problem(events, i) is not None:
            _refuse(events, i)
    return None


def _check_one(events: Sequence[Any]) -> list[str] | None:
    event = events[0]
    payload, stream = event.payload, event.stream
    checker = _CHECKERS.get(type(payload))
    ids: list[str] = [stream]
    texts: list[str] = []
    try:
        if checker is not None:
            checker.decode(payload)
            checker.collect(payload, ids, texts)
            if (
                clean_strings(ids, texts)
                and len(stream) <= LIMITS.max_stream_chars
                and (
                    event.expected_version is None
                    or _stream_problem(stream, event.expected_version) is None
                )
            ):
                return ids + texts
    except (msgspec.ValidationError, TypeError):  # TypeError: a stream that is not text
        pass
    if checker is None:
        event_type_of(payload)  # raises: unknown event type
    if _problem(events, 0) is not None:  # else the fast verdict was a false alarm
        _refuse(events, 0)
    return None


def _refuse(events: Sequence[Any], i: int) -> NoReturn:
    """Raise InputError naming what is wrong with event ``i`` of ``events``."""
    raise InputError(_problem(events, i) or "refused", hint=_HINT)


def _problem(events: Sequence[Any], i: int) -> str | None:
    event = events[i]
    problem = payload_problem(event.payload) or _stream_problem(event.stream, None)
    where = f"event {i + 1} of {len(events)}: " if len(events) > 1 else ""
    return None if problem is None else where + problem


def _stream_problem(stream: Any, expected: Any) -> str | None:
    if not isinstance(stream, str):
        return f"stream must be text, got {type(stream).__name__}"
    if len(stream) > LIMITS.max_stream_chars or CONTROL.search(stream) or not stream.strip():
        return (
            f"stream {stream[:64]!r} is blank, longer than {LIMITS.max_stream_chars:,} characters "
            "or holds a control character"
        )
    if expected is not None and (type(expected) is not int or not 0 <= expected <= INT64_MAX):
        return f"expected_version {expected!r} is not an integer from 0 to {INT64_MAX:,}"
    return None
