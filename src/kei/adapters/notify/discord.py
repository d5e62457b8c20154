"""Discord webhooks, with upstream kei-notify-discord's payload and a real receipt.

``POST <webhook URL>?wait=true`` with ``{"content": subject, "embeds": [{"title":
subject, "description": body, "color": n}]}``, the colours upstream used. Upstream
took Discord's 204 as a delivery, but without ``wait`` Discord answers before it saves
the message and reports no error when it does not; with ``wait=true`` it answers 200
with the saved message, whose ``id`` is the receipt. Discord's limits are applied:
content 2,000 characters, embed title 256, description 4,096.

A 429's wait comes from the body's ``retry_after`` (seconds, a float) or else the
``Retry-After`` header. Every answer's ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset-After`` are read too: when a bucket is empty, ``min_interval_s``
rises to its reset time until an answer says the bucket has room again.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kei.adapters.notify.base import ChannelOptions, by_severity
from kei.adapters.notify.failures import retry_after_ms
from kei.adapters.notify.http import Answer, HttpChannel, Request
from kei.adapters.notify.secrets import url_parts
from kei.adapters.notify.text import clean, cut
from kei.domain.notify import Notification, SendOutcome

# decimal #3498DB, #2ECC71, #F1C40F, #E74C3C
COLOURS: Final = by_severity(3447003, 3066993, 15844367, 15158332)
CONTENT_LIMIT: Final = 2_000
TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4_096


def discord_payload(notification: Notification) -> dict[str, Any]:
    """Upstream's Discord JSON for ``notification`` (fields cut to Discord's limits)."""
    subject = clean(notification.subject)
    return {
        "content": cut(subject, CONTENT_LIMIT),
        "embeds": [
            {
                "title": cut(subject, TITLE_LIMIT),
                "description": cut(clean(notification.body_text), DESCRIPTION_LIMIT),
                "color": COLOURS[notification.severity],
            }
        ],
    }


def with_wait(url: str) -> str:
    """``url`` with ``wait=true`` in its query (other parameters, e.g. ``thread_id``, kept)."""
    split = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(split.query, keep_blank_values=True) if k != "wait"]
    return urlunsplit(split._replace(query=urlencode([*query, ("wait", "true")])))


class DiscordChannel(HttpChannel):
    """One Discord webhook."""

    kind = "discord"
    default_timeout_s = 30.0  # upstream's

    def __init__(self, name: str, url: str, options: ChannelOptions = ChannelOptions()) -> None:
        super().__init__(name, url_parts(url), options)
        self._url = with_wait(url)
        self._bucket_wait_s = 0.0

    @property
    def min_interval_s(self) -> float:
        """The configured pace, or longer while Discord says the bucket is empty."""
        return max(self._min_interval_s, self._bucket_wait_s)

    def request(self, notification: Notification) -> Request:
        return self.json_request(self._url, discord_payload(notification))

    def answer(self, answer: Answer) -> SendOutcome:
        self._learn_bucket(answer.headers)
        body = answer.json()
        if answer.status == 200:
            return self.delivered(answer, body.get("id", ""))
        if answer.status == 204:  # a server that ignored wait=true: delivered, no id
            return self.delivered(answer, "")
        detail = answer.message("message")
        if detail and body.get("global") is True:
            detail += " (global limit)"
        return self.failed(answer, body.get("code"), detail)

    def retry_after(self, answer: Answer) -> object:
        """The body's ``retry_after`` (seconds, a float), else ``Retry-After``."""
        wait = answer.json().get("retry_after")
        return wait if isinstance(wait, int | float) else super().retry_after(answer)

    def _learn_bucket(self, headers: dict[str, str]) -> None:
        if headers.get("x-ratelimit-remaining", "").strip() != "0":
            self._bucket_wait_s = 0.0
            return
        wait_ms = retry_after_ms(headers.get("x-ratelimit-reset-after"))
        self._bucket_wait_s = (wait_ms or 0) / 1000
