"""Which strings of an event the leak matrix scans on the write path
(``kei.app.ledger.leak_guard``): all of them, split into free text and identifiers.

Free text is what a person or a model wrote: summaries, failure reasons, memory
values, error messages, trace text. :data:`FREE_TEXT` names those fields; a
``substitute`` rule redacts a secret in them and keeps the rest of the text.

Every other string an event holds is an identifier (agent ids, branches, memory keys,
tags, kinds, models, key names, sessions, hashes, and the strings of nested values such
as ``Origin``): :func:`identifier_strings` yields them, found from the payload types
themselves (``msgspec.inspect``), so a field added later is scanned without anyone
listing it. An identifier is never redacted, since other events refer to it by value:
a ``block`` or ``substitute`` rule refuses the write (``Matrix.check_identifiers``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Final

import msgspec

FREE_TEXT: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "agent.completed": ("summary",),
        "agent.failed": ("reason",),
        "cost.amended": ("reason",),
        "kei.key.revoked": ("reason",),
        "memory.written": ("value",),
        "memory.forgotten": ("reason",),
        "llm.call.completed": ("error",),
        "route.escalated": ("reason",),
        "trace.recorded": ("text",),
        "mcp.tool.called": ("error",),
        "migrate.failed": ("error",),
        "migrate.drift": ("detail",),
        "notify.requested": ("subject", "body_text"),
        "notify.failed": ("error",),
        "notify.requeued": ("reason",),
        "net.mode.configure_failed": ("stderr_tail",),
        "token.revoked": ("reason",),
    }
)

_NO_STRINGS = (msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.BoolType,
               msgspec.inspect.NoneType)  # fmt: skip


@functools.cache
def string_fields(struct_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of a Struct type that can hold a string, directly or nested. A field
    whose type kei cannot rule out (anything but numbers, booleans and None, alone or
    in unions and containers) counts as one: scanning it costs little, missing it a
    secret signed for ever."""
    info = msgspec.inspect.type_info(struct_type)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(f.name for f in info.fields if _may_hold_text(f.type))


def identifier_strings(payload: msgspec.Struct, skip: tuple[str, ...] = ()) -> list[
    tuple[str, str]
]:  # fmt: skip
    """``(field path, value)`` for every string in ``payload`` outside the top-level
    fields named in ``skip`` (its free text): ``origin.source``, ``tags[1]``. On the
    write path for every event, so plain string fields are read in one C call."""
    names, get = _getter(type(payload), skip)
    values = get(payload)
    found = [(n, v) for n, v in zip(names, values, strict=True) if v.__class__ is str]
    if len(found) + values.count(None) < len(values):  # tuples, nested structs
        for name, value in zip(names, values, strict=True):
            if value is not None and value.__class__ is not str:
                found.extend(_strings(value, name))
    return found


def identifier_values(payload: msgspec.Struct, skip: tuple[str, ...] = ()) -> tuple[object, ...]:
    """The top-level values :func:`identifier_strings` looks into, in one C call: what
    the write path's fast check (``Matrix.known_clean``) takes."""
    return _getter(type(payload), skip)[1](payload)


@functools.cache
def _getter(
    struct_type: type[msgspec.Struct], skip: tuple[str, ...]
) -> tuple[tuple[str, ...], Callable[[object], tuple[object, ...]]]:
    names = tuple(n for n in string_fields(struct_type) if n not in skip)
    if not names:
        return names, lambda _: ()
    get = operator.attrgetter(*names)
    return names, (lambda p: (get(p),)) if len(names) == 1 else get


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, msgspec.Struct):
        for name in string_fields(type(value)):
            yield from _strings(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, tuple | list | frozenset | set):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, f"{path}{{key}}")
            yield from _strings(item, f"{path}[{key!r}]")


def _may_hold_text(t: msgspec.inspect.Type) -> bool:
    if isinstance(t, _NO_STRINGS):
        return False
    if isinstance(t, msgspec.inspect.UnionType):
        return any(_may_hold_text(u) for u in t.types)
    if isinstance(t, msgspec.inspect.StructType):
        return any(_may_hold_text(f.type) for f in t.fields)
    return True
