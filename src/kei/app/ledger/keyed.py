"""The ledger's key registry: which keys may sign, folded from the log's key events.

The registry is folded from the ``kei.keys`` stream and cached; ``_keys_version`` is
where that stream ended when it was folded, which every append checks under the
store's write lock (``app/ledger/writing.py``): a key another process revoked
meanwhile signs nothing more. Registering and revoking keys are appends of key events
(``Ledger.add_key``, ``Ledger.revoke_key``).
"""

from __future__ import annotations

from kei.adapters.files.pins import Identity
from kei.adapters.store import EventStore
from kei.domain import events
from kei.domain.log.heads import HeadSigner, head_signer
from kei.domain.log.keyring import KeyRing, build_keyring
from kei.domain.log.keys import SigningKey
from kei.domain.log.records import StoredRecord
from kei.errors import KeiError, LedgerStateError


class KeyedLedger:
    """One store and the key registry its log holds, with the key that signs for it."""

    def __init__(self, store: EventStore, key: SigningKey | None) -> None:
        self.store = store
        self.key = key
        self._keyring: KeyRing | None = None
        self._keys_version = 0  # the kei.keys stream's end that _keyring was folded from

    def keyring(self, *, refresh: bool = False) -> KeyRing:
        """The key registry folded from the log's key events (cached)."""
        if self._keyring is None or refresh:
            records = sorted(self.store.read_stream(events.SYSTEM_STREAM), key=_by_position)
            self._keyring = build_keyring(records)
            self._keys_version = max((r.version for r in records), default=0)
        return self._keyring

    @property
    def ledger_id(self) -> str:
        ring = self.keyring()
        if ring.ledger_id is None:
            raise self._no_genesis()
        return ring.ledger_id

    def _no_genesis(self) -> LedgerStateError:
        """Tell an empty store (init it) from one whose genesis does not verify."""
        if self.store.read_stream(events.SYSTEM_STREAM):
            return LedgerStateError(
                f"the genesis event in {self.store.url} does not verify",
                hint="run `kei verify-chain` to see what changed",
            )
        return LedgerStateError(f"{self.store.url} has no genesis event", hint="run `kei init`")

    def is_initialised(self) -> bool:
        return self.keyring(refresh=True).genesis_position is not None

    def _signer(self) -> SigningKey:
        if self.key is None:
            raise LedgerStateError("no signing key loaded", hint="pass --key or set KEI_KEY")
        return self.key

    def check_signer(self, key: SigningKey) -> None:
        """Raise LedgerStateError unless ``key`` is registered and not revoked."""
        ring = self.keyring()
        if ring.genesis_position is None:
            ring = self.keyring(refresh=True)
        if ring.genesis_position is None:
            raise self._no_genesis()
        entry = ring.keys.get(key.key_id) or self.keyring(refresh=True).keys.get(key.key_id)
        if entry is None:
            raise LedgerStateError(
                f"key {key.key_id_hex} ({key.name}) is not registered in this ledger",
                hint="register this key file with `kei keys import FILE --key ACTIVE_KEY`, "
                "or pick another with --key",
            )
        if entry.revoked_at is not None:
            raise LedgerStateError(
                f"key {key.key_id_hex} ({key.name}) was revoked at position {entry.revoked_at}",
                hint="sign with another key (--key NAME)",
            )

    def _head_signer(self, key: SigningKey, new_ledger: str | None = None) -> HeadSigner | None:
        """What signs each append transaction's head (``kei.domain.log.heads``): only for
        ledgers whose genesis declares signed heads, or for the genesis of
        ``new_ledger`` (whose head it signs itself)."""
        if new_ledger is not None:
            return head_signer(new_ledger, key.key_id, key.sign)
        ring = self.keyring()
        if not ring.signed_heads or ring.ledger_id is None:
            return None
        return head_signer(ring.ledger_id, key.key_id, key.sign)

    def genesis_key(self, *, refresh: bool = True) -> bytes | None:
        """The public key the genesis event introduced (None: no valid genesis);
        ``refresh=False`` reads it from the key registry as last folded."""
        ring = self.keyring(refresh=refresh)
        return next(
            (e.public_key for e in ring.keys.values() if e.added_at == ring.genesis_position),
            None,
        )

    def identity(self) -> Identity:
        """What the log says it is: its genesis ledger id and key (None where the
        genesis does not verify; ``verify`` reports that as a finding)."""
        try:
            ledger_id = self.keyring(refresh=True).ledger_id
            return Identity(ledger_id, self.genesis_key(refresh=False))
        except KeiError:
            return Identity(None, None)


def _by_position(record: StoredRecord) -> int:
    return record.position
