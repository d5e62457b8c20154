"""Exit codes: the one table, used by every command."""

from __future__ import annotations

from enum import IntEnum

from kei.errors import (
    CatalogError,
    ConcurrencyError,
    ContentionError,
    FallbackCycleError,
    InputError,
    KeiError,
    KeyFileError,
    LedgerStateError,
    StoreError,
    UnknownFilterError,
    VerificationError,
)


class Exit(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    STORE = 3
    TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: lost a race every retry; run it again
    INTERNAL = 70  # a bug in kei (EX_SOFTWARE): `kei: internal error: ...`, one line


def exit_code_for(error: KeiError) -> Exit:
    """Map an error family to its exit code."""
    if isinstance(error, ContentionError | ConcurrencyError):
        return Exit.TEMPFAIL  # a lost race is never a usage error
    if isinstance(error, StoreError):
        return Exit.STORE
    if isinstance(error, VerificationError):
        return Exit.FINDINGS
    if isinstance(error, InputError | KeyFileError | LedgerStateError):
        return Exit.USAGE
    return Exit.USAGE


# ``kei models`` keeps upstream kei-model's codes where they differ from the table
# above, because scripts around kei-model test them: 1 = a bad catalog file or an
# unknown provider/cap/status filter; 3 = a fallback cycle. Unknown model, unknown
# primary and "no match" are 2 in both tables.
MODELS_EXITS: tuple[tuple[type[KeiError], int], ...] = (
    (CatalogError, 1),
    (UnknownFilterError, 1),
    (FallbackCycleError, 3),
)


def models_exit_code_for(error: KeiError) -> int:
    """The exit code of a ``kei models`` error: upstream's where it differs."""
    code = next((c for kind, c in MODELS_EXITS if isinstance(error, kind)), None)
    return int(exit_code_for(error)) if code is None else code
