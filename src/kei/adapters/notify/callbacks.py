"""Twilio status callbacks, decided without a server: parse, verify, decide.

Every request is hostile until its signature checks. :func:`handle` takes what an HTTP
server read (method, path, headers, a way to read the body) and answers a
:class:`Reply`; the caller only writes it back. ``kei notify receive`` wraps it in
``http.server`` (:mod:`.receiver`); a later ``kei serve`` can mount it the same way.

- ``POST /twilio/<channel>``, where ``<channel>`` is an ``sms`` channel with a
  ``status_callback`` (else 404; other methods 405).
- One ``Content-Length`` of at most :data:`MAX_BODY` bytes (none, or chunked: 411;
  more: 413, unread), form-encoded (else 415), ASCII and well formed (else 400).
- ``X-Twilio-Signature`` checked against the channel's configured ``status_callback``
  URL, never against the Host header or path the request names (a bad or missing
  signature: 403, nothing read further and nothing appended).
- Only then the fields: ``MessageSid`` and ``MessageStatus`` once each and well formed,
  ``ErrorCode`` digits if present (else 400). ``record`` appends the receipt:
  ``recorded`` and ``repeated`` answer 200, ``unknown`` 404.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import parse_qsl

from msgspec import Struct

from kei.adapters.notify.sms import SmsChannel

if TYPE_CHECKING:
    from kei.adapters.notify.channel import Channel

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
"""Twilio's callbacks are well under 2 KiB; anything near this is not Twilio."""
MAX_FIELDS: Final = 100
PATH_PREFIX: Final = "/twilio/"
FORM: Final = "application/x-www-form-urlencoded"
_SID: Final = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
_STATUS: Final = re.compile(r"[a-z_]{1,32}")
_CODE: Final = re.compile(r"[0-9]{1,10}")

Recorded = Literal["recorded", "repeated", "unknown"]
"""What became of a checked callback: appended, already there, or about no delivery."""


class Callback(Struct, frozen=True):
    """A status callback whose signature checked: about message ``sid`` on ``channel``."""

    channel: str
    sid: str
    status: str
    code: str | None = None


Record = Callable[[Callback], Recorded]
"""Appends the receipt of a checked callback (``NotifyService.record_callback``)."""


class Reply(Struct, frozen=True):
    """The HTTP answer: status and one short line of text."""

    status: int
    text: str


def sms_receivers(
    channels: Mapping[str, Channel], only: str | None = None
) -> dict[str, SmsChannel]:
    """The channels that can receive callbacks: ``sms`` with a ``status_callback``
    (``only``: that one channel, if it can)."""
    return {
        name: c
        for name, c in channels.items()
        if isinstance(c, SmsChannel) and c.status_callback and only in (None, name)
    }


def handle(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]],
    read: Callable[[int], bytes],
    receivers: Mapping[str, SmsChannel],
    record: Record,
) -> Reply:
    """The answer to one request; ``read(n)`` reads ``n`` bytes of its body (called at
    most once, only for a routed POST of an acceptable size)."""
    name = path.split("?", 1)[0].removeprefix(PATH_PREFIX)
    channel = receivers.get(name) if path.startswith(PATH_PREFIX) else None
    if channel is None:
        return Reply(404, "no such callback path")
    if method != "POST":
        return Reply(405, "POST only")
    size = _body_size(headers)
    if isinstance(size, Reply):
        return size
    found = _form(_header(headers, "content-type"), read(size))
    if isinstance(found, Reply):
        return found
    signature = _header(headers, "x-twilio-signature")
    if signature is None or not channel.check_callback(found, signature):
        log.warning("twilio callback on %s: bad or missing signature, refused", name)
        return Reply(403, "signature does not check")
    callback = _callback(name, found)
    if isinstance(callback, Reply):
        return callback
    outcome = record(callback)
    log.info("twilio callback on %s: %s %s: %s", name, callback.sid, callback.status, outcome)
    if outcome == "unknown":
        return Reply(404, "no notification was delivered as this message")
    return Reply(200, outcome)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name]
    return values[0] if len(values) == 1 else None


def _body_size(headers: Sequence[tuple[str, str]]) -> int | Reply:
    if any(k.lower() == "transfer-encoding" for k, _ in headers):
        return Reply(411, "send a Content-Length, not chunks")
    lengths = [v.strip() for k, v in headers if k.lower() == "content-length"]
    if len(lengths) != 1:
        return Reply(411, "send one Content-Length")
    if not lengths[0].isascii() or not lengths[0].isdigit():
        return Reply(400, "bad Content-Length")
    size = int(lengths[0])
    return Reply(413, f"body over {MAX_BODY} bytes") if size > MAX_BODY else size


def _form(content_type: str | None, body: bytes) -> list[tuple[str, str]] | Reply:
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != FORM:
        return Reply(415, f"send {FORM}")
    try:
        text = body.decode("ascii")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                         encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS)  # fmt: skip
    except ValueError:  # UnicodeDecodeError included
        return Reply(400, "malformed form body")


def _callback(channel: str, form: list[tuple[str, str]]) -> Callback | Reply:
    def one(key: str) -> str | None:
        values = {v for k, v in form if k == key}
        return values.pop() if len(values) == 1 else None

    sid, status = one("MessageSid"), one("MessageStatus")
    codes = [v for k, v in form if k == "ErrorCode"]
    code = codes[0] if codes else ""
    if sid is None or not _SID.fullmatch(sid):
        return Reply(400, "MessageSid missing or malformed")
    if status is None or not _STATUS.fullmatch(status):
        return Reply(400, "MessageStatus missing or malformed")
    if len(set(codes)) > 1 or (code and not _CODE.fullmatch(code)):
        return Reply(400, "ErrorCode malformed")
    return Callback(channel, sid, status, code or None)
