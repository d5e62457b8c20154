"""Fake Slack incoming webhooks and Discord webhooks, answering as the real ones do.

Slack: ``POST /services/T…/B…/<secret>``; 200 ``ok`` (text), refusals as a short code in
plain text (``invalid_payload``, ``no_text``, ``invalid_token``, ``no_service``), 429 with
``Retry-After``. Discord: ``POST /api/webhooks/<id>/<token>``; with ``?wait=true`` 200
and the saved message (its ``id`` a snowflake), without it 204; refusals as
``{"message", "code"}``; 429 as ``{"message", "retry_after", "global"}`` with
``Retry-After`` and ``X-RateLimit-*`` headers; Discord's limits (content 2,000, embed
title 256, description 4,096) checked, answered 50035 "Invalid Form Body".
"""

from __future__ import annotations

import itertools
import math
import random
import string
from typing import Any

from fakes.server import FakeServer, Received, Reply

ALNUM = string.ascii_letters + string.digits


def random_text(alphabet: str, n: int, rnd: random.Random | None = None) -> str:
    rnd = rnd or random.Random()
    return "".join(rnd.choice(alphabet) for _ in range(n))


class FakeSlack(FakeServer):
    """Modes: ``ok``, ``reject``, ``auth``, ``rate_limited``, ``server_error``, ``echo``,
    ``slow``, ``reset``."""

    name = "slack"

    def __init__(self, secret: str | None = None) -> None:
        upper = string.ascii_uppercase + string.digits
        team, bot = random_text(upper, 8), random_text(upper, 10)
        self.path = f"/services/T{team}/B{bot}/{secret or random_text(ALNUM, 24)}"
        super().__init__()

    @property
    def url(self) -> str:
        """The webhook URL to configure."""
        return self.base_url + self.path

    def reply(self, request: Received, mode: str) -> Reply:
        if request.path != self.path:
            return Reply(404, b"no_service")
        if mode == "ok":
            body = request.json()
            if not isinstance(body, dict) or not (body.get("text") or body.get("attachments")):
                return Reply(400, b"no_text")
            return Reply(200, b"ok")
        return {
            "reject": Reply(400, b"invalid_payload"),
            "auth": Reply(403, b"invalid_token"),
            "rate_limited": Reply(429, b"rate_limited", {"Retry-After": str(self.retry_after)}),
            "server_error": Reply(500, b"rollup_error"),
            "echo": Reply(400, request.echo().encode()),
        }[mode]


class FakeDiscord(FakeServer):
    """Modes: ``ok``, ``reject``, ``auth``, ``rate_limited``, ``server_error``, ``echo``,
    ``slow``, ``reset``, ``no_wait`` (204 even with ``wait=true``), ``bucket_empty`` (a
    success whose headers say the rate-limit bucket is empty)."""

    name = "discord"

    def __init__(self, webhook_id: str | None = None, token: str | None = None) -> None:
        self.webhook_id = webhook_id or random_text(string.digits, 18)
        self.token = token or random_text(ALNUM + "_-", 68)
        self._ids = itertools.count(1_180_000_000_000_000_000)
        super().__init__()

    @property
    def url(self) -> str:
        """The webhook URL to configure."""
        return f"{self.base_url}/api/webhooks/{self.webhook_id}/{self.token}"

    def reply(self, request: Received, mode: str) -> Reply:
        parts = request.path.split("/")
        if parts[:3] != ["", "api", "webhooks"] or len(parts) != 5:
            return Reply(404, {"message": "404: Not Found", "code": 0})
        if parts[3] != self.webhook_id:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if parts[4] != self.token or mode == "auth":
            return Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        if mode in ("ok", "no_wait", "bucket_empty"):
            return self._created(request, mode)
        if mode == "rate_limited":
            wait = float(self.retry_after)
            return Reply(
                429,
                {"message": "You are being rate limited.", "retry_after": wait, "global": False},
                {"Retry-After": str(math.ceil(wait)), **self._bucket(0, wait)},
            )
        return {
            "reject": Reply(400, {"message": "Cannot send an empty message", "code": 50006}),
            "server_error": Reply(500, {"message": "500: Internal Server Error", "code": 0}),
            "echo": Reply(400, {"message": request.echo(), "code": 50035}),
        }[mode]

    @staticmethod
    def _bucket(remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": f"{reset_after:g}",
            "X-RateLimit-Bucket": "fake-bucket",
        }

    def _created(self, request: Received, mode: str) -> Reply:
        body = request.json()
        errors = _discord_form_errors(body)
        if errors:
            return Reply(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors})
        headers = self._bucket(0, 0.5) if mode == "bucket_empty" else self._bucket(4, 2)
        if mode == "no_wait" or request.query.get("wait") != ["true"]:
            return Reply(204, b"", headers)
        message = {
            "id": str(next(self._ids)),
            "type": 0,
            "content": body.get("content", ""),
            "channel_id": "1180000000000000001",
            "embeds": [{**e, "type": "rich"} for e in body.get("embeds", [])],
            "webhook_id": self.webhook_id,
            "timestamp": "2026-12-07T00:00:00.000000+00:00",
        }
        return Reply(200, message, headers)


def _discord_form_errors(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {"_errors": [{"code": "MODEL_TYPE_CONVERT", "message": "Not an object"}]}
    errors: dict[str, Any] = {}
    if len(body.get("content", "")) > 2000:
        errors["content"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
    for i, embed in enumerate(body.get("embeds", [])):
        if len(embed.get("title", "")) > 256 or len(embed.get("description", "")) > 4096:
            errors[f"embeds.{i}"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
    if not body.get("content") and not body.get("embeds"):
        errors["content"] = {"_errors": [{"code": "BASE_TYPE_REQUIRED"}]}
    return errors
