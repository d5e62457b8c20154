"""The bundle manifest: what the bundle holds, signed by the ledger key that exported it.

- ``manifest.json`` is the msgspec JSON encoding of ``Manifest`` (fields in declaration
  order, one line); ``manifest.sig`` is ``ed25519:<hex>`` and a newline, the signature
  over ``"kei/bundle-manifest/v1" 0x00 ‖ manifest.json`` (the exact bytes, never a
  re-encoding) by the exporter key the manifest names.
- Reading checks the format and its version first, with a lenient probe, so a newer
  format is refused as "unsupported version" rather than as a malformed manifest;
  then the manifest is decoded strictly (unknown fields refused) and checked for
  internal consistency. Whether the exporter key belongs to the ledger is for
  ``checks.py``, once the bundle's key events are verified.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from kei.app.bundle.layout import (
    CHECKPOINT,
    FORMAT,
    FORMAT_VERSION,
    KEYS,
    BundleLimits,
    known_name,
    unsafe_name,
)
from kei.domain.log.keys import SigningKey, key_id_for, verify_signature
from kei.errors import BundleError

MANIFEST_TAG: Final = b"kei/bundle-manifest/v1\x00"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SIG = re.compile(rb"ed25519:([0-9a-f]{128})\n")


class FileEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One file of the bundle other than the manifest and its signature."""

    name: str
    size: int
    sha256: str


class ProjectionDigest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A read model's digest at the head, as a replay into an empty store rebuilds it."""

    name: str
    version: int
    digest: str


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything a reader needs to check a bundle before trusting a byte of it."""

    format: str
    format_version: int
    ledger_id: str
    ledger_name: str
    exporter_key_id: str
    exporter_public_key: str
    machine: str
    created_at: str
    first_position: int
    last_position: int
    first_seq: int
    last_seq: int
    events: int
    prev_hash: str
    head_hash: str
    checkpoint: str
    segment_events: int
    files: tuple[FileEntry, ...]
    projections: tuple[ProjectionDigest, ...]

    def file(self, name: str) -> FileEntry | None:
        return next((f for f in self.files if f.name == name), None)

    def to_dict(self) -> dict[str, object]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class _Probe(msgspec.Struct):
    format: str = ""
    format_version: int = 0


_ENCODER = msgspec.json.Encoder()
_PROBE = msgspec.json.Decoder(_Probe)
_DECODER = msgspec.json.Decoder(Manifest)


def encode_manifest(manifest: Manifest) -> bytes:
    return _ENCODER.encode(manifest) + b"\n"


def sign_manifest(body: bytes, key: SigningKey) -> bytes:
    """The content of ``manifest.sig`` for the manifest bytes ``body``."""
    return b"ed25519:" + key.sign(MANIFEST_TAG + body).hex().encode() + b"\n"


def decode_manifest(body: bytes, limits: BundleLimits) -> Manifest:
    """Parse and check ``manifest.json``; BundleError names what is wrong."""
    try:
        probe = _PROBE.decode(body)
    except msgspec.DecodeError as exc:
        raise BundleError(f"manifest.json is not a kei manifest ({exc})", kind="manifest") from exc
    if probe.format != FORMAT:
        raise BundleError(
            f"manifest.json is not a kei bundle manifest (format {probe.format!r})",
            kind="manifest",
        )
    if probe.format_version != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {probe.format_version} is not supported: this kei "
            f"reads version {FORMAT_VERSION}",
            kind="version",
        )
    try:
        manifest = _DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise BundleError(f"manifest.json is malformed: {exc}", kind="manifest") from exc
    _check(manifest, limits)
    return manifest


def verify_manifest_signature(manifest: Manifest, body: bytes, sig: bytes) -> None:
    """The signature in ``manifest.sig`` is the manifest's exporter key's, over ``body``."""
    match = _SIG.fullmatch(sig)
    if match is None:
        raise BundleError("manifest.sig is not 'ed25519:<128 hex>'", kind="signature")
    public = bytes.fromhex(manifest.exporter_public_key)
    if not verify_signature(public, MANIFEST_TAG + body, bytes.fromhex(match[1].decode())):
        raise BundleError(
            f"the manifest's signature by key {manifest.exporter_key_id} is invalid: "
            "the manifest was changed after it was signed",
            kind="signature",
        )


def _check(m: Manifest, limits: BundleLimits) -> None:
    """Internal consistency: every rule a well-formed manifest follows."""

    def bad(detail: str) -> BundleError:
        return BundleError(f"manifest.json is inconsistent: {detail}", kind="manifest")

    if not _HEX16.fullmatch(m.exporter_key_id) or not _HEX64.fullmatch(m.exporter_public_key):
        raise bad("exporter key id or public key is not lowercase hex of the right length")
    if key_id_for(bytes.fromhex(m.exporter_public_key)).hex() != m.exporter_key_id:
        raise bad("exporter_key_id is not the id of exporter_public_key")
    if not (0 < m.first_position <= m.last_position and 0 <= m.first_seq <= m.last_seq):
        raise bad("first and last position or sequence are out of order")
    if m.events != m.last_seq - m.first_seq + 1 or m.segment_events < 1:
        raise bad(f"{m.events} events cannot cover sequences {m.first_seq}..{m.last_seq}")
    if not (_DIGEST.fullmatch(m.prev_hash) and _DIGEST.fullmatch(m.head_hash)):
        raise bad("prev_hash and head_hash must be sha256:<64 hex>")
    if len(m.files) > limits.max_files:
        raise bad(f"{len(m.files)} files, more than the limit of {limits.max_files}")
    names = [f.name for f in m.files]
    if names != sorted(set(names)):
        raise bad("files are not listed once each, sorted by name")
    for f in m.files:
        why = unsafe_name(f.name)
        if why is not None or not known_name(f.name):
            raise bad(f"file {f.name!r} is not a bundle file ({why or 'unknown name'})")
        if f.size < 0 or not _DIGEST.fullmatch(f.sha256):
            raise bad(f"file {f.name}: size or sha256 is malformed")
    if CHECKPOINT not in names or KEYS not in names:
        raise bad(f"{CHECKPOINT} or {KEYS} is not listed")
    projections = [p.name for p in m.projections]
    if projections != sorted(set(projections)) or any(
        not _DIGEST.fullmatch(p.digest) for p in m.projections
    ):
        raise bad("projections are not listed once each, sorted, with sha256 digests")
