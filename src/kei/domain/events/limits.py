"""What a writer may put in an event: every payload field's range and shape.

A value is signed into the log for ever, and every reader folds it, so a value no
reader can hold (an integer wider than a 64-bit column, a NUL that PostgreSQL text
refuses, a timestamp past year 9999) must be refused *before* it is signed.
``Ledger.append`` calls ``check_batch`` first: a bad value is an ``InputError``
naming the event type, the field and the limit, and nothing is appended.

The limits are declared once, as a ``Rule`` per field name (``_BY_NAME``, with the
few per-type ``_EXCEPTIONS``) covering every field of every payload and nested struct
(a test checks none is missing), and documented in
``docs/events.md`` ("Field limits"). They are deliberately *not* msgspec ``Meta``
annotations on the payload Structs themselves: those are enforced on decode too,
which would make an event signed by an earlier release undecodable. Instead each
payload type gets a twin Struct with the constraints (``_mirror``), used only here:
msgspec converts the payload's attributes into its twin (``msgspec.convert``), which
checks every type, enum value, integer range, length and nested struct at C speed.
What msgspec cannot check cheaply (control characters, blank identifiers, NUL, lone
surrogates) is checked on the strings afterwards: those of a whole batch are joined
and judged in a few C-level calls.

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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from operator import attrgetter
from types import NoneType, UnionType
from typing import Annotated, Any, Final, NoReturn, Union, get_args, get_origin

import msgspec

from kei.domain.events import REGISTRY, Payload, event_type_of
from kei.errors import InputError

_fields: Final = cache(msgspec.structs.fields)
"""A struct's fields, worked out once: msgspec evaluates the annotations on each call
(about 0.1 ms each), and building the checkers asks for each struct's fields often."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
ID_MAX: Final = 256
STREAM_MAX: Final = 1_024
PATH_MAX: Final = 4_096
TEXT_MAX: Final = 1 << 20
LIST_MAX: Final = 10_000
MONEY_MAX: Final = 10**15
TIME_MAX: Final = 253_402_300_799_999_999
FLOAT_MAX: Final = 1.7976931348623157e308

# Control characters (C0, DEL, C1), line and paragraph separators, lone surrogates.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_HINT: Final = "see the field limits in docs/events.md; nothing was appended"


@dataclass(frozen=True, slots=True)
class Rule:
    """How one field is checked: its kind, and whether a string may be blank."""

    kind: str
    blank_ok: bool = False

    @property
    def is_string(self) -> bool:
        return self.kind in _STRING_MAX

    def describe(self) -> str:
        """The limit in words, as docs/events.md lists it."""
        if self.is_string:
            need = "" if self.blank_ok else ", not blank"
            chars = "no NUL" if self.kind == TEXT else "no control characters"
            return f"{self.kind}: at most {_STRING_MAX[self.kind]:,} characters, {chars}{need}"
        low, high = _INT_RANGE.get(self.kind, (None, None))
        if low is not None:
            return f"{self.kind}: an integer from {low:,} to {high:,}"
        return {FLOAT: "a finite number", BOOL: "true or false"}.get(self.kind, self.kind)


ID, STREAM, PATH, TEXT = "identifier", "stream", "path", "text"
COUNT, MONEY, TIME, INT, FLOAT, BOOL, ENUM, STRUCT = (
    "count", "money", "time", "integer", "float", "bool", "enum", "struct",
)  # fmt: skip
_STRING_MAX: Final = {ID: ID_MAX, STREAM: STREAM_MAX, PATH: PATH_MAX, TEXT: TEXT_MAX}
_INT_RANGE: Final = {
    COUNT: (0, INT64_MAX),
    MONEY: (-MONEY_MAX, MONEY_MAX),
    TIME: (0, TIME_MAX),
    INT: (INT64_MIN, INT64_MAX),
}

_id, _id_or_blank, _text, _text_or_blank = Rule(ID), Rule(ID, True), Rule(TEXT), Rule(TEXT, True)
_count, _money, _time, _float, _bool = Rule(COUNT), Rule(MONEY), Rule(TIME), Rule(FLOAT), Rule(BOOL)
_stream, _path, _enum, _struct = Rule(STREAM), Rule(PATH), Rule(ENUM), Rule(STRUCT)

