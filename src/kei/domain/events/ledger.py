"""The log's own events: its genesis, and the keys that may sign it (stream ``kei.keys``).

Verification folds these into the key ring (``kei.domain.log.keyring``), so their
shape is part of the trust core: see ``docs/events.md`` §3.
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.payload import Payload

SYSTEM_STREAM: Final = "kei.keys"
GENESIS: Final = "kei.ledger.genesis"
KEY_ADDED: Final = "kei.key.added"
KEY_REVOKED: Final = "kei.key.revoked"
KEY_EVENT_TYPES: Final = frozenset({GENESIS, KEY_ADDED, KEY_REVOKED})


class LedgerGenesis(Payload, frozen=True, kw_only=True):
    """The first event: names the ledger and its first key (self-signed).

    ``signed_heads`` (new ledgers: True) declares that every append transaction ends
    with a signed head (``kei.domain.log.heads``); genesis events written before it existed
    lack the field and decode as False, so their ledgers verify as they always did."""

    ledger_id: str
    name: str
    key_id: str
    public_key: str
    key_name: str = ""
    signed_heads: bool = False


class KeyAdded(Payload, frozen=True, kw_only=True):
    """A new signing key, vouched for by a key that is already active."""

    key_id: str
    public_key: str
    name: str = ""


class KeyRevoked(Payload, frozen=True, kw_only=True):
    """A key stops being valid for every event after this one."""

    key_id: str
    reason: str
