"""``kei hibernate export``: the log, byte for byte, in one signed bundle.

Order of work, so memory stays flat and a failure leaves nothing behind:

1. fix the head: catch up the store's projections and take the position they all
   stand at (if writers moved the log meanwhile, take the store's last position and
   rebuild the digests in a scratch database instead, ``digests.py``);
2. stream the rows after ``since`` up to the head, a page at a time, checking every
   link and hash (``verify-chain --quick`` over that range: a bundle never carries a
   broken history), into segment files spooled beside the output, hashing each;
3. sign a checkpoint of the head and the manifest with the exporter's key;
4. write the archive (``archive.py``) and rename it into place.

Everything that goes into the bundle comes from the log (the creation time is the
head event's timestamp), so exporting the same log twice gives the same bytes.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kei.adapters.bundle import layout
from kei.adapters.bundle.archive import BundleWriter
from kei.adapters.bundle.digests import HeadView, live_digests, rebuild_digests
from kei.adapters.bundle.keys import keys_document, ring_at
from kei.adapters.bundle.manifest import (
    FileEntry,
    Manifest,
    ProjectionDigest,
    encode_manifest,
    sign_manifest,
)
from kei.adapters.bundle.spool import Spooled, spool_segments
from kei.adapters.store.base import EventStore
from kei.domain.checkpoint import sign_checkpoint
from kei.domain.envelope import open_state
from kei.domain.keyring import KeyStatus
from kei.domain.keys import SigningKey
from kei.errors import InputError, LedgerStateError

if TYPE_CHECKING:
    from kei.adapters.ledger import Ledger

Progress = Callable[[int], None] | None


@dataclass(slots=True)
class ExportReport:
    """What ``export_bundle`` wrote."""

    path: Path
    bytes: int
    manifest: Manifest
    segments: int = 0
    projections: list[ProjectionDigest] = field(default_factory=list)


def export_bundle(
    ledger: Ledger,
    out: Path,
    *,
    url: str,
    since: int = 0,
    level: int = 3,
    segment_events: int = layout.SEGMENT_EVENTS,
    progress: Progress = None,
    machine: str | None = None,
) -> ExportReport:
    """Write the events after position ``since`` of ``ledger`` (opened with its signing
    key, at ``url``) to the bundle ``out``; see the module docstring for the steps."""
    if not out.parent.is_dir():
        raise InputError(f"cannot write {out}: folder {out.parent} does not exist")
    key = ledger.key
    if key is None:
        raise LedgerStateError("no signing key loaded", hint="pass --key or set KEI_KEY")
    ledger.check_signer(key)
    head, digests = _head_and_digests(ledger.store, url, out.parent)  # step 1
    if since >= head:
        raise InputError(f"nothing to export after position {since}: the log ends at {head}")
    ring = ring_at(ledger.store, head)
    if ring.ledger_id is None or ring.status_at(key.key_id, head) is not KeyStatus.ACTIVE:
        raise LedgerStateError(f"key {key.key_id_hex} is not active at the head ({head})")
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as spool_dir:
        spooled = spool_segments(  # step 2
            ledger.store, ring, since=since, head=head, folder=Path(spool_dir),
            segment_events=segment_events, progress=progress,
        )  # fmt: skip
        checkpoint = sign_checkpoint(ring.ledger_id, spooled.last_seq + 1, spooled.head_hash, key)
        proofs = {
            layout.CHECKPOINT: checkpoint.encode(),
            layout.KEYS: keys_document(ring),
        }
        manifest = _manifest(ring.ledger_id, ring.ledger_name, key, spooled, checkpoint,
                             proofs, digests, segment_events, machine)  # fmt: skip
        body = encode_manifest(manifest)
        size = _write(out, level, body, sign_manifest(body, key), proofs, spooled)  # step 3-4
    return ExportReport(out, size, manifest, len(spooled.files), digests)


def _head_and_digests(
    store: EventStore, url: str, scratch: Path
) -> tuple[int, list[ProjectionDigest]]:
    live = live_digests(url, store)
    if live is not None:
        return live
    head = store.max_position()
    with tempfile.TemporaryDirectory(prefix=".kei-digests.", dir=scratch) as folder:
        view = HeadView(store, head, None, head)
        return head, rebuild_digests(view, f"sqlite:///{Path(folder) / 'projections.db'}")


def _manifest(
    ledger_id: str,
    ledger_name: str,
    key: SigningKey,
    spooled: Spooled,
    checkpoint: str,
    proofs: dict[str, bytes],
    digests: list[ProjectionDigest],
    segment_events: int,
    machine: str | None,
) -> Manifest:
    files = [FileEntry(n, len(b), "sha256:" + hashlib.sha256(b).hexdigest())
             for n, b in proofs.items()]  # fmt: skip
    files += [FileEntry(f.name, f.size, f.sha256) for f in spooled.files]
    created = datetime.fromtimestamp(open_state(spooled.head_state).timestamp_us / 1e6, tz=UTC)
    return Manifest(
        format=layout.FORMAT,
        format_version=layout.FORMAT_VERSION,
        ledger_id=ledger_id,
        ledger_name=ledger_name,
        exporter_key_id=key.key_id_hex,
        exporter_public_key=key.public_key.hex(),
        machine=machine or socket.gethostname(),
        created_at=created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        first_position=spooled.first_position,
        last_position=spooled.last_position,
        first_seq=spooled.first_seq,
        last_seq=spooled.last_seq,
        events=spooled.events,
        prev_hash="sha256:" + spooled.prev_hash.hex(),
        head_hash="sha256:" + spooled.head_hash.hex(),
        checkpoint=checkpoint,
        segment_events=segment_events,
        files=tuple(sorted(files, key=lambda f: f.name)),
        projections=tuple(digests),
    )


def _write(
    out: Path, level: int, body: bytes, sig: bytes, proofs: dict[str, bytes], spooled: Spooled
) -> int:
    import io

    writer = BundleWriter(out, level=level)
    try:
        writer.add(layout.MANIFEST, len(body), io.BytesIO(body))
        writer.add(layout.SIGNATURE, len(sig), io.BytesIO(sig))
        for name in sorted(proofs):
            writer.add(name, len(proofs[name]), io.BytesIO(proofs[name]))
        for f in spooled.files:
            with f.path.open("rb") as fh:
                writer.add(f.name, f.size, fh)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()
