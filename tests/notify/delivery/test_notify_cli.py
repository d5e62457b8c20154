"""``kei notify`` through kei's app (in this process, so the channel seam can point at
the test channel until the channel adapters land): what each command prints, its exit
codes, one-line errors, and nothing appended by a command that fails."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery_fakes import FakeProvider, PostChannel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli_env, in_process, run_sql
from kei.app.notify import config as notify_config

Run = Callable[..., Any]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def kei(
    home: Path, url: str, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Run]:
    made: list[PostChannel] = []

    def channels(data: Any, source: str, environ: Any) -> dict[str, PostChannel]:
        made.append(PostChannel("chat", provider.url, timeout_s=1.0))
        return {"chat": made[-1]}

    monkeypatch.setattr(notify_config, "channels_from", channels)
    run = in_process(cli_env(home, url))
    run("init")
    yield run
    for c in made:
        c.close()


def test_the_choices_mirror_the_domain() -> None:
    from typing import get_args

    from kei.adapters.cli.commands.notify_cmd import SeverityName, StateName
    from kei.domain.notify import SEVERITIES
    from kei.domain.notify.state import STATES

    assert get_args(SeverityName) == SEVERITIES and get_args(StateName) == STATES


def events(url: str) -> int:
    return int(run_sql(url, "SELECT COUNT(*) FROM kei_chain")[0][0])


def one_line_error(result: Any) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("kei: error")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_send_list_show_retry(kei: Run, provider: FakeProvider, url: str) -> None:
    sent = json.loads(kei("notify", "send", "chat", "--subject", "hi", "--body", "b",
                          "--severity", "warn", "--json").stdout)  # fmt: skip
    assert (sent["state"], sent["receipt"], sent["channel"]) == ("delivered", "m-1", "chat")
    assert sent["requested_at"].endswith("Z")
    rows = [json.loads(line) for line in kei("notify", "list", "--json").stdout.splitlines()]
    assert [(r["id"], r["state"]) for r in rows] == [(sent["id"], "delivered")]
    assert kei("notify", "list", "--state", "abandoned").stdout == ""
    shown = json.loads(kei("notify", "show", sent["id"][:8], "--json").stdout)
    assert [e["type"] for e in shown["events"]] == [
        "notify.requested", "notify.attempted", "notify.delivered",
    ]  # fmt: skip
    assert "notify.delivered" in kei("notify", "show", sent["id"]).stdout
    before = events(url)
    again = kei("notify", "retry", sent["id"][:8], code=None)
    assert again.exit_code != 0 and "delivered: nothing to retry" in one_line_error(again)
    assert events(url) == before
    provider.script.append("400")
    failed = kei("notify", "send", "chat", "--subject", "no", code=1)
    assert "not delivered: not_retryable" in one_line_error(failed)
    nid = kei("notify", "list", "--state", "abandoned").stdout.split()[0]
    kei("notify", "retry", nid, "--reason", "fixed")
    assert provider.subjects() == ["hi", "no", "no"]


def test_test_and_channels(kei: Run, provider: FakeProvider) -> None:
    line = json.loads(kei("notify", "channels", "--json").stdout)
    assert line == {"name": "chat", "kind": "slack", "min_severity": "info",
                    "min_interval_s": 0.0, "in_doubt": "retry", "max_attempts": 8}  # fmt: skip
    assert "delivered" in kei("notify", "test", "chat").stderr
    provider.script.append("500")
    assert "not delivered: rejected" in one_line_error(kei("notify", "test", "chat", code=1))


def test_rules_are_checked_and_the_run_sends_them(
    kei: Run, home: Path, provider: FakeProvider, url: str
) -> None:
    (home / "notify.toml").write_text(
        '[[rules]]\nid = "f"\non = "agent.failed"\nchannel = "chat"\n'
        'template = { subject = "{agent_id} failed: {reason}" }\n'
    )
    assert kei("notify", "rules").stdout.split("\t")[:3] == ["f", "agent.failed", "chat"]
    assert "[[rules]]" in kei("notify", "rules", "--example").stdout
    kei("agent", "fork", "a1", "b")
    kei("agent", "fail", "a1", "--reason", "oom")
    done = kei("notify", "run", "--once", "--from-start", "--interval", "0.05", "--json")
    assert "1 requested, 1 sent, 0 errors" in done.stderr
    assert json.loads(done.stdout) | {"turns": 0} == {"requested": 1, "sent": 1, "turns": 0,
                                                      "errors": 0}  # fmt: skip
    assert provider.subjects() == ["a1 failed: oom"]
    (home / "notify.toml").write_text('[[rules]]\nid = "f"\non = "agent.failed"\n'
                                      'channel = "pager"\ntemplate = { subject = "x" }\n')  # fmt: skip
    before = events(url)
    bad = one_line_error(kei("notify", "run", "--once", code=None))
    assert f"{home / 'notify.toml'}: rule 'f': key channel: no channel named 'pager'" in bad
    assert events(url) == before


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    channel=st.sampled_from(["chat", "nope", "", "\x1b[31m"]),
    subject=st.text(max_size=30),
    key=st.none() | st.text(max_size=300),
    severity=st.sampled_from(["info", "fatal"]),
)
def test_hostile_send_arguments(
    kei: Run, url: str, channel: str, subject: str, key: str | None, severity: str
) -> None:
    args = ["notify", "send", channel, "--subject", subject, "--severity", severity, "--queue"]
    if key is not None:
        args += ["--key", key]
    before = events(url)
    result = kei(*args, code=None)
    if result.exit_code == 0:
        assert events(url) == before + 1
    else:
        assert events(url) == before
        assert "Traceback" not in result.stderr and result.exit_code in (1, 2)
