"""Read leak matrices, and the files ``kei leaks scan`` looks at.

- The matrix is, in order: an explicit path (``--matrix``), else ``$KEI_LEAK_MATRIX_PATH``,
  else the rule set shipped inside kei (package data ``kei/leaks/default.toml``, read with
  ``importlib.resources``). An explicit or environment matrix is used alone, as upstream;
  the shipped one is extended by ``$KEI_HOME/leaks.toml`` when that file exists
  (:meth:`kei.domain.leaks.Matrix.extend`: new ids are added, a known id is replaced).
- A matrix file larger than :data:`MAX_BYTES` is refused before parsing; every failure
  (unreadable, not UTF-8, bad TOML, a broken rule) is one :class:`LeakMatrixError` line
  naming the file. ``OSError`` and ``TOMLDecodeError`` never escape.
- Scanning a folder walks it as upstream's scan-tree: only :data:`SCANNED_SUFFIXES`,
  never into :data:`SKIPPED_DIRS`, and a file that cannot be read as UTF-8 is skipped.

Example::

    matrix = load_matrix(None, os.environ, Path("~/.kei").expanduser())
    matrix.check_fields({"summary": text}).raise_if_blocked()
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

from kei.adapters.toml_files import parse_toml, read_bounded
from kei.domain.leaks import LeakMatrixError, Matrix
from kei.errors import InputError

__all__ = [
    "ENV_VAR",
    "MAX_BYTES",
    "SCANNED_SUFFIXES",
    "SHIPPED_NAME",
    "SKIPPED_DIRS",
    "USER_FILE",
    "load_matrix",
    "read_scannable",
    "read_text_file",
    "shipped_matrix",
    "walk_scannable",
]

log = logging.getLogger(__name__)

ENV_VAR = "KEI_LEAK_MATRIX_PATH"
MAX_BYTES = 4 * 1024 * 1024
SHIPPED_NAME = "kei/leaks/default.toml"
USER_FILE = "leaks.toml"
SCANNED_SUFFIXES = frozenset({".md", ".rs", ".sh", ".toml", ".ts", ".js", ".py", ".json"})
SKIPPED_DIRS = frozenset({".git", "node_modules", "target"})


@functools.lru_cache(maxsize=1)
def shipped_matrix() -> Matrix:
    """The shipped rules alone: what a ``Ledger`` opened without a matrix scans with
    (read and compiled once per process)."""
    return load_matrix(None, {}, None)


def load_matrix(explicit: Path | None, env: Mapping[str, str], home: Path | None) -> Matrix:
    """The matrix kei scans with; see the module rules for the order."""
    chosen = explicit or (Path(env[ENV_VAR]).expanduser() if env.get(ENV_VAR) else None)
    if chosen is not None:
        return Matrix.from_data(_parse(_read(chosen), str(chosen)), source=str(chosen))
    shipped = resources.files("kei").joinpath("leaks", "default.toml")
    try:
        raw = shipped.read_bytes()
    except OSError as exc:
        raise LeakMatrixError(f"{SHIPPED_NAME}: cannot read the shipped rules ({exc})") from exc
    matrix = Matrix.from_data(_parse(raw, SHIPPED_NAME), source=SHIPPED_NAME)
    user = home / USER_FILE if home is not None else None
    if user is None or not user.exists():
        return matrix
    log.debug("extending the shipped leak rules with %s", user)
    return matrix.extend(_parse(_read(user), str(user)), source=str(user))


def walk_scannable(root: Path) -> Iterator[Path]:
    """Files under ``root`` that upstream's scan-tree reads, in a stable (sorted) order."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix in SCANNED_SUFFIXES:
                yield path


def read_scannable(path: Path) -> str | None:
    """A file's text, or ``None`` if it cannot be read as UTF-8 (skipped silently)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.debug("skipping %s: %s", path, exc)
        return None


def read_text_file(path: Path) -> str:
    """A file the user named: unreadable or not UTF-8 is an error, not a silent skip."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start})") from exc


def _read(path: Path) -> bytes:
    return read_bounded(path, MAX_BYTES, LeakMatrixError)


def _parse(raw: bytes, source: str) -> dict[str, object]:
    return parse_toml(raw, source, LeakMatrixError)