# Fields named alike mean alike in every payload; exceptions are listed per type below.
_BY_NAME: Final[dict[str, Rule]] = {
    # identifiers that need a value when present
    **dict.fromkeys(
        [
            "agent_id",
            "branch",
            "provider",
            "model",
            "dna",
            "parent_dna",
            "ledger_id",
            "key_id",
            "public_key",
            "parent_agent_id",
            "parent_branch",
            "spec_sha",
            "creator",
            "fork_parent",
            "price_entry_id",
            "price_entry_hash",
            "skill_name",
            "trajectory_id",
            "decision_id",
            "policy",
            "fallback",
            "weights_ref",
            "pinned",
            "prompt_sha256",
            "from_model",
            "to_model",
            "call_id",
            "requested_model",
            "backend",
            "capability",
            "finish_reason",
            "namespace",
            "key",
            "kind",
            "tags",
            "ladder",
            "complexity_features",
            "tried",
            "redacted_by",
            "flagged_by",
            "session",
            "content_hash",
            "event_class",
            "tool",
            "rule",
            "source",
            "ref",
            "event_type",
            "fields",
        ],
        _id,
    ),
    # identifiers whose schema default is "" (a key or ledger without a name, no tier)
    **dict.fromkeys(["name", "key_name", "tier", "task_class"], _id_or_blank),
    **dict.fromkeys(["stream", "supersedes_stream"], _stream),
    **dict.fromkeys(["worktree", "file_path", "cwd"], _path),
    **dict.fromkeys(["summary", "reason", "rationale"], _text),
    **dict.fromkeys(["value", "text", "error"], _text_or_blank),
    **dict.fromkeys(
        [
            "supersedes_version",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "duration_ms",
            "escalation_depth",
            "stub_count",
            "tokens_in",
            "tokens_out",
            "n",
            "depth",
            "observations",
            "evaluated",
            "line_no",
            "block",
            "total_us",
            "load_us",
            "prompt_us",
            "generation_us",
        ],
        _count,
    ),
    **dict.fromkeys(["micro_cents", "expected_cost_micro_cents"], _money),
    **dict.fromkeys(["occurred_at_us", "before_us", "ts_us"], _time),
    "seed": Rule(INT),
    **dict.fromkeys(
        [
            "q_threshold",
            "delta",
            "lower_bound",
            "complexity_tau",
            "mse",
            "baseline_mse",
            "alpha",
            "beta",
            "sample",
            "role",
            "caps",
            "scope",
            "body",
        ],
        _float,
    ),
    **dict.fromkeys(
        [
            "success",
            "exact",
            "require_local",
            "ok",
            "is_error",
            "smoothed",
            "feasible",
            "signed_heads",
        ],
        _bool,
    ),
    "outcome": _enum,
    **dict.fromkeys(["origin", "usage", "weights", "candidates"], _struct),
}
# (payload type name, field) -> rule, where a field departs from its name's rule.
_EXCEPTIONS: Final[dict[tuple[str, str], Rule]] = {
    ("RouteDecided", "dna"): _id_or_blank,  # a prompt may give no DNA segments
    ("RouteDecided", "task_class"): _id_or_blank,
    ("MemoryForgotten", "reason"): _text_or_blank,  # schema default ""
    ("TraceRejected", "source"): _id,
}


def rule_for(struct: type[msgspec.Struct], field: str) -> Rule:
    """The rule of ``field`` of ``struct``; KeyError for a field no rule covers."""
    return _EXCEPTIONS.get((struct.__name__, field)) or _BY_NAME[field]


# -- the twin Structs ------------------------------------------------------------------


def _leaf(rule: Rule, tp: Any) -> Any:
    """The constrained type of one scalar of ``rule``'s kind."""
    if tp is str and rule.is_string:
        low = 0 if rule.blank_ok else 1
        return Annotated[str, msgspec.Meta(min_length=low, max_length=_STRING_MAX[rule.kind])]
    if tp is int and rule.kind in _INT_RANGE:
        low, high = _INT_RANGE[rule.kind]
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if tp is float and rule.kind == FLOAT:
        return Annotated[float, msgspec.Meta(ge=-FLOAT_MAX, le=FLOAT_MAX)]
    if tp is bool and rule.kind == BOOL:
        return bool
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and rule.kind == STRUCT:
        return _mirror(tp)
    if get_origin(tp) is not None and rule.kind == ENUM:  # a Literal
        return tp
    raise TypeError(f"rule {rule.kind} does not fit type {tp!r}")


def _constrained(rule: Rule, tp: Any) -> Any:
    """``tp`` with every scalar in it constrained by ``rule`` (unions, tuples)."""
    origin = get_origin(tp)
    if origin in (Union, UnionType):
        args = tuple(_constrained(rule, a) if a is not NoneType else NoneType for a in get_args(tp))
        return Union[args]  # noqa: UP007 - built from a tuple of types
    if origin is tuple:
        item, _ = get_args(tp)
        return Annotated[tuple[_constrained(rule, item), ...], msgspec.Meta(max_length=LIST_MAX)]  # type: ignore[misc]
    return _leaf(rule, tp)


