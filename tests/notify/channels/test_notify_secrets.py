"""No webhook URL, bot token, SID, auth token or phone number ever reaches an outcome's
text, whatever the provider echoes back (the fakes' ``echo`` mode repeats the whole
request: path, headers with the Basic credentials, body) and however the secrets look."""

from __future__ import annotations

import string

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import start_fake_discord, start_fake_slack, start_fake_telegram, start_fake_twilio
from kei.adapters.notify.base import ChannelOptions
from kei.adapters.notify.discord import DiscordChannel
from kei.adapters.notify.http import HttpChannel
from kei.adapters.notify.secrets import REDACTED, WITHHELD, Secrets, basic_credentials
from kei.adapters.notify.slack import SlackChannel
from kei.adapters.notify.sms import SmsChannel
from kei.adapters.notify.telegram import TelegramChannel
from kei.domain.notify import Failed, Notification, SendOutcome

URL_SAFE = string.ascii_letters + string.digits + "_-"
HEX = string.hexdigits
MODES = st.sampled_from(["echo", "echo", "reject", "auth", "rate_limited", "server_error", "reset"])
OPTS = ChannelOptions(timeout_s=2)
NOTE = Notification(subject="s", body_text="b", severity="error")
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def texts(outcome: SendOutcome) -> list[str]:
    return [v for v in msgspec.structs.asdict(outcome).values() if isinstance(v, str)]


def assert_clean(outcome: SendOutcome, secrets: list[str]) -> None:
    assert isinstance(outcome, Failed)
    for text in texts(outcome):
        for secret in secrets:
            assert secret not in text, (secret, text)


def run(channel: HttpChannel, fake_mode: str, fake: object, secrets: list[str]) -> None:
    try:
        fake.mode = fake_mode  # type: ignore[attr-defined]
        assert_clean(channel.send(NOTE), secrets)
    finally:
        channel.close()
        fake.close()  # type: ignore[attr-defined]


@SETTINGS
@given(secret=st.text(URL_SAFE, min_size=8, max_size=40), mode=MODES)
def test_slack_webhook_secret_never_in_an_outcome(secret: str, mode: str) -> None:
    fake = start_fake_slack(secret)
    run(SlackChannel("s", fake.url, OPTS), mode, fake, [fake.url, fake.path, secret])


@SETTINGS
@given(
    hook=st.text(string.digits, min_size=17, max_size=20),
    token=st.text(URL_SAFE, min_size=8, max_size=80),
    mode=MODES,
)
def test_discord_webhook_token_never_in_an_outcome(hook: str, token: str, mode: str) -> None:
    fake = start_fake_discord(hook, token)
    run(DiscordChannel("d", fake.url, OPTS), mode, fake, [fake.url, token])


@SETTINGS
@given(
    bot=st.text(string.digits, min_size=8, max_size=10),
    secret=st.text(URL_SAFE, min_size=35, max_size=35),
    mode=MODES,
)
def test_telegram_bot_token_never_in_an_outcome(bot: str, secret: str, mode: str) -> None:
    token = f"{bot}:{secret}"
    fake = start_fake_telegram(token)
    channel = TelegramChannel("t", token, "42", api_base=fake.url, options=OPTS)
    run(channel, mode, fake, [token, secret, token.replace(":", "%3A")])


@SETTINGS
@given(
    sid=st.text(string.ascii_letters + string.digits, min_size=8, max_size=34),
    token=st.text(HEX, min_size=8, max_size=32),
    to=st.text(string.digits, min_size=10, max_size=12),
    mode=MODES,
)
def test_twilio_sid_token_and_numbers_never_in_an_outcome(
    sid: str, token: str, to: str, mode: str
) -> None:
    fake = start_fake_twilio(sid, token)
    channel = SmsChannel("m", sid, token, "+15005550006", "+" + to, api_base=fake.url, options=OPTS)
    secrets = [sid, token, basic_credentials(sid, token), "+" + to, "%2B" + to]
    run(channel, mode, fake, secrets)


def test_an_echoed_request_keeps_its_useful_part_and_loses_its_secrets() -> None:
    fake = start_fake_twilio()
    channel = SmsChannel("m", fake.account_sid, fake.auth_token, "+15005550006", "+15005550001", api_base=fake.url)  # fmt: skip
    try:
        fake.mode = "echo"
        outcome = channel.send(NOTE)
        assert isinstance(outcome, Failed) and REDACTED in outcome.error
        assert "POST /2010-04-01/Accounts/[redacted]/Messages.json" in outcome.error
        assert fake.account_sid not in outcome.error and "Basic" in outcome.error
    finally:
        channel.close()
        fake.close()


@given(
    secret=st.text(min_size=8, max_size=20),
    pieces=st.lists(st.text(max_size=10), max_size=6),
)
def test_scrub_and_seal_never_let_a_secret_through(secret: str, pieces: list[str]) -> None:
    secrets = Secrets.of([secret])
    text = secret.join(pieces) + secret[: len(secret) // 2]
    scrubbed = secrets.scrub(text)
    assert scrubbed is None or not secrets.holds(scrubbed)
    sealed = secrets.seal(f"x: {scrubbed or ''}")
    assert secret not in sealed or (sealed == WITHHELD and secret in WITHHELD)


def test_a_replacement_that_would_form_a_new_secret_is_refused() -> None:
    secrets = Secrets.of(["]xy12345"])
    # "[redacted]" ends in "]": replacing the secret in "]]xy12345xy12345" rebuilds it
    assert secrets.scrub("]]xy12345xy12345") is None
    assert secrets.seal("a ]xy12345 b") == WITHHELD
