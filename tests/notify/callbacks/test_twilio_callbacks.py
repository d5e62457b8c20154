"""``kei notify receive``'s handler over a real ledger (SQLite file and PostgreSQL), with
the shared fake Twilio posting its signed status callbacks to a real server on
127.0.0.1: a delivered SMS gets its receipt once; a forged, oversized or unknown
callback appends nothing. Every request is hostile until its signature checks."""

from __future__ import annotations

import json
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_helpers import cli_env, kei
from fakes import FakeTwilio, start_fake_twilio, twilio_signature
from kei.adapters.notify.callbacks import MAX_BODY, Callback, Recorded, handle, sms_receivers
from kei.adapters.notify.receiver import CallbackServer
from kei.adapters.notify.sms import SmsChannel
from kei.app.ledger.ledger import Ledger
from kei.app.notify.config import parse_config
from kei.app.notify.service import NotifyService
from kei.domain.events.notify import notify_stream


@dataclass
class Rig:
    twilio: FakeTwilio
    service: NotifyService
    server: CallbackServer
    ledger: Ledger

    @property
    def callback_url(self) -> str:
        return f"{self.server.url}/twilio/pager"

    def sent(self) -> tuple[str, str]:
        """An SMS sent now: (notification id, Twilio's sid)."""
        state = self.service.send("pager", "disk full", severity="error")
        assert state.state == "delivered" and state.receipt
        return state.notification_id, state.receipt

    def receipts(self, nid: str) -> list[tuple[str, str | None]]:
        events = self.ledger.read_stream_checked(notify_stream(nid))
        return [(e.payload_data()["provider_status"], e.payload_data().get("provider_code"))
                for e in events if e.type == "notify.receipt"]  # fmt: skip

    def post(self, body: bytes, signature: str | None, path: str = "/twilio/pager") -> int:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        request = urllib.request.Request(self.server.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return refused.code


@pytest.fixture
def rig(store_url: str, make_ledger: Callable[[str], Ledger]) -> Iterator[Rig]:
    ledger = make_ledger(store_url)
    with start_fake_twilio() as twilio:
        service_box: list[NotifyService] = []

        def record(c: Callback) -> Recorded:
            return service_box[0].record_callback(c.channel, c.sid, c.status, c.code)

        server = CallbackServer(("127.0.0.1", 0), {}, record)
        channel = SmsChannel("pager", twilio.account_sid, twilio.auth_token, "+15005550006",
                             "+15005550001", api_base=twilio.url,
                             status_callback=f"{server.url}/twilio/pager")  # fmt: skip
        channels = {"pager": channel}
        service = NotifyService(ledger, channels, parse_config({}, "notify.toml", channels))
        service_box.append(service)
        server.receivers = sms_receivers(channels)
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        try:
            yield Rig(twilio, service, server, ledger)
        finally:
            server.shutdown()
            server.server_close()
            serving.join()
            service.close()
            channel.close()


def form(sid: str, status: str = "delivered", **more: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32, **more}


def encoded(params: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(params).encode()


def test_a_delivered_callback_appends_its_receipt_once(rig: Rig) -> None:
    nid, sid = rig.sent()
    assert rig.twilio.callback(sid, "sent") == 200
    assert rig.twilio.callback(sid, "delivered") == 200
    assert rig.receipts(nid) == [("sent", None), ("delivered", None)]
    before = rig.ledger.store.stream_version(notify_stream(nid))
    assert rig.twilio.callback(sid, "delivered") == 200  # replayed: nothing new
    assert rig.ledger.store.stream_version(notify_stream(nid)) == before
    assert rig.service.show(nid).state.provider_status == "delivered"


def test_an_error_code_is_kept(rig: Rig) -> None:
    nid, sid = rig.sent()
    params = form(sid, "undelivered", ErrorCode="30003")
    assert rig.post(encoded(params), twilio_signature(rig.callback_url, params,
                                                      rig.twilio.auth_token)) == 200  # fmt: skip
    assert rig.receipts(nid) == [("undelivered", "30003")]


def test_forged_missing_or_misaddressed_signatures_append_nothing(rig: Rig) -> None:
    nid, sid = rig.sent()
    params = form(sid)
    body = encoded(params)
    assert rig.post(body, twilio_signature(rig.callback_url, params, "0" * 32)) == 403
    assert rig.post(body, None) == 403
    assert rig.post(body, "") == 403
    # signed for the URL the attacker reached (its Host), not the configured public one
    assert rig.post(body, twilio_signature("http://evil.example/twilio/pager", params,
                                           rig.twilio.auth_token)) == 403  # fmt: skip
    # a valid signature for other parameters
    other = form(sid, "failed")
    assert rig.post(body, twilio_signature(rig.callback_url, other, rig.twilio.auth_token)) == 403
    assert rig.receipts(nid) == []


def test_a_huge_body_is_refused_unread(rig: Rig) -> None:
    nid, sid = rig.sent()
    params = form(sid, Pad="x" * MAX_BODY)
    good = twilio_signature(rig.callback_url, params, rig.twilio.auth_token)
    assert rig.post(encoded(params), good) == 413
    assert rig.receipts(nid) == []


def test_an_unknown_sid_or_channel_is_404(rig: Rig) -> None:
    nid, _ = rig.sent()
    params = form("SM" + "f" * 32)
    good = twilio_signature(rig.callback_url, params, rig.twilio.auth_token)
    assert rig.post(encoded(params), good) == 404
    assert rig.post(encoded(params), good, path="/twilio/other") == 404
    assert rig.receipts(nid) == []


def test_malformed_fields_behind_a_good_signature_are_400(rig: Rig) -> None:
    nid, sid = rig.sent()
    for params in (form(sid[:-1]), form(sid, "Delivered\n"), form(sid, ErrorCode="x1")):
        signed = twilio_signature(rig.callback_url, params, rig.twilio.auth_token)
        assert rig.post(encoded(params), signed) == 400
    assert rig.receipts(nid) == []


RECEIVERS = {"pager": SmsChannel("pager", "AC" + "1" * 32, "f" * 32, "+1", "+2",
                                 status_callback="https://kei.example/twilio/pager")}  # fmt: skip
_headers = st.lists(
    st.tuples(
        st.sampled_from(["Content-Length", "Content-Type", "X-Twilio-Signature",
                         "Transfer-Encoding", "Host"]), st.text(max_size=40),
    ), max_size=6,
)  # fmt: skip


@given(st.sampled_from(["POST", "GET", "PUT"]), st.text(max_size=40), _headers,
       st.binary(max_size=300))  # fmt: skip
def test_no_unsigned_request_reaches_the_ledger(
    method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    def record(c: Callback) -> Recorded:
        raise AssertionError(f"recorded {c}")

    path = "/twilio/pager" if path.startswith("a") else path
    reply = handle(method, path, headers, lambda n: body[:n], RECEIVERS, record)
    assert reply.status in (400, 403, 404, 405, 411, 413, 415)


@pytest.mark.slow
def test_kei_notify_receive_records_and_stops_on_sigterm(tmp_path: pathlib.Path) -> None:
    """The real command in a child process: a receipt lands, SIGTERM ends it (exit 0)."""
    with socket.socket() as probe:  # a free port, for the URL the config must name first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    with start_fake_twilio() as twilio:
        env = cli_env(home, f"sqlite:///{tmp_path / 'ledger.db'}", TWILIO_TOKEN=twilio.auth_token)
        assert kei(["init"], env).returncode == 0
        (home / "notify.toml").write_text(f"""
[channels.pager]
kind = "sms"
account_sid = "{twilio.account_sid}"
auth_token = "env:TWILIO_TOKEN"
from_number = "+15005550006"
to_number = "+15005550001"
api_base = "{twilio.url}"
status_callback = "http://127.0.0.1:{port}/twilio/pager"
""")
        sent = kei(["notify", "send", "pager", "--subject", "disk", "--severity", "error",
                    "--json"], env)  # fmt: skip
        shown = json.loads(sent.stdout)
        run = subprocess.Popen([sys.executable, "-m", "kei", "notify", "receive", "--port",
                                str(port)], env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert run.stderr is not None
            assert f"127.0.0.1:{port}/twilio/pager" in run.stderr.readline()
            assert twilio.callback(shown["receipt"], "delivered") == 200
        finally:
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=30)
        assert run.returncode == 0 and "stopped" in err, err
        events = json.loads(kei(["notify", "show", shown["id"], "--json"], env).stdout)["events"]
        assert [e["payload"]["provider_status"] for e in events if e["type"] == "notify.receipt"] == ["delivered"]  # fmt: skip
