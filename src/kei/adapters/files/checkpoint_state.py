"""What this machine remembers about the last checkpoint it signed for a store, so the
next ``Ledger.checkpoint`` checks only the events appended since (``app/ledger/checkpointing.py``).

One JSON file per store in the state folder (``KEI_HOME/checkpoint-state`` for the
CLI, 0700), named like the pins (``adapters/files/pins.py``): the first 32 hex digits of
SHA-256 over the store's identity, so a store rewritten from a new genesis still meets
the state of the store it replaced. Content::

    {"version": 1, "store": "<redacted url>", "ledger_id": "<uuid>",
     "checkpoint": "<the signed note>",
     "anchor": {"seq": N-1, "position": P, "hash": "<base64>"},
     "range": ["<base64>", ...]}

``range`` is the compact range of the first N tree leaves (one subtree hash per set
bit of N, ``CompactRange.hashes``); ``anchor`` is the chain entry at sequence N-1.
Kept outside the store on purpose: whoever can edit the store's tables cannot edit
it. Files are 0600, written beside and renamed over the old one under an exclusive
``flock`` of ``<DIR>/.lock``, so two checkpoints at once leave one whole state.
Reading never fails: a missing, unreadable or malformed file is None (the caller
then checks the whole log, as without state).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from msgspec import Struct

from kei.adapters.files.keyfile import held, open_folder_lock, read_private, write_private
from kei.adapters.files.pins import store_identity
from kei.adapters.store.urls import redact_url
from kei.limits import LIMITS

log = logging.getLogger(__name__)


class CheckpointState(Struct, frozen=True):
    """The last checkpoint signed here for one store, and where its tree ends."""

    ledger_id: str
    checkpoint: str
    anchor_seq: int
    anchor_position: int
    anchor_hash: bytes
    range_hashes: tuple[bytes, ...]

    def to_json(self, url: str) -> bytes:
        b64 = base64.b64encode
        doc = {
            "version": 1,
            "store": redact_url(url),
            "ledger_id": self.ledger_id,
            "checkpoint": self.checkpoint,
            "anchor": {
                "seq": self.anchor_seq,
                "position": self.anchor_position,
                "hash": b64(self.anchor_hash).decode(),
            },
            "range": [b64(h).decode() for h in self.range_hashes],
        }
        return json.dumps(doc, indent=1).encode() + b"\n"


def state_path(folder: Path, url: str) -> Path:
    digest = hashlib.sha256(store_identity(url).encode()).hexdigest()[:32]
    return folder / f"{digest}.json"


def load_state(folder: Path, url: str) -> CheckpointState | None:
    """The state of the store at ``url``, or None (missing or unusable: logged why)."""
    path = state_path(folder, url)
    try:
        raw = read_private(path, LIMITS.max_checkpoint_state_bytes)
    except OSError as exc:
        log.warning("checkpoint state %s is unreadable (%s); checking the whole log", path, exc)
        return None
    if raw is None:
        return None
    state = _decode(raw) if len(raw) <= LIMITS.max_checkpoint_state_bytes else None
    if state is None:
        log.warning("checkpoint state %s is malformed; checking the whole log", path)
    return state


def _decode(raw: bytes) -> CheckpointState | None:
    try:
        doc = json.loads(raw.decode("utf-8"))
        anchor = doc["anchor"]
        state = CheckpointState(
            ledger_id=doc["ledger_id"],
            checkpoint=doc["checkpoint"],
            anchor_seq=anchor["seq"],
            anchor_position=anchor["position"],
            anchor_hash=_b64(anchor["hash"]),
            range_hashes=tuple(_b64(h) for h in doc["range"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if doc.get("version") != 1 or not _well_typed(state):
        return None
    return state


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("not base64 text")
    return base64.b64decode(value, validate=True)


def _well_typed(state: CheckpointState) -> bool:
    return (
        isinstance(state.ledger_id, str)
        and isinstance(state.checkpoint, str)
        and type(state.anchor_seq) is int
        and state.anchor_seq >= 0
        and type(state.anchor_position) is int
        and len(state.anchor_hash) == 32
    )


def save_state(folder: Path, url: str, state: CheckpointState) -> Path:
    """Replace the state of the store at ``url`` (atomically, 0600, folder 0700)."""
    path = state_path(folder, url)
    with held(open_folder_lock(folder)):
        write_private(path, state.to_json(url))
    return path
