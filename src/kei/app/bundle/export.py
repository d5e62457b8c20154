"""``kei hibernate export``: the log, byte for byte, in one signed bundle.

Order of work, so memory stays flat and a failure leaves nothing behind:

1. fix the head: the store's last position;
2. start the projection digests at that head in a helper process (``_Digests``):
   it folds every shipped projection from the log itself, up to the head, into a
   scratch database in the export's private folder beside the output
   (``digests.log_digests``). The store's own read-model tables are never read nor
   caught up: export writes nothing into the store (it works when the store's disk
   is full), and a read-model table edited by hand can never be signed into a bundle;
3. meanwhile, stream the rows after ``since`` up to the head, a page at a time,
   checking every link and hash (``verify-chain --quick`` over that range: a bundle
   never carries a broken history), into segment files spooled beside the output,
   hashing each;
4. sign a checkpoint of the head and the manifest with the exporter's key;
5. write the archive (``archive.py``) beside the output and put it in place
   (``safe_output.OutputFile``: never over the store, a key, a device or, without
   ``force``, an existing file).

Steps 2 and 3 each keep a core busy in Python for seconds, so the digests run in a
spawned process, not a thread: the two would only take turns on one GIL.

Everything that goes into the bundle comes from the log (the creation time is the
head event's timestamp), so exporting the same log twice gives the same bytes. A
full disk where the output goes is one line (``safe_output.write_error``), and the
private folder and the temporary bundle are removed.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import multiprocessing
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct, field

from kei.adapters.files.leftovers import private_folder
from kei.adapters.files.safe_output import Protected, check_output, write_error
from kei.adapters.store.base import EventStore
from kei.adapters.workers import processes as workers
from kei.app.bundle import layout
from kei.app.bundle.archive import BundleWriter
from kei.app.bundle.digests import log_digests
from kei.app.bundle.keys import keys_document, ring_at
from kei.app.bundle.manifest import (
    FileEntry,
    Manifest,
    ProjectionDigest,
    encode_manifest,
    sign_manifest,
)
from kei.app.bundle.spool import Spooled, spool_segments
from kei.app.ledger.heads_io import encode_heads, heads_from
from kei.domain.log.checkpoint import sign_checkpoint
from kei.domain.log.envelope import open_state
from kei.domain.log.keyring import KeyStatus
from kei.domain.log.keys import SigningKey
from kei.errors import InputError, LedgerStateError, StoreError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger

log = logging.getLogger(__name__)

Progress = Callable[[int], None] | None


class ExportReport(Struct):
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
    since: int = 0,
    level: int = 3,
    segment_events: int = layout.SEGMENT_EVENTS,
    progress: Progress = None,
    machine: str | None = None,
    force: bool = False,
    protected: Protected = Protected(),
) -> ExportReport:
    """Write the events after position ``since`` of ``ledger`` (opened with its signing
    key) to the bundle ``out``; see the module docstring for the steps.
    ``force`` lets it replace an existing regular file; ``protected`` is never written."""
    out = check_output(out, protected, force=force)
    key = ledger.key
    if key is None:
        raise LedgerStateError("no signing key loaded", hint="pass --key or set KEI_KEY")
    ledger.check_signer(key)
    head = ledger.store.max_position()  # step 1
    if since >= head:
        raise InputError(f"nothing to export after position {since}: the log ends at {head}")
    ring = ring_at(ledger.store, head)
    if ring.ledger_id is None or ring.status_at(key.key_id, head) is not KeyStatus.ACTIVE:
        raise LedgerStateError(f"key {key.key_id_hex} is not active at the head ({head})")
    try:
        with (
            private_folder(out) as spool_dir,
            _Digests(ledger.url.text, head, spool_dir) as pending,  # step 2
        ):
            spooled = spool_segments(  # step 3
                ledger.store, since=since, head=head, folder=spool_dir,
                segment_events=segment_events, progress=progress,
            )  # fmt: skip
            digests = _digests_at(head, pending.result(), ledger.store, spool_dir, out)
            checkpoint = sign_checkpoint(
                ring.ledger_id, spooled.last_seq + 1, spooled.head_hash, key
            )
            proofs = {
                layout.CHECKPOINT: checkpoint.encode(),
                layout.KEYS: keys_document(ring),
            }
            if ring.signed_heads:
                heads = heads_from(ledger.store, spooled.first_seq)
                proofs[layout.HEADS] = encode_heads([h for h in heads if h[2] <= spooled.last_seq])
            manifest = _manifest(ring.ledger_id, ring.ledger_name, key, spooled, checkpoint,
                                 proofs, digests, segment_events, machine)  # fmt: skip
            body = encode_manifest(manifest)
            size = _write(out, level, body, sign_manifest(body, key), proofs, spooled,
                          force, protected)  # fmt: skip  # steps 4-5
    except OSError as exc:  # the spool or the bundle: the output's disk
        raise write_error(out, exc) from None
    return ExportReport(out, size, manifest, len(spooled.files), digests)


def _digests_at(
    head: int, found: list[ProjectionDigest] | _Failed, store: EventStore, folder: Path, out: Path
) -> list[ProjectionDigest]:
    """The digests at ``head`` folded from the log: the helper's, or, when it failed,
    folded here (so the error a user sees is the real one, raised in this process)."""
    if not isinstance(found, _Failed):
        return found
    log.warning("projection digests in a helper process failed (%s); redone here", found)
    scratch = folder / "projections-here.db"
    try:
        return log_digests(store, head, f"sqlite:///{scratch}")
    except StoreError as exc:
        if _disk_full(exc):
            raise write_error(out, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from None
        raise


def _disk_full(exc: BaseException) -> bool:
    """Whether SQLite said its disk is full somewhere in ``exc``'s chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlite_errorname", None) == "SQLITE_FULL":
            return True
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


