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

Rules 1-3 and the caps against zstd bombs are those of every archive kei reads
(``adapters/files/tarsafe.py``); rules 2 and 3 are stricter here (canonical names in
the format's characters, in name order). The manifest and its signature come first
(``manifest()``); the signature is checked against the key the manifest names before
anything else is read. A strict reader (replay) raises on the first problem; a
lenient one (inspect) records every problem it can and goes on.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from kei.adapters.files.tarsafe import TarReader, entry_error
from kei.app.bundle.layout import (
    BLOCK,
    MANIFEST,
    SIGNATURE,
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
from kei.errors import BundleError, InputError

MAX_SIGNATURE_BYTES = 1024


class BundleReader:
    """Reads one bundle file once, front to back; ``close`` it when done
    (``with contextlib.closing(BundleReader(...))``)."""

    def __init__(
        self, path: Path, *, limits: BundleLimits = BundleLimits(), strict: bool = True
    ) -> None:
        self.path = path
        self.limits = limits
        self.strict = strict
        self.problems: list[BundleError] = []
        self.complete = False
        self._last = ""
        try:
            self._file: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise InputError(
                f"cannot read bundle {path}: {exc.strerror or exc}",
                hint="give the path of a file written by `kei hibernate export`",
            ) from exc
        try:
            self._tar = TarReader(
                self._file, limits.archive, label="kei bundle", name_rule=unsafe_name,
                allow=limits.max_manifest_bytes + MAX_SIGNATURE_BYTES + 8 * BLOCK,
            )  # fmt: skip
        except BaseException:
            self._file.close()
            raise
        self._stream = self._tar.stream

    def close(self) -> None:
        self._tar.close()
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
        cap = self.limits.archive.max_bytes
        if total > cap:
            raise BundleError(
                f"the manifest declares {total} bytes, more than the limit of {cap}", kind="bomb"
            )
        slack = 0 if self.strict else self.limits.archive.slack_bytes
        self._stream.allow(total + slack, declared=total)
        self._manifest = manifest
        return manifest

    def _first(self, name: str, limit: int) -> bytes:
        member = self._tar.next()
        while member is not None and not self._acceptable(member):
            member = self._tar.next()
        if member is None or member.name != name:
            found = "nothing" if member is None else repr(member.name)
            raise BundleError(f"the bundle must start with {name}, found {found}", kind="manifest")
        if member.size > limit:
            raise BundleError(f"{name} has {member.size} bytes, over {limit}", kind="manifest")
        return b"".join(self._tar.chunks(member))

    # -- the other entries ---------------------------------------------------------------

    def entries(self) -> Iterator[tuple[FileEntry, Iterator[bytes]]]:
        """Each listed file with its content (as chunks), checked by rules 1-6.

        The content must be consumed before the next entry is asked for; what the
        caller leaves unread is read (and hashed) here.
        """
        listed = {f.name: f for f in self._manifest.files}
        while (member := self._tar.next()) is not None:
            if not self._acceptable(member):
                continue
            entry = listed.get(member.name)
            if entry is None:
                self.flag(entry_error("unlisted", member.name, "is not listed in the manifest"))
                continue
            if member.size != entry.size:
                detail = f"has {member.size} bytes, the manifest says {entry.size}"
                self.flag(entry_error("size", member.name, detail))
                continue
            digest = hashlib.sha256()
            chunks = self._hashed(member, digest)
            yield entry, chunks
            for _ in chunks:
                pass
            if "sha256:" + digest.hexdigest() != entry.sha256:
                detail = "does not match its sha256 in the manifest"
                self.flag(entry_error("hash", member.name, detail))
        for name in sorted(set(listed) - self._tar.seen):
            detail = "is listed in the manifest but not in the bundle"
            self.flag(entry_error("missing", name, detail))
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

    def _acceptable(self, member: tarfile.TarInfo) -> bool:
        """Rules 1-3 for one entry; a refused entry is flagged and skipped."""
        name = member.name
        problem = self._tar.refusal(member)
        if problem is None and name <= self._last:
            problem = entry_error(
                "order", name, f"comes after {self._last!r}: entries are unsorted"
            )
        if problem is not None:
            self.flag(problem)
            return False
        self._tar.accept(name)
        self._last = name
        return True

    def _hashed(self, member: tarfile.TarInfo, digest: hashlib._Hash) -> Iterator[bytes]:
        for chunk in self._tar.chunks(member):
            digest.update(chunk)
            yield chunk
