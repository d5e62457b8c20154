"""Read leak matrices, and the files ``kei leaks scan`` looks at.

- The matrix is, in order: an explicit path (``--matrix``), else ``$KEI_LEAK_MATRIX_PATH``,
  else the rule set shipped inside kei (package data ``kei/data/leaks.toml``, read beside
  kei's modules, or with ``importlib.resources`` from a zip). An explicit or environment matrix is used alone, as upstream;
  the shipped one is extended by ``$KEI_HOME/leaks.toml`` when that file exists
  (:meth:`kei.domain.leaks.matrix.Matrix.extend`: new ids are added, a known id is replaced).
- The shipped rules come from ``kei/data/leaks.derived.json`` (``kei.domain.leaks.table``:
  each rule as parsed, derived ahead of time) while the SHA-256 it records is the
  shipped TOML's; otherwise (a warning) they are parsed from the TOML itself. Run
  :data:`REGENERATE` after editing ``leaks.toml``; a test fails until then.
- A matrix file larger than ``LIMITS.max_leak_matrix_bytes`` is refused before parsing; every failure
  (unreadable, not UTF-8, bad TOML, a broken rule) is one :class:`LeakMatrixError` line
  naming the file. ``OSError`` and ``TOMLDecodeError`` never escape.
- A matrix without a single rule is refused (:func:`load_matrix`): an empty file would
  otherwise make every scan say "no leaks found".
- Scanning a folder (:func:`walk_texts`) reads every regular file by its content, not
  its name, never descending into :data:`SKIPPED_DIRS` (version-control and
  dependency folders). It never follows a symbolic link and never opens a device,
  FIFO or socket (both are reported as skipped); a file whose first
  :data:`SNIFF_BYTES` hold a NUL byte is binary and skipped, unless it starts with a
  UTF-16 byte-order mark. Bytes that are not UTF-8 are scanned too (decoded with
  U+FFFD in place of each bad byte). At most ``LIMITS.max_leak_scan_bytes`` are read from a
  file. A file or folder that cannot be read, or is larger than that, is reported as
  :class:`Skipped` with ``incomplete=True``: the command then fails, since a scan that
  missed a file proves nothing about it.

Example::

    matrix = load_matrix(None, os.environ, Path("~/.kei").expanduser())
    matrix.check_fields({"summary": text}).raise_if_blocked()
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import logging
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import msgspec

from kei.domain.leaks.matrix import Matrix
from kei.domain.leaks.rules import Rule, parse_rules
from kei.domain.leaks.table import DerivedTable, derived_table, table_rules
from kei.errors import InputError, LeakMatrixError
from kei.limits import LIMITS

__all__ = [
    "DERIVED_FILE",
    "ENV_VAR",
    "REGENERATE",
    "SHIPPED_NAME",
    "SKIPPED_DIRS",
    "SNIFF_BYTES",
    "USER_FILE",
    "Skipped",
    "load_matrix",
    "read_stream",
    "read_text_file",
    "shipped_matrix",
    "shipped_rules",
    "walk_texts",
]

log = logging.getLogger(__name__)

ENV_VAR = "KEI_LEAK_MATRIX_PATH"
SHIPPED_FILE = "leaks.toml"
SHIPPED_NAME = f"kei/data/{SHIPPED_FILE}"
DERIVED_FILE = "leaks.derived.json"
REGENERATE = "python -m kei.adapters.files.leaks"
USER_FILE = "leaks.toml"
SNIFF_BYTES = 8192
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "node_modules", "target"})
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data")


class Skipped(msgspec.Struct, frozen=True):
    """A path a folder scan did not read, and why. ``incomplete``: it could not be
    read (the scan must fail); otherwise it was left out on purpose (binary, a link,
    not a regular file)."""

    path: str
    reason: str
    incomplete: bool


@functools.lru_cache(maxsize=1)
def shipped_matrix() -> Matrix:
    """The shipped rules alone: what a ``Ledger`` opened without a matrix scans with
    (read and compiled once per process)."""
    return load_matrix(None, {}, None)


def load_matrix(explicit: Path | None, env: Mapping[str, str], home: Path | None) -> Matrix:
    """The matrix kei scans with; see the module rules for the order."""
    chosen = explicit or (Path(env[ENV_VAR]).expanduser() if env.get(ENV_VAR) else None)
    if chosen is not None:
        from kei.adapters.files.toml import read_toml  # tomllib: not on the shipped path

        data = read_toml(chosen, LIMITS.max_leak_matrix_bytes, LeakMatrixError)
        matrix = Matrix.from_data(data, source=str(chosen))
        if not matrix.rules:
            raise LeakMatrixError(
                f"{chosen}: holds no [[rule]]; an empty matrix would find nothing anywhere",
                hint="add rules, or drop --matrix / $KEI_LEAK_MATRIX_PATH to use the shipped ones",
            )
        return matrix
    matrix = Matrix(shipped_rules())
    user = home / USER_FILE if home is not None else None
    if user is None or not user.exists():
        return matrix
    log.debug("extending the shipped leak rules with %s", user)
    from kei.adapters.files.toml import read_toml

    extra = read_toml(user, LIMITS.max_leak_matrix_bytes, LeakMatrixError)
    return matrix.extend(extra, source=str(user))


def shipped_rules() -> tuple[Rule, ...]:
    """The shipped rules: from the derived table while it matches the TOML, else (a
    warning: someone edited ``leaks.toml`` without :data:`REGENERATE`) parsed from it.
    Either way every rule compiles on first use (kei's tests compile and check each)."""
    raw = _shipped_bytes(SHIPPED_FILE)
    table = _derived_table()
    if table is not None and table.toml_sha256 == hashlib.sha256(raw).hexdigest():
        return table_rules(table, SHIPPED_NAME)
    log.warning("kei/data/%s does not match %s; parsing the rules instead (slower): "
                "run `%s`", DERIVED_FILE, SHIPPED_NAME, REGENERATE)  # fmt: skip
    return _parsed_rules(raw)


def derive_table() -> bytes:
    """What ``kei/data/leaks.derived.json`` must hold: the shipped TOML's rules as a
    full parse makes them, and the TOML's digest (JSON, keys and sets in a stable order)."""
    raw = _shipped_bytes(SHIPPED_FILE)
    table = derived_table(_parsed_rules(raw), hashlib.sha256(raw).hexdigest())
    return msgspec.json.format(msgspec.json.encode(table, order="deterministic"), indent=1)


def _parsed_rules(raw: bytes) -> tuple[Rule, ...]:
    from kei.adapters.files.toml import parse_toml

    return parse_rules(parse_toml(raw, SHIPPED_NAME, LeakMatrixError), SHIPPED_NAME,
                       compiled=False)  # fmt: skip


def _derived_table() -> DerivedTable | None:
    """The derived table, or None when it is missing or unreadable (then the TOML is
    parsed: the table only ever saves time)."""
    try:
        return msgspec.json.decode(_shipped_bytes(DERIVED_FILE), type=DerivedTable)
    except (LeakMatrixError, msgspec.DecodeError):
        return None


def _shipped_bytes(name: str) -> bytes:
    """A file shipped in ``kei/data``: read beside this module when kei is installed as
    files (importing ``importlib.resources`` costs a short command several ms), else as
    package data (``importlib.resources``: from a zip too)."""
    try:
        with open(os.path.join(_DATA_DIR, name), "rb") as f:
            return f.read()
    except OSError:
        pass
    from importlib import resources

    try:
        return resources.files("kei").joinpath("data", name).read_bytes()
    except OSError as exc:
        raise LeakMatrixError(f"kei/data/{name}: cannot read the shipped rules ({exc})") from exc


def walk_texts(root: Path) -> Iterator[tuple[str, str] | Skipped]:
    """``(path, text)`` for every file under ``root`` a folder scan reads, in a stable
    (sorted) order, and a :class:`Skipped` for everything it left out or could not
    read (see the module rules)."""
    trouble: list[Skipped] = []

    def unreadable(exc: OSError) -> None:
        trouble.append(Skipped(str(exc.filename or root), _why(exc), incomplete=True))

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        yield from trouble
        trouble.clear()
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            yield _walked(os.path.join(folder, name))
    yield from trouble


def _walked(path: str) -> tuple[str, str] | Skipped:
    """One walked file: only a regular file is opened, and it is checked again once
    open (it may have been swapped for a link or a FIFO in between)."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            return Skipped(path, _kind(mode), incomplete=False)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(path, flags), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return Skipped(path, "not a regular file", incomplete=False)
            raw = f.read(SNIFF_BYTES)
            if b"\0" in raw and not raw.startswith(_UTF16_BOMS):
                log.debug("skipping binary file %s", path)
                return Skipped(path, "binary", incomplete=False)
            raw += f.read(LIMITS.max_leak_scan_bytes + 1 - len(raw))
    except OSError as exc:
        return Skipped(path, _why(exc), incomplete=True)
    if len(raw) > LIMITS.max_leak_scan_bytes:
        return Skipped(path, f"larger than {LIMITS.max_leak_scan_bytes} bytes", incomplete=True)
    return path, _decode(raw)


def read_text_file(path: Path) -> str:
    """A file the user named, as text: it must be a regular file (never a device or a
    FIFO, which could be read for ever), of at most ``LIMITS.max_leak_scan_bytes``; bytes that
    are not UTF-8 are scanned as U+FFFD."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"{path}: {_kind(mode)}; kei scans regular files and folders",
                                 hint="copy what you want scanned into a file, or pipe it to "
                                 "`kei leaks scan -`")  # fmt: skip
            return _decode(_bounded(f, str(path)))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_why(exc)})") from exc


