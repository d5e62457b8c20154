"""Migration files as upstream kei-migrate names them, read into checked values.

``<dir>/<version>_<name>.sql`` is an up file and ``<version>_<name>.down.sql`` its
optional down file: ``version`` is the decimal integer before the first ``_``
(typically ``YYYYMMDDHHMMSS``), ``name`` the rest. The checksum is the lowercase hex
SHA-256 of the up file's bytes, exactly upstream's, so a tracker table upstream wrote
keeps matching. Files not ending in ``.sql`` are not migrations; a ``.sql`` name that
breaks the rules is refused in one line rather than skipped, as upstream aborts the
scan: a migration silently ignored is worse than a refusal.

The irreversible marker is matched as a whole line, never as a substring: upstream
refused every scaffolded down file because its template's hint *contained*
``-- IRREVERSIBLE``. A line that is exactly ``-- kei:irreversible`` (or upstream's
``-- IRREVERSIBLE``, so a down file upstream blocked stays blocked), surrounding blanks
aside, blocks ``down``; the same words inside a longer line do not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Final

from msgspec import Struct

from kei.errors import InputError

UP_SUFFIX: Final = ".sql"
DOWN_SUFFIX: Final = ".down.sql"
IRREVERSIBLE: Final = "-- kei:irreversible"
UPSTREAM_IRREVERSIBLE: Final = "-- IRREVERSIBLE"
MARKERS: Final = frozenset({IRREVERSIBLE, UPSTREAM_IRREVERSIBLE})
MAX_NAME_CHARS: Final = 255  # the tracker's VARCHAR(255)
MAX_VERSION: Final = 2**63 - 1  # the tracker's BIGINT
_FILE: Final = re.compile(r"([0-9]+)_(.+)")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


ScriptFile = tuple[str, bytes]
"""One file of the migrations folder as read: its name and bytes."""


class SqlFile(Struct, frozen=True):
    """One ``.sql`` file read: its name, text and checksum."""

    filename: str
    sql: str
    sha256: str

    @classmethod
    def read(cls, filename: str, data: bytes) -> SqlFile:
        return cls(filename, _text(filename, data), sha256_hex(data))


class Script(Struct, frozen=True):
    """One migration: its up file and, when present, its down file."""

    version: int
    name: str
    up: SqlFile
    down: SqlFile | None = None

    @property
    def down_sha256(self) -> str | None:
        return None if self.down is None else self.down.sha256

    @property
    def irreversible(self) -> bool:
        """The down file holds the marker line (``down`` refuses it)."""
        return self.down is not None and is_irreversible(self.down.sql)

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_irreversible(sql: str) -> bool:
    """A line of ``sql`` (split at ``\n`` only) is exactly a marker, blanks around it
    (``\r`` included) aside."""
    return any(line.strip() in MARKERS for line in sql.split("\n"))


def parse_filename(filename: str) -> tuple[int, str, bool] | None:
    """``(version, name, is_down)`` of a migration file name; None for a file that is
    not one (no ``.sql`` ending); InputError for a ``.sql`` name that breaks the rules."""
    if not filename.endswith(UP_SUFFIX):
        return None
    is_down = filename.endswith(DOWN_SUFFIX)
    stem = filename[: -len(DOWN_SUFFIX if is_down else UP_SUFFIX)]
    shown = ascii(filename)
    if _CONTROL.search(filename) or not filename.isprintable():
        raise InputError(
            f"migration file {shown} has a control character or non-UTF-8 bytes in its name",
            hint="rename it to <version>_<name>.sql",
        )
    match = _FILE.fullmatch(stem)
    if match is None:
        raise InputError(
            f"migration file {shown} is not named <version>_<name>.sql (version: digits)",
            hint="rename it, or move it out of the migrations folder",
        )
    digits, name = match.groups()
    version = int(digits)
    if version > MAX_VERSION:
        raise InputError(f"migration file {shown}: version {digits} is beyond 2^63-1")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"migration file {shown}: its name is over {MAX_NAME_CHARS} characters")
    return version, name, is_down


def build_scripts(files: Iterable[ScriptFile]) -> list[Script]:
    """The migrations of a folder's files, by version; refuses a duplicate version, a
    file that is not UTF-8 and a down file whose up file has another name."""
    ups: dict[int, tuple[str, str, bytes]] = {}
    downs: dict[int, tuple[str, str, bytes]] = {}
    for filename, data in files:
        parsed = parse_filename(filename)
        if parsed is None:
            continue
        version, name, is_down = parsed
        seen = downs if is_down else ups
        if version in seen:
            raise InputError(
                f"duplicate migration version {version}: {seen[version][0]!a} and {filename!a}",
                hint="give each migration its own version",
            )
        seen[version] = (filename, name, data)
    scripts = []
    for version in sorted(ups):
        up_file, name, data = ups[version]
        down = downs.get(version)
        if down is not None and down[1] != name:
            raise InputError(
                f"down file {down[0]!a} does not match up file {up_file!a}",
                hint=f"name it {version}_{name}{DOWN_SUFFIX}",
            )
        down_file = None if down is None else SqlFile.read(down[0], down[2])
        scripts.append(Script(version, name, SqlFile.read(up_file, data), down_file))
    return scripts


def _text(filename: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"migration file {filename!a} is not UTF-8 text", hint="save it as UTF-8"
        ) from None
