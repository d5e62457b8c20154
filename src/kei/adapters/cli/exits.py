"""Exit codes: the one table, used by every command."""

from __future__ import annotations

from enum import IntEnum

from kei.errors import (
    InputError,
    KeiError,
    KeyFileError,
    LedgerStateError,
    StoreError,
    VerificationError,
)


class Exit(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    STORE = 3


def exit_code_for(error: KeiError) -> Exit:
    """Map an error family to its exit code."""
    if isinstance(error, StoreError):
        return Exit.STORE
    if isinstance(error, VerificationError):
        return Exit.FINDINGS
    if isinstance(error, InputError | KeyFileError | LedgerStateError):
        return Exit.USAGE
    return Exit.USAGE