def _mirror(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A Struct with ``struct``'s fields and the constraints of their rules."""
    fields = [(f.name, _constrained(rule_for(struct, f.name), f.type)) for f in _fields(struct)]
    return msgspec.defstruct(
        f"Checked{struct.__name__}", fields, forbid_unknown_fields=True, gc=False
    )


# -- the string checks ----------------------------------------------------------------

Check = Callable[[Any], str | None]
Collect = Callable[[Any, list[str], list[str]], None]


def _getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda _p: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda p: (one(p),)
    return attrgetter(*names)


def _collector(struct: type[msgspec.Struct]) -> Collect:
    """A function that adds the strings of a (type-checked) ``struct`` value to two
    lists, the identifiers and the free texts, for ``_clean`` to judge at once.

    None and "" are left out: msgspec has already refused "" where a rule needs a
    value, and None is a field left out."""
    fields = _fields(struct)
    ids = [f for f in fields if rule_for(struct, f.name).kind in (ID, STREAM, PATH)]
    get_scalars = _getter([f.name for f in ids if get_origin(f.type) is not tuple])
    lists = [f.name for f in ids if get_origin(f.type) is tuple]
    texts = [f.name for f in fields if rule_for(struct, f.name).kind == TEXT]
    nested = [
        (f.name, _collector(_struct_of(f.type)))
        for f in fields
        if rule_for(struct, f.name).kind == STRUCT and _string_fields(_struct_of(f.type))
    ]
    get_lists, get_texts = _getter(lists), _getter(texts)

    def collect(p: Any, id_strings: list[str], text_strings: list[str]) -> None:
        id_strings += filter(None, get_scalars(p))
        if lists:
            for items in get_lists(p):
                id_strings += items
        if texts:
            for value in get_texts(p):
                if value:
                    text_strings += value if isinstance(value, tuple) else (value,)
        for name, inner in nested:
            value = getattr(p, name)
            if value is not None:
                for item in value if isinstance(value, tuple) else (value,):
                    inner(item, id_strings, text_strings)

    return collect


def _group_collector(struct: type[msgspec.Struct]) -> Collect:
    """``_collector`` over a list of ``struct`` values at once: for the usual types
    (strings in scalar fields, at most one nested struct such as ``origin``) the
    strings are gathered in C-level loops (``map``, ``chain``, ``filter``)."""
    one_by_one = _collector(struct)
    fields = _fields(struct)
    kinds = {f.name: rule_for(struct, f.name).kind for f in fields}
    scalars = [
        f.name
        for f in fields
        if kinds[f.name] in (ID, STREAM, PATH) and not _is_tuple(struct, f.name)
    ]
    others = [
        f.name for f in fields
        if kinds[f.name] == TEXT or (kinds[f.name] in (ID, STREAM, PATH) and f.name not in scalars)
    ]  # fmt: skip
    nested = [
        f.name for f in fields if kinds[f.name] == STRUCT and _string_fields(_struct_of(f.type))
    ]
    if others or len(nested) > 1 or (nested and _is_tuple(struct, nested[0])):

        def each(ps: Any, id_strings: list[str], text_strings: list[str]) -> None:
            for p in ps:
                one_by_one(p, id_strings, text_strings)

        return each
    get_scalars = _getter(scalars)
    get_nested = attrgetter(nested[0]) if nested else None
    inner = (
        _collector(_struct_of(next(f.type for f in fields if f.name == nested[0])))
        if nested
        else None
    )

    def group(ps: Any, id_strings: list[str], text_strings: list[str]) -> None:
        id_strings += filter(None, chain.from_iterable(map(get_scalars, ps)))
        if get_nested is not None and inner is not None:
            for value in filter(None, map(get_nested, ps)):
                inner(value, id_strings, text_strings)

    return group


def _is_tuple(struct: type[msgspec.Struct], name: str) -> bool:
    return any(get_origin(f.type) is tuple for f in _fields(struct) if f.name == name)


def _clean(id_strings: list[str], text_strings: list[str]) -> bool:
    """The fast verdict on many strings at once: no control character in the
    identifiers, none of them blank, no NUL and no blank in the texts. False only
    sends the values to the slow check, which names the field or lets them pass."""
    if id_strings and not (
        " ".join(id_strings).isprintable() and not any(map(str.isspace, id_strings))
    ):
        return False
    return not (any(map(_NUL, text_strings)) or any(map(str.isspace, text_strings)))


_NUL: Final = re.compile("[\x00\ud800-\udfff]").search  # a NUL, or a lone surrogate


def _string_fields(struct: type[msgspec.Struct]) -> bool:
    """Does ``struct`` hold any string, itself or in a struct inside it?"""
    return any(
        rule_for(struct, f.name).is_string
        or (rule_for(struct, f.name).kind == STRUCT and _string_fields(_struct_of(f.type)))
        for f in _fields(struct)
    )


def _struct_of(tp: Any) -> type[msgspec.Struct]:
    """The Struct type inside ``tp`` (``S``, ``S | None``, ``tuple[S, ...]``)."""
    for candidate in (tp, *get_args(tp)):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    raise TypeError(f"no struct in {tp!r}")


def _slow_check(struct: type[msgspec.Struct]) -> Check:
    """Every string field of ``struct`` one at a time, naming the first bad one."""
    rules = [
        (f.name, rule_for(struct, f.name))
        for f in _fields(struct)
        if rule_for(struct, f.name).is_string
    ]

    def check(p: Any) -> str | None:
        for name, rule in rules:
            value = getattr(p, name)
            items = value if isinstance(value, tuple) else (value,)
            for i, s in enumerate(items):
                problem = None if s is None else string_problem(rule, s)
                if problem is not None:
                    where = f"{name}[{i}]" if isinstance(value, tuple) else name
                    return f"{where} {problem} ({rule.describe()})"
        return None

    return check


def string_problem(rule: Rule, s: str) -> str | None:
    """What is wrong with ``s`` under ``rule``, or None."""
    if rule.kind == TEXT:
        if _NUL(s):
            return "holds a NUL character or a lone surrogate"
    else:
        bad = _CONTROL.search(s)
        if bad is not None:
            return f"holds control character {bad.group()!r} at offset {bad.start()}"
    if not rule.blank_ok and (not s or s.isspace()):
        return "is blank"
    return None


# -- the whole check -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checker:
    name: str
    decode: Callable[[Any], Any]
    collect: Collect
    slow: Check


def _converter(mirror: type[msgspec.Struct]) -> Callable[[Any], Any]:
    """Checks a payload against its twin: msgspec reads its attributes (nested structs
    too) into the constrained type, at C speed, without encoding it first."""
    convert = msgspec.convert

    def check(payload: Any) -> Any:
        return convert(payload, mirror, from_attributes=True)

    return check


def _group_converter(mirror: type[msgspec.Struct]) -> Callable[[Any], Any]:
    """``_converter`` over a list of payloads of one type, in one call."""
    convert, many = msgspec.convert, list[mirror]  # type: ignore[valid-type]

    def check(payloads: Any) -> Any:
        return convert(payloads, many, from_attributes=True)

    return check


def _checkers() -> dict[type[Payload], _Checker]:
    return {
        t.payload_type: _Checker(
            t.name,
            _converter(_mirror(t.payload_type)),
            _collector(t.payload_type),
            _slow_check(t.payload_type),
        )
        for t in REGISTRY.values()
    }


_CHECKERS: Final = _checkers()
_FAST: Final = {
    t.payload_type: (_group_converter(_mirror(t.payload_type)), _group_collector(t.payload_type))
    for t in REGISTRY.values()
}
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
    if _clean(ids, texts):
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
                inner = _nested_problem(item, _slow_check(type(item)))
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
        clean = clean and _clean(ids, texts) and max(map(len, streams), default=0) <= STREAM_MAX
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
                _clean(ids, texts)
                and len(stream) <= STREAM_MAX
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


def _expected_ok(events: Sequence[Any], i: int) -> None:
    problem = _stream_problem(events[i].stream, events[i].expected_version)
    if problem is not None:
        where = f"event {i + 1} of {len(events)}: " if len(events) > 1 else ""
        raise InputError(where + problem, hint=_HINT)


def _stream_problem(stream: Any, expected: Any) -> str | None:
    if not isinstance(stream, str):
        return f"stream must be text, got {type(stream).__name__}"
    if len(stream) > STREAM_MAX or _CONTROL.search(stream) or not stream.strip():
        return (
            f"stream {stream[:64]!r} is blank, longer than {STREAM_MAX:,} characters "
            "or holds a control character"
        )
    if expected is not None and (type(expected) is not int or not 0 <= expected <= INT64_MAX):
        return f"expected_version {expected!r} is not an integer from 0 to {INT64_MAX:,}"
    return None
