"""Notification rules: which events (or scheduled checks) notify which channel, how.

A rule is one ``[[rules]]`` table of ``$KEI_HOME/notify.toml``::

    [[rules]]
    id = "agent-failed"                 # names the rule in ids and events; never reuse
    on = "agent.failed"                 # an event type, a glob ("agent.*") or a list
    where = { reason = { ne = "" } }    # optional: see kei.domain.notify.where
    channel = "ops-slack"               # a configured channel
    severity = "error"                  # info | success | warn | error (default info)
    template = { subject = "Agent {agent_id} failed", body = "{reason}" }
    tags = ["agents"]                   # optional
    expire_after_s = 3600               # optional: give up if not sent within an hour

Two checks stand in for events: ``on = "check:verify-chain"`` (``kei notify run``
runs ``verify-chain`` every ``every_s`` seconds, ``quick = true`` for links and hashes
only, and notifies each finding) and ``on = "check:stalled-agent"`` (a running agent
whose stream has had no event for ``idle_s`` seconds).

Rules never fire on ``notify.*`` events (a notification about a notification could
loop); ``on`` may not name them. Every mistake is one ``NotifyConfigError`` line naming the
file, the rule and the key; a template may only name fields the matched event types
have (plus ``event_type``, ``stream``, ``version``, ``position``, ``time``, ``rule``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from fnmatch import fnmatchcase
from typing import Any, Final

import msgspec
from msgspec import Struct

from kei.domain.events.notify import NOTIFY_TYPES
from kei.domain.events.registry import REGISTRY
from kei.domain.notify.message import SEVERITIES, Severity
from kei.domain.notify.template import Template, compile_template
from kei.domain.notify.where import Condition, parse_where
from kei.errors import NotifyConfigError

CHECK_VERIFY: Final = "check:verify-chain"
CHECK_STALLED: Final = "check:stalled-agent"
EVENT_FIELDS: Final = frozenset({"event_type", "stream", "version", "position", "time", "rule"})
CHECK_FIELDS: Final = {
    CHECK_VERIFY: frozenset({"kind", "position", "detail", "findings", "time", "rule"}),
    CHECK_STALLED: frozenset(
        {"agent_id", "stream", "version", "idle_s", "last_type", "last_time", "time", "rule"}
    ),
}
RULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
TAG: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,64}\Z")
MOST_RULES: Final = 500
MOST_PATTERNS: Final = 32
_COMMON: Final = {"id", "on", "where", "channel", "severity", "template", "tags", "enabled",
                  "expire_after_s"}  # fmt: skip
_KEYS: Final = {
    None: _COMMON,
    CHECK_VERIFY: _COMMON | {"every_s", "quick"},
    CHECK_STALLED: _COMMON | {"idle_s"},
}
_BOUNDS: Final = {"expire_after_s": (1, 10 * 366 * 86400), "every_s": (60, 366 * 86400),
                  "idle_s": (60, 366 * 86400)}  # fmt: skip
HINT: Final = "see docs/notify.md, Rules"


class Rule(Struct, frozen=True, kw_only=True):
    """One parsed rule; see the module docstring."""

    id: str
    on: tuple[str, ...]
    check: str | None = None
    where: tuple[Condition, ...] = ()
    channel: str
    severity: Severity = "info"
    subject: Template
    body: Template
    tags: tuple[str, ...] = ()
    enabled: bool = True
    expire_after_s: int | None = None
    every_s: int = 3600
    idle_s: int = 1800
    quick: bool = False

    def wants(self, event_type: str) -> bool:
        """Does this rule look at events of ``event_type``?"""
        if self.check is not None or not self.enabled or event_type in NOTIFY_TYPES:
            return False
        return any(fnmatchcase(event_type, p) for p in self.on)

    def matches(self, event_type: str, values: Mapping[str, Any]) -> bool:
        return self.wants(event_type) and all(c.holds(values) for c in self.where)


def payload_fields() -> dict[str, frozenset[str]]:
    """Every registered event type and the names of its payload's fields."""
    return {
        name: frozenset(f.name for f in msgspec.structs.fields(t.payload_type))
        for name, t in REGISTRY.items()
    }


