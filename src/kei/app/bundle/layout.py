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

Everything here is pure; ``BundleError`` is how any part of the bundle package says
"this bundle is refused", with a ``kind`` that ``kei hibernate inspect --json`` shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from kei.errors import VerificationError

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

_RELATIONS = frozenset({"forked", "other-ledger", "gap"})
_SEGMENT_NAME = re.compile(r"segments/[0-9]{20}\.kseg")
_SAFE_CHARS = re.compile(r"[A-Za-z0-9._/-]+")


class BundleError(VerificationError):
    """The bundle is refused: unsafe, inconsistent, or not what its manifest says.

    ``kind`` names the rule (``unsafe-path``, ``link``, ``duplicate``, ``unlisted``,
    ``missing``, ``size``, ``hash``, ``version``, ``bomb``, ``truncated``, ``signature``,
    ``unknown-key``, ``events``, ``forked``, ``other-ledger``, ``digest``, ...).
    """

    def __init__(self, message: str, *, kind: str, entry: str | None = None) -> None:
        super().__init__(message, kind=kind)
        self.entry = entry
        if kind in _RELATIONS:
            self.hint = "nothing was written"
        else:
            self.hint = "nothing was written; the bundle cannot be used as it is"


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """Every bound a reader applies to what it decompresses and parses.

    The decompressed stream may never exceed what the manifest declares (the exact
    tar size of its files) nor ``max_bytes``; past ``ratio_grace`` bytes it may not
    exceed ``max_ratio`` times the compressed bytes read so far (a zstd frame need
    not declare its content size, so both are counted as the stream is read).
    """

    max_bytes: int = 1 << 40
    max_ratio: int = 1000
    ratio_grace: int = 64 << 20
    max_manifest_bytes: int = 4 << 20
    max_proof_bytes: int = 4 << 20
    max_heads_bytes: int = 1 << 30  # 96 bytes a transaction: ~11M one-event appends
    max_files: int = 100_000
    max_frame_bytes: int = 64 << 20
    max_window_bytes: int = 1 << 27


def segment_name(first_position: int) -> str:
    """The name of the segment whose first event is at ``first_position``."""
    return f"{SEGMENT_DIR}{first_position:020d}{SEGMENT_SUFFIX}"


def is_segment(name: str) -> bool:
    return _SEGMENT_NAME.fullmatch(name) is not None


def unsafe_name(name: str) -> str | None:
    """Why ``name`` may not appear in a bundle, or None when it is a safe relative path."""
    if not name:
        return "empty name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "path climbs out with '..'"
    if "\\" in name or "" in parts or "." in parts:
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
