"""Evidence from source code through tree-sitter tags (the ``tags`` matcher).

Each grammar wheel (tree-sitter-rust, -python, -go, -javascript, -typescript; the last
tags only what TypeScript adds, so kei adds a small query for its classes and
functions) says what a file defines
and references. A name counts as an implemented method only when it is defined
inside an implementation: a Rust ``impl`` block (not a ``trait``'s declarations or
default bodies), a Python ``class``, a Go method (a function with a receiver), a
JavaScript or TypeScript class (not an ``interface``); a camelCase or exported Go name
counts as its snake_case too (``NextFire`` is ``next_fire``). Free functions, calls, types,
implemented traits and imports become ``names``, where the keywords are looked for.
Loaded only by ``kei import project`` (extra ``kei[project]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Final

from kei.domain.project.traits import Evidence

VERSION: Final = "tags/1"
_IMPORTS: Final = {
    "Rust": "(use_declaration argument: (_) @import)",
    "Python": "(import_statement) @import (import_from_statement) @import",
    "Go": "(import_spec path: (_) @import)",
    "JavaScript": "(import_statement source: (_) @import)",
    "TypeScript": "(import_statement source: (_) @import)",
}
_TS_TAGS: Final = """
(method_definition name: (property_identifier) @name) @definition.method
(class_declaration name: (type_identifier) @name) @definition.class
(function_declaration name: (identifier) @name) @definition.function
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_identifier) @name @reference.type
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (member_expression property: (property_identifier) @name))
  @reference.call
"""
_IMPLEMENTING: Final = frozenset(
    {"impl_item", "class_definition", "class_declaration", "class", "method_declaration"}
)
_DECLARING: Final = frozenset({"trait_item", "interface_declaration"})


@cache
def _language(language: str) -> tuple[Any, Any, Any]:
    """The grammar, its tags query and kei's imports query, made once per process."""
    import tree_sitter as ts

    modules: dict[str, Callable[[], tuple[Any, str]]] = {
        "Rust": lambda: _grammar("tree_sitter_rust", "language"),
        "Python": lambda: _grammar("tree_sitter_python", "language"),
        "Go": lambda: _grammar("tree_sitter_go", "language"),
        "JavaScript": lambda: _grammar("tree_sitter_javascript", "language"),
        "TypeScript": lambda: _grammar("tree_sitter_typescript", "language_tsx"),
    }
    raw, tags = modules[language]()
    lang = ts.Language(raw)
    return lang, ts.Query(lang, tags), ts.Query(lang, _IMPORTS[language])


def _grammar(module: str, attr: str) -> tuple[Any, str]:
    """The grammar and its tags query; TypeScript's wheel tags only what TypeScript adds
    to JavaScript (signatures, interfaces), so kei's query for classes comes first."""
    import importlib

    m = importlib.import_module(module)
    query: str = m.TAGS_QUERY
    if module == "tree_sitter_typescript":
        query = _TS_TAGS + "\n" + query
    return getattr(m, attr)(), query


def evidence(files: Iterable[tuple[str, bytes]]) -> Evidence:
    """The evidence of a module's ``(language, source bytes)`` files."""
    import tree_sitter as ts

    methods: set[str] = set()
    names: set[str] = set()
    deps: set[str] = set()
    for language, source in files:
        if language not in _IMPORTS:
            continue
        lang, tags, imports = _language(language)
        root = ts.Parser(lang).parse(source).root_node
        for _, caps in ts.QueryCursor(tags).matches(root):
            for node in caps.get("name", []):
                text = _text(node)
                if _is_method(caps, language) and _implemented(node):
                    methods.update({text, snake_case(text)})
                names.add(text)
        for node in ts.QueryCursor(imports).captures(root).get("import", []):
            words = [w for w in _words(_text(node)) if w]
            names.update(words)
            deps.update(words[:1])
    return Evidence(frozenset(methods), frozenset(names), frozenset(deps))


def snake_case(name: str) -> str:
    """``NextFire`` and ``nextFire`` as ``next_fire``: Go's exported methods and
    JavaScript's camelCase against the table's snake_case names."""
    import re

    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced).lower()


def _is_method(caps: dict[str, Any], language: str) -> bool:
    if "definition.method" in caps:
        return True
    return language == "Python" and "definition.function" in caps


def _implemented(node: Any) -> bool:
    """True when the nearest enclosing definition implements (not declares) it."""
    parent = node.parent
    while parent is not None:
        if parent.type in _DECLARING:
            return False
        if parent.type in _IMPLEMENTING:
            return True
        parent = parent.parent
    return False


def _text(node: Any) -> str:
    raw: bytes = node.text or b""
    return raw.decode("utf-8", "replace")


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
