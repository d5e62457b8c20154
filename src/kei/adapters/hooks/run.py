"""``kei hook claude-code`` end to end: read, parse, open the ledger, record, log.

Whatever happens, the caller exits 0 and prints nothing: a hook that failed must not
block or confuse the agent it watches. A payload that cannot be read or parsed
appends nothing; a failure after that (no ledger, no key, a rule refused) appends
nothing either, since every append is one batch. Each failure is one line in
``$KEI_HOME/hook.log`` (``hooklog.py``). Heavy modules are imported inside
:func:`run_claude_hook`, after the payload is known to mean something.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from msgspec import Struct

from kei.adapters.hooks.hooklog import log_failure
from kei.adapters.hooks.payload import parse_payload, read_payload
from kei.app.hooks.calls import CLOSE_EVENTS, FORK_EVENTS, ClaudeCall
from kei.app.ledger.retrying import RetryPolicy

log = logging.getLogger(__name__)
BUSY_WAIT_S: Final = 20.0  # within Claude Code's hook timeout kei installs (30 s)
BUSY_SIGNS: Final = ("too many clients", "remaining connection slots")


class HookTarget(Struct, frozen=True):
    """Where a hook writes: the settings the CLI resolved, reduced to what it needs."""

    home: Path
    db_url: str
    key_path: Path
    synchronous: str
    retry: RetryPolicy


def run_claude_hook(stdin: IO[bytes], target: Callable[[], HookTarget], fallback_home: Path) -> int:
    """Record one payload from ``stdin``; the events appended (0 on any failure).

    ``target`` is called only for a payload that means something, so its errors (an
    unusable ``KEI_HOME``) are logged under ``fallback_home``."""
    where = "claude-code"
    home = fallback_home
    try:
        call = parse_payload(read_payload(stdin))
        where = f"claude-code {call.event} {call.tool_use_id or '-'}"
        if not _means_something(call):
            return 0
        resolved = target()
        home = resolved.home
        return _record_when_let_in(call, resolved)
    except Exception as exc:  # the hook's contract: log it, never raise
        log_failure(home, where, _one_line(exc))
        return 0


def _means_something(call: ClaudeCall) -> bool:
    return (call.event in FORK_EVENTS and call.about_agent) or call.event in CLOSE_EVENTS


def _record_when_let_in(call: ClaudeCall, target: HookTarget) -> int:
    """:func:`_record`, tried again while PostgreSQL turns connections away (a burst of
    parallel hooks can exceed ``max_connections``), for at most ``BUSY_WAIT_S`` in all;
    any other failure is final at once (a server that is down must not hold every
    agent's hook for long). Recording is idempotent, so a whole call may run again."""
    from kei.errors import StoreError

    deadline = time.monotonic() + BUSY_WAIT_S
    pause = 0.05
    while True:
        try:
            return _record(call, target)
        except StoreError as exc:
            busy = any(sign in str(exc) for sign in BUSY_SIGNS)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(pause * 2, 1.0)


def _record(call: ClaudeCall, target: HookTarget) -> int:
    from kei.adapters.files.keyfile import load_key
    from kei.adapters.hooks.git import current_branch
    from kei.app.hooks.recording import record
    from kei.app.ledger.ledger import Ledger

    ledger = Ledger.open(
        target.db_url,
        key=load_key(target.key_path),
        synchronous=target.synchronous,
        retry=target.retry,
    )
    try:
        done = record(ledger, call, lambda: current_branch(call.cwd), int(time.time()))
    finally:
        ledger.close()
    for note in done.notes:
        log_failure(target.home, f"claude-code {call.event} {call.tool_use_id or '-'}", note)
    return done.appended


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    hint = getattr(exc, "hint", None)
    message = f"{text} ({hint})" if text and hint else text or type(exc).__name__
    return " ".join(message.split())
