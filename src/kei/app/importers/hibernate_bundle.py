"""Read an upstream kei-hibernate bundle safely: check everything, keep one file.

Upstream bundles (spec §3) are a zstd-compressed tar of a kit's files in sorted
order, then ``hibernate-manifest.toml``: ``version = "1"``, ``timestamp``,
``machine_id`` and one ``[[entries]]`` (``path``, ``sha256``, ``size``) per file.
Upstream extracts first and checks later, lists its manifest last and extracts files
the manifest does not list. Here one streaming pass checks every entry and keeps only
the file asked for, in a private directory; the caller gets it only when the whole
bundle checked out:

- every entry is a regular file (or a directory) with a relative name that does not
  climb out, and appears once; links, devices and FIFOs are refused;
- the manifest is the last entry, of version "1", and every file it lists arrived
  once with its size and sha256, and nothing it does not list;
- decompression stops past ``Limits.max_bytes``, or past ``Limits.max_ratio`` times
  the compressed bytes read (a zstd bomb), and a truncated archive is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

import zstandard

from kei.errors import InputError

MANIFEST: Final = "hibernate-manifest.toml"
VERSION: Final = "1"
_CHUNK: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class Limits:
    """Decompression caps; the ratio applies once ``ratio_after`` bytes came out."""

    max_bytes: int = 64 << 30
    max_ratio: int = 1000
    ratio_after: int = 64 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    sha256: str
    size: int


@dataclass(slots=True)
class Bundle:
    """A bundle that checked out, and the one file kept from it (None if absent)."""

    version: str
    timestamp: int
    machine_id: str
    entries: list[Entry]
    kept: Path | None = None
    files: list[str] = field(default_factory=list)


class BundleError(InputError):
    """The bundle is unsafe, damaged or not an upstream kei-hibernate bundle."""


class _Counted(io.RawIOBase):
    """The decompressed stream, counted, with the caps enforced as it is read."""

    def __init__(self, inner: IO[bytes], limits: Limits, compressed: Callable[[], int]) -> None:
        self.inner, self.limits, self.compressed, self.count = inner, limits, compressed, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        self._check()
        return n

    def _check(self) -> None:
        limits = self.limits
        if self.count > limits.max_bytes:
            raise BundleError(f"bundle decompresses beyond {limits.max_bytes:,} bytes; refused")
        ratio_cap = limits.max_ratio * max(self.compressed(), 1)
        if self.count > limits.ratio_after and self.count > ratio_cap:
            raise BundleError(
                f"bundle decompresses more than {limits.max_ratio}x its size (a zstd bomb?); "
                "refused"
            )


def safe_name(name: str) -> str:
    """The entry's relative POSIX name, or BundleError when it could escape."""
    path = PurePosixPath(name)
    if not name or "\x00" in name or "\\" in name or path.is_absolute():
        raise BundleError(f"bundle entry {name!r} has an unsafe path; refused")
    if any(part in ("..", "") for part in name.split("/") if part != "."):
        raise BundleError(f"bundle entry {name!r} climbs out of the bundle; refused")
    return str(path)


def read_bundle(path: Path, keep: str, into: Path, limits: Limits = Limits()) -> Bundle:
    """Check the bundle at ``path``; write the entry named ``keep`` under ``into``."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", hint="give the path of a bundle") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with raw, _tar(raw, limits) as tar:
        return _check(_scan(tar, keep, into), path)


@contextmanager
def _tar(raw: IO[bytes], limits: Limits) -> Iterator[tarfile.TarFile]:
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    plain = _Counted(reader, limits, raw.tell)
    try:
        with tarfile.open(fileobj=plain, mode="r|") as tar:
            yield tar
    except zstandard.ZstdError as exc:
        raise BundleError(f"bundle is not zstd-compressed or is damaged ({exc})") from None
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"bundle archive is damaged or truncated ({exc})") from None


@dataclass(slots=True)
class _Seen:
    sizes: dict[str, tuple[int, str]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    kept: Path | None = None


def _scan(tar: tarfile.TarFile, keep: str, into: Path) -> _Seen:
    seen = _Seen()
    for member in tar:
        name = safe_name(member.name)
        if seen.manifest is not None:
            raise BundleError(f"bundle entry {name!r} comes after the manifest; refused")
        if member.isdir():
            continue
        if not member.isreg():
            raise BundleError(f"bundle entry {name!r} is not a regular file; refused")
        if name in seen.sizes:
            raise BundleError(f"bundle entry {name!r} appears twice; refused")
        source = tar.extractfile(member)
        assert source is not None  # a regular file always has content
        if name == MANIFEST:
            seen.manifest = _manifest(source.read(1 << 20))
            continue
        target = into / "kept" if name == keep else None
        seen.sizes[name] = _copy(source, target)
        if target is not None:
            seen.kept = target
    return seen


def _copy(source: IO[bytes], target: Path | None) -> tuple[int, str]:
    """Hash ``source`` as it streams; write it to ``target`` if one is given."""
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") if target is not None else contextlib.nullcontext() as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    return size, digest.hexdigest()


def _manifest(text: bytes) -> dict[str, Any]:
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"bundle manifest is not valid TOML ({exc})") from None
    version = data.get("version")
    if version != VERSION:
        raise BundleError(
            f"manifest version mismatch: bundle={version} primitive={VERSION}",
            hint="kei reads kei-hibernate manifests of version 1",
        )
    return data


def _check(seen: _Seen, path: Path) -> Bundle:
    if seen.manifest is None:
        raise BundleError(f"{path} holds no {MANIFEST}; not a kei-hibernate bundle")
    entries = _entries(seen.manifest)
    listed = {e.path: e for e in entries}
    for name in seen.sizes:
        if name not in listed:
            raise BundleError(f"bundle entry {name!r} is not in the manifest; refused")
    for entry in entries:
        got = seen.sizes.get(entry.path)
        if got is None:
            raise BundleError(f"manifest lists {entry.path!r} but the bundle lacks it; refused")
        if got[0] != entry.size:
            raise BundleError(
                f"size mismatch for {entry.path!r}: the manifest says {entry.size} bytes, "
                f"the bundle holds {got[0]}; refused"
            )
        if got[1] != entry.sha256.lower():
            raise BundleError(
                f"sha256 mismatch for {entry.path!r}: expected {entry.sha256} ({entry.size} "
                f"bytes), found {got[1]} ({got[0]} bytes); refused"
            )
    m = seen.manifest
    return Bundle(
        str(m["version"]), int(m.get("timestamp", 0)), str(m.get("machine_id", "")),
        entries, seen.kept, sorted(seen.sizes),
    )  # fmt: skip


def _entries(manifest: dict[str, Any]) -> list[Entry]:
    out: list[Entry] = []
    names: set[str] = set()
    for item in manifest.get("entries", []):
        try:
            entry = Entry(safe_name(str(item["path"])), str(item["sha256"]), int(item["size"]))
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"bundle manifest entry {item!r} is malformed") from None
        if entry.path in names:
            raise BundleError(f"manifest lists {entry.path!r} twice; refused")
        names.add(entry.path)
        out.append(entry)
    return out
