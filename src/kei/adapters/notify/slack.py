"""Slack incoming webhooks, with upstream kei-notify-slack's payload.

``POST <webhook URL>`` with ``{"text": subject, "attachments": [{"color": c, "title":
subject, "text": body}]}``, the colour by severity as upstream had it; only 200 is a
delivery (Slack answers ``ok``; it gives no message id, so the receipt is empty). Slack
answers a refusal with a short code as plain text (``invalid_payload``,
``channel_not_found``, ``no_service``...), kept as the provider code; a 429 carries
``Retry-After``. Slack keeps 40,000 characters of a message, so the subject (sent twice)
is cut to 2,000 and the body to 35,000 (apprise's limit). Slack asks for about one
message a second per channel, so ``min_interval_s`` is 1.0.
"""

from __future__ import annotations

import re
from typing import Any, Final

from kei.adapters.notify.base import ChannelOptions, by_severity
from kei.adapters.notify.http import Answer, HttpChannel, Request
from kei.adapters.notify.secrets import url_parts
from kei.adapters.notify.text import clean, cut
from kei.domain.notify import Notification, SendOutcome

COLOURS: Final = by_severity("#3b82f6", "good", "warning", "danger")
SUBJECT_LIMIT: Final = 2_000
BODY_LIMIT: Final = 35_000
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Upstream's Slack JSON for ``notification`` (fields cut to Slack's limits)."""
    subject = cut(clean(notification.subject), SUBJECT_LIMIT)
    return {
        "text": subject,
        "attachments": [
            {
                "color": COLOURS[notification.severity],
                "title": subject,
                "text": cut(clean(notification.body_text), BODY_LIMIT),
            }
        ],
    }


class SlackChannel(HttpChannel):
    """One Slack incoming webhook."""

    kind = "slack"
    default_timeout_s = 15.0  # upstream's

    def __init__(self, name: str, url: str, options: ChannelOptions = ChannelOptions()) -> None:
        super().__init__(name, url_parts(url), options)
        self._url = url

    def request(self, notification: Notification) -> Request:
        return self.json_request(self._url, slack_payload(notification))

    def answer(self, answer: Answer) -> SendOutcome:
        text = answer.text().strip()
        if answer.status == 200:
            return self.delivered(answer, "", text[:16] or None)
        code = text if _CODE.fullmatch(text) else None
        return self.failed(answer, code, None if code else text)
