"""What a witness remembers per log origin: the size and root it last cosigned.

One JSON file per origin in the state folder (0700), named by the SHA-256 of the
origin so any origin text is a safe name::

    <DIR>/<sha256(origin) hex>.json   {"version": 1, "origin": ..., "size": N,
                                       "root_hash": "<base64>"}

Files are 0600, written to a temporary file, fsynced and renamed over the old one, so
a killed witness leaves the old state or the new, never half of one. Every cosign holds
an exclusive ``flock`` on ``<DIR>/.lock`` from reading the state to writing it back:
two cosigns at once are serialised, and the second sees what the first recorded, so
two forked histories cannot both pass.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from msgspec import Struct

from kei.adapters.files.keyfile import held, open_folder_lock, read_private, write_private
from kei.errors import InputError
from kei.limits import LIMITS


class Seen(Struct, frozen=True):
    """The last checkpoint a witness cosigned for one origin."""

    origin: str
    size: int
    root_hash: bytes


def _state_file(folder: Path, origin: str) -> Path:
    return folder / f"{hashlib.sha256(origin.encode()).hexdigest()}.json"


class WitnessState:
    """The state folder, read and written only while ``locked`` holds its lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, origin: str) -> Seen | None:
        path = _state_file(self.folder, origin)
        try:  # a folder or FIFO planted there is an error line, never a hang or a trace
            raw = read_private(path, LIMITS.max_witness_state_bytes)
        except OSError as exc:
            raise InputError(f"cannot read witness state {path}: {exc.strerror or exc}") from exc
        return None if raw is None else _decode(raw, origin, path)

    def put(self, seen: Seen) -> None:
        path = _state_file(self.folder, seen.origin)
        body = json.dumps(
            {
                "version": 1,
                "origin": seen.origin,
                "size": seen.size,
                "root_hash": base64.b64encode(seen.root_hash).decode(),
            }
        ).encode()
        write_private(path, body)


def _decode(raw: bytes, origin: str, path: Path) -> Seen:
    bad = InputError(
        f"witness state {path} is damaged",
        hint="restore it from a backup; never delete it to accept a forked log",
    )
    try:
        doc = json.loads(raw)
        root = base64.b64decode(doc["root_hash"], validate=True)
        size = doc["size"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise bad from exc
    if doc.get("origin") != origin or type(size) is not int or size < 0 or len(root) != 32:
        raise bad
    return Seen(origin, size, root)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[WitnessState]:
    """The state folder (made 0700 if missing) under an exclusive lock."""
    try:
        fd = open_folder_lock(folder)
    except OSError as exc:
        raise InputError(
            f"cannot use witness state folder {folder}: {exc.strerror or exc}",
            hint="pass --state with a folder you own",
        ) from exc
    with held(fd):
        yield WitnessState(folder)
