"""Notification ids: derived from what asked for the notification, never drawn.

A rule follower, a replay, a restarted ``kei notify run`` and a second notifier on
another host that see the same trigger must all name the same notification, so that
its ``notify.requested`` (appended at ``expected_version=0`` of ``notify/<id>``) lands
once and every other try is refused by the log itself. The id is therefore the
SHA-256 of the rule and of the trigger's *signed* coordinates: a logged event's
``stream`` and ``version`` (covered by its signature, unchanged by export, replay or
import), never its position (assigned by the store).

The hashed text is UTF-8, fields joined by a line feed, starting with a domain word so
the kinds of trigger can never collide::

    event\\n<rule id>\\n<trigger stream>\\n<trigger version>
    stalled\\n<rule id>\\n<agent's last stream>\\n<its version>
    verify\\n<rule id>\\n<finding kind>\\n<finding position>
    send\\n<key>          (kei notify send --key KEY; a fresh UUID without one)
    test\\n<key>

Rule ids and keys are identifiers (no control characters), so the line feed cannot be
forged inside a field. A verify finding is named by the position it was found at: it
describes a row, not an event the log vouches for.
"""

from __future__ import annotations

import hashlib

from kei.domain.events.notify import Cause


def notification_id(cause: Cause, *parts: str | int) -> str:
    """The 64-hex id of a notification asked for by ``cause`` with these parts."""
    text = "\n".join([cause, *(str(p) for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_notification_id(rule_id: str, stream: str, version: int) -> str:
    """A rule's notification about the logged event at ``stream:version``."""
    return notification_id("event", rule_id, stream, version)


def is_notification_id(text: str) -> bool:
    """Whether ``text`` is a whole id (64 lower-case hex digits)."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
