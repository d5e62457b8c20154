"""The whole path as a user runs it: the real ``kei`` command in child processes, the
channels built from ``notify.toml`` by the channel adapters, and the shared fake Slack
and Twilio (``tests/notify/fakes``). A rule's notification reaches Slack; an SMS held by
Twilio when the notifier is killed is abandoned in doubt, never sent twice; SIGTERM
ends ``kei notify run`` cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei
from fakes import FakeSlack, FakeTwilio, start_fake_slack, start_fake_twilio

pytestmark = pytest.mark.slow
WAIT_S = 30.0


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with start_fake_slack() as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with start_fake_twilio() as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, slack: FakeSlack, twilio: FakeTwilio) -> dict[str, str]:
    home = tmp_path / "home"
    environment = cli_env(home, f"sqlite:///{tmp_path / 'ledger.db'}",
                          TWILIO_TOKEN=twilio.auth_token)  # fmt: skip
    assert kei(["init"], environment).returncode == 0
    (home / "notify.toml").write_text(f"""
[channels.ops]
kind = "slack"
url = "{slack.url}"
min_interval_s = 0

[channels.pager]
kind = "sms"
account_sid = "{twilio.account_sid}"
auth_token = "env:TWILIO_TOKEN"
from_number = "+15005550006"
to_number = "+15005550001"
api_base = "{twilio.url}"

[[rules]]
id = "failed"
on = "agent.failed"
channel = "ops"
severity = "error"
template = {{ subject = "Agent {{agent_id}} failed", body = "{{reason}}" }}
""")
    return environment


def notify_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kei", "notify", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def attempted(env: dict[str, str], nid: str) -> list[dict[str, object]]:
    shown = json.loads(kei(["notify", "show", nid, "--json"], env).stdout)
    return [e for e in shown["events"] if e["type"] == "notify.attempted"]


def test_a_rule_reaches_slack_and_sigterm_ends_the_run(
    env: dict[str, str], slack: FakeSlack
) -> None:
    run = notify_run(env, "--interval", "0.05")
    time.sleep(1.5)  # its cursor starts at the log's end
    for args in (["agent", "fork", "a1", "b"], ["agent", "fail", "a1", "--reason", "oom"]):
        assert kei(args, env).returncode == 0
    (request,) = slack.wait_for(1, timeout=WAIT_S)
    assert request.json()["text"] == "Agent a1 failed"
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=WAIT_S)
    assert run.returncode == 0 and "1 requested, 1 sent, 0 errors" in err
    (row,) = [
        json.loads(line) for line in kei(["notify", "list", "--json"], env).stdout.splitlines()
    ]
    assert (row["state"], row["channel"], row["attempts"]) == ("delivered", "ops", 1)


def test_a_killed_sms_send_is_abandoned_not_sent_twice(
    env: dict[str, str], twilio: FakeTwilio
) -> None:
    done = kei(["notify", "send", "pager", "--subject", "disk full", "--severity", "error",
                "--queue", "--json"], env)  # fmt: skip
    nid = json.loads(done.stdout)["id"]
    twilio.hold()
    run = notify_run(env)
    twilio.wait_for(1, timeout=WAIT_S)
    run.send_signal(signal.SIGKILL)
    run.wait(WAIT_S)
    twilio.release()
    assert len(attempted(env, nid)) == 1
    again = kei(["notify", "run", "--once"], env)
    assert again.returncode == 0, again.stderr
    shown = json.loads(kei(["notify", "show", nid, "--json"], env).stdout)
    assert (shown["state"], shown["end_reason"]) == ("abandoned", "in_doubt")
    assert len(twilio.received) == len(attempted(env, nid)) == 1
