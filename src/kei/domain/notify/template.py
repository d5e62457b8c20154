"""A rule's subject and body: text with ``{field}`` placeholders, filled safely.

``str.format`` on a user's template can reach any attribute (``{p.__class__}``), index
into values and run a value's ``__format__`` with a spec the template chose. Here a
template is parsed once, when the rules are read, and only plain names are accepted:
no attribute access (``{a.b}``), no index (``{a[0]}``), no conversion (``{a!r}``), no
format spec (``{a:>99999}``), no positional ``{}``. ``{{`` and ``}}`` are literal
braces. Filling looks the name up in a plain mapping of values and writes each value as
text (``value_text``): a missing name is written ``?``, never an error, since a
template may serve several event types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Formatter
from typing import Any, Final

import msgspec
from msgspec import Struct

NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
MOST_CHARS: Final = 4_000
MISSING: Final = "?"


class Template(Struct, frozen=True):
    """Literal text and placeholders in order: ``(literal, name or None)`` pairs."""

    parts: tuple[tuple[str, str | None], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for _, n in self.parts if n is not None)

    def render(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                out.append(value_text(values[name]) if name in values else MISSING)
        return "".join(out)


def compile_template(text: object) -> Template:
    """``text`` parsed; ValueError saying what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError(f"must be a string, not {type(text).__name__}")
    if len(text) > MOST_CHARS:
        raise ValueError(f"longer than {MOST_CHARS} characters")
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:  # "Single '}' encountered in format string"
        raise ValueError(f"{exc}; write {{{{ and }}}} for literal braces") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if conversion is not None or spec:
            raise ValueError(f"placeholder {{{name}...}}: no conversion or format spec allowed")
        if not NAME.match(name):
            shown = name if name else ""
            raise ValueError(
                f"placeholder {{{shown}}} is not a plain field name (letters, digits, _)"
            )
        parts.append((literal, name))
    return Template(tuple(parts))


def value_text(value: Any) -> str:
    """A payload value as template text: text as it is, numbers in decimal, true/false,
    nothing for None, lists comma-separated, nested structs as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, tuple | list):
        return ", ".join(value_text(v) for v in value)
    return msgspec.json.encode(msgspec.to_builtins(value)).decode("utf-8")
