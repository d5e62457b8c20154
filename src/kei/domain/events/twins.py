"""The twin Structs: each payload type's fields with the constraints of their rules.

The limits are deliberately *not* msgspec ``Meta`` annotations on the payload Structs
themselves: those are enforced on decode too, which would make an event signed by an
earlier release undecodable. Instead each payload type gets a twin Struct
(:func:`mirror`), used only by ``limits.py``: msgspec converts the payload's
attributes into its twin (``msgspec.convert``), which checks every type, enum value,
integer range, length and nested struct at C speed.
"""

from __future__ import annotations

from collections.abc import Callable
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from kei.domain.events.fields import (
    BOOL,
    ENUM,
    FLOAT,
    FLOAT_MAX,
    INT_RANGE,
    STRING_MAX,
    STRUCT,
    Rule,
    rule_for,
    struct_fields,
)
from kei.limits import LIMITS

__all__ = ["converter", "group_converter", "mirror"]


def _leaf(rule: Rule, tp: Any) -> Any:
    """The constrained type of one scalar of ``rule``'s kind."""
    if tp is str and rule.is_string:
        low = 0 if rule.blank_ok else 1
        return Annotated[str, msgspec.Meta(min_length=low, max_length=STRING_MAX[rule.kind])]
    if tp is int and rule.kind in INT_RANGE:
        low, high = INT_RANGE[rule.kind]
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if tp is float and rule.kind == FLOAT:
        return Annotated[float, msgspec.Meta(ge=-FLOAT_MAX, le=FLOAT_MAX)]
    if tp is bool and rule.kind == BOOL:
        return bool
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and rule.kind == STRUCT:
        return mirror(tp)
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
        most = msgspec.Meta(max_length=LIMITS.max_list_items)
        return Annotated[tuple[_constrained(rule, item), ...], most]  # type: ignore[misc]
    return _leaf(rule, tp)


def mirror(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A Struct with ``struct``'s fields and the constraints of their rules."""
    fields = [
        (f.name, _constrained(rule_for(struct, f.name), f.type)) for f in struct_fields(struct)
    ]
    return msgspec.defstruct(
        f"Checked{struct.__name__}", fields, forbid_unknown_fields=True, gc=False
    )


def converter(twin: type[msgspec.Struct]) -> Callable[[Any], Any]:
    """Checks a payload against its twin: msgspec reads its attributes (nested structs
    too) into the constrained type, at C speed, without encoding it first."""
    convert = msgspec.convert

    def check(payload: Any) -> Any:
        return convert(payload, twin, from_attributes=True)

    return check


def group_converter(twin: type[msgspec.Struct]) -> Callable[[Any], Any]:
    """``converter`` over a list of payloads of one type, in one call."""
    convert, many = msgspec.convert, list[twin]  # type: ignore[valid-type]

    def check(payloads: Any) -> Any:
        return convert(payloads, many, from_attributes=True)

    return check
