"""Channels from notify.toml and upstream's environment variables: what is built, what
wins, and every mistake as one line naming file, channel and key, never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import start_fake_slack, start_fake_telegram
from kei.adapters.notify.config import (
    channels_from_data,
    load_channels,
    notify_toml_path,
    read_notify_toml,
)
from kei.adapters.notify.discord import DiscordChannel
from kei.adapters.notify.slack import SlackChannel
from kei.adapters.notify.sms import SmsChannel
from kei.adapters.notify.telegram import TelegramChannel
from kei.domain.notify import Delivered, Notification
from kei.errors import InputError, NotifyConfigError

SLACK = "https://hooks.slack.example/services/T00000000/B00000000/" + "q" * 24
DISCORD = "https://discord.example/api/webhooks/123456789012345678/" + "w" * 68
TG_TOKEN = "123456789:" + "e" * 35
SID, TOKEN = "AC" + "0a" * 16, "f0" * 16
UPSTREAM_ENV = {
    "SLACK_WEBHOOK_URL": SLACK, "DISCORD_WEBHOOK_URL": DISCORD,
    "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_CHAT_ID": "@ops",
    "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
    "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_TO_NUMBER": "+15005550001",
}  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = notify_toml_path(tmp_path)
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(NotifyConfigError) as info:
        load_channels(path, environ or {})
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, InputError)
    for secret in (SLACK, DISCORD, TG_TOKEN, SID, TOKEN, "e" * 35, "q" * 24):
        assert secret not in message
    return message


def test_no_file_and_no_environment_is_no_channel(tmp_path: Path) -> None:
    assert load_channels(None, {}) == {}
    assert load_channels(tmp_path / "notify.toml", {}) == {}
    assert read_notify_toml(tmp_path / "notify.toml") == {}


def test_upstreams_environment_makes_the_four_default_channels() -> None:
    channels = load_channels(None, UPSTREAM_ENV)
    try:
        assert {n: type(c) for n, c in channels.items()} == {
            "slack": SlackChannel, "discord": DiscordChannel,
            "telegram": TelegramChannel, "sms": SmsChannel,
        }  # fmt: skip
        assert channels["sms"].min_severity == "warn"
        assert [c.kind for c in channels.values()] == ["slack", "discord", "telegram", "sms"]
    finally:
        for channel in channels.values():
            channel.close()


def test_a_configured_channel_of_that_name_wins_over_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, f'[channels.slack]\nkind = "discord"\nurl = "{DISCORD}"\n')
    channels = load_channels(path, {"SLACK_WEBHOOK_URL": SLACK})
    assert list(channels) == ["slack"] and channels["slack"].kind == "discord"


def test_telegram_api_base_from_the_environment_reaches_the_fake() -> None:
    with start_fake_telegram() as fake:
        env = {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_CHAT_ID": "-1001", "TELEGRAM_API_BASE_URL": fake.url + "/"}  # fmt: skip
        channel = load_channels(None, env)["telegram"]
        outcome = channel.send(Notification(subject="s", body_text="b"))
        channel.close()
        assert isinstance(outcome, Delivered) and fake.received[0].json()["chat_id"] == -1001


def test_settings_may_come_from_env_and_every_key_is_read(tmp_path: Path) -> None:
    with start_fake_slack() as fake:
        path = write(
            tmp_path,
            """
[channels.ops-slack]
kind = "slack"
url = "env:OPS_SLACK"
timeout_s = "env:OPS_TIMEOUT"
min_interval_s = 0
min_severity = "warn"

[channels."pager.sms"]
kind = "sms"
account_sid = "env:SID"
auth_token = "env:TOKEN"
from_number = "+15005550006"
to_number = "+15005550001"
api_base = "http://127.0.0.1:9"
status_callback = "https://kei.example/notify/twilio"

