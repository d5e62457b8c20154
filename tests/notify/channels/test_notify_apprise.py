"""The optional apprise channel, for real: apprise's ``json://`` plugin posting to a fake
JSON endpoint on 127.0.0.1 (apprise comes with the test extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import start_fake_json
from kei.adapters.notify.apprise_channel import AppriseChannel, with_timeouts
from kei.adapters.notify.base import ChannelOptions
from kei.adapters.notify.config import load_channels
from kei.domain.notify import Delivered, Failed, Notification
from kei.errors import NotifyConfigError

pytest.importorskip("apprise", reason="apprise is the optional extra kei[apprise]; not installed")
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

NOTE = Notification(subject="Budget at 80%", body_text="ops spent 80 USD", severity="warn")


def json_url(base_url: str) -> str:
    return base_url.replace("http://", "json://") + "/hook"


def test_apprise_delivers_title_body_and_type_through_its_json_plugin() -> None:
    with start_fake_json() as fake:
        channel = AppriseChannel("any", json_url(fake.base_url), ChannelOptions(timeout_s=3))
        try:
            outcome = channel.send(NOTE)
        finally:
            channel.close()
        assert isinstance(outcome, Delivered) and (outcome.http_status, outcome.receipt) == (0, "")
        (request,) = fake.received
        body = request.json()
        assert (request.path, body["title"], body["message"], body["type"]) == (
            "/hook", "Budget at 80%", "ops spent 80 USD", "warning")  # fmt: skip
        assert channel.request_bytes(NOTE) == (
            b'{"title":"Budget at 80%","body":"ops spent 80 USD","type":"warning"}'
        )


@pytest.mark.parametrize("mode", ["reject", "server_error", "reset"])
def test_a_failed_apprise_send_is_in_doubt_and_never_names_the_url(mode: str) -> None:
    with start_fake_json() as fake:
        fake.mode = mode
        url = json_url(fake.base_url).replace("json://", "json://user:s3cretpassw0rd@")
        channel = AppriseChannel("any", url, ChannelOptions(timeout_s=3))
        try:
            outcome = channel.send(NOTE)
        finally:
            channel.close()
        assert isinstance(outcome, Failed)
        assert (outcome.failure_class, outcome.retryable, outcome.in_doubt) == ("rejected", True, True)  # fmt: skip
        assert "s3cretpassw0rd" not in outcome.error and str(fake.base_url) not in outcome.error


def test_kei_adds_apprise_timeouts_unless_the_url_has_them() -> None:
    assert with_timeouts("json://h/x", 30) == "json://h/x?cto=5&rto=30"
    assert with_timeouts("json://h/x?rto=9", 2) == "json://h/x?rto=9&cto=2"
    assert with_timeouts("json://h/x?cto=1&rto=9", 2) == "json://h/x?cto=1&rto=9"


def test_an_apprise_channel_from_notify_toml(tmp_path: Path) -> None:
    path = tmp_path / "notify.toml"
    path.write_text('[channels.mail]\nkind = "apprise"\nurl = "json://127.0.0.1:9/x"\n')
    channel = load_channels(path, {})["mail"]
    assert (channel.kind, channel.min_interval_s, channel.min_severity) == ("apprise", 0, "info")
    channel.close()
    path.write_text('[channels.mail]\nkind = "apprise"\nurl = "nosuchservice://secretvalue"\n')
    with pytest.raises(NotifyConfigError) as info:
        load_channels(path, {})
    assert "channels.mail.url: apprise does not accept this URL" in str(info.value)
    assert "secretvalue" not in str(info.value)
