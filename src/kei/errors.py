"""The single exception tree of kei: every exception class kei defines lives here.

Every error a user can cause or meet derives from :class:`KeiError`, so a caller
catches "anything kei refused" in one place and the CLI maps each family to one
exit code (``adapters/cli/exits.py``; ``kei models`` and ``kei llm`` keep upstream's
codes for a few classes). Families are grouped by who is at fault::

    KeiError
    ├── InputError                   the caller: bad argument, malformed value, unknown type
    │   ├── ConcurrencyError         an append lost an optimistic-concurrency race
    │   ├── CatalogError             a model-catalog file is malformed or breaks a rule
    │   ├── UnknownFilterError       a catalog filter names no provider, capability, status
    │   ├── UnknownModelError        no catalog model has this id or alias
    │   ├── NoMatchError             no catalog model fits the role, caps and budget
    │   ├── FallbackCycleError       a catalog fallback chain revisits a model
    │   ├── LeakMatrixError          a leak-matrix file is malformed or will not compile
    │   ├── LeakBlockedError         a write matched a leak ``block`` rule
    │   ├── NotifyConfigError        ``notify.toml`` or a notify environment variable is unusable
    │   ├── NetConfigError           ``net.toml`` is unusable: a tunnel table, a key file
    │   ├── ModelNotServedError      a local LLM backend does not have the model
    │   ├── NoCompatibleBackendError this machine can run no local LLM backend
    │   └── NoBackendAvailableError  no local LLM backend serves the model or a fallback
    ├── ContentionError              a write still lost its races after every retry (temporary)
    │   └── KeysChangedError         the key registry moved while a batch was being appended
    ├── KeyFileError                 a key file is missing, unreadable, malformed or too open
    ├── StoreError                   the environment: the store cannot be opened or used
    │   └── StoreNotInitialisedError
    ├── LedgerStateError             the ledger forbids the operation (no active key, exists)
    │   └── AgentRuleError           the agent rules forbid the command
    │       ├── UnknownAgentError    the agent was never forked
    │       ├── DuplicateAgentError  a fork reuses an agent id
    │       ├── DnaCollisionError    a fork reuses another agent's DNA
    │       ├── TransitionError      the move is not in the transition table
    │       └── AlreadyAmendedError  the cost event was already superseded
    ├── MigrationError               kei migrate: SQL failed, a partial run waits, drift refused
    ├── NetError                     a tunnel backend could not be asked or did not answer
    ├── VerificationError            the data: a stored event failed a check (has position)
    │   └── BundleError              a bundle is refused (also an InputError: the caller gave it)
    └── LlmError                     a local LLM backend could not answer
        ├── BackendUnreachableError  nothing answers at its address
        ├── BackendTimeoutError      no connection or answer within the timeout
        ├── BackendResponseError     an HTTP error, broken JSON, a stream cut short
        └── PlatformError            the backend cannot run on this machine

    ValueError                       text that is not in a kei format (callers catch ValueError)
    ├── MalformedEnvelopeError       a stored ``state`` blob too short or of unknown format
    ├── CheckpointFormatError        not a well-formed kei checkpoint
    └── ProofFormatError             not a well-formed kei proof

Third-party exceptions (sqlite3, psycopg, nacl, msgspec, httpx) never escape an
adapter; they are chained with ``from``. Programmer mistakes stay TypeError/ValueError.
The three format errors stay ValueErrors, not KeiErrors: the pure parsers raise them,
and their callers (some catching plain ValueError) report a finding or a bad file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


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


# -- InputError: the model catalog (``kei models``; exit codes in ``cli/exits.MODELS_EXITS``)


class CatalogError(InputError):
    """A catalog file is malformed or breaks a rule (upstream exit 1)."""


class UnknownFilterError(InputError):
    """A filter names a provider, capability or status that does not exist (upstream exit 1)."""


class UnknownModelError(InputError):
    """No model has this id or alias (upstream exit 2)."""


class NoMatchError(InputError):
    """``resolve`` found no model for the role, caps and budget (upstream exit 2)."""


class FallbackCycleError(InputError):
    """A fallback chain revisits a model (upstream exit 3)."""


# -- InputError: the leak matrix


class LeakMatrixError(InputError):
    """A leak-matrix file is malformed or holds a rule kei cannot compile."""


class LeakBlockedError(InputError):
    """A write was refused because a field matched a ``block`` rule."""


# -- InputError: notifications


class NotifyConfigError(InputError):
    """A notification channel's configuration (``notify.toml``, environment) is unusable;
    the message names the file, the channel and the key, never a secret's value."""


