"""The safe streaming reader: every entry of a bundle, checked before and after it is read.

Nothing is ever extracted to the file system: entries are read as byte streams and
handed to the caller. Rules, in the order they are applied to each entry (the
``kind`` of the ``BundleError`` in brackets):

1. the entry is a regular file: no symlink, hard link, device, fifo or directory [link,
   special];
2. its name is a canonical relative path: not absolute, no ``..`` [unsafe-path];
3. it appears once, after the entry before it in name order [duplicate, order];
4. the manifest lists it, with the entry's size [unlisted, size];
5. once read, its SHA-256 is the manifest's [hash];
6. at the end, every listed file was present [missing], and the archive is exactly
   as long as the manifest says, with nothing after it [truncated].

The manifest and its signature come first (``manifest()``); the signature is checked
against the key the manifest names before anything else is read. The stream is
capped (``stream.py``) against zstd bombs. A strict reader (replay) raises on the
first problem; a lenient one (inspect) records every problem it can and goes on.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, cast

from kei.app.bundle.layout import (
    BLOCK,
    MANIFEST,
    SIGNATURE,
    BundleError,
    BundleLimits,
    tar_size,
    unsafe_name,
)
from kei.app.bundle.manifest import (
    FileEntry,
    Manifest,
    decode_manifest,
    verify_manifest_signature,
)
from kei.app.bundle.stream import CappedStream
from kei.errors import InputError

CHUNK = 1 << 20
MAX_SIGNATURE_BYTES = 1024


class BundleReader:
    """Reads one bundle file once, front to back; use as a context manager."""

    def __init__(
        self, path: Path, *, limits: BundleLimits = BundleLimits(), strict: bool = True
    ) -> None:
        self.path = path
        self.limits = limits
        self.strict = strict
        self.problems: list[BundleError] = []
        self.complete = False
        self._seen: set[str] = set()
        self._last = ""
        try:
            self._file: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise InputError(
                f"cannot read bundle {path}: {exc.strerror or exc}",
                hint="give the path of a file written by `kei hibernate export`",
            ) from exc
        try:
            self._stream = CappedStream(self._file, limits)
            self._stream.allow(limits.max_manifest_bytes + MAX_SIGNATURE_BYTES + 8 * BLOCK)
            stream = cast(IO[bytes], self._stream)
            self._tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - see close()
        except (tarfile.TarError, EOFError) as exc:
            self.close()
            raise BundleError(f"the bundle is not a tar archive ({exc})", kind="damaged") from exc
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if hasattr(self, "_stream"):
            self._stream.close()
        self._file.close()

    def flag(self, error: BundleError) -> None:
        """A problem: raised by a strict reader, recorded by a lenient one."""
        if self.strict:
            raise error
        self.problems.append(error)

    # -- the manifest ------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """Read ``manifest.json`` and ``manifest.sig`` (the first two entries) and check
        the signature against the exporter key the manifest names."""
        body = self._first(MANIFEST, self.limits.max_manifest_bytes)
        sig = self._first(SIGNATURE, MAX_SIGNATURE_BYTES)
        manifest = decode_manifest(body, self.limits)
        try:
            verify_manifest_signature(manifest, body, sig)
        except BundleError as exc:
            self.flag(exc)
        total = tar_size([len(body), len(sig), *(f.size for f in manifest.files)])
        if total > self.limits.max_bytes:
            raise BundleError(
                f"the manifest declares {total} bytes, more than the limit of "
                f"{self.limits.max_bytes}",
                kind="bomb",
            )
        slack = 0 if self.strict else self.limits.ratio_grace
        self._stream.allow(total + slack, declared=total)
        self._manifest = manifest
        return manifest

    def _first(self, name: str, limit: int) -> bytes:
        member = self._next()
        while member is not None and not self._acceptable(member):
            member = self._next()
        if member is None or member.name != name:
            found = "nothing" if member is None else repr(member.name)
            raise BundleError(f"the bundle must start with {name}, found {found}", kind="manifest")
        if member.size > limit:
            raise BundleError(f"{name} has {member.size} bytes, over {limit}", kind="manifest")
        return b"".join(self._chunks(member))

    # -- the other entries ---------------------------------------------------------------

    def entries(self) -> Iterator[tuple[FileEntry, Iterator[bytes]]]:
        """Each listed file with its content (as chunks), checked by rules 1-6.

        The content must be consumed before the next entry is asked for; what the
        caller leaves unread is read (and hashed) here.
        """
        listed = {f.name: f for f in self._manifest.files}
        while (member := self._next()) is not None:
            if not self._acceptable(member):
                continue
            entry = listed.get(member.name)
            if entry is None:
                self.flag(_error("unlisted", member.name, "is not listed in the manifest"))
                continue
            if member.size != entry.size:
                detail = f"has {member.size} bytes, the manifest says {entry.size}"
                self.flag(_error("size", member.name, detail))
                continue
            digest = hashlib.sha256()
            chunks = self._hashed(member, digest)
            yield entry, chunks
            for _ in chunks:
                pass
            if "sha256:" + digest.hexdigest() != entry.sha256:
                self.flag(_error("hash", member.name, "does not match its sha256 in the manifest"))
        for name in sorted(set(listed) - self._seen):
            self.flag(_error("missing", name, "is listed in the manifest but not in the bundle"))
        self._check_end()

    def _check_end(self) -> None:
        """Rule 6: the archive is exactly the declared length (drained, capped)."""
        self._stream.drain()
        declared = self._stream.declared
        if declared is not None and self._stream.out < declared:
            self.flag(
                BundleError(
                    f"the archive ends after {self._stream.out} of its {declared} bytes: "
                    "the bundle is truncated",
                    kind="truncated",
                )
            )
        self.complete = True

    def _next(self) -> tarfile.TarInfo | None:
        try:
            member: tarfile.TarInfo | None = self._tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _broken(exc) from exc
        return member

    def _acceptable(self, member: tarfile.TarInfo) -> bool:
        """Rules 1-3 for one entry; a refused entry is flagged and skipped."""
        name = member.name
        why = unsafe_name(name)
        if member.issym() or member.islnk():
            what = "a symbolic link" if member.issym() else "a hard link"
            self.flag(_error("link", name, f"is {what} (to {member.linkname!r})"))
        elif member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            self.flag(_error("special", name, f"is {_kind(member)}, not a regular file"))
        elif why is not None:
            self.flag(_error("unsafe-path", name, why))
        elif name in self._seen:
            self.flag(_error("duplicate", name, "appears twice"))
        elif name <= self._last:
            self.flag(_error("order", name, f"comes after {self._last!r}: entries are unsorted"))
        else:
            self._seen.add(name)
            self._last = name
            return True
        return False

    def _chunks(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        data = self._tar.extractfile(member)
        if data is None:
            raise _error("special", member.name, "has no content")
        try:
            while chunk := data.read(CHUNK):
                yield chunk
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _broken(exc) from exc

    def _hashed(self, member: tarfile.TarInfo, digest: hashlib._Hash) -> Iterator[bytes]:
        for chunk in self._chunks(member):
            digest.update(chunk)
            yield chunk


def _error(kind: str, name: str, detail: str) -> BundleError:
    return BundleError(f"bundle entry {name!r} {detail}", kind=kind, entry=name)


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a fifo"
    if member.isdir():
        return "a directory"
    return f"of tar type {member.type!r}"


def _broken(exc: BaseException) -> BundleError:
    if isinstance(exc, BundleError):
        return exc
    text = str(exc) or type(exc).__name__
    if "unexpected end" in text or isinstance(exc, EOFError):
        return BundleError(f"the bundle is truncated ({text})", kind="truncated")
    return BundleError(f"the bundle's archive is damaged ({text})", kind="damaged")
