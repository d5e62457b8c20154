"""Build hostile bundles from a genuine one, in code (never hand-edited blobs).

``unpack`` reads a bundle's entries with the standard library (the test trusts its
own input); ``pack`` writes entries back as a tar inside a zstd frame, any entry
type allowed; ``resign`` rewrites the manifest (after a change, and with the sizes
and hashes of the entries as they now are) and signs it with a given key, so a case
can isolate one rule at a time. Each ``CASES`` builder takes a genuine bundle's
entries and returns the hostile entries plus the ``BundleError.kind`` expected.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import zstandard

from kei.app.bundle.layout import segment_name
from kei.app.bundle.manifest import MANIFEST_TAG
from kei.app.bundle.segments import encode_frame
from kei.domain.log.keys import SigningKey


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""


def unpack(path: Path) -> list[Entry]:
    raw = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True)
    with tarfile.open(fileobj=raw, mode="r|") as tar:
        out = []
        for m in tar:
            f = tar.extractfile(m)
            out.append(Entry(m.name, f.read() if f else b"", m.type, m.linkname))
    return out


def pack(path: Path, entries: list[Entry], *, level: int = 3) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.linkname, info.mode = e.type, e.linkname, 0o644
            info.size = len(e.data) if e.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            tar.addfile(info, io.BytesIO(e.data) if info.size else None)
    path.write_bytes(zstandard.ZstdCompressor(level=level).compress(buf.getvalue()))
    return path


def manifest_of(entries: list[Entry]) -> dict[str, Any]:
    body = next(e for e in entries if e.name == "manifest.json").data
    data: dict[str, Any] = json.loads(body)
    return data


def resign(
    entries: list[Entry],
    key: SigningKey,
    change: Callable[[dict[str, Any]], None] = lambda m: None,
    *,
    as_exporter: bool = False,
) -> list[Entry]:
    """Entries with a manifest that lists them as they are, changed, signed by ``key``."""
    data = manifest_of(entries)
    listed = {f["name"] for f in data["files"]}
    files = [e for e in entries if e.name in listed and e.type == tarfile.REGTYPE]
    data["files"] = [
        {"name": e.name, "size": len(e.data), "sha256": "sha256:" + hashlib.sha256(e.data).hexdigest()}
        for e in sorted(files, key=lambda e: e.name)
    ]  # fmt: skip
    if as_exporter:
        data["exporter_key_id"], data["exporter_public_key"] = key.key_id_hex, key.public_key.hex()
    change(data)
    body = json.dumps(data, separators=(",", ":")).encode() + b"\n"
    sig = b"ed25519:" + key.sign(MANIFEST_TAG + body).hex().encode() + b"\n"
    out = []
    for e in entries:
        if e.name == "manifest.json":
            e = replace(e, data=body)
        elif e.name == "manifest.sig":
            e = replace(e, data=sig)
        out.append(e)
    return out


def _segment(entries: list[Entry]) -> int:
    return next(i for i, e in enumerate(entries) if e.name.startswith("segments/"))


def _insert(entries: list[Entry], extra: Entry) -> list[Entry]:
    at = _segment(entries)
    return [*entries[:at], extra, *entries[at:]]


def absolute_path(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return _insert(entries, Entry("/etc/kei-evil", b"x"))


def climbing_path(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return _insert(entries, Entry("segments/../../kei-evil", b"x"))


def symlink(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return _insert(entries, Entry("proof/link", type=tarfile.SYMTYPE, linkname="/etc/passwd"))


def hard_link(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return _insert(entries, Entry("proof/link", type=tarfile.LNKTYPE, linkname="manifest.json"))


def device(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return _insert(entries, Entry("proof/null", type=tarfile.CHRTYPE))


def fifo(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return _insert(entries, Entry("proof/pipe", type=tarfile.FIFOTYPE))


def duplicate(entries: list[Entry], key: SigningKey) -> list[Entry]:
    at = _segment(entries)
    return [*entries[: at + 1], entries[at], *entries[at + 1 :]]


def unlisted(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return [*entries, Entry("segments/99999999999999999999.kseg", b"\0\0\0\0")]


def missing(entries: list[Entry], key: SigningKey) -> list[Entry]:
    at = _segment(entries)
    return [*entries[:at], *entries[at + 1 :]]


def size_differs(entries: list[Entry], key: SigningKey) -> list[Entry]:
    at = _segment(entries)
    return [*entries[:at], replace(entries[at], data=entries[at].data + b"\0"), *entries[at + 1 :]]


def hash_differs(entries: list[Entry], key: SigningKey) -> list[Entry]:
    """One bit flipped in the last byte of the first frame (inside its hash field), so
    the segment still parses and only its SHA-256 gives it away."""
    at = _segment(entries)
    data = bytearray(entries[at].data)
    data[4 + int.from_bytes(data[:4], "big") - 1] ^= 0x01
    return [*entries[:at], replace(entries[at], data=bytes(data)), *entries[at + 1 :]]


def unknown_version(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return resign(entries, key, lambda m: m.update(format_version=2, future_field=1))


def unknown_key(entries: list[Entry], key: SigningKey) -> list[Entry]:
    return resign(entries, SigningKey.generate(name="stranger"), as_exporter=True)


def forged_manifest(entries: list[Entry], key: SigningKey) -> list[Entry]:
    data = manifest_of(entries)
    data["machine"] = "elsewhere"
    body = json.dumps(data, separators=(",", ":")).encode() + b"\n"
    return [replace(e, data=body) if e.name == "manifest.json" else e for e in entries]


def bomb(entries: list[Entry], key: SigningKey) -> list[Entry]:
    """A listed, hashed and signed extra segment of well-formed frames, each with a
    64 KiB state of zeros: 128 MiB that compress to almost nothing. It passes every
    name, size, hash and framing rule, so only the cap on total output can stop it
    (tests lower that cap, ``max_archive_bytes``, below the bomb)."""
    last = manifest_of(entries)["last_position"]
    frames = b"".join(
        encode_frame((last + i, b"s", i, b"t", bytes(64 << 10), i, bytes(32), bytes(32)))
        for i in range(1, 2049)
    )
    zeros = Entry(segment_name(last + 1), frames)

    def change(m: dict[str, Any]) -> None:
        m["files"].append(_file(zeros))
        m["segment_events"] = 100_000

    return resign([*entries, zeros], key, change)


def _file(e: Entry) -> dict[str, Any]:
    return {"name": e.name, "size": len(e.data), "sha256": "sha256:" + hashlib.sha256(e.data).hexdigest()}  # fmt: skip


Builder = Callable[[list[Entry], SigningKey], list[Entry]]

CASES: dict[str, tuple[Builder, str]] = {
    "absolute-path": (absolute_path, "unsafe-path"),
    "climbing-path": (climbing_path, "unsafe-path"),
    "symlink": (symlink, "link"),
    "hard-link": (hard_link, "link"),
    "device": (device, "special"),
    "fifo": (fifo, "special"),
    "duplicate-entry": (duplicate, "duplicate"),
    "file-not-listed": (unlisted, "unlisted"),
    "listed-file-missing": (missing, "missing"),
    "size-differs": (size_differs, "size"),
    "hash-differs": (hash_differs, "hash"),
    "unknown-format-version": (unknown_version, "version"),
    "manifest-changed-after-signing": (forged_manifest, "signature"),
    "signed-by-unknown-key": (unknown_key, "unknown-key"),
    "zstd-bomb": (bomb, "bomb"),
}


def truncate(path: Path, out: Path, keep: float) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out