[[rules]]
on = "agent.failed"
channel = "ops-slack"
""",
        )
        env = {"OPS_SLACK": fake.url, "OPS_TIMEOUT": "2.5", "SID": SID, "TOKEN": TOKEN}
        channels = load_channels(path, env)
        slack = channels["ops-slack"]
        assert isinstance(slack, SlackChannel)
        assert (slack.timeout_s, slack.min_interval_s, slack.min_severity) == (2.5, 0, "warn")
        assert isinstance(slack.send(Notification(subject="s", body_text="b")), Delivered)
        sent = channels["pager.sms"].request_bytes(Notification(subject="s", body_text="b"))
        assert sent.endswith(b"&StatusCallback=https%3A%2F%2Fkei.example%2Fnotify%2Ftwilio")
        for channel in channels.values():
            channel.close()
    data = read_notify_toml(path)
    assert data["rules"] == [{"on": "agent.failed", "channel": "ops-slack"}]
    assert list(channels_from_data(data, str(path), env)) == ["ops-slack", "pager.sms"]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[channels.a]\nurl = "x"', "channels.a.kind: missing"),
        ('[channels.a]\nkind = "pager"', "channels.a.kind: must be one of slack, discord"),
        ('[channels.a]\nkind = "slack"', "channels.a.url: missing"),
        (f'[channels.a]\nkind = "slack"\nurl = "{SLACK}"\nchat_id = "1"', "channels.a.chat_id: unknown key"),
        ('[channels.a]\nkind = "slack"\nurl = "http://hooks.slack.example/services/abcdefgh"',
         "channels.a.url: must be https:// (http:// only to 127.0.0.1 or localhost)"),
        ('[channels.a]\nkind = "slack"\nurl = "ftp://hooks.slack.example/x/abcdefgh"', "channels.a.url: must be an https:// URL"),
        ('[channels.a]\nkind = "slack"\nurl = "https://h:99999/abcdefgh"', "channels.a.url: not a URL"),
        ('[channels.a]\nkind = "slack"\nurl = "env:NOPE"', "channels.a.url: environment variable NOPE is not set"),
        ('[channels.a]\nkind = "slack"\nurl = "env:1x"', "does not name an environment variable"),
        (f'[channels.a]\nkind = "slack"\nurl = "{SLACK}"\ntimeout_s = 0', "channels.a.timeout_s: must be between"),
        (f'[channels.a]\nkind = "slack"\nurl = "{SLACK}"\ntimeout_s = "soon"', "channels.a.timeout_s: is not a number"),
        (f'[channels.a]\nkind = "slack"\nurl = "{SLACK}"\nmin_interval_s = -1', "channels.a.min_interval_s: must be between"),
        (f'[channels.a]\nkind = "slack"\nurl = "{SLACK}"\nmin_severity = "loud"', "channels.a.min_severity: must be one of info"),
        ('[channels.a]\nkind = "telegram"\nbot_token = "12345678:abc/def"\nchat_id = 1', "channels.a.bot_token: holds characters"),
        ('[channels.a]\nkind = "telegram"\nbot_token = "short"\nchat_id = 1', "channels.a.bot_token: too short for a secret"),
        (f'[channels.a]\nkind = "telegram"\nbot_token = "{TG_TOKEN}"\nchat_id = ""', "channels.a.chat_id: is empty"),
        (f'[channels.a]\nkind = "sms"\naccount_sid = "{SID}"\nauth_token = "{TOKEN}"\nfrom_number = "1"', "channels.a.to_number: missing"),
        ('[channels."bad name"]\nkind = "slack"', "channels.'bad name': a channel name is"),
        ("channels = 3", "channels: must be a table"),
        ("[channels]\na = 3", "channels.a: must be a table"),
        ("[channels.a\n", "bad TOML"),
    ],
)  # fmt: skip
def test_a_bad_channel_is_one_line_naming_file_channel_and_key(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = write(tmp_path, toml)
    message = refused(path)
    assert message.startswith(str(path)) and expected in message, message


def test_half_an_upstream_group_in_the_environment_names_the_missing_variable() -> None:
    message = refused(None, {"TELEGRAM_BOT_TOKEN": TG_TOKEN})
    assert message == "environment: channels.telegram.chat_id: environment variable TELEGRAM_CHAT_ID is not set"  # fmt: skip
    twilio = {k: v for k, v in UPSTREAM_ENV.items() if k.startswith("TWILIO") and "TO_" not in k}
    assert "TWILIO_TO_NUMBER is not set" in refused(None, twilio)


def test_a_secret_value_is_never_repeated_in_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, f'[channels.a]\nkind = "slack"\nurl = "http://{SLACK[8:]}"\n')
    assert "q" * 24 not in refused(path)
    path = write(tmp_path, f'[channels.a]\nkind = "telegram"\nbot_token = "{TG_TOKEN} x"\nchat_id = 1\n')  # fmt: skip
    assert "e" * 35 not in refused(path)


def test_an_unreadable_or_oversized_file_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x" * (1024 * 1024 + 1))
    assert "larger than" in refused(path)
    path.write_bytes(b"\xff\xfe")
    assert "not UTF-8" in refused(path)


def test_channels_built_before_an_error_are_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    real_close = SlackChannel.close

    def close(self: SlackChannel) -> None:
        closed.append(self.name)
        real_close(self)

    monkeypatch.setattr(SlackChannel, "close", close)
    path = write(tmp_path, f'[channels.a]\nkind = "slack"\nurl = "{SLACK}"\n[channels.b]\nkind = "x"\n')  # fmt: skip
    refused(path)
    assert closed == ["a"]
