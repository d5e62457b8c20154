"""Modules from a walk: manifests read, each module's own source files, their hashes,
source lines and the matcher's evidence.

A file belongs to the deepest folder above it that holds a manifest, and counts for
that folder's module(s) whose kind reads its language. So a workspace member keeps its
sources whatever its workspace's manifest says (upstream dropped a file under *any*
other manifest's folder, the enclosing workspace's included: 124 of KeiSeiKit's 127
manifests came out with no source files), and a nested crate's files are its own, not
its parent's. A ``setup.py`` beside a ``pyproject.toml`` is the same module.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from kei.app.importers.project.walk import Walk, WalkedFile
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.manifests import LANGUAGES, MANIFEST_KINDS, read_manifest
from kei.domain.project.traits import Evidence, score

log = logging.getLogger(__name__)
MAX_MANIFEST_BYTES: Final = 1 << 20
SUFFIXES: Final = {"Rust": ".rs", "Python": ".py", "Go": ".go", "TypeScript": ".ts",
                   "JavaScript": ".js"}  # fmt: skip
Matcher = Callable[[Sequence[tuple[str, bytes]]], Evidence]


def identify(
    root: Path, walked: Walk, matcher: Matcher, known: Mapping[str, ModuleFacts] | None = None
) -> list[ModuleFacts]:
    """Every manifest's module (or finding), sorted by manifest path. ``known``: the
    modules the log holds, matched by the same matcher; one whose files hash the same
    keeps its source lines and matches (counting and parsing are most of a run)."""
    by_dir: dict[str, list[WalkedFile]] = {}
    for f in walked.files:
        name = f.path.rsplit("/", 1)[-1]
        if name in MANIFEST_KINDS:
            by_dir.setdefault(_dir(f.path), []).append(f)
    owned: dict[str, list[WalkedFile]] = {}
    for f in walked.files:
        owner = _owner(_dir(f.path), by_dir)
        if owner is not None and f.language is not None:
            owned.setdefault(owner, []).append(f)
    found: list[ModuleFacts] = []
    for folder, manifests in sorted(by_dir.items()):
        names = {m.path.rsplit("/", 1)[-1]: m for m in manifests}
        for m in manifests:
            if m.path.endswith("setup.py") and "pyproject.toml" in names:
                continue  # read as the pyproject's fallback
            setup = names.get("setup.py") if m.path.endswith("pyproject.toml") else None
            facts = _module(root, m, setup, owned.get(folder, []), matcher, known or {})
            if facts is not None:
                found.append(facts)
    return sorted(found, key=lambda m: m.module_id)


def _module(
    root: Path,
    manifest: WalkedFile,
    setup: WalkedFile | None,
    files: list[WalkedFile],
    matcher: Matcher,
    known: Mapping[str, ModuleFacts],
) -> ModuleFacts | None:
    kind = MANIFEST_KINDS[manifest.path.rsplit("/", 1)[-1]]
    base = ModuleFacts(module_id=manifest.path, kind=kind, manifest_path=manifest.path)
    text, problem = _read_text(root, manifest)
    sibling = _read_text(root, setup)[0] if setup is not None else None
    if problem is not None:
        return _replace(base, error=problem)
    parsed = read_manifest(manifest.path.rsplit("/", 1)[-1], text, sibling)
    if parsed.error is not None:
        return _replace(base, error=parsed.error)
    if parsed.name is None:
        return None  # a workspace root: declares no module of its own
    languages = LANGUAGES[kind]
    mine = [f for f in files if f.language in languages]
    lines, sources = [], []
    for f in mine:
        data = _read_bytes(root / f.path)
        if data is None:
            continue
        lines.append(f"{f.path}\0{hashlib.sha256(data).hexdigest()}\n")
        sources.append((f.path, f.language or "", data))
    found = _replace(
        base, name=parsed.name, files=len(lines),
        content_sha256=hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(),
        languages=tuple(sorted({f.language for f in mine if f.language})),
    )  # fmt: skip
    old = known.get(found.module_id)
    if old is not None and _replace(old, sloc=0, matches=()) == found:
        return old  # same files, same bytes: same lines and matches
    sloc = sum(source_lines(path, language, data) for path, language, data in sources)
    evidence = matcher([(language, data) for _, language, data in sources])
    return _replace(found, sloc=sloc, matches=tuple(score(evidence)))


def source_lines(path: str, language: str, data: bytes) -> int:
    """Code lines (pygount: not comments, not blank) of one file, lexed as the language
    the walker gave it (an override or a shebang script has no telling extension);
    0, logged, when pygount fails on it."""
    from pygount import SourceAnalysis

    named = f"{path}{SUFFIXES[language]}" if language in SUFFIXES else path
    try:
        analysis = SourceAnalysis.from_file(
            named, "kei", encoding="utf-8", file_handle=io.BytesIO(data)
        )
    except Exception as e:  # pygount or pygments on hostile text: a count, never the run
        log.warning("no source lines for %s: %s", path, type(e).__name__)
        return 0
    return int(analysis.code_count)


def _replace(m: ModuleFacts, **changes: object) -> ModuleFacts:
    import msgspec

    return msgspec.structs.replace(m, **changes)


def _owner(folder: str, manifest_dirs: dict[str, list[WalkedFile]]) -> str | None:
    """The deepest folder at or above ``folder`` that holds a manifest."""
    while True:
        if folder in manifest_dirs:
            return folder
        if not folder:
            return None
        folder = _dir(folder)


def _dir(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _read_text(root: Path, f: WalkedFile | None) -> tuple[str, str | None]:
    """A manifest's text, or why it cannot be read."""
    if f is None:
        return "", None
    if f.size > MAX_MANIFEST_BYTES:
        return "", f"{f.path} is {f.size:,} bytes; a manifest may be at most {MAX_MANIFEST_BYTES:,}"
    data = _read_bytes(root / f.path)
    if data is None:
        return "", f"{f.path} cannot be read"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return "", f"{f.path} is not UTF-8"


def _read_bytes(path: Path) -> bytes | None:
    try:
        with path.open("rb") as f:
            return f.read()
    except OSError as e:
        log.warning("cannot read %s: %s", path, e.strerror)
        return None
