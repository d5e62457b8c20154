"""The single exception tree of kei.

Every error a user can cause or meet derives from :class:`KeiError`, so a caller
catches "anything kei refused" in one place and the CLI maps each family to one
exit code (``adapters/cli/exits.py``). Families are grouped by who is at fault::

    KeiError
    ├── InputError            the caller: bad argument, malformed value, unknown type
    │   └── ConcurrencyError  an append lost an optimistic-concurrency race
    ├── ContentionError       a write still lost its races after every retry (temporary)
    │   └── KeysChangedError  the key registry moved while a batch was being appended
    ├── KeyFileError          a key file is missing, unreadable, malformed or too open
    ├── StoreError            the environment: the store cannot be opened or used
    │   └── StoreNotInitialisedError
    ├── LedgerStateError      the ledger forbids the operation (no active key, exists)
    └── VerificationError     the data: a stored event failed a check (has position)

Third-party exceptions (sqlite3, psycopg, nacl, msgspec) never escape an adapter;
they are chained with ``from``. Programmer mistakes stay TypeError/ValueError.
"""

from __future__ import annotations


class KeiError(Exception):
    """Root of every error kei raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class InputError(KeiError):
    """The caller passed something kei cannot accept."""


class ConcurrencyError(InputError):
    """Another writer appended to the same stream at the expected version first."""


class ContentionError(KeiError):
    """A write kept losing optimistic-concurrency races until its retries ran out.

    Not the caller's fault and not a rule: running the same command again later
    is expected to work. The CLI exits 75 (EX_TEMPFAIL) for it; nothing was appended.
    """


class KeysChangedError(ContentionError):
    """The ``kei.keys`` stream moved after this ledger folded its key registry.

    Raised inside the append transaction (nothing is appended); ``Ledger.append``
    refolds the registry, checks its signing key again and retries.
    """


class KeyFileError(KeiError):
    """A private key file cannot be used as it is."""


class StoreError(KeiError):
    """The event store cannot be opened, reached or used."""


class StoreNotInitialisedError(StoreError):
    """The store exists or is reachable but holds no ledger yet."""


class LedgerStateError(KeiError):
    """The ledger's own state forbids the operation."""


class VerificationError(KeiError):
    """A stored event failed verification; carries where and what."""

    def __init__(self, message: str, *, position: int | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.kind = kind