class NetConfigError(InputError):
    """A tunnel's settings (``net.toml``, a key file they name) are unusable; the message
    names the file, the tunnel and the key, never a key's value."""


# -- InputError: local LLM backends


class ModelNotServedError(InputError):
    """The backend does not have the requested model (HTTP 404, no such file)."""


class NoCompatibleBackendError(InputError):
    """Local inference is required and this machine cannot run any backend."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"no compatible local backend on this machine: {reason}",
            hint="drop --require-local to let the caller use a remote model",
        )
        self.reason = reason


class NoBackendAvailableError(InputError):
    """No viable backend serves the model or any fallback of it."""

    def __init__(
        self, model_id: str, tried: Sequence[str], models: Sequence[str], notes: Sequence[str]
    ) -> None:
        walked = f"; models tried: {', '.join(models)}" if len(models) > 1 else ""
        super().__init__(
            f"no local backend serves {model_id!r} (backends tried: {', '.join(tried)}{walked})",
            hint="; ".join(notes) or "see `kei llm backends`, or pull the model first",
        )
        self.model_id = model_id
        self.tried = tuple(tried)
        self.models_tried = tuple(models)


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


class AgentRuleError(LedgerStateError):
    """The ledger's agent state forbids the command."""


class UnknownAgentError(AgentRuleError):
    """The command names an agent that was never forked."""


class DuplicateAgentError(AgentRuleError):
    """A fork reuses an agent id."""


class DnaCollisionError(AgentRuleError):
    """A fork reuses another agent's DNA."""


class TransitionError(AgentRuleError):
    """The move is not in the transition table."""


class AlreadyAmendedError(AgentRuleError):
    """The cost event was already superseded by an amendment."""


class MigrationError(KeiError):
    """``kei migrate`` will not go on as the files and the database stand: a migration's
    SQL failed, a partial run waits to be resolved, an applied file or tracker row was
    edited, or a pending version is older than one applied. The log says what happened."""


class NetError(KeiError):
    """A tunnel backend (``wg``, strongSwan's VICI socket, OpenVPN's management socket)
    could not be reached, timed out, or answered something kei cannot read."""


class VerificationError(KeiError):
    """A stored event failed verification; carries where and what."""

    def __init__(self, message: str, *, position: int | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.kind = kind


_RELATIONS = frozenset({"forked", "other-ledger", "gap"})


class BundleError(VerificationError, InputError):
    """A bundle is refused: unsafe, damaged, inconsistent, or not what its manifest says.

    One class for every archive kei reads (its own bundles for ``replay`` and
    ``hibernate inspect``, upstream kei-hibernate bundles for ``import``) and for rows
    offered to a log that do not fit it (``events import``). It is data that failed a
    check (a VerificationError: exit 1) which the caller handed in (an InputError, so
    code that catches bad input catches it too).

    ``kind`` names the rule (``unsafe-path``, ``link``, ``special``, ``duplicate``,
    ``unlisted``, ``missing``, ``size``, ``hash``, ``version``, ``bomb``, ``truncated``,
    ``signature``, ``unknown-key``, ``events``, ``forked``, ``other-ledger``, ``gap``,
    ``digest``, ...), shown by ``kei hibernate inspect --json``; ``entry`` the archive
    entry at fault, when one is.
    """

    def __init__(
        self, message: str, *, kind: str, entry: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, kind=kind)
        self.entry = entry
        if hint is not None:
            self.hint = hint
        elif kind in _RELATIONS:
            self.hint = "nothing was written"
        else:
            self.hint = "nothing was written; the bundle cannot be used as it is"


class LlmError(KeiError):
    """A backend could not answer: unreachable, too slow, or it answered wrongly."""


class BackendUnreachableError(LlmError):
    """Nothing answers at the backend's address (connection refused, no such host)."""


class BackendTimeoutError(LlmError):
    """The backend did not connect or answer within its timeout."""


class BackendResponseError(LlmError):
    """The backend answered with an HTTP error, broken JSON, or a stream cut short."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status


class PlatformError(LlmError):
    """The backend cannot run on this machine (MLX off Apple Silicon, no binary)."""


# -- not KeiErrors: text that is not in a kei format (see the module docstring)


class MalformedEnvelopeError(ValueError):
    """The state blob is too short or has an unknown format byte."""


class CheckpointFormatError(ValueError):
    """The text is not a well-formed kei checkpoint."""


class ProofFormatError(ValueError):
    """The text is not a well-formed kei proof."""
