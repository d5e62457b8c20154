"""From a rule and what triggered it to the ``notify.requested`` event that asks for it.

The follower (``kei.app.notify.follower``) and the checks hand over the trigger's
values; this module fills the rule's template, cuts the texts to size and derives the
notification's id (``kei.domain.notify.ids``), so two followers given the same trigger
build byte-identical requests on the same stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from kei.domain.events.notify import Cause, NotifyRequested
from kei.domain.events.payload import Payload
from kei.domain.notify.clip import BODY_MOST, SUBJECT_MOST, clip_text
from kei.domain.notify.ids import notification_id
from kei.domain.notify.rules import Rule


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """What a rule fired on: the id's parts, the signed coordinates of the event (for
    ``stalled``: the agent's last event), its time and the template's values."""

    cause: Cause
    key: tuple[str | int, ...]
    ts_us: int
    values: Mapping[str, Any]
    event_type: str | None = None
    stream: str | None = None
    version: int | None = None


def event_values(
    payload: Payload, *, event_type: str, stream: str, version: int, position: int, time: str
) -> dict[str, Any]:
    """A logged event's template values: its payload's fields, then ``event_type``,
    ``stream``, ``version``, ``position`` and ``time`` where the payload has no field
    of that name."""
    values: dict[str, Any] = {
        "event_type": event_type, "stream": stream, "version": version, "position": position,
        "time": time,
    }  # fmt: skip
    values.update(msgspec.structs.asdict(payload))
    return values


def event_trigger(
    rule: Rule, values: Mapping[str, Any], *, stream: str, version: int, ts_us: int
) -> Trigger:
    """The trigger of ``rule`` on the logged event at ``stream:version``."""
    return Trigger(
        cause="event", key=(rule.id, stream, version), ts_us=ts_us, values=values,
        event_type=str(values.get("event_type")), stream=stream, version=version,
    )  # fmt: skip


def request(rule: Rule, trigger: Trigger, channel_kind: str) -> NotifyRequested:
    """The request ``rule`` makes for ``trigger`` on its channel (of ``channel_kind``)."""
    values = {**trigger.values, "rule": rule.id}
    subject = clip_text(rule.subject.render(values), SUBJECT_MOST).strip()
    if not subject:
        subject = f"{rule.id}: {trigger.event_type or trigger.cause}"
    expire = rule.expire_after_s
    return NotifyRequested(
        notification_id=notification_id(trigger.cause, *trigger.key),
        cause=trigger.cause, rule_id=rule.id, channel=rule.channel, channel_kind=channel_kind,
        severity=rule.severity, subject=subject,
        body_text=clip_text(rule.body.render(values), BODY_MOST), tags=rule.tags,
        trigger_type=trigger.event_type, trigger_stream=trigger.stream,
        trigger_version=trigger.version,
        not_after_us=None if expire is None else trigger.ts_us + expire * 1_000_000,
    )  # fmt: skip
