"""``kei migrate create NAME``: the new pair of files, as upstream names them.

The name is checked and sanitised as upstream does: not empty, at most 80 bytes, each
ASCII letter or digit kept (lowercased), anything else ``_``. The version is the UTC
time as ``YYYYMMDDHHMMSS``; when a file of that version already exists (two creates in
one second), the next free second is taken, so a folder never holds a duplicate
version (upstream would write one and then refuse the whole folder). The down
template tells how to block reverting without containing the marker line itself, so a
file fresh from ``create`` always reverts (upstream's defect 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from msgspec import Struct

from kei.domain.migrate.scripts import DOWN_SUFFIX, IRREVERSIBLE, UP_SUFFIX, parse_filename
from kei.errors import InputError

MAX_NAME_BYTES: Final = 80
UP_TEMPLATE: Final = "-- up migration {label}\n\n"
DOWN_TEMPLATE: Final = (
    "-- down migration {label}\n"
    "-- Write the SQL that undoes the up file below. To make `kei migrate down` refuse\n"
    f"-- this migration, add a line that holds only: {IRREVERSIBLE}\n\n"
)


class NewFiles(Struct, frozen=True):
    """The two files ``create`` writes: names and contents."""

    version: int
    name: str
    up_file: str
    up_text: str
    down_file: str
    down_text: str


def sanitise(name: str) -> str:
    """Upstream's rule: non-empty, at most 80 bytes, ``[a-z0-9]`` kept, the rest ``_``."""
    if not name:
        raise InputError("a migration name cannot be empty", hint="kei migrate create add_users")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InputError(f"a migration name is at most {MAX_NAME_BYTES} bytes")
    return "".join(c.lower() if c.isascii() and c.isalnum() else "_" for c in name)


def version_at(moment: datetime) -> int:
    """The version of a file created at ``moment`` (UTC): ``YYYYMMDDHHMMSS``."""
    return int(moment.strftime("%Y%m%d%H%M%S"))


def new_files(name: str, moment: datetime, existing: Iterable[str]) -> NewFiles:
    """The pair ``create`` writes at ``moment``, at the first second whose version no
    file in ``existing`` (the folder's file names) holds."""
    clean = sanitise(name)
    taken = {parsed[0] for f in existing if (parsed := _parsed(f)) is not None}
    version = version_at(moment)
    while version in taken:
        moment += timedelta(seconds=1)
        version = version_at(moment)
    label = f"{version}_{clean}"
    return NewFiles(
        version=version,
        name=clean,
        up_file=label + UP_SUFFIX,
        up_text=UP_TEMPLATE.format(label=label),
        down_file=label + DOWN_SUFFIX,
        down_text=DOWN_TEMPLATE.format(label=label),
    )


def _parsed(filename: str) -> tuple[int, str, bool] | None:
    try:
        return parse_filename(filename)
    except InputError:
        return None  # a badly named file holds no version to avoid
