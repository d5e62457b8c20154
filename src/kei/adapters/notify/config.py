"""Channels from ``$KEI_HOME/notify.toml`` and from upstream's environment variables.

``notify.toml`` holds ``[channels.NAME]`` tables (this module) and ``[[rules]]``
(``kei.app.notify``). :func:`read_notify_toml` reads the file once, bounded, and returns
its raw data, so the rules and the channels come from the same read;
:func:`channels_from_data` builds the channels from that data, and
:func:`load_channels` does both. Each channel table has a ``kind`` and that kind's
settings (:data:`KEYS`); any value may be ``env:VAR``.

Upstream's variables define default channels when no channel of that name is
configured, so an upstream set-up works unchanged: ``SLACK_WEBHOOK_URL`` makes
``slack``, ``DISCORD_WEBHOOK_URL`` makes ``discord``, ``TELEGRAM_BOT_TOKEN`` with
``TELEGRAM_CHAT_ID`` (and ``TELEGRAM_API_BASE_URL``) make ``telegram``, and
``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM_NUMBER``,
``TWILIO_TO_NUMBER`` make ``sms``. One variable of a group set without the others is an
error naming the one missing. Secrets stay here and in the channel objects: never in
an event, never in an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from kei.adapters.files.toml import read_toml
from kei.adapters.notify.base import ChannelOptions
from kei.adapters.notify.channel import Channel
from kei.adapters.notify.discord import DiscordChannel
from kei.adapters.notify.settings import Settings
from kei.adapters.notify.slack import SlackChannel
from kei.adapters.notify.sms import DEFAULT_API_BASE as TWILIO_API
from kei.adapters.notify.sms import SmsChannel
from kei.adapters.notify.telegram import DEFAULT_API_BASE as TELEGRAM_API
from kei.adapters.notify.telegram import TelegramChannel
from kei.errors import NotifyConfigError

__all__ = [
    "ENV_DEFAULTS",
    "FILE_NAME",
    "KEYS",
    "MAX_NOTIFY_TOML_BYTES",
    "channels_from_data",
    "load_channels",
    "notify_toml_path",
    "read_notify_toml",
]

FILE_NAME: Final = "notify.toml"
MAX_NOTIFY_TOML_BYTES: Final = 1024 * 1024
ENVIRONMENT: Final = "environment"
_COMMON = frozenset({"kind", "timeout_s", "min_interval_s", "min_severity"})
KEYS: Final[dict[str, frozenset[str]]] = {
    "slack": _COMMON | {"url"},
    "discord": _COMMON | {"url"},
    "telegram": _COMMON | {"bot_token", "chat_id", "api_base"},
    "sms": _COMMON
    | {"account_sid", "auth_token", "from_number", "to_number", "api_base", "status_callback"},
    "apprise": _COMMON | {"url"},
}
ENV_DEFAULTS: Final[dict[str, tuple[str, dict[str, str], dict[str, str]]]] = {
    # channel name: (kind, {key: required variable}, {key: optional variable})
    "slack": ("slack", {"url": "SLACK_WEBHOOK_URL"}, {}),
    "discord": ("discord", {"url": "DISCORD_WEBHOOK_URL"}, {}),
    "telegram": (
        "telegram",
        {"bot_token": "TELEGRAM_BOT_TOKEN", "chat_id": "TELEGRAM_CHAT_ID"},
        {"api_base": "TELEGRAM_API_BASE_URL"},
    ),
    "sms": (
        "sms",
        {
            "account_sid": "TWILIO_ACCOUNT_SID",
            "auth_token": "TWILIO_AUTH_TOKEN",
            "from_number": "TWILIO_FROM_NUMBER",
            "to_number": "TWILIO_TO_NUMBER",
        },
        {},
    ),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def notify_toml_path(home: Path) -> Path:
    """Where the notification configuration lives in a kei home."""
    return home / FILE_NAME


def read_notify_toml(path: Path | None) -> dict[str, object]:
    """The raw data of ``notify.toml`` ({} when ``path`` is None or does not exist);
    unreadable, too large or bad TOML is one NotifyConfigError line naming the file."""
    if path is None or not path.exists():
        return {}
    return read_toml(path, MAX_NOTIFY_TOML_BYTES, NotifyConfigError)


def load_channels(path: Path | None, environ: Mapping[str, str]) -> dict[str, Channel]:
    """Every configured channel by name: ``path``'s ``[channels.*]`` in file order, then
    the defaults upstream's environment variables define."""
    return channels_from_data(read_notify_toml(path), str(path or FILE_NAME), environ)


