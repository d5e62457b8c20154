"""SMS through Twilio, with upstream kei-notify-sms's message, and Twilio's callback check.

``POST {api_base}/2010-04-01/Accounts/{SID}/Messages.json``, HTTP Basic ``SID:token``,
form fields ``To``, ``From``, ``Body`` (and ``StatusCallback`` when configured), where
the body is ``"{prefix} {subject} - {body}"`` with upstream's ASCII prefixes and cut to
1,500 UTF-8 bytes on a character boundary. Two changes from upstream, both about cost:
the separator is `` - `` where upstream had an em dash (not in GSM-7: it made every
upstream SMS UCS-2, 70 characters a segment instead of 160), and typographic
look-alikes are replaced when that keeps the message GSM-7 (:mod:`.gsm7`); a cut ends
with ``...`` (GSM-7) rather than ``…``. Only 201 is a delivery; its ``sid`` is the
receipt and ``status`` (``queued``...) the provider status. Twilio's error ``code``
(21211 invalid To, 20429 too many requests...) is the provider code. The floor is
``warn`` (upstream's ``min_severity``): an SMS costs money. The phone numbers are
scrubbed from error text too: they are personal data, and an event is forever.

:func:`check_twilio_signature` checks the ``X-Twilio-Signature`` of a status callback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from kei.adapters.notify.base import ChannelOptions, by_severity
from kei.adapters.notify.gsm7 import gsm7_friendly
from kei.adapters.notify.http import Answer, HttpChannel, Request
from kei.adapters.notify.secrets import basic_credentials
from kei.adapters.notify.text import clean, cut
from kei.domain.notify import Notification, SendOutcome

DEFAULT_API_BASE: Final = "https://api.twilio.com"
PREFIXES: Final = by_severity("[i]", "[+]", "[!]", "[x]")
SEPARATOR: Final = " - "
BODY_BYTES: Final = 1_500
CUT_MARK: Final = "..."


def sms_text(notification: Notification) -> str:
    """The SMS body: prefix, subject, `` - ``, body; GSM-7 where it can be; 1,500 bytes."""
    prefix = PREFIXES[notification.severity]
    text = f"{prefix} {clean(notification.subject)}{SEPARATOR}{clean(notification.body_text)}"
    return cut(gsm7_friendly(text), BODY_BYTES, "utf8", CUT_MARK)


def sms_form(
    notification: Notification, from_number: str, to_number: str, status_callback: str | None
) -> list[tuple[str, str]]:
    """The form fields in upstream's order (``StatusCallback`` last, when set)."""
    fields = [("To", to_number), ("From", from_number), ("Body", sms_text(notification))]
    return [*fields, ("StatusCallback", status_callback)] if status_callback else fields


class SmsChannel(HttpChannel):
    """One Twilio sender writing to one number."""

    kind = "sms"
    default_timeout_s = 30.0  # upstream's
    default_min_severity = "warn"  # upstream's

    def __init__(
        self,
        name: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        to_number: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        status_callback: str | None = None,
        options: ChannelOptions = ChannelOptions(),
    ) -> None:
        secrets = (
            account_sid,
            auth_token,
            basic_credentials(account_sid, auth_token),
            from_number,
            to_number,
        )
        super().__init__(name, secrets, options)
        self._url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = (account_sid, auth_token)
        self._numbers = (from_number, to_number)
        self._status_callback = status_callback

    @property
    def status_callback(self) -> str | None:
        """The public URL Twilio posts this channel's status callbacks to (and signs)."""
        return self._status_callback

    def check_callback(self, params: Params, signature: str) -> bool:
        """Is ``signature`` Twilio's for a callback with ``params`` to :attr:`status_callback`?
        Checked against the configured URL, never one a request names: the request's Host
        and path are the sender's to choose."""
        url = self._status_callback
        return url is not None and check_twilio_signature(url, params, signature, self._auth[1])

    def request(self, notification: Notification) -> Request:
        form = sms_form(notification, *self._numbers, self._status_callback)
        return Request(
            url=self._url,
            content=urlencode(form).encode("ascii"),
            content_type="application/x-www-form-urlencoded",
            basic_auth=self._auth,
        )

    def answer(self, answer: Answer) -> SendOutcome:
        body = answer.json()
        if answer.status == 201:
            return self.delivered(answer, body.get("sid", ""), body.get("status"))
        return self.failed(answer, body.get("code"), answer.message("message"))


# -- status callbacks ---------------------------------------------------------------------

Params = Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]]


def _grouped(params: Params) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    pairs = params.items() if isinstance(params, Mapping) else params
    for key, value in pairs:
        values = [value] if isinstance(value, str) else list(value)
        grouped.setdefault(key, []).extend(values)
    return grouped


def _sign(url: str, grouped: dict[str, list[str]], auth_token: str) -> bytes:
    data = url + "".join(k + v for k in sorted(grouped) for v in sorted(set(grouped[k])))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest)


def twilio_signature(url: str, params: Params, auth_token: str) -> str:
    """Twilio's signature of a request: base64 HMAC-SHA1, keyed by the auth token, of
    the full URL followed by each POST parameter's name and value, sorted by name (and
    a repeated name's values sorted), as Twilio's own libraries compute it."""
    return _sign(url, _grouped(params), auth_token).decode("ascii")


def _port_forms(url: str) -> set[str]:
    """``url`` as given, without its port, and with its scheme's default port: Twilio
    may sign either, depending on how the callback URL was configured."""
    split = urlsplit(url)
    try:
        port = split.port
    except ValueError:
        return {url}
    user, _, host = split.netloc.rpartition("@")
    bare = host.rsplit(":", 1)[0] if port is not None else host
    lead = f"{user}@" if user else ""
    forms = {url, urlunsplit(split._replace(netloc=lead + bare))}
    port = port if port is not None else {"https": 443, "http": 80}.get(split.scheme)
    if port is not None and bare:
        forms.add(urlunsplit(split._replace(netloc=f"{lead}{bare}:{port}")))
    return forms


def check_twilio_signature(url: str, params: Params, signature: str, auth_token: str) -> bool:
    """Is ``signature`` (the ``X-Twilio-Signature`` header) Twilio's for this callback?
    Compared in constant time; ``params`` are all the POST form fields received."""
    given = signature.strip().encode("utf-8", "replace")
    grouped = _grouped(params)
    found = False
    for form in sorted(_port_forms(url)):
        found |= hmac.compare_digest(_sign(form, grouped, auth_token), given)
    return found
