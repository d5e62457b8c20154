"""Upstream's Rust matcher, kept as ``--matcher regex`` for parity.

A port of upstream kei-import-project's ``matcher.rs``: string literals and ``//``
comments blanked out (its character scanner, quirks included), then
``impl X for Y`` trait names, every ``fn name(`` or ``fn name<`` (anywhere: a free
function or a trait's declaration counts as an implemented method) and the segments
of ``use a::b::c`` paths (up to a ``{``). Only ``.rs`` files give evidence, so modules
in other languages always come out unmatched. What differs: the files are those kei's
walker gives the module (upstream re-walked the module's folder with no ignore list,
``target/`` included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from kei.domain.project.traits import Evidence

VERSION: Final = "regex/1"
_IMPL: Final = re.compile(r"\bimpl\s+(\w+)\s+for\s+\w+")
_FN: Final = re.compile(r"(?:async\s+)?fn\s+(\w+)\s*[<(]")
_USE: Final = re.compile(r"\buse\s+((?:\w+::)*\w+)")


def rust_evidence(texts: Iterable[str]) -> Evidence:
    """The evidence upstream's matcher collected from a module's ``.rs`` files."""
    methods: set[str] = set()
    names: set[str] = set()
    segments: set[str] = set()
    for text in texts:
        code = strip_strings_and_comments(text)
        names.update(_IMPL.findall(code))
        methods.update(_FN.findall(code))
        for path in _USE.findall(code):
            segments.update(path.split("::"))
    return Evidence(frozenset(methods), frozenset(names | segments), frozenset(segments))


def strip_strings_and_comments(src: str) -> str:
    """Upstream's ``strip_string_literals``: a string's characters and a ``//``
    comment's become spaces (quotes and newlines kept)."""
    out: list[str] = []
    in_string = escape = in_comment = prev_slash = False
    for ch in src:
        if in_comment:
            if ch == "\n":
                in_comment = False
            out.append("\n" if ch == "\n" else " ")
            prev_slash = False
            continue
        if not in_string and prev_slash and ch == "/":
            in_comment, prev_slash = True, False
            out.append(" ")
            continue
        prev_slash = ch == "/" and not in_string
        if escape:
            escape = False
            out.append(" ")
        elif ch == "\\" and in_string:
            escape = True
            out.append(" ")
        elif ch == '"':
            in_string = not in_string
            out.append(ch)
        else:
            out.append(" " if in_string else ch)
    return "".join(out)
