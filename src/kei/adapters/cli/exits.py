"""Exit codes: kei's table, and the upstream tables two command groups keep, all here.

Every command's errors go through ``context.handled(ctx, table=...)``: a group that
keeps an upstream tool's codes passes that tool's table, whose entries are tried
first; whatever it does not name gets kei's code.
"""

from __future__ import annotations

from enum import IntEnum

from kei.errors import (
    CatalogError,
    ConcurrencyError,
    ContentionError,
    FallbackCycleError,
    KeiError,
    LlmError,
    MigrationError,
    ModelNotServedError,
    NetError,
    NoBackendAvailableError,
    NoCompatibleBackendError,
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


# An error family and its exit code; the first entry the error is an instance of wins.
ExitTable = tuple[tuple[type[KeiError], int], ...]

# kei's own codes. A lost race is never a usage error; input, key-file and ledger-state
# errors, and anything else, are usage errors (``Exit.USAGE``).
KEI_EXITS: ExitTable = (
    (ContentionError, Exit.TEMPFAIL),
    (ConcurrencyError, Exit.TEMPFAIL),
    (StoreError, Exit.STORE),
    (VerificationError, Exit.FINDINGS),
)

# ``kei models`` keeps upstream kei-model's codes where they differ from kei's, because
# scripts around kei-model test them: 1 = a bad catalog file or an unknown
# provider/cap/status filter; 3 = a fallback cycle. Unknown model, unknown primary and
# "no match" are 2 in both tables.
MODELS_EXITS: ExitTable = (
    (CatalogError, 1),
    (UnknownFilterError, 1),
    (FallbackCycleError, 3),
)

# ``kei llm`` keeps upstream kei-llm-router's codes: 2 no backend available or no
# compatible backend; 3 the backend does not have the model; 1 a probe or I/O failure
# (unreachable, timeout, broken answer).
LLM_EXITS: ExitTable = (
    (NoBackendAvailableError, 2),
    (NoCompatibleBackendError, 2),
    (ModelNotServedError, 3),
    (LlmError, 1),
)

# ``kei migrate`` (and ``kei import kei-migrate``): a migration that failed, a partial
# run, refused drift and ``verify``'s disagreements are findings about the database (1),
# as ``kei verify-chain``'s are about the log.
MIGRATE_EXITS: ExitTable = ((MigrationError, 1),)

# ``kei net``: a tunnel backend that cannot be asked (``wg`` missing, a socket that does
# not answer) is a finding about the machine (1), as a failed migration is.
NET_EXITS: ExitTable = ((NetError, 1),)


def exit_code_for(error: KeiError, table: ExitTable = ()) -> int:
    """The exit code of ``error``: ``table``'s where it names the error, else kei's."""
    for kind, code in (*table, *KEI_EXITS):
        if isinstance(error, kind):
            return int(code)
    return int(Exit.USAGE)
