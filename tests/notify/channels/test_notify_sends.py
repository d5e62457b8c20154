"""Each channel against its fake provider on 127.0.0.1: a delivery and its receipt, and
every way a send can fail (refused, bad credentials, 429 with a wait, a server error, no
answer in time, a reset connection), classified for the notifier, never raising."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from fakes import (
    FakeDiscord,
    FakeServer,
    FakeSlack,
    FakeTelegram,
    FakeTwilio,
    start_fake_discord,
    start_fake_json,
    start_fake_slack,
    start_fake_telegram,
    start_fake_twilio,
)
from kei.adapters.notify.base import ChannelOptions
from kei.adapters.notify.discord import DiscordChannel
from kei.adapters.notify.http import HttpChannel
from kei.adapters.notify.slack import SlackChannel
from kei.adapters.notify.sms import SmsChannel, check_twilio_signature
from kei.adapters.notify.telegram import TelegramChannel
from kei.domain.notify import Delivered, Failed, Notification

NOTE = Notification(subject="Budget at 80%", body_text="ops spent 80 of 100 USD", severity="warn")
FAST = ChannelOptions(timeout_s=0.5)
TO, FROM = "+15005550001", "+15005550006"


def slack_pair(options: ChannelOptions = FAST) -> tuple[FakeSlack, SlackChannel]:
    fake = start_fake_slack()
    return fake, SlackChannel("ops-slack", fake.url, options)


def discord_pair(options: ChannelOptions = FAST) -> tuple[FakeDiscord, DiscordChannel]:
    fake = start_fake_discord()
    return fake, DiscordChannel("ops-discord", fake.url, options)


def telegram_pair(options: ChannelOptions = FAST) -> tuple[FakeTelegram, TelegramChannel]:
    fake = start_fake_telegram()
    return fake, TelegramChannel("ops-tg", fake.token, "-100200300", api_base=fake.url, options=options)  # fmt: skip


def sms_pair(
    options: ChannelOptions = FAST, callback: str | None = None
) -> tuple[FakeTwilio, SmsChannel]:
    fake = start_fake_twilio()
    channel = SmsChannel(
        "pager", fake.account_sid, fake.auth_token, FROM, TO,
        api_base=fake.url, status_callback=callback, options=options,
    )  # fmt: skip
    return fake, channel


PAIRS: dict[str, Callable[[], tuple[FakeServer, HttpChannel]]] = {
    "slack": slack_pair, "discord": discord_pair, "telegram": telegram_pair, "sms": sms_pair,
}  # fmt: skip


@contextmanager
def running(kind: str) -> Iterator[tuple[FakeServer, HttpChannel]]:
    fake, channel = PAIRS[kind]()
    try:
        yield fake, channel
    finally:
        channel.close()
        fake.close()


@contextmanager
def channel_closed(channel: HttpChannel) -> Iterator[None]:
    try:
        yield
    finally:
        channel.close()


def failed(outcome: object) -> Failed:
    assert isinstance(outcome, Failed), outcome
    return outcome


# -- deliveries ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_a_delivery_sends_the_logged_bytes_once_and_keeps_the_receipt(kind: str) -> None:
    with running(kind) as (fake, channel):
        outcome = channel.send(NOTE)
        assert isinstance(outcome, Delivered), outcome
        (request,) = fake.received
        assert request.body == channel.request_bytes(NOTE)
        assert outcome.latency_us > 0
        receipts = {"slack": "", "discord": None, "telegram": "7", "sms": None}
        if receipts[kind] is not None:
            assert outcome.receipt == receipts[kind]


def test_discord_waits_for_the_saved_message_and_its_id_is_the_receipt() -> None:
    with running("discord") as (fake, channel):
        outcome = channel.send(NOTE)
        (request,) = fake.received
        assert request.query == {"wait": ["true"]}
        assert isinstance(outcome, Delivered) and outcome.http_status == 200
        assert outcome.receipt.isdigit() and len(outcome.receipt) >= 17


def test_discord_without_a_saved_message_is_a_delivery_without_receipt() -> None:
    with running("discord") as (fake, channel):
        fake.mode = "no_wait"
        outcome = channel.send(NOTE)
        assert isinstance(outcome, Delivered) and (outcome.http_status, outcome.receipt) == (
            204,
            "",
        )


def test_discord_empty_bucket_slows_the_channel_until_the_bucket_refills() -> None:
    fake, channel = discord_pair(ChannelOptions(timeout_s=0.5, min_interval_s=0))
    try:
        assert channel.min_interval_s == 0
        fake.mode = "bucket_empty"  # X-RateLimit-Remaining: 0, Reset-After: 0.5
        assert isinstance(channel.send(NOTE), Delivered)
        assert channel.min_interval_s == 0.5
        fake.mode = "ok"
        channel.send(NOTE)
        assert channel.min_interval_s == 0
    finally:
        channel.close()
        fake.close()


def test_twilio_sends_basic_auth_and_returns_sid_and_status() -> None:
    with running("sms") as (fake, channel):
        outcome = channel.send(NOTE)
        assert isinstance(outcome, Delivered) and outcome.http_status == 201
        assert outcome.receipt.startswith("SM") and outcome.provider_status == "queued"
        (request,) = fake.received
        assert request.headers["authorization"].startswith("Basic ")
        assert request.form() == {"To": TO, "From": FROM, "Body": "[!] Budget at 80% - ops spent 80 of 100 USD"}  # fmt: skip


def test_twilio_status_callback_is_signed_and_kei_checks_the_signature() -> None:
    with start_fake_json() as receiver:
        fake, channel = sms_pair(callback=receiver.url + "/notify/twilio")
        try:
            outcome = channel.send(NOTE)
            assert isinstance(outcome, Delivered)
            assert fake.received[0].form()["StatusCallback"] == receiver.url + "/notify/twilio"
            assert fake.callback(outcome.receipt, "delivered") == 200
            (call,) = receiver.received
            form, signature = call.form(), call.headers["x-twilio-signature"]
            url = receiver.url + call.path
            assert form["MessageSid"] == outcome.receipt and form["MessageStatus"] == "delivered"
            assert check_twilio_signature(url, form, signature, fake.auth_token)
            assert not check_twilio_signature(url, {**form, "MessageStatus": "failed"}, signature, fake.auth_token)  # fmt: skip
            assert not check_twilio_signature(url, form, signature, "0" * 32)
        finally:
            channel.close()
            fake.close()


# -- failures, every kind --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PAIRS))
@pytest.mark.parametrize(
    ("mode", "failure_class", "retryable", "in_doubt"),
    [("reject", "rejected", False, False), ("auth", "auth", False, False),
     ("rate_limited", "rate_limited", True, False), ("server_error", "rejected", True, False),
     ("slow", "timeout", True, True), ("reset", "transport", True, True)],
)  # fmt: skip
def test_every_failure_is_classified_and_none_raises(
    kind: str, mode: str, failure_class: str, retryable: bool, in_doubt: bool
) -> None:
    with running(kind) as (fake, channel):
        fake.mode = mode
        outcome = failed(channel.send(NOTE))
        assert (outcome.failure_class, outcome.retryable, outcome.in_doubt) == (
            failure_class, retryable, in_doubt)  # fmt: skip
        assert outcome.error.startswith(f"{kind} channel {channel.name!r}: ")
        assert "\n" not in outcome.error and len(fake.received) == 1
        if mode in ("slow", "reset"):
            assert outcome.http_status is None and outcome.provider_code is None


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_a_429_reports_the_providers_wait(kind: str) -> None:
    with running(kind) as (fake, channel):
        fake.mode, fake.retry_after = "rate_limited", 3
        outcome = failed(channel.send(NOTE))
        assert outcome.http_status == 429 and outcome.retry_after_ms == 3000
        assert outcome.retry_after_raw in ("3", "3.0")
        assert "retry after 3 s" in outcome.error


def test_discord_and_slack_waits_may_be_fractions_and_are_capped() -> None:
    with running("discord") as (fake, channel):
        fake.mode, fake.retry_after = "rate_limited", 0.25
        assert failed(channel.send(NOTE)).retry_after_ms == 250
        fake.retry_after = 172800.5  # "retry after 2 days", as Discord once said
        outcome = failed(channel.send(NOTE))
        assert (outcome.retry_after_ms, outcome.retry_after_raw) == (60_000, "172800.5")
    with running("slack") as (fake, channel):
        fake.mode, fake.retry_after = "rate_limited", "Wed, 21 Oct 2015 07:28:00 GMT"
        outcome = failed(channel.send(NOTE))
        assert outcome.retry_after_ms == 0 and outcome.retry_after_raw == fake.retry_after


def test_provider_codes_are_kept() -> None:
    codes = {"slack": "invalid_payload", "discord": "50006", "telegram": "400", "sms": "21211"}
    for kind, code in codes.items():
        with running(kind) as (fake, channel):
            fake.mode = "reject"
            assert failed(channel.send(NOTE)).provider_code == code


def test_telegram_reports_a_group_that_became_a_supergroup() -> None:
    fake, channel = telegram_pair()
    with fake, channel_closed(channel):
        fake.mode = "migrate"
        outcome = failed(channel.send(NOTE))
        assert outcome.provider_code == f"migrate_to_chat_id={fake.migrated_to}"
        assert (outcome.failure_class, outcome.retryable) == ("rejected", False)
        assert f"set chat_id to {fake.migrated_to}" in outcome.error


def test_telegram_200_without_ok_is_not_a_delivery() -> None:
    with running("telegram") as (fake, channel):
        fake.mode = "ok_false"
        outcome = failed(channel.send(NOTE))
        assert (outcome.http_status, outcome.failure_class, outcome.retryable) == (200, "rejected", False)  # fmt: skip


def test_a_refused_connection_is_not_in_doubt() -> None:
    fake, channel = slack_pair()
    fake.close()
    try:
        outcome = failed(channel.send(NOTE))
        assert (outcome.failure_class, outcome.retryable, outcome.in_doubt) == ("transport", True, False)  # fmt: skip
    finally:
        channel.close()


def test_a_held_request_is_recorded_before_it_is_answered() -> None:
    import threading

    with running("telegram") as (fake, channel):
        fake.hold()
        outcomes: list[object] = []
        sender = threading.Thread(target=lambda: outcomes.append(channel.send(NOTE)))
        sender.start()
        (request,) = fake.wait_for(1)
        assert request.json()["chat_id"] == -100200300 and outcomes == []
        fake.release()
        sender.join(10)
        assert isinstance(outcomes[0], Delivered)


def test_scripted_modes_answer_one_request_each() -> None:
    with running("slack") as (fake, channel):
        fake.script("rate_limited", "server_error")
        kinds = [type(channel.send(NOTE)).__name__ for _ in range(3)]
        assert kinds == ["Failed", "Failed", "Delivered"]


def test_defaults_per_kind_and_overrides() -> None:
    defaults: dict[type[HttpChannel], tuple[float, float, str]] = {
        SlackChannel: (15.0, 1.0, "info"), DiscordChannel: (30.0, 1.0, "info"),
        TelegramChannel: (30.0, 1.0, "info"), SmsChannel: (30.0, 1.0, "warn"),
    }  # fmt: skip
    for cls, expected in defaults.items():
        assert (
            cls.default_timeout_s,
            cls.default_min_interval_s,
            cls.default_min_severity,
        ) == expected
    custom = SlackChannel("x", "https://hooks.example.com/" + "a" * 30, ChannelOptions(
        timeout_s=2, min_interval_s=0, min_severity="error"))  # fmt: skip
    assert (custom.timeout_s, custom.min_interval_s, custom.min_severity) == (2, 0, "error")
    assert repr(custom) == "<SlackChannel 'x'>"
    custom.close()