def channels_from_data(
    data: Mapping[str, object], source: str, environ: Mapping[str, str]
) -> dict[str, Channel]:
    """The channels of already-read ``notify.toml`` data (``source`` names it in errors)
    plus the environment's defaults. On an error, channels already built are closed."""
    tables = data.get("channels", {})
    if not isinstance(tables, dict):
        raise NotifyConfigError(f"{source}: channels: must be a table of [channels.NAME] tables")
    built: dict[str, Channel] = {}
    try:
        for name, raw in tables.items():
            if not _NAME.fullmatch(name):
                raise NotifyConfigError(
                    f"{source}: channels.{name[:64]!r}: a channel name is 1-64 letters, "
                    "digits, '.', '_' or '-', starting with a letter or digit"
                )
            if not isinstance(raw, dict):
                raise NotifyConfigError(f"{source}: channels.{name}: must be a table")
            built[name] = build_channel(Settings(source, name, raw, environ))
        for name, settings in env_defaults(environ).items():
            if name not in built:
                built[name] = build_channel(settings)
    except BaseException:
        for channel in built.values():
            channel.close()
        raise
    return built


def env_defaults(environ: Mapping[str, str]) -> dict[str, Settings]:
    """The default channels upstream's variables define, as settings to check and build."""
    found: dict[str, Settings] = {}
    for name, (kind, required, optional) in ENV_DEFAULTS.items():
        if not any(environ.get(var) for var in required.values()):
            continue
        raw: dict[str, object] = {"kind": kind}
        raw |= {key: f"env:{var}" for key, var in required.items()}
        raw |= {key: f"env:{var}" for key, var in optional.items() if environ.get(var)}
        found[name] = Settings(ENVIRONMENT, name, raw, environ)
    return found


def build_channel(settings: Settings) -> Channel:
    """One channel from its settings; every problem names source, channel and key."""
    kind = settings.raw.get("kind")
    if kind is None:
        raise settings.fail("kind", f"missing (one of {', '.join(KEYS)})")
    if not isinstance(kind, str) or kind not in KEYS:
        raise settings.fail("kind", f"must be one of {', '.join(KEYS)}")
    settings.refuse_unknown(KEYS[kind])
    options = ChannelOptions(
        timeout_s=settings.number("timeout_s", 0.001, 300),
        min_interval_s=settings.number("min_interval_s", 0, 3600),
        min_severity=settings.severity("min_severity"),
    )
    return _BUILDERS[kind](settings, options)


def _slack(s: Settings, options: ChannelOptions) -> Channel:
    return SlackChannel(s.name, s.url("url") or "", options)


def _discord(s: Settings, options: ChannelOptions) -> Channel:
    return DiscordChannel(s.name, s.url("url") or "", options)


def _telegram(s: Settings, options: ChannelOptions) -> Channel:
    return TelegramChannel(
        s.name,
        s.token("bot_token"),
        s.required("chat_id"),
        api_base=s.url("api_base", required=False) or TELEGRAM_API,
        options=options,
    )


def _sms(s: Settings, options: ChannelOptions) -> Channel:
    return SmsChannel(
        s.name,
        s.sid("account_sid"),
        s.token("auth_token"),
        s.required("from_number"),
        s.required("to_number"),
        api_base=s.url("api_base", required=False) or TWILIO_API,
        status_callback=s.url("status_callback", required=False),
        options=options,
    )


def _apprise(s: Settings, options: ChannelOptions) -> Channel:
    from kei.adapters.notify.apprise_channel import AppriseChannel

    url = s.required("url")
    try:
        return AppriseChannel(s.name, url, options)
    except ValueError as exc:  # its text never names the URL
        raise s.fail("url", str(exc)) from None


_BUILDERS: Final[dict[str, Callable[[Settings, ChannelOptions], Channel]]] = {
    "slack": _slack,
    "discord": _discord,
    "telegram": _telegram,
    "sms": _sms,
    "apprise": _apprise,
}
