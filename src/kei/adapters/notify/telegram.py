"""Telegram bots, with upstream kei-notify-telegram's HTML message.

``POST {api_base}/bot{token}/sendMessage`` with ``{"chat_id": id, "text":
"<b>{subject}</b>\\n\\n{emoji} {body}", "parse_mode": "HTML"}``: ``chat_id`` is a number
when it reads as a 64-bit integer, else a string (``@channelname``), and ``<``, ``>``
and ``&`` are escaped in subject and body, as upstream did. A delivery is a 2xx answer
with ``"ok": true``; its ``result.message_id`` is the receipt.

Upstream had no timeout at all; here the default is 30 s. Telegram keeps 4,096
characters of text after entity parsing: the visible text is measured in UTF-16 units
(what Telegram counts, never fewer than characters) and the body, then if need be the
subject, is cut before escaping, so a cut never splits an entity. A refusal keeps
Telegram's ``error_code`` as the provider code; a 429's wait comes from
``parameters.retry_after``; a group that became a supergroup answers with
``parameters.migrate_to_chat_id``, reported as provider code
``migrate_to_chat_id=<new id>`` (not retryable: the configured ``chat_id`` must change).
"""

from __future__ import annotations

import re
from typing import Any, Final

from kei.adapters.notify.base import ChannelOptions, by_severity
from kei.adapters.notify.http import Answer, HttpChannel, Request
from kei.adapters.notify.text import clean, cut, measure
from kei.domain.notify import Notification, SendOutcome

DEFAULT_API_BASE: Final = "https://api.telegram.org"
EMOJI: Final = by_severity("ℹ️", "✅", "⚠️", "🚨")
TEXT_LIMIT: Final = 4_096
SUBJECT_FLOOR: Final = 1_024
"""A long subject keeps at least this much when both subject and body must be cut."""
_INT64 = re.compile(r"[+-]?[0-9]+")


def chat_id_value(chat_id: str) -> int | str:
    """``chat_id`` as upstream sent it: an integer when it parses as an i64, else text."""
    if _INT64.fullmatch(chat_id):
        value = int(chat_id)
        if -(2**63) <= value < 2**63:
            return value
    return chat_id


def escape(text: str) -> str:
    """Telegram HTML: ``&``, ``<`` and ``>`` as entities (upstream's three)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(subject: str, body: str, emoji: str) -> tuple[str, str]:
    """Subject and body cut so the visible text fits :data:`TEXT_LIMIT` UTF-16 units."""
    overhead = measure(f"\n\n{emoji} ", "utf16")
    if measure(subject, "utf16") + overhead + measure(body, "utf16") <= TEXT_LIMIT:
        return subject, body
    room = max(SUBJECT_FLOOR, TEXT_LIMIT - overhead - measure(body, "utf16"))
    subject = cut(subject, room, "utf16")
    return subject, cut(body, TEXT_LIMIT - overhead - measure(subject, "utf16"), "utf16")


def telegram_payload(notification: Notification, chat_id: str) -> dict[str, Any]:
    """Upstream's Telegram JSON for ``notification`` (text cut to Telegram's limit)."""
    emoji = EMOJI[notification.severity]
    subject, body = fit(clean(notification.subject), clean(notification.body_text), emoji)
    return {
        "chat_id": chat_id_value(chat_id),
        "text": f"<b>{escape(subject)}</b>\n\n{emoji} {escape(body)}",
        "parse_mode": "HTML",
    }


class TelegramChannel(HttpChannel):
    """One bot writing to one chat."""

    kind = "telegram"
    default_timeout_s = 30.0  # upstream had none

    def __init__(
        self,
        name: str,
        bot_token: str,
        chat_id: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        options: ChannelOptions = ChannelOptions(),
    ) -> None:
        super().__init__(name, (bot_token, f"bot{bot_token}"), options)
        self._url = f"{api_base.rstrip('/')}/bot{bot_token}/sendMessage"
        self.chat_id = chat_id

    def request(self, notification: Notification) -> Request:
        return self.json_request(self._url, telegram_payload(notification, self.chat_id))

    def answer(self, answer: Answer) -> SendOutcome:
        body = answer.json()
        if 200 <= answer.status < 300 and body.get("ok") is True:
            result = body.get("result")
            receipt = result.get("message_id", "") if isinstance(result, dict) else ""
            return self.delivered(answer, receipt)
        # A 2xx without "ok": true is Telegram refusing in its body (upstream's Api error):
        # failed() classes it rejected and not retryable, as any other non-error status.
        detail, code = answer.message("description"), body.get("error_code")
        migrated = _parameters(answer).get("migrate_to_chat_id")
        if isinstance(migrated, int) and not isinstance(migrated, bool):
            detail = f"{detail or 'group migrated'}; set chat_id to {migrated}"
            code = f"migrate_to_chat_id={migrated}"
        return self.failed(answer, code if isinstance(code, int | str) else None, detail)

    def retry_after(self, answer: Answer) -> object:
        """``parameters.retry_after`` (seconds), else ``Retry-After``."""
        wait = _parameters(answer).get("retry_after")
        return wait if isinstance(wait, int | float) else super().retry_after(answer)


def _parameters(answer: Answer) -> dict[str, object]:
    """Telegram's ``ResponseParameters`` of an error answer ({} when absent)."""
    parameters = answer.json().get("parameters")
    return parameters if isinstance(parameters, dict) else {}
