"""One POST with timeouts, its answer read within bounds, the outcome told without secrets.

Every HTTP channel (Slack, Discord, Telegram, Twilio) builds its request as exact bytes
(:meth:`HttpChannel.request`, so the notifier can log their SHA-256 and what is hashed
is what is sent) and reads its provider's answer (:meth:`HttpChannel.answer`); this
base sends it once. Upstream had no timeout on Telegram and 15 or 30 s elsewhere; here
every request has a connect timeout (:data:`~kei.adapters.notify.base.CONNECT_TIMEOUT_S`)
and a whole-request timeout (the kind's default or ``timeout_s``). Redirects are not
followed (a redirect could carry the credentials elsewhere) and an answer is read up to
:data:`MAX_ANSWER_BYTES`. Nothing here raises for a provider's answer or a network fault.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Final

import httpx
from msgspec import Struct

from kei.adapters.notify.base import CONNECT_TIMEOUT_S, BaseChannel, ChannelOptions
from kei.adapters.notify.failures import (
    classify_status,
    raw_text,
    retry_after_ms,
    transport_failure,
)
from kei.adapters.notify.secrets import Secrets
from kei.adapters.notify.text import cut, one_line
from kei.domain.notify import Delivered, Failed, FailureClass, Notification, SendOutcome

MAX_ANSWER_BYTES: Final = 64 * 1024
USER_AGENT: Final = "kei-notify"
_LABELS: Final[dict[FailureClass, str]] = {
    "rate_limited": "rate limited",
    "auth": "credentials refused",
    "timeout": "timed out",
    "rejected": "rejected",
    "transport": "failed",
}


class Request(Struct, frozen=True, kw_only=True):
    """Exactly what one send puts on the wire (the body, not the credentials)."""

    url: str
    content: bytes
    content_type: str
    basic_auth: tuple[str, str] | None = None


class Answer(Struct, frozen=True, kw_only=True):
    """A provider's answer: status, lower-case headers, at most MAX_ANSWER_BYTES of body."""

    status: int
    headers: dict[str, str]
    body: bytes
    latency_us: int

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or {} when it is not one."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def message(self, key: str) -> str | None:
        """The provider's message: the JSON body's text field ``key``, or the whole body
        when it is not JSON (an HTML error page from a proxy, say)."""
        body = self.json()
        if not body:
            return self.text() or None
        value = body.get(key)
        return value if isinstance(value, str) else None


def json_bytes(payload: dict[str, Any]) -> bytes:
    """Compact JSON in the payload's own key order, UTF-8 as is (serde_json's output)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class HttpChannel(BaseChannel):
    """A channel whose send is one HTTP POST; subclasses build it and read the answer."""

    def __init__(self, name: str, secrets: Iterable[str], options: ChannelOptions) -> None:
        super().__init__(name, options)
        self.secrets = Secrets.of(secrets)
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s)),
            follow_redirects=False,
            # identity: the body read is the body sent, never a small gzip that inflates
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    # -- what subclasses provide ---------------------------------------------------------

    def request(self, notification: Notification) -> Request:
        raise NotImplementedError

    def answer(self, answer: Answer) -> SendOutcome:
        raise NotImplementedError

    # -- the Channel protocol ------------------------------------------------------------

    def json_request(self, url: str, payload: dict[str, Any]) -> Request:
        """A JSON POST (Slack, Discord, Telegram)."""
        return Request(url=url, content=json_bytes(payload), content_type="application/json")

    def request_bytes(self, notification: Notification) -> bytes:
        return self.request(notification).content

    def send(self, notification: Notification) -> SendOutcome:
        request = self.request(notification)
        start = time.perf_counter_ns()
        try:
            answer = self._post(request, start)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            failure_class, what, in_doubt = transport_failure(exc)
            return Failed(
                failure_class=failure_class,
                retryable=True,
                error=self.error(what),
                latency_us=_since(start),
                in_doubt=in_doubt,
            )
        return self.answer(answer)

    def close(self) -> None:
        self._client.close()

    def _post(self, request: Request, start: int) -> Answer:
        headers = {"Content-Type": request.content_type}
        with self._client.stream(
            "POST",
            request.url,
            content=request.content,
            headers=headers,
            auth=request.basic_auth,
        ) as response:
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) >= MAX_ANSWER_BYTES:
                    break
            return Answer(
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                body=bytes(body[:MAX_ANSWER_BYTES]),
                latency_us=_since(start),
            )

    # -- outcomes, for subclasses ------------------------------------------------------

    def error(self, what: str, detail: str | None = None) -> str:
        """``<kind> channel '<name>': <what>[: <detail>]``; ``detail`` (provider text) is
        made one short line and scrubbed, and dropped when it cannot be."""
        text = f"{self.kind} channel {self.name!r}: {what}"
        if detail:
            safe = self.secrets.scrub(one_line(detail))
            if safe:
                text += f": {safe}"
        return self.secrets.seal(text)

    def safe(self, value: object, limit: int = 128) -> str | None:
        """A provider's value (receipt, code, status) as bounded text without secrets."""
        if value is None or isinstance(value, dict | list):
            return None
        return self.secrets.scrub(cut(str(value), limit))

    def delivered(
        self, answer: Answer, receipt: object = "", provider_status: object = None
    ) -> Delivered:
        return Delivered(
            http_status=answer.status,
            receipt=self.safe(receipt) or "",
            latency_us=answer.latency_us,
            provider_status=self.safe(provider_status, 64),
        )

    def retry_after(self, answer: Answer) -> object:
        """The provider's wait as it gave it (``Retry-After`` here; Discord and Telegram
        put theirs in the body)."""
        return answer.headers.get("retry-after")

    def failed(self, answer: Answer, code: object = None, detail: str | None = None) -> Failed:
        """A non-success answer: the class from its status, the provider's wait read and
        capped, ``code`` and ``detail`` (its message) bounded and scrubbed."""
        failure_class, retryable = classify_status(answer.status)
        raw_wait = self.retry_after(answer)
        wait_ms = retry_after_ms(raw_wait)
        provider_code = self.safe(code, 64)
        what = f"HTTP {answer.status} {_LABELS[failure_class]}"
        if provider_code:
            what += f", provider code {provider_code}"
        if wait_ms is not None:
            what += f", retry after {wait_ms / 1000:g} s"
        return Failed(
            failure_class=failure_class,
            retryable=retryable,
            error=self.error(what, detail),
            latency_us=answer.latency_us,
            http_status=answer.status,
            retry_after_ms=wait_ms,
            retry_after_raw=self.safe(raw_text(raw_wait), 64),
            provider_code=provider_code,
        )


def _since(start_ns: int) -> int:
    return (time.perf_counter_ns() - start_ns) // 1000