class _Failed(str):
    """Why the helper process gave no digests (the export then computes them itself,
    so the error a user sees is the real one, raised in this process)."""


class _Digests:
    """``log_digests`` of the store at ``url`` up to ``head``, in a spawned helper
    process started on entry, folding into a scratch database in ``folder``;
    ``result`` waits for it. Leaving the block ends the helper before the caller
    removes ``folder``."""

    def __init__(self, url: str, head: int, folder: Path) -> None:
        self._url, self._head = url, head
        self._scratch = f"sqlite:///{folder / 'projections.db'}"
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._answered = False

    def __enter__(self) -> _Digests:
        started = workers.start_sender(
            _log_digests_child, (self._url, self._head, self._scratch), "kei-export-digests"
        )
        if isinstance(started, OSError):
            log.warning("cannot start the digest helper (%s); digests computed here", started)
        else:
            self._conn, self._process = started
        return self

    def result(self) -> list[ProjectionDigest] | _Failed:
        """What the helper computed, or why it could not."""
        if self._conn is None:
            return _Failed("no helper process")
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            return _Failed(f"the helper ended without an answer: {exc!r}")
        self._answered = True
        return value if status == "ok" else _Failed(value)

    def __exit__(self, *exc: object) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is None:
            return
        if not self._answered and process.is_alive():
            process.terminate()  # the export failed first: its digests are not wanted
        process.join()


def _log_digests_child(url: str, head: int, scratch: str, conn: Connection) -> None:
    """The helper's body: send ``("ok", digests)`` or ``("failed", why)``."""
    from kei.adapters.store import open_store

    answer: tuple[str, Any]
    try:
        store = open_store(url, read_only=True)  # writes nothing; works on a full disk
        try:
            answer = ("ok", log_digests(store, head, scratch))
        finally:
            store.close()
    except Exception as exc:  # reported, and redone in the parent
        answer = ("failed", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(answer)
    finally:
        conn.close()


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
    out: Path,
    level: int,
    body: bytes,
    sig: bytes,
    proofs: dict[str, bytes],
    spooled: Spooled,
    force: bool,
    protected: Protected,
) -> int:
    writer = BundleWriter(out, level=level, force=force, protected=protected)
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
