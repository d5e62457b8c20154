"""Manifests into module facts: which kind of module a file declares, and its name.

Upstream's rules, with its defects fixed (research note §7.2):

- ``Cargo.toml``: ``[package].name``; a ``[workspace]`` with no package is a
  workspace root, not a module (and never hides its members' sources).
- ``package.json``: ``name``; a workspace root without one is not a module.
- ``pyproject.toml``: ``[project].name``, else ``[tool.poetry].name``; with neither,
  a ``setup.py`` beside it is read. ``setup.py`` is parsed as Python: the ``name=``
  keyword of the ``setup(...)`` call, resolved through a module-level constant
  (``name=NAME``), never the first line that starts with ``name`` (upstream took
  ``namespace_packages=[...]`` or the text ``NAME``).
- ``go.mod``: the ``module`` path's last segment, skipping a major-version suffix
  (``example.com/foo/v2`` is ``foo``, not ``v2``).

A manifest that does not parse, or whose name is unusable, is a ``Manifest`` with an
``error``: the import records it as a finding and goes on (upstream aborted the run).
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from typing import Any, Final

from msgspec import Struct

RUST, NPM, PYTHON, GO = "rust-crate", "npm-package", "python-package", "go-module"
MANIFEST_KINDS: Final = {
    "Cargo.toml": RUST,
    "package.json": NPM,
    "pyproject.toml": PYTHON,
    "setup.py": PYTHON,
    "go.mod": GO,
}
LANGUAGES: Final = {
    RUST: ("Rust",),
    NPM: ("TypeScript", "JavaScript"),
    PYTHON: ("Python",),
    GO: ("Go",),
}
MAX_NAME_CHARS: Final = 200
_VERSION_SUFFIX: Final = re.compile(r"v[0-9]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def kind_of(manifest_path: str) -> str:
    """The module kind a manifest's file name declares (``unknown`` for other names)."""
    return MANIFEST_KINDS.get(manifest_path.rsplit("/", 1)[-1], "unknown")


class Manifest(Struct, frozen=True):
    """What one manifest says: a module ``name``, ``None`` for a root that declares no
    module, or an ``error`` saying why it could not be read."""

    kind: str
    name: str | None = None
    error: str | None = None


def read_manifest(filename: str, text: str, sibling_setup: str | None = None) -> Manifest:
    """The module ``filename`` (a manifest's base name) declares, from its ``text``;
    ``sibling_setup``: the text of a ``setup.py`` beside a ``pyproject.toml``."""
    kind = MANIFEST_KINDS[filename]
    try:
        name = _READERS[filename](text)
        if name is None and filename == "pyproject.toml" and sibling_setup is not None:
            name = _setup_py(sibling_setup)
    except (ValueError, SyntaxError, RecursionError) as e:  # tomllib, json, ast errors
        return Manifest(kind, error=f"{filename} does not parse: {_one_line(str(e))}")
    if name is None:
        return Manifest(kind)
    problem = _name_problem(name)
    return Manifest(kind, name=name) if problem is None else Manifest(kind, error=problem)


def _cargo(text: str) -> str | None:
    return _str_at(tomllib.loads(text), "package", "name")


def _package_json(text: str) -> str | None:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return _as_name(data.get("name"))


def _pyproject(text: str) -> str | None:
    data = tomllib.loads(text)
    return _str_at(data, "project", "name") or _str_at(data, "tool", "poetry", "name")


def _setup_py(text: str) -> str | None:
    tree = ast.parse(text)
    constants: dict[str, str] = {}
    for stmt in tree.body:  # module-level constants: NAME = "..."
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
            for target in stmt.targets:
                if isinstance(target, ast.Name) and isinstance(stmt.value.value, str):
                    constants[target.id] = stmt.value.value
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _called(node) == "setup"):
            continue
        for kw in node.keywords:
            if kw.arg != "name":
                continue
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                return kw.value.value
            if isinstance(kw.value, ast.Name) and kw.value.id in constants:
                return constants[kw.value.id]
            raise ValueError("setup(name=...) is not a string kei can read without running it")
    return None


def _go_mod(text: str) -> str | None:
    for line in text.splitlines():
        words = line.split("//", 1)[0].split()
        if len(words) >= 2 and words[0] == "module":
            segments = [s for s in words[1].strip('"`').split("/") if s]
            while len(segments) > 1 and _VERSION_SUFFIX.fullmatch(segments[-1]):
                segments.pop()
            return segments[-1] if segments else None
    return None


_READERS: Final = {
    "Cargo.toml": _cargo,
    "package.json": _package_json,
    "pyproject.toml": _pyproject,
    "setup.py": _setup_py,
    "go.mod": _go_mod,
}


def _called(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    return f.attr if isinstance(f, ast.Attribute) else None


def _str_at(data: dict[str, Any], *path: str) -> str | None:
    node: Any = data
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return _as_name(node)


def _as_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"the name is a {type(value).__name__}, not a string")
    return value or None


def _name_problem(name: str) -> str | None:
    if not name.strip():
        return "the module name is blank"
    if len(name) > MAX_NAME_CHARS:
        return f"the module name is {len(name)} characters; at most {MAX_NAME_CHARS}"
    if _CONTROL.search(name):
        return "the module name holds control characters"
    return None


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text)[:300]
