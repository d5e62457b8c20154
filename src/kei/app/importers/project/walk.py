"""Walking a repository: which files count, and in which language.

Upstream's walker skipped every directory named ``build``, ``out``, ``dist`` or
``coverage`` at any depth (a Rust module ``src/build/`` vanished) and read no
``.gitignore``. kei's, in order, for each path:

1. never entered: ``.git`` and the package managers' and tools' caches
   (``ALWAYS_SKIPPED``), symlinks, and ``target/`` beside a ``Cargo.toml`` (Cargo's
   build output, generated code included);
2. ``.gitignore`` files (each applies below its folder, deeper ones last, ``!``
   re-includes), matched with pathspec's git rules;
3. ``.gitattributes`` linguist overrides: ``linguist-vendored``,
   ``linguist-generated`` and ``linguist-documentation`` leave a file out of the
   source counts, ``linguist-language=X`` sets its language;
4. the language: upstream's extension map (case-insensitive), else identify's tags
   from the file name or shebang; a file over 10 MB has none.

A path that is not valid UTF-8 or holds a control character cannot be named in a
signed event: it is skipped and reported, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Final

from msgspec import Struct, json

from kei.errors import InputError

ALWAYS_SKIPPED: Final = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "__pycache__", ".tox", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", ".next", ".nuxt"}
)  # fmt: skip
MAX_FILE_BYTES: Final = 10 * 1024 * 1024
MAX_FILES: Final = 500_000
EXTENSIONS: Final = {
    "rs": "Rust", "ts": "TypeScript", "tsx": "TypeScript", "js": "JavaScript",
    "jsx": "JavaScript", "mjs": "JavaScript", "cjs": "JavaScript", "py": "Python", "go": "Go",
    "md": "Markdown", "mdx": "Markdown", "toml": "TOML", "json": "JSON", "yaml": "YAML",
    "yml": "YAML", "sql": "SQL", "sh": "Shell", "bash": "Shell", "zsh": "Shell",
}  # fmt: skip
_IDENTIFY: Final = {
    "python": "Python", "javascript": "JavaScript", "ts": "TypeScript", "rust": "Rust",
    "go": "Go", "shell": "Shell", "markdown": "Markdown",
}  # fmt: skip
_LINGUIST_OUT: Final = ("linguist-vendored", "linguist-generated", "linguist-documentation")
_BAD_NAME: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class WalkSettings(Struct, frozen=True):
    """What decides which files count; its digest is in ``project.import.started``."""

    always_skipped: tuple[str, ...] = tuple(sorted(ALWAYS_SKIPPED))
    max_file_bytes: int = MAX_FILE_BYTES
    gitignore: bool = True
    gitattributes: bool = True
    cargo_target: bool = True

    def sha256(self, matcher: str) -> str:
        return hashlib.sha256(json.encode(self) + matcher.encode()).hexdigest()


class WalkedFile(Struct, frozen=True):
    """One file that counts: its path (POSIX, relative), size and language."""

    path: str
    size: int
    language: str | None


class Walk(Struct, frozen=True):
    files: tuple[WalkedFile, ...]
    skipped: tuple[tuple[str, str], ...]


class _Rules:
    """The ``.gitignore`` and ``.gitattributes`` files met so far, by folder."""

    def __init__(self, settings: WalkSettings) -> None:
        self.settings = settings
        self.ignores: list[tuple[str, Any]] = []
        self.attributes: list[tuple[str, Any, list[str]]] = []

    def read(self, root: Path, folder: str) -> None:
        import pathspec

        base = root / folder if folder else root
        if self.settings.gitignore and (base / ".gitignore").is_file():
            lines = _lines(base / ".gitignore")
            self.ignores.append((folder, pathspec.GitIgnoreSpec.from_lines(lines)))
        if self.settings.gitattributes and (base / ".gitattributes").is_file():
            for line in _lines(base / ".gitattributes"):
                words = line.split()
                if not words or words[0].startswith("#"):
                    continue
                spec = pathspec.GitIgnoreSpec.from_lines([words[0]])
                self.attributes.append((folder, spec, words[1:]))

    def ignored(self, path: str, is_dir: bool) -> bool:
        verdict = False
        for folder, spec in self.ignores:
            rel = _below(path, folder)
            if rel is None:
                continue
            found = spec.check_file(rel + "/" if is_dir else rel).include
            verdict = verdict if found is None else found
        return verdict

    def linguist(self, path: str) -> tuple[bool, str | None]:
        """(left out, language override) from the attributes that apply, last wins."""
        out, language = False, None
        for folder, spec, attrs in self.attributes:
            rel = _below(path, folder)
            if rel is None or not spec.match_file(rel):
                continue
            for a in attrs:
                name, _, value = a.lstrip("-!").partition("=")
                if name in _LINGUIST_OUT:
                    out = not a.startswith(("-", "!")) and value not in ("false",)
                elif name == "linguist-language" and value:
                    language = value.replace("-", " ")
        return out, language


def walk(root: Path, settings: WalkSettings = WalkSettings()) -> Walk:
    """Every file under ``root`` that counts, sorted by path."""
    rules = _Rules(settings)
    files: list[WalkedFile] = []
    skipped: list[tuple[str, str]] = []
    for here, dirs, names in os.walk(root, followlinks=False):
        folder = Path(here).relative_to(root).as_posix()
        folder = "" if folder == "." else folder
        rules.read(root, folder)
        keep = []
        for d in sorted(dirs):
            rel = f"{folder}/{d}" if folder else d
            if d in settings.always_skipped or (Path(here) / d).is_symlink():
                continue
            if settings.cargo_target and d == "target" and "Cargo.toml" in names:
                continue
            if _bad(rel, skipped) or rules.ignored(rel, is_dir=True):
                continue
            keep.append(d)
        dirs[:] = keep
        for n in sorted(names):
            rel = f"{folder}/{n}" if folder else n
            full = Path(here) / n
            if _bad(rel, skipped) or full.is_symlink() or rules.ignored(rel, is_dir=False):
                continue
            left_out, override = rules.linguist(rel)
            if left_out:
                continue
            size = full.lstat().st_size
            files.append(WalkedFile(rel, size, override or _language(full, n, size, settings)))
            if len(files) > MAX_FILES:
                raise InputError(
                    f"{root} holds more than {MAX_FILES:,} files that count",
                    hint="import a smaller part of it, or list bulk folders in .gitignore",
                )
    files.sort(key=lambda f: f.path)
    return Walk(tuple(files), tuple(skipped))


def _language(path: Path, name: str, size: int, settings: WalkSettings) -> str | None:
    if size > settings.max_file_bytes:
        return None
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return EXTENSIONS.get(ext.lower(), "Other")
    from identify import identify

    try:
        tags = identify.tags_from_path(str(path))
    except (OSError, ValueError):
        return None
    for tag, language in _IDENTIFY.items():
        if tag in tags:
            return language
    return None


def _bad(rel: str, skipped: list[tuple[str, str]]) -> bool:
    """A path a signed event cannot name: noted in ``skipped``."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        skipped.append((rel.encode("utf-8", "replace").decode(), "name is not valid UTF-8"))
        return True
    if _BAD_NAME.search(rel):
        skipped.append((_BAD_NAME.sub("?", rel), "name holds a control character"))
        return True
    return False


def _below(path: str, folder: str) -> str | None:
    if not folder:
        return path
    return path[len(folder) + 1 :] if path.startswith(folder + "/") else None


def _lines(path: Path) -> list[str]:
    with path.open("rb") as f:
        return f.read(1 << 20).decode("utf-8", "replace").splitlines()
