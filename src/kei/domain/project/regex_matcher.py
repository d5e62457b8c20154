"""Upstream's Rust matcher, kept as ``--matcher regex`` for parity.

Upstream kei-import-project read only Rust: it stripped string literals and ``//``
comments, then collected ``impl X for Y`` trait names, every ``fn name(`` or
``fn name<`` (anywhere: a free function or a trait's declaration counts as an
implemented method) and the segments of ``use a::b::c`` paths. Other languages give
no evidence, so their modules always come out unmatched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from kei.domain.project.traits import Evidence

VERSION: Final = "regex/1"
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_COMMENT: Final = re.compile(r"//[^\n]*")
_IMPL: Final = re.compile(r"\bimpl(?:<[^>]*>)?\s+([A-Za-z_][A-Za-z0-9_:]*)\s+for\s")
_FN: Final = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)\s*[(<]")
_USE: Final = re.compile(r"\buse\s+([^;]+);")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rust_evidence(texts: Iterable[str]) -> Evidence:
    """The evidence upstream's matcher collected from a module's ``.rs`` files."""
    methods: set[str] = set()
    names: set[str] = set()
    deps: set[str] = set()
    for text in texts:
        code = _COMMENT.sub("", _STRING.sub('""', text))
        names.update(m.rsplit("::", 1)[-1] for m in _IMPL.findall(code))
        methods.update(_FN.findall(code))
        for path in _USE.findall(code):
            words = _WORD.findall(path)
            names.update(words)
            deps.update(words[:1])
    return Evidence(frozenset(methods), frozenset(names), frozenset(deps))
