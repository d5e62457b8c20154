"""Fake notification providers on 127.0.0.1 for tests: real HTTP servers, no mocks.

Each ``start_fake_*`` starts one in a thread and returns it; use it as a context
manager (or call ``close``). Every fake has:

- ``url``: what a channel is configured with (Slack/Discord: the webhook URL;
  Telegram/Twilio: the API base), and ``base_url`` (``http://127.0.0.1:<port>``);
- ``received``: every request as a :class:`Received` (method, path, query, lower-case
  headers, body; ``.json()``, ``.form()``), appended when it arrives;
- ``mode``: ``ok``, ``reject``, ``auth``, ``rate_limited``, ``server_error``, ``echo``
  (an error body repeating the request), ``slow`` (no answer for ``slow_s`` seconds),
  ``reset`` (TCP reset, no answer), plus each provider's own (see its class);
  ``script(*modes)`` for the next requests one by one; ``retry_after`` for 429s;
- ``hold()`` / ``release()``: requests wait, recorded but unanswered, until released;
  ``wait_for(n)`` returns the requests once ``n`` have arrived.

The credentials are random per fake, in the providers' real shapes (``.token``,
``.account_sid``, ``.auth_token``...), or given by the test.
"""

from __future__ import annotations

from fakes.apis import FakeJson, FakeTelegram, FakeTwilio, telegram_visible_text, twilio_signature
from fakes.server import MODES_ALL, FakeServer, Received, Reply
from fakes.webhooks import FakeDiscord, FakeSlack

__all__ = [
    "MODES_ALL",
    "FakeDiscord",
    "FakeJson",
    "FakeServer",
    "FakeSlack",
    "FakeTelegram",
    "FakeTwilio",
    "Received",
    "Reply",
    "start_fake_discord",
    "start_fake_json",
    "start_fake_slack",
    "start_fake_telegram",
    "start_fake_twilio",
    "telegram_visible_text",
    "twilio_signature",
]


def start_fake_slack(secret: str | None = None) -> FakeSlack:
    """A Slack incoming webhook; ``.url`` is the webhook URL."""
    return FakeSlack(secret)


def start_fake_discord(webhook_id: str | None = None, token: str | None = None) -> FakeDiscord:
    """A Discord webhook; ``.url`` is the webhook URL (without ``?wait=true``)."""
    return FakeDiscord(webhook_id, token)


def start_fake_telegram(token: str | None = None) -> FakeTelegram:
    """The Telegram Bot API for one bot (``.token``); ``.url`` is the API base."""
    return FakeTelegram(token)


def start_fake_twilio(account_sid: str | None = None, auth_token: str | None = None) -> FakeTwilio:
    """Twilio's Messages API for one account; ``.url`` is the API base."""
    return FakeTwilio(account_sid, auth_token)


def start_fake_json() -> FakeJson:
    """A JSON endpoint (apprise's ``json://``): any POST path."""
    return FakeJson()
