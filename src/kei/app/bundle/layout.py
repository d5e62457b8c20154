"""What a bundle holds, in which order, and every limit a reader enforces.

Entries, in this order (names sort in it, so "sorted by name" and "manifest first"
are the same rule)::

    manifest.json                         the manifest (``manifest.py``)
    manifest.sig                          its ed25519 signature
    proof/checkpoint                      the signed C2SP checkpoint of the head
    proof/heads                           the signed heads of the range (``heads_io.py``),
                                          for ledgers whose genesis declares them
    proof/keys.json                       the ledger's keys at the head
    segments/<first position, 20 digits>.kseg   the events, at most SEGMENT_EVENTS each

Everything here is pure; ``kei.errors.BundleError`` is how any part of the bundle
package says "this bundle is refused", with a ``kind`` that ``kei hibernate inspect
--json`` shows.
"""

from __future__ import annotations

import re
from typing import Final

from msgspec import Struct, field

from kei.adapters.files.tarsafe import ArchiveLimits, unsafe_path

FORMAT: Final = "kei-bundle"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
CHECKPOINT: Final = "proof/checkpoint"
KEYS: Final = "proof/keys.json"
HEADS: Final = "proof/heads"
SEGMENT_DIR: Final = "segments/"
SEGMENT_SUFFIX: Final = ".kseg"
SEGMENT_EVENTS: Final = 100_000
BLOCK: Final = 512
RECORD: Final = 20 * BLOCK  # tarfile's record size: archives are padded to it

_SEGMENT_NAME = re.compile(r"segments/[0-9]{20}\.kseg")
_SAFE_CHARS = re.compile(r"[A-Za-z0-9._/-]+")


class BundleLimits(Struct, frozen=True):
    """Every bound a reader applies to what it decompresses and parses.

    The decompressed stream may never exceed what the manifest declares (the exact
    tar size of its files) nor ``archive``'s bounds, those of every archive kei reads
    (``adapters/files/tarsafe.py``: total bytes, zstd window).
    """

    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    max_manifest_bytes: int = 4 << 20
    max_proof_bytes: int = 4 << 20
    max_heads_bytes: int = 1 << 30  # 96 bytes a transaction: ~11M one-event appends
    max_files: int = 100_000
    max_frame_bytes: int = 64 << 20


def segment_name(first_position: int) -> str:
    """The name of the segment whose first event is at ``first_position``."""
    return f"{SEGMENT_DIR}{first_position:020d}{SEGMENT_SUFFIX}"


def is_segment(name: str) -> bool:
    return _SEGMENT_NAME.fullmatch(name) is not None


def unsafe_name(name: str) -> str | None:
    """Why ``name`` may not appear in a bundle, or None: a safe relative path
    (``tarsafe.unsafe_path``) that is also canonical (no ``.`` part) and spelt in the
    few characters the format's names use."""
    why = unsafe_path(name)
    if why is not None:
        return why
    if "." in name.split("/"):
        return "path is not in canonical form"
    if _SAFE_CHARS.fullmatch(name) is None:
        return "path has characters outside [A-Za-z0-9._/-]"
    return None


def known_name(name: str) -> bool:
    """Is ``name`` one the format defines (manifest, signature, proofs, segments)?"""
    return name in (MANIFEST, SIGNATURE, CHECKPOINT, HEADS, KEYS) or is_segment(name)


def tar_size(sizes: list[int]) -> int:
    """The exact size of the uncompressed tar holding files of ``sizes`` (USTAR headers,
    two end blocks, padded to a record), as ``tarfile`` writes it."""
    total = sum(BLOCK + -(-size // BLOCK) * BLOCK for size in sizes) + 2 * BLOCK
    return -(-total // RECORD) * RECORD
