"""The leak rules for notification credentials (Discord webhook URLs, Telegram bot tokens,
Twilio API keys and SID:token pairs) block them on every write, in the leak tests' style:
secrets are built at run time from random characters, so this file stays clean."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.files.leaks import load_matrix
from kei.domain.leaks.matrix import Matrix
from kei.domain.leaks.rules import shannon_entropy
from kei.errors import LeakBlockedError

URL_SAFE = string.ascii_letters + string.digits + "_-"
HEX = "0123456789abcdef"


def fake(alphabet: str, n: int, seed: str = "x") -> str:
    rnd = random.Random(f"{alphabet}{n}{seed}")
    return "".join(rnd.choice(alphabet) for _ in range(n))


def discord_url(host: str = "discord.com") -> str:
    return f"https://{host}/api/webhooks/{fake(string.digits, 19)}/{fake(URL_SAFE, 68)}"


def telegram_token(digits: int = 10) -> str:
    return f"{fake(string.digits, digits)}:AA{fake(URL_SAFE, 33)}"


@pytest.fixture(scope="module")
def shipped() -> Matrix:
    return load_matrix(None, {}, None)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (discord_url(), "discord-webhook-url"),
        (discord_url("discordapp.com"), "discord-webhook-url"),
        (discord_url("canary.discord.com").replace("/api/", "/api/v10/"), "discord-webhook-url"),
        (f"DISCORD_WEBHOOK_URL={discord_url('ptb.discord.com')}", "discord-webhook-url"),
        (f"token {telegram_token(8)} ok", "telegram-bot-token"),
        (f"TELEGRAM_BOT_TOKEN={telegram_token(9)}", "telegram-bot-token"),
        (f"https://api.telegram.org/bot{telegram_token()}/sendMessage", "telegram-bot-token"),
        (f"telegram http: error sending request for url ({telegram_token()})", "telegram-bot-token"),
        (f"key: SK{fake(HEX, 32)}", "twilio-api-key"),
        (f"SK{fake(HEX.upper(), 32)}", "twilio-api-key"),
        (f"curl -u AC{fake(HEX, 32)}:{fake(HEX, 32, 'y')} https://api.twilio.com", "twilio-credentials"),
        (f"https://AC{fake(HEX, 32)}:{fake(HEX, 32, 'y')}@api.twilio.com/", "twilio-credentials"),
    ],
)  # fmt: skip
def test_notification_credentials_are_blocked(shipped: Matrix, text: str, rule: str) -> None:
    found = shipped.scan_text(text)
    assert rule in {v.rule_id for v in found}, found
    with pytest.raises(LeakBlockedError, match=rule):
        shipped.check_fields({"error": text}).raise_if_blocked()


@pytest.mark.parametrize(
    "text",
    [
        "https://discord.com/api/webhooks/{webhook.id}/{webhook.token}",
        "https://discord.com/developers/docs/resources/webhook",
        "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",  # Telegram's documentation example
        f"{fake(string.digits, 7)}:{fake(URL_SAFE, 35)}",  # 7-digit id
        f"{fake(string.digits, 11)}:{fake(URL_SAFE, 35)}",  # 11-digit id
        f"{fake(string.digits, 10)}:{fake(URL_SAFE, 36)}",  # 36 characters
        f"12:30:{fake(URL_SAFE, 35)}",
        f"TWILIO_ACCOUNT_SID=AC{fake(HEX, 32)}",  # an account SID alone is an identifier
        f"SK{fake(HEX, 31)}",
        f"TASK{fake(HEX, 32)}",
        f"sha256:{fake(HEX, 64)}",
        "AC" + "0" * 32 + ":" + "0" * 32,  # no entropy: a placeholder
    ],
)
def test_lookalikes_and_placeholders_do_not_fire(shipped: Matrix, text: str) -> None:
    ours = {"discord-webhook-url", "telegram-bot-token", "twilio-api-key", "twilio-credentials"}
    assert not {v.rule_id for v in shipped.scan_text(text)} & ours, text


@given(
    bot=st.text(string.digits, min_size=8, max_size=10),
    secret=st.text(URL_SAFE, min_size=35, max_size=35).filter(lambda s: shannon_entropy(s) >= 3),
    before=st.sampled_from(["", " ", "\n", "=", '"', "/bot", "(", "token: "]),
    after=st.sampled_from(["", " ", "\n", '"', "/sendMessage", ")", "."]),
)
def test_a_telegram_token_with_a_random_secret_is_found_wherever_it_stands(
    shipped: Matrix, bot: str, secret: str, before: str, after: str
) -> None:
    lead = f"prefix{before}" if before else ""
    text = f"{lead}{bot}:{secret}{after} tail"
    assert "telegram-bot-token" in {v.rule_id for v in shipped.scan_text(text)}, text
