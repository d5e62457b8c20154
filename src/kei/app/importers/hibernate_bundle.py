"""Read an upstream kei-hibernate bundle safely: check everything, keep one file.

Upstream bundles (spec §3) are a zstd-compressed tar of a kit's files in sorted
order, then ``hibernate-manifest.toml``: ``version = "1"``, ``timestamp``,
``machine_id`` and one ``[[entries]]`` (``path``, ``sha256``, ``size``) per file.
Upstream extracts first and checks later, lists its manifest last and extracts files
the manifest does not list. Here one streaming pass checks every entry and keeps only
the file asked for, in a private directory; the caller gets it only when the whole
bundle checked out:

- the archive is read as kei reads its own bundles (``adapters/files/tarsafe.py``):
  every entry is a regular file (or a folder) with a relative name that does not
  climb out, and appears once; links, devices and FIFOs are refused; decompression
  stops past ``ArchiveLimits.max_bytes`` (``max_archive_bytes``, 64 GiB: a zstd
  bomb), and a truncated archive is refused before it is read;
- the manifest is the last entry, of version "1", and every file it lists arrived
  once with its size and sha256, and nothing it does not list.

Every other entry that starts as a SQLite database does (``SQLITE_MAGIC``) is kept
too, so the importer can tell a second kei-ledger database from the kei-memory one
and import it rather than count it.

Every refusal is a ``BundleError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, NamedTuple

from msgspec import Struct, field

from kei.adapters.files.tarsafe import ArchiveLimits, TarReader, entry_error, key, unsafe_path
from kei.errors import BundleError, InputError

MANIFEST: Final = "hibernate-manifest.toml"
VERSION: Final = "1"
MAX_MANIFEST_BYTES: Final = 1 << 20
SQLITE_MAGIC: Final = b"SQLite format 3\x00"


class Entry(NamedTuple):
    """One file the manifest lists: where it is in the bundle, its sha256 and size."""

    path: str
    sha256: str
    size: int


class Bundle(Struct):
    """A bundle that checked out, the one file kept from it (None if absent), and the
    other SQLite databases it holds (entry name → private copy), for the caller to name."""

    version: str
    timestamp: int
    machine_id: str
    entries: list[Entry]
    kept: Path | None = None
    files: list[str] = field(default_factory=list)
    databases: dict[str, Path] = field(default_factory=dict)


def read_bundle(
    path: Path, keep: str, into: Path, limits: ArchiveLimits = ArchiveLimits()
) -> Bundle:
    """Check the bundle at ``path``; write the entry named ``keep`` under ``into``."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", hint="give the path of a bundle") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with raw:
        tar = TarReader(raw, limits, label="kei-hibernate bundle", folders=True)
        try:
            return _check(_scan(tar, keep, into), path)
        finally:
            tar.close()


class _Seen(Struct):
    sizes: dict[str, tuple[int, str]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    kept: Path | None = None
    databases: dict[str, Path] = field(default_factory=dict)


def _scan(tar: TarReader, keep: str, into: Path) -> _Seen:
    seen = _Seen()
    while (member := tar.next()) is not None:
        problem = tar.refusal(member)
        if problem is not None:
            raise problem
        name = key(member.name)
        if seen.manifest is not None:
            raise entry_error("order", name, "comes after the manifest; refused")
        if member.isdir():
            continue
        tar.accept(name)
        if name == MANIFEST:
            seen.manifest = _manifest(_head(tar.chunks(member), MAX_MANIFEST_BYTES))
            continue
        chunks = tar.chunks(member)
        first = next(chunks, b"")
        target = into / "kept" if name == keep else None
        if target is None and first.startswith(SQLITE_MAGIC):
            target = into / f"db-{len(seen.databases)}"
            seen.databases[name] = target
        seen.sizes[name] = _copy(itertools.chain([first], chunks), target)
        if name == keep:
            seen.kept = target
    return seen


def _head(chunks: Iterable[bytes], limit: int) -> bytes:
    """The first ``limit`` bytes of ``chunks`` (the rest is skipped by the next entry)."""
    out = b""
    for chunk in chunks:
        out += chunk[: limit - len(out)]
        if len(out) >= limit:
            break
    return out


def _copy(chunks: Iterable[bytes], target: Path | None) -> tuple[int, str]:
    """Hash ``chunks`` as they stream; write them to ``target`` if one is given."""
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") if target is not None else contextlib.nullcontext() as out:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    return size, digest.hexdigest()


def _manifest(text: bytes) -> dict[str, Any]:
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"bundle manifest is not valid TOML ({exc})", kind="manifest") from None
    version = data.get("version")
    if version != VERSION:
        raise BundleError(
            f"manifest version mismatch: bundle={version} primitive={VERSION}",
            kind="version",
            hint="kei reads kei-hibernate manifests of version 1",
        )
    return data


def _check(seen: _Seen, path: Path) -> Bundle:
    if seen.manifest is None:
        raise BundleError(
            f"{path} holds no {MANIFEST}; not a kei-hibernate bundle", kind="manifest"
        )
    entries = _entries(seen.manifest)
    listed = {e.path: e for e in entries}
    for name in seen.sizes:
        if name not in listed:
            raise entry_error("unlisted", name, "is not in the manifest; refused")
    for entry in entries:
        got = seen.sizes.get(entry.path)
        if got is None:
            raise BundleError(
                f"manifest lists {entry.path!r} but the bundle lacks it; refused",
                kind="missing",
                entry=entry.path,
            )
        if got[0] != entry.size:
            raise BundleError(
                f"size mismatch for {entry.path!r}: the manifest says {entry.size} bytes, "
                f"the bundle holds {got[0]}; refused",
                kind="size",
                entry=entry.path,
            )
        if got[1] != entry.sha256.lower():
            raise BundleError(
                f"sha256 mismatch for {entry.path!r}: expected {entry.sha256} ({entry.size} "
                f"bytes), found {got[1]} ({got[0]} bytes); refused",
                kind="hash",
                entry=entry.path,
            )
    m = seen.manifest
    return Bundle(
        str(m["version"]), int(m.get("timestamp", 0)), str(m.get("machine_id", "")),
        entries, seen.kept, sorted(seen.sizes), seen.databases,
    )  # fmt: skip


def _entries(manifest: dict[str, Any]) -> list[Entry]:
    out: list[Entry] = []
    names: set[str] = set()
    for item in manifest.get("entries", []):
        try:
            entry = Entry(str(item["path"]), str(item["sha256"]), int(item["size"]))
        except (KeyError, TypeError, ValueError):
            raise BundleError(
                f"bundle manifest entry {item!r} is malformed", kind="manifest"
            ) from None
        why = unsafe_path(entry.path)
        if why is not None:
            raise entry_error("unsafe-path", entry.path, f"has an unsafe path: {why}; refused")
        entry = Entry(key(entry.path), entry.sha256, entry.size)
        if entry.path in names:
            raise BundleError(f"manifest lists {entry.path!r} twice; refused", kind="manifest")
        names.add(entry.path)
        out.append(entry)
    return out
