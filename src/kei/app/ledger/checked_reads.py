"""A write decides only from rows it has checked itself.

The fast write paths (``app/*_writes.py``, the Claude Code hook) decide from the few
streams they append to rather than from a read model, so no follower has checked
those rows. Anyone with write access to the tables could edit one (mark an agent done,
drop a DNA claim) and steer the next decision; the edit would still show in
``kei verify-chain``, but kei would have signed a new event on top of it. So each row a
write reads is checked here first, the same way ``verify-chain`` checks it: it has a
chain entry, its stored bytes match its chain hash, its signature verifies under the
key registry at its position, and the stream's versions count 1, 2, 3, ... with no row
missing in between. A row that fails is a ``VerificationError`` (exit 1) naming the stream and
position, and nothing is appended. A stream's rows are few (an agent's lifecycle, one
DNA claim, one route decision), so this costs tens of microseconds a row.

What this does not check: the links between a row and its neighbours in the log (the
log's order, which ``verify-chain`` and signed heads cover), a stream's newest rows
deleted whole (the version the write appends at then repeats an old one; the
conditional append is refused or ``verify-chain`` reports the gap in the log), and
rows the write does not read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.verify import (
    check_content,
    check_signature,
)
from kei.domain.log.versions import VersionChecker
from kei.errors import VerificationError

if TYPE_CHECKING:
    from kei.app.ledger.keyed import KeyedLedger
    from kei.domain.log.records import StoredRecord

__all__ = ["checked_stream", "first_finding"]

_MAYBE_NEW_KEY = frozenset({FindingKind.UNKNOWN_KEY, FindingKind.REVOKED_KEY})


def checked_stream(
    ledger: KeyedLedger, stream: str, upto_version: int | None = None
) -> list[RecordedEvent]:
    """The events of ``stream`` (up to ``upto_version``: its first rows only), each
    checked (hash and signature) before it is decoded."""
    records = ledger.store.read_stream(stream, upto_version)
    versions = VersionChecker(max_findings=1)
    versions.feed((r.stream, r.version, r.position) for r in records)
    for record in records:
        finding = first_finding(ledger, record)
        if finding is not None:
            raise _refusal(stream, finding)
    if versions.findings:
        raise _refusal(stream, versions.findings[0])
    return [RecordedEvent.from_record(r) for r in records]


def first_finding(ledger: KeyedLedger, record: StoredRecord) -> Finding | None:
    """What is wrong with one row (no chain entry, bytes that do not match its hash, a
    signature that does not verify under the key registry at its position), or None."""
    if record.seq is None or record.hash is None:
        return Finding(FindingKind.CHAIN_BROKEN, record.position, "the event has no chain entry")
    found = check_content(record) or check_signature(record, ledger.keyring())
    if found and found[0].kind in _MAYBE_NEW_KEY:
        # another process may have registered the signing key since the registry was read
        found = check_signature(record, ledger.keyring(refresh=True))
    return found[0] if found else None


def _refusal(stream: str, finding: Finding) -> VerificationError:
    error = VerificationError(
        f"{stream} at position {finding.position} does not verify ({finding.kind}: "
        f"{finding.detail}); nothing was appended",
        position=finding.position,
        kind=finding.kind.value,
    )
    error.hint = "run `kei verify-chain` to see what changed"
    return error
