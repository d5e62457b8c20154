"""A rule's ``where``: equality and comparisons on an event's payload fields.

Written as a TOML table, one key per field (a dotted path reaches into a nested
struct, ``"usage.input_tokens"``), each either a value (equality) or a table of
operators::

    where = { agent_id = "a-7", "usage.input_tokens" = { gt = 100000 } }
    where = { reason = { ne = "" }, model = { in = ["opus", "sonnet"] } }

Operators: ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``in``. Values are text,
numbers or booleans (``in``: a list of them). A comparison between kinds that do not
compare (text with a number, a boolean with anything but a boolean, a missing field)
is simply false: a rule never raises on an event.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from msgspec import Struct

Scalar = str | int | float | bool
PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}\Z")
MOST_CONDITIONS: Final = 32
MOST_IN: Final = 256
_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}  # fmt: skip
OPERATORS: Final = ("eq", "ne", *_ORDER, "in")


class Condition(Struct, frozen=True):
    """``path op value``; ``value`` is a tuple for ``in``."""

    path: tuple[str, ...]
    op: str
    value: Scalar | tuple[Scalar, ...]

    def holds(self, values: Mapping[str, Any]) -> bool:
        found, ok = _lookup(values, self.path)
        if not ok:
            return False
        if self.op == "eq":
            return _same(found, self.value)
        if self.op == "ne":
            return not _same(found, self.value)
        if self.op == "in":
            assert isinstance(self.value, tuple)
            return any(_same(found, v) for v in self.value)
        if _kind(found) != _kind(self.value) or _kind(found) not in ("number", "text"):
            return False
        return _ORDER[self.op](found, self.value)


def parse_where(data: object) -> tuple[Condition, ...]:
    """The conditions of a ``where`` table; ValueError naming the field at fault."""
    if not isinstance(data, dict):
        raise ValueError(f"must be a table of field = value, not {type(data).__name__}")
    if len(data) > MOST_CONDITIONS:
        raise ValueError(f"more than {MOST_CONDITIONS} fields")
    out: list[Condition] = []
    for field, spec in data.items():
        if not PATH.match(field):
            raise ValueError(f"{field!r} is not a field name or dotted path")
        path = tuple(field.split("."))
        if isinstance(spec, dict):
            if not spec:
                raise ValueError(f"{field}: an empty table of operators")
            out += [_condition(field, path, op, v) for op, v in spec.items()]
        else:
            out.append(_condition(field, path, "eq", spec))
    return tuple(out)


def _condition(field: str, path: tuple[str, ...], op: str, value: object) -> Condition:
    if op not in OPERATORS:
        raise ValueError(f"{field}: unknown operator {op!r} (one of {', '.join(OPERATORS)})")
    if op == "in":
        if not isinstance(value, list) or len(value) > MOST_IN:
            raise ValueError(f"{field}: in needs a list of at most {MOST_IN} values")
        return Condition(path, op, tuple(_scalar(field, v) for v in value))
    scalar = _scalar(field, value)
    if op in _ORDER and _kind(scalar) not in ("number", "text"):
        raise ValueError(f"{field}: {op} compares numbers or text, not {_kind(scalar)}")
    return Condition(path, op, scalar)


def _scalar(field: str, value: object) -> Scalar:
    if isinstance(value, bool | int | float | str) and value == value:  # noqa: PLR0124 - NaN
        return value
    raise ValueError(f"{field}: {value!r} is not text, a number or a boolean")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else "other"


def _same(found: object, wanted: object) -> bool:
    kind = _kind(wanted)
    return _kind(found) == kind and found == wanted


def _lookup(values: Mapping[str, Any], path: tuple[str, ...]) -> tuple[Any, bool]:
    """The value at ``path`` through mappings and structs' fields only (no attribute of
    any other object is ever read)."""
    current: Any = values
    for name in path:
        if isinstance(current, Mapping):
            if name not in current:
                return None, False
            current = current[name]
        elif isinstance(current, Struct) and name in current.__struct_fields__:
            current = getattr(current, name)
        else:
            return None, False
    return current, True
