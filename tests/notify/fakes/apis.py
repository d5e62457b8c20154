"""Fake Telegram Bot API, Twilio Messages API and a plain JSON endpoint (apprise's json://).

Telegram: ``POST /bot<token>/sendMessage``; answers ``{"ok": true, "result": {...}}`` or
``{"ok": false, "error_code", "description", "parameters"}``; parses the HTML text as
Telegram does (only known tags, ``&lt;``/``&gt;``/``&amp;`` entities) and refuses text
over 4,096 UTF-16 units after parsing. Twilio: ``POST
/2010-04-01/Accounts/<SID>/Messages.json`` with HTTP Basic ``SID:token``; 201 and the
message resource (``sid`` ``SM…``, ``status`` ``queued``); refusals as ``{"code",
"message", "more_info", "status"}``; and, when the request named a ``StatusCallback``,
:meth:`FakeTwilio.callback` posts Twilio's signed status callback to it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import itertools
import re
import string
import urllib.error
import urllib.request
from urllib.parse import urlencode

from fakes.server import FakeServer, Received, Reply
from fakes.webhooks import ALNUM, random_text

HEX = "0123456789abcdef"
_TAG = re.compile(r"</?([a-z-]+)(?:\s[^>]*)?>")
_TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}


def telegram_visible_text(text: str) -> str | None:
    """What Telegram shows of an HTML message, or None when it cannot parse it."""
    if any(m.group(1) not in _TELEGRAM_TAGS for m in _TAG.finditer(text)):
        return None
    plain = _TAG.sub("", text)
    if "<" in plain or ">" in plain or re.search(r"&(?!(?:lt|gt|amp|quot);)", plain):
        return None
    return html.unescape(plain)


class FakeTelegram(FakeServer):
    """Modes: ``ok``, ``reject`` (chat not found), ``auth``, ``rate_limited``,
    ``server_error``, ``echo``, ``slow``, ``reset``, ``migrate`` (the group became a
    supergroup), ``ok_false`` (a 200 whose body says ``"ok": false``)."""

    name = "telegram"
    migrated_to = -1001234567890

    def __init__(self, token: str | None = None) -> None:
        self.token = token or random_text(string.digits, 10) + ":AA" + random_text(ALNUM + "_-", 33)
        self._ids = itertools.count(7)
        super().__init__()

    def _error(self, status: int, description: str, **parameters: object) -> Reply:
        body: dict[str, object] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return Reply(status, body)

    def reply(self, request: Received, mode: str) -> Reply:
        if request.path != f"/bot{self.token}/sendMessage" or mode == "auth":
            if request.path.startswith("/bot") and request.path.endswith("/sendMessage"):
                return self._error(401, "Unauthorized")
            return self._error(404, "Not Found")
        if mode == "ok":
            return self._sent(request)
        if mode == "rate_limited":
            wait = self.retry_after
            return self._error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        if mode == "migrate":
            return self._error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self.migrated_to,
            )
        if mode == "ok_false":
            return Reply(200, {"ok": False, "error_code": 400, "description": "Bad Request"})
        return {
            "reject": self._error(400, "Bad Request: chat not found"),
            "server_error": self._error(500, "Internal Server Error"),
            "echo": self._error(400, request.echo()),
        }[mode]

    def _sent(self, request: Received) -> Reply:
        body = request.json()
        text = body.get("text", "")
        visible = telegram_visible_text(text) if body.get("parse_mode") == "HTML" else text
        if visible is None:
            return self._error(400, "Bad Request: can't parse entities: unsupported start tag")
        if not visible.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(visible.encode("utf-16-le")) // 2 > 4096:
            return self._error(400, "Bad Request: message is too long")
        chat = body.get("chat_id")
        result = {
            "message_id": next(self._ids),
            "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "kei"},
            "chat": {"id": chat, "type": "private" if isinstance(chat, int) else "channel"},
            "date": 1796601600,
            "text": visible,
        }
        return Reply(200, {"ok": True, "result": result})


def twilio_signature(url: str, params: dict[str, str], auth_token: str) -> str:
    """Twilio's documented signature (written apart from kei's, to check it)."""
    data = url + "".join(key + params[key] for key in sorted(params))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


class FakeTwilio(FakeServer):
    """Modes: ``ok``, ``reject`` (21211 invalid To), ``auth`` (20003), ``rate_limited``
    (20429), ``server_error``, ``echo``, ``slow``, ``reset``."""

    name = "twilio"

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + random_text(HEX, 32)
        self.auth_token = auth_token or random_text(HEX, 32)
        self.callbacks: dict[str, tuple[str, dict[str, str]]] = {}
        self._ids = itertools.count(1)
        super().__init__()

    def _error(self, status: int, code: int, message: str, **headers: str) -> Reply:
        more = f"https://www.twilio.com/docs/errors/{code}"
        body = {"code": code, "message": message, "more_info": more, "status": status}
        return Reply(status, body, headers)

    def reply(self, request: Received, mode: str) -> Reply:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}" or mode == "auth":
            return self._error(401, 20003, "Authenticate")
        if request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return self._error(404, 20404, "The requested resource was not found")
        form = request.form()
        if mode == "ok":
            return self._created(form)
        if mode == "rate_limited":
            return self._error(
                429, 20429, "Too Many Requests", **{"Retry-After": str(self.retry_after)}
            )
        return {
            "reject": self._error(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number."),
            "server_error": self._error(500, 20500, "Internal Server Error"),
            "echo": self._error(400, 21211, request.echo()),
        }[mode]  # fmt: skip

    def _created(self, form: dict[str, str]) -> Reply:
        for field, code in (("To", 21604), ("From", 21603), ("Body", 21602)):
            if not form.get(field):
                return self._error(400, code, f"A '{field}' is required.")
        if len(form["Body"]) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")  # fmt: skip
        sid = "SM" + f"{next(self._ids):032x}"
        if form.get("StatusCallback"):
            self.callbacks[sid] = (form["StatusCallback"], form)
        resource = {
            "sid": sid, "account_sid": self.account_sid, "to": form["To"],
            "from": form["From"], "body": form["Body"], "status": "queued",
            "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }  # fmt: skip
        return Reply(201, resource)

    def callback(self, sid: str, status: str = "delivered") -> int:
        """POST Twilio's signed status callback for message ``sid``; the receiver's status."""
        url, form = self.callbacks[sid]
        params = {
            "MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid,
            "From": form["From"], "To": form["To"], "MessageStatus": status,
            "SmsStatus": status, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        request = urllib.request.Request(
            url,
            data=urlencode(params).encode(),
            headers={"X-Twilio-Signature": twilio_signature(url, params, self.auth_token)},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return refused.code


class FakeJson(FakeServer):
    """Any ``POST`` path; ``ok`` answers 200, the failure modes as HTTP errors."""

    name = "json"

    def reply(self, request: Received, mode: str) -> Reply:
        del request
        return {
            "ok": Reply(200, {"ok": True}),
            "reject": Reply(400, {"error": "bad request"}),
            "auth": Reply(401, {"error": "unauthorized"}),
            "rate_limited": Reply(429, {"error": "slow down"}, {"Retry-After": str(self.retry_after)}),
            "server_error": Reply(500, {"error": "internal"}),
        }[mode]  # fmt: skip
