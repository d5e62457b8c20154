"""The one retry policy of every write that can lose an optimistic-concurrency race.

A kei write reads (a stream's version, a read model), decides through the domain
rules, and appends with ``expected_version``. When another writer appended first,
the store refuses the batch whole (``ConcurrencyError``) and nothing is written; the
write is then run again from the read, so the decision is taken on what the log
now holds. Only a rule the new state breaks is an error; a write that still loses
after ``RetryPolicy.attempts`` tries raises ``ContentionError`` (exit 75).

Waits grow exponentially with full jitter (AWS's "exponential backoff and jitter"):
parallel writers that clashed once spread out instead of clashing again in step.

Built on ``tenacity`` rather than ``stamina``: stamina is a thin, opinionated layer
over tenacity whose switches (``stamina.set_active``, its instrumentation hooks) are
process-wide, while kei wants the budget passed explicitly with the ledger (tests
and ``KEI_WRITE_ATTEMPTS`` set it per ledger, with no global state), and tenacity's
``Retrying`` takes exactly that: stop, wait, retry predicate and sleep per call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from msgspec import Struct

from kei.errors import ConcurrencyError, ContentionError, KeiError
from kei.limits import LIMITS

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["DEFAULT_ATTEMPTS", "RetryPolicy", "retry_write"]

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_ATTEMPTS: Final = 12


class RetryPolicy(Struct, frozen=True):
    """How hard a write tries before it gives up with ``ContentionError``.

    ``attempts`` counts every try, the first included (1: never retry). The wait
    after the n-th try is uniform in ``[0, min(wait_max, wait_initial * 2**(n-1))]``
    seconds; with the defaults a losing command waits at most 1.7 s in all.
    """

    attempts: int = DEFAULT_ATTEMPTS
    wait_initial: float = 0.002
    wait_max: float = 0.4
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= LIMITS.max_write_attempts:
            raise ValueError(
                f"attempts must be within 1..{LIMITS.max_write_attempts}, got {self.attempts}"
            )


def retry_write(
    policy: RetryPolicy,
    write: Callable[[], T],
    *,
    what: str,
    on: type[KeiError] = ConcurrencyError,
    left: str = "nothing appended",
) -> T:
    """Run ``write`` until it does not raise ``on``, at most ``policy.attempts`` times.

    ``write`` must redo its reads and its decision on every call: a retry that
    re-sent the same batch would clash again, or worse, skip a rule. Any other
    error (a rule refused, a bad input) stops at once. ``what`` names the thing
    that kept changing, for the one-line error; ``left`` says what the failed
    command leaves in the log.
    """
    # Most writes win their first try: that one runs before tenacity is imported (a
    # short command's import of it costs several ms); a lost race replays through
    # the policy below as its first, already failed, attempt.
    try:
        return write()
    except on as exc:
        lost: list[BaseException] = [exc]

    def attempt() -> T:
        if lost:
            raise lost.pop()
        return write()

    from tenacity import (
        RetryError,
        Retrying,
        retry_if_exception_type,
        stop_after_attempt,
        wait_random_exponential,
    )

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_random_exponential(multiplier=policy.wait_initial, max=policy.wait_max),
        retry=retry_if_exception_type(on),
        sleep=policy.sleep,
        before_sleep=_log_retry,
    )
    try:
        return retrying(attempt)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise ContentionError(
            f"{what} kept changing while this command ran ({policy.attempts} tries, other "
            f"writers won each race); {left}",
            hint="run the command again (exit 75: a temporary failure)",
        ) from cause


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    log.debug("write lost a race (try %d): %s; retrying", state.attempt_number, error)