def read_stream(stream: BinaryIO, label: str) -> str:
    """A stream (stdin) as text, read to its end but never past ``LIMITS.max_leak_scan_bytes``."""
    try:
        return _decode(_bounded(stream, label))
    except OSError as exc:
        raise InputError(f"{label}: cannot read ({_why(exc)})") from exc


def _bounded(stream: BinaryIO, label: str) -> bytes:
    raw = stream.read(LIMITS.max_leak_scan_bytes + 1)
    if len(raw) > LIMITS.max_leak_scan_bytes:
        raise InputError(f"{label}: more than {LIMITS.max_leak_scan_bytes} bytes; kei scans at most that",
                         hint="split the input, or scan the folder it came from")  # fmt: skip
    return raw


def _decode(raw: bytes) -> str:
    """UTF-8 (or UTF-16: a byte-order mark and NUL bytes); a byte that does not decode becomes
    U+FFFD, so a secret beside it is still found."""
    if raw.startswith(_UTF16_BOMS) and b"\0" in raw[:SNIFF_BYTES]:
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace")


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link, not followed"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file (a device, FIFO or socket)"


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


if __name__ == "__main__":  # REGENERATE: rewrite the derived table from the TOML
    target = Path(_DATA_DIR, DERIVED_FILE).resolve()
    target.write_bytes(derive_table() + b"\n")
    sys.stderr.write(f"wrote {target}\n")  # a developer's command, not library output
