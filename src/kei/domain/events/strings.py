"""The string checks of the field limits: gather a payload's strings, judge them fast.

What msgspec cannot check cheaply (control characters, blank identifiers, NUL, lone
surrogates) is checked on the strings after the twin Structs (``twins.py``) checked
types, ranges and lengths: :func:`collector` gathers a payload's identifiers and
free texts, those of a whole batch are judged in a few C-level calls by
:func:`clean_strings`, and only a batch judged unclean goes field by field
(:func:`slow_check`), which names the culprit or lets the values pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any, Final, get_args, get_origin

import msgspec

from kei.domain.events.fields import (
    ID,
    PATH,
    STREAM,
    STRUCT,
    TEXT,
    Rule,
    rule_for,
    struct_fields,
)

__all__ = [
    "CONTROL",
    "Check",
    "Collect",
    "clean_strings",
    "collector",
    "group_collector",
    "slow_check",
    "string_problem",
]

# Control characters (C0, DEL, C1), line and paragraph separators, lone surrogates.
CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

Check = Callable[[Any], str | None]
Collect = Callable[[Any, list[str], list[str]], None]


def _getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda _p: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda p: (one(p),)
    return attrgetter(*names)


def collector(struct: type[msgspec.Struct]) -> Collect:
    """A function that adds the strings of a (type-checked) ``struct`` value to two
    lists, the identifiers and the free texts, for ``clean_strings`` to judge at once.

    None and "" are left out: msgspec has already refused "" where a rule needs a
    value, and None is a field left out."""
    fields = struct_fields(struct)
    ids = [f for f in fields if rule_for(struct, f.name).kind in (ID, STREAM, PATH)]
    get_scalars = _getter([f.name for f in ids if get_origin(f.type) is not tuple])
    lists = [f.name for f in ids if get_origin(f.type) is tuple]
    texts = [f.name for f in fields if rule_for(struct, f.name).kind == TEXT]
    nested = [
        (f.name, collector(_struct_of(f.type)))
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


def group_collector(struct: type[msgspec.Struct]) -> Collect:
    """``collector`` over a list of ``struct`` values at once: for the usual types
    (strings in scalar fields, at most one nested struct such as ``origin``) the
    strings are gathered in C-level loops (``map``, ``chain``, ``filter``)."""
    one_by_one = collector(struct)
    fields = struct_fields(struct)
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
        collector(_struct_of(next(f.type for f in fields if f.name == nested[0])))
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
    return any(get_origin(f.type) is tuple for f in struct_fields(struct) if f.name == name)


def clean_strings(id_strings: list[str], text_strings: list[str]) -> bool:
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
        for f in struct_fields(struct)
    )


def _struct_of(tp: Any) -> type[msgspec.Struct]:
    """The Struct type inside ``tp`` (``S``, ``S | None``, ``tuple[S, ...]``)."""
    for candidate in (tp, *get_args(tp)):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    raise TypeError(f"no struct in {tp!r}")


def slow_check(struct: type[msgspec.Struct]) -> Check:
    """Every string field of ``struct`` one at a time, naming the first bad one."""
    rules = [
        (f.name, rule_for(struct, f.name))
        for f in struct_fields(struct)
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
        bad = CONTROL.search(s)
        if bad is not None:
            return f"holds control character {bad.group()!r} at offset {bad.start()}"
    if not rule.blank_ok and (not s or s.isspace()):
        return "is blank"
    return None