class _BadKeyError(Exception):
    """A problem with one key of one rule (turned into the one-line InputError)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


def parse_rules(
    entries: object,
    source: str,
    *,
    fields: Mapping[str, frozenset[str]] | None = None,
    channels: Collection[str] | None = None,
) -> tuple[Rule, ...]:
    """The ``[[rules]]`` array of ``source``. ``fields``: the event types rules may
    name, with their payload fields (default: the registry's); ``channels``: the
    configured channel names (None: not checked)."""
    known = payload_fields() if fields is None else fields
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise NotifyConfigError(
            f"{source}: rules must be an array of tables ([[rules]])", hint=HINT
        )
    if len(entries) > MOST_RULES:
        raise NotifyConfigError(f"{source}: more than {MOST_RULES} rules", hint=HINT)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        name = entry.get("id")
        who = f"rule {name!r}" if isinstance(name, str) and name else f"rule #{i + 1}"
        try:
            rule = _rule(entry, known, channels)
        except _BadKeyError as bad:
            raise NotifyConfigError(f"{source}: {who}: key {bad.key}: {bad}", hint=HINT) from None
        if rule.id in seen:
            raise NotifyConfigError(f"{source}: {who}: key id: used by an earlier rule", hint=HINT)
        seen.add(rule.id)
        rules.append(rule)
    return tuple(rules)


def _rule(
    entry: dict[str, Any], known: Mapping[str, frozenset[str]], channels: Collection[str] | None
) -> Rule:
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
        raise _BadKeyError("id", "needs 1-64 letters, digits, '.', '_' or '-', starting with one of the "
                   "first two")  # fmt: skip
    on = _patterns(entry.get("on"))
    check = on[0] if on[0] in CHECK_FIELDS else None
    unknown = sorted(set(entry) - _KEYS[check])
    if unknown:
        raise _BadKeyError(unknown[0], f"not a rule key (keys: {', '.join(sorted(_KEYS[check]))})")
    allowed = CHECK_FIELDS[check] if check is not None else _event_fields(on, known)
    template = entry.get("template")
    if not isinstance(template, dict) or "subject" not in template:
        raise _BadKeyError("template", "needs a table with subject (and optionally body)")
    extra = sorted(set(template) - {"subject", "body"})
    if extra:
        raise _BadKeyError(f"template.{extra[0]}", "a template has only subject and body")
    subject = _template("template.subject", template["subject"], allowed)
    body = _template("template.body", template.get("body", ""), allowed)
    where = _where(entry.get("where", {}), allowed)
    return Rule(
        id=rule_id, on=on, check=check, where=where, channel=_channel(entry, channels),
        severity=_severity(entry.get("severity", "info")), subject=subject, body=body,
        tags=_tags(entry.get("tags", [])), enabled=_flag(entry, "enabled", True),
        expire_after_s=_seconds(entry, "expire_after_s", None),
        every_s=_seconds(entry, "every_s", 3600) or 3600,
        idle_s=_seconds(entry, "idle_s", 1800) or 1800, quick=_flag(entry, "quick", False),
    )  # fmt: skip


def _patterns(on: object) -> tuple[str, ...]:
    items = [on] if isinstance(on, str) else on
    if not isinstance(items, list) or not items or len(items) > MOST_PATTERNS:
        raise _BadKeyError(
            "on", f"needs an event type, a glob or a list of 1-{MOST_PATTERNS} of them"
        )
    for p in items:
        if not isinstance(p, str) or not p or len(p) > 256 or not p.isprintable():
            raise _BadKeyError("on", f"{p!r} is not an event type or glob")
        if p.startswith("notify."):
            raise _BadKeyError("on", "rules cannot fire on notify.* events (a notification loop)")
        if p in CHECK_FIELDS and len(items) > 1:
            raise _BadKeyError("on", f"{p} stands alone, not in a list")
        if p.startswith("check:") and p not in CHECK_FIELDS:
            raise _BadKeyError("on", f"unknown check {p!r} (checks: {', '.join(CHECK_FIELDS)})")
    return tuple(items)


def _event_fields(on: tuple[str, ...], known: Mapping[str, frozenset[str]]) -> frozenset[str]:
    matched = [t for t in known if t not in NOTIFY_TYPES and any(fnmatchcase(t, p) for p in on)]
    for p in on:
        if not any(fnmatchcase(t, p) for t in known if t not in NOTIFY_TYPES):
            raise _BadKeyError("on", f"{p!r} matches no event type kei knows")
    return EVENT_FIELDS.union(*(known[t] for t in matched))


def _template(key: str, text: object, allowed: frozenset[str]) -> Template:
    try:
        template = compile_template(text)
    except ValueError as exc:
        raise _BadKeyError(key, str(exc)) from None
    for name in template.names:
        if name not in allowed:
            raise _BadKeyError(key, f"{{{name}}} is not a field of the events or check this rule "
                       f"matches (fields: {', '.join(sorted(allowed))})")  # fmt: skip
    return template


def _where(data: object, allowed: frozenset[str]) -> tuple[Condition, ...]:
    try:
        conditions = parse_where(data)
    except ValueError as exc:
        raise _BadKeyError("where", str(exc)) from None
    for c in conditions:
        if c.path[0] not in allowed:
            raise _BadKeyError(
                "where", f"{c.path[0]!r} is not a field of the events this rule matches"
            )
    return conditions


def _channel(entry: dict[str, Any], channels: Collection[str] | None) -> str:
    name = entry.get("channel")
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 64:
        raise _BadKeyError("channel", "needs the name of a configured channel")
    if channels is not None and name not in channels:
        have = ", ".join(sorted(channels)) or "none"
        raise _BadKeyError("channel", f"no channel named {name!r} (configured: {have})")
    return name


def _severity(value: object) -> Severity:
    for s in SEVERITIES:
        if value == s:
            return s
    raise _BadKeyError("severity", f"{value!r} is not one of {', '.join(SEVERITIES)}")


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 16:
        raise _BadKeyError("tags", "needs a list of at most 16 tags")
    for tag in value:
        if not isinstance(tag, str) or not TAG.match(tag) or not tag.strip():
            raise _BadKeyError("tags", f"{tag!r} is not a tag (1-64 printable characters)")
    return tuple(value)


def _flag(entry: dict[str, Any], key: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise _BadKeyError(key, "needs true or false")
    return value


def _seconds(entry: dict[str, Any], key: str, default: int | None) -> int | None:
    value = entry.get(key, default)
    if value is None:
        return None
    low, high = _BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _BadKeyError(key, f"needs a whole number of seconds from {low} to {high}")
    return value
