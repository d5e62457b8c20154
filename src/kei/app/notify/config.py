"""``$KEI_HOME/notify.toml``: the rules, each channel's delivery policy, the notifier.

The file's ``[channels.NAME]`` tables are the channel adapters' to read (URLs, tokens:
``channels_from``); this module reads the rest::

    [delivery.ops-sms]            # optional, per channel
    in_doubt = "abandon"          # "retry" (chat default) | "abandon" (sms default)
    max_attempts = 5              # default: [notifier] max_attempts

    [notifier]                    # all optional
    poll_s = 0.25                 # seconds between looks at the log when idle
    senders = 4                   # sends at once on a channel with no rate limit (chat)
    lease_s = 60                  # a claim is in doubt after this, or once its process died
    backoff_s = 2                 # first retry after 1-2 s, then doubling
    max_delay_s = 900             # longest wait between two attempts
    max_attempts = 8

    [[rules]]                     # kei.domain.notify.rules
    ...

Every mistake is one ``NotifyConfigError`` line naming the file, the table and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import Struct

from kei.adapters.notify.channel import Channel
from kei.adapters.notify.config import channels_from_data, notify_toml_path, read_notify_toml
from kei.domain.notify.policy import IN_DOUBT_CHOICES, DeliveryPolicy, default_in_doubt
from kei.domain.notify.rules import HINT, Rule, parse_rules
from kei.errors import NotifyConfigError

_NUMBERS: Final = {  # key: (least, most, is whole)
    "poll_s": (0.01, 60.0, False), "senders": (1, 64, True), "lease_s": (1.0, 86400.0, False),
    "backoff_s": (0.01, 3600.0, False), "max_delay_s": (0.1, 7 * 86400.0, False),
    "max_attempts": (1, 1000, True),
}  # fmt: skip


class NotifierSettings(Struct, frozen=True, kw_only=True):
    """The ``[notifier]`` table."""

    poll_s: float = 0.25
    senders: int = 4
    lease_s: float = 60.0
    backoff_s: float = 2.0
    max_delay_s: float = 900.0
    max_attempts: int = 8


class NotifyConfig(Struct, frozen=True, kw_only=True):
    """What ``notify.toml`` says, checked against the configured channels."""

    source: str
    rules: tuple[Rule, ...] = ()
    settings: NotifierSettings = NotifierSettings()
    delivery: Mapping[str, Mapping[str, Any]] = {}

    def policy(self, channel: Channel) -> DeliveryPolicy:
        """``channel``'s delivery policy: its ``[delivery.NAME]`` over the notifier's."""
        table = self.delivery.get(channel.name, {})
        s = self.settings
        return DeliveryPolicy(
            in_doubt=table.get("in_doubt", default_in_doubt(channel.kind)),
            max_attempts=table.get("max_attempts", s.max_attempts),
            backoff_s=s.backoff_s, max_delay_s=s.max_delay_s, lease_s=s.lease_s,
            min_severity=channel.min_severity,
        )  # fmt: skip


def config_path(home: Path) -> Path:
    return notify_toml_path(home)


def channels_from(
    data: Mapping[str, object], source: str, environ: Mapping[str, str]
) -> dict[str, Channel]:
    """The channels the file's ``[channels.*]`` and upstream's environment variables
    configure (the channel adapters' ``channels_from_data``)."""
    return channels_from_data(data, source, environ)


def load(path: Path, environ: Mapping[str, str]) -> tuple[dict[str, Channel], NotifyConfig]:
    """The channels and the rest of ``path``, read once (an absent file: only the
    environment's channels, no rules); on an error, no channel is left open."""
    data = read_notify_toml(path)
    channels = channels_from(data, str(path), environ)
    try:
        return channels, parse_config(data, str(path), channels)
    except BaseException:
        for channel in channels.values():
            channel.close()
        raise


def parse_config(
    data: Mapping[str, Any], source: str, channels: Mapping[str, Channel]
) -> NotifyConfig:
    """The parsed file (``data``), checked against ``channels``."""
    settings = _settings(data.get("notifier", {}), source)
    tables = data.get("delivery", {})
    if not isinstance(tables, dict):
        raise NotifyConfigError(f"{source}: delivery must be a table of [delivery.NAME]", hint=HINT)
    for name, table in tables.items():
        _check_delivery(name, table, source, channels)
    rules = parse_rules(data.get("rules", []), source, channels=list(channels))
    return NotifyConfig(source=source, rules=rules, settings=settings, delivery=tables)


def _settings(table: object, source: str) -> NotifierSettings:
    if not isinstance(table, dict):
        raise NotifyConfigError(f"{source}: notifier must be a table ([notifier])", hint=HINT)
    unknown = sorted(set(table) - set(_NUMBERS))
    if unknown:
        known = ", ".join(sorted(_NUMBERS))
        raise NotifyConfigError(f"{source}: [notifier]: key {unknown[0]}: not a notifier key "
                         f"(keys: {known})", hint=HINT)  # fmt: skip
    for key, value in table.items():
        _number(f"[notifier]: key {key}", key, value, source)
    return NotifierSettings(**table)


def _check_delivery(name: str, table: object, source: str, channels: Mapping[str, Channel]) -> None:
    if not isinstance(table, dict):
        raise NotifyConfigError(f"{source}: delivery.{name} must be a table", hint=HINT)
    if name not in channels:
        have = ", ".join(sorted(channels)) or "none"
        raise NotifyConfigError(f"{source}: [delivery.{name}]: no channel named {name!r} "
                         f"(configured: {have})", hint=HINT)  # fmt: skip
    unknown = sorted(set(table) - {"in_doubt", "max_attempts"})
    if unknown:
        raise NotifyConfigError(f"{source}: [delivery.{name}]: key {unknown[0]}: not a delivery key "
                         "(keys: in_doubt, max_attempts)", hint=HINT)  # fmt: skip
    where = f"[delivery.{name}]: key"
    value = table.get("in_doubt", "retry")
    if value not in IN_DOUBT_CHOICES:
        raise NotifyConfigError(f"{source}: {where} in_doubt: {value!r} is not one of "
                         f"{', '.join(IN_DOUBT_CHOICES)}", hint=HINT)  # fmt: skip
    if "max_attempts" in table:
        _number(f"{where} max_attempts", "max_attempts", table["max_attempts"], source)


def _number(where: str, key: str, value: object, source: str) -> None:
    low, high, whole = _NUMBERS[key]
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or (whole and not isinstance(number, int)) or not low <= number <= high:
        what = "a whole number" if whole else "a number"
        raise NotifyConfigError(f"{source}: {where}: needs {what} from {low} to {high}", hint=HINT)
