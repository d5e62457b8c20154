"""``kei events tail``: latest events, JSON lines, glob filters, following, chain warnings.

The follow tests run the real CLI in a child process on both stores and append from
this process, as another agent would; chain breaks are made by rewriting a stored
hash behind kei's back, the attack a live view should shout about.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import WAIT_S, Follower, cli_env, run_sql
from kei.adapters.cli.app import app
from kei.adapters.cli.output import EventPrinter
from kei.adapters.store.base import PAGE
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.tail import ChainBreak, TailFilter, event_dict, latest, summary
from kei.app.ledger.tail import Follower as TailFollower
from kei.domain import events as ev
from kei.domain.log.recorded import RecordedEvent


def fork(agent: str, parent: str | None = None) -> NewEvent:
    return NewEvent(f"agent/{agent}", ev.AgentForked(agent_id=agent, branch=f"b-{agent}",
                                                     parent_agent_id=parent))  # fmt: skip


def cost(agent: str, micro_cents: int = 1_000) -> NewEvent:
    payload = ev.CostRecorded(agent_id=agent, provider="p", model="m", micro_cents=micro_cents)
    return NewEvent(f"agent/{agent}", payload)


def tail(url: str, home: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(app, ["events", "tail", *args], env=cli_env(home, url))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def positions(lines: list[str]) -> list[int]:
    return [int(line.split()[0]) for line in lines]


@pytest.fixture
def busy(ledger: Ledger) -> Ledger:
    """A log of 1 genesis + 30 events: forks and costs from three agents."""
    for i in range(10):
        agent = ("alpha", "beta", "gamma")[i % 3]
        ledger.append([fork(f"{agent}{i}"), cost(agent, i)])
        ledger.append([cost(f"{agent}{i}")])
    return ledger


def test_tail_shows_the_latest_n_in_order(busy: Ledger, store_url: str, tmp_path: Path) -> None:
    all_positions = [e.position for e in busy.read()]
    assert positions(tail(store_url, tmp_path, "-n", "5")) == all_positions[-5:]
    assert len(tail(store_url, tmp_path)) == 20
    assert tail(store_url, tmp_path, "-n", "0") == []


def test_tail_lines_show_time_type_stream_and_summary(
    busy: Ledger, store_url: str, tmp_path: Path
) -> None:
    line = tail(store_url, tmp_path, "-n", "1", "--type", "agent.forked")[0]
    assert "agent.forked" in line and "agent/alpha9" in line
    assert "agent_id=alpha9 branch=b-alpha9" in line
    assert "Z " in line  # an RFC 3339 UTC time


def test_tail_json_lines_parse(busy: Ledger, store_url: str, tmp_path: Path) -> None:
    lines = tail(store_url, tmp_path, "-n", "7", "--json")
    objs = [json.loads(line) for line in lines]
    assert [o["position"] for o in objs] == positions(tail(store_url, tmp_path, "-n", "7"))
    assert all(o["hash"].startswith("sha256:") for o in objs)
    assert all(o["prev_hash"] == p["hash"] for p, o in itertools.pairwise(objs))
    costs = [o for o in objs if o["type"] == "cost.recorded"]
    assert costs and all(isinstance(o["payload"]["micro_cents"], int) for o in costs)


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["--type", "cost.*"], lambda e: e.type == "cost.recorded"),
        (["--type", "agent.*"], lambda e: e.type == "agent.forked"),
        (["--stream", "agent/beta*"], lambda e: e.stream.startswith("agent/beta")),
        (["--stream", "agent/gamma?"], lambda e: e.stream[:-1] == "agent/gamma"),
        (["--type", "cost.*", "--stream", "agent/alpha"], lambda e: e.stream == "agent/alpha"),
        (["--type", "kei.*", "--type", "agent.forked"],
         lambda e: e.type.startswith("kei.") or e.type == "agent.forked"),
        (["--type", "nothing.*"], lambda e: False),
    ],
    ids=["type", "type-agent", "stream", "stream-one-char", "type-and-stream", "repeated", "none"],
)  # fmt: skip
def test_tail_filters_by_glob(
    busy: Ledger, store_url: str, tmp_path: Path, args: list[str], want: object
) -> None:
    assert callable(want)
    expected = [e.position for e in busy.read() if want(e)][-4:]
    lines = tail(store_url, tmp_path, "-n", "4", "--json", *args)
    assert [json.loads(line)["position"] for line in lines] == expected


def test_filtered_tail_reaches_back_past_a_page(ledger: Ledger) -> None:
    ledger.append([fork("early")])
    for _ in range(3):
        ledger.append([cost("spender") for _ in range(PAGE // 2 + 7)])
    shown, head = latest(ledger.store, 5, TailFilter(types=("agent.*",)))
    assert [e.stream for e in shown] == ["agent/early"]
    assert head is not None and head.position == ledger.store.max_position()


def test_summary_of_an_unknown_type_uses_its_first_keys() -> None:
    import msgspec

    payload = msgspec.msgpack.encode({"a": 1, "b": "two words", "c": None, "d": 4})
    event = RecordedEvent(7, 6, "s", 1, "future.thing", 1, 0, "", b"", payload, None, None)
    assert summary(event) == 'a=1 b="two words"'


def test_hostile_text_cannot_reach_the_terminal_raw() -> None:
    import msgspec

    payload = msgspec.msgpack.encode({"\x1b]0;owned\x07": "\x1b[2J", "b": "\x9b31m"})
    event = RecordedEvent(3, 2, "\x1b[31mred", 1, "t\x1b", 1, 2**62, "", b"", payload, None, None)
    line = EventPrinter.plain(event)
    assert "\x1b" not in line and "\x9b" not in line and "\x07" not in line
    assert "\\u001b[31mred" in line and "<time " in line
    assert event_dict(event)["time"] is None


def test_follower_warns_on_a_rewritten_head_hash(ledger: Ledger, store_url: str) -> None:
    _, head = latest(ledger.store, 1)
    follower = TailFollower(ledger.store, after=head)
    assert list(follower.poll()) == []
    assert head is not None
    run_sql(
        store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (b"\x07" * 32, head.position)
    )
    appended = ledger.append([fork("after-break")])[0]
    items = list(follower.poll())
    assert isinstance(items[0], ChainBreak) and items[0].position == appended.position
    assert items[0].kind == "chain-broken"
    assert isinstance(items[1], RecordedEvent) and items[1].position == appended.position
    ledger.append([fork("next")])
    assert all(isinstance(i, RecordedEvent) for i in follower.poll())


def test_follower_checks_links_through_filtered_out_events(ledger: Ledger) -> None:
    _, head = latest(ledger.store, 0)
    follower = TailFollower(ledger.store, after=head, where=TailFilter(types=("agent.*",)))
    ledger.append([cost("a"), cost("b")])
    ledger.append([fork("c")])
    items = list(follower.poll())
    assert [type(i) for i in items] == [RecordedEvent]


# -- the real CLI, following in a child process --------------------------------


@pytest.fixture
def follower_env(ledger: Ledger, store_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", store_url)


@pytest.fixture
def spawn(follower_env: dict[str, str]) -> Iterator[Callable[..., Follower]]:
    """Start ``kei events tail --follow ARGS`` children; all are killed after the test."""
    started: list[Follower] = []

    def start(*args: str) -> Follower:
        started.append(Follower(args, follower_env))
        return started[-1]

    yield start
    for follower in started:
        follower.close()


@pytest.mark.slow
def test_follow_prints_an_event_appended_by_another_process(
    ledger: Ledger, spawn: Callable[..., Follower]
) -> None:
    follower = spawn("-n", "1", "--json")
    head = json.loads(follower.next_line())
    assert head["type"] == "kei.ledger.genesis"
    appended = ledger.append([fork("live")])[0]
    seen = json.loads(follower.next_line())
    assert (seen["position"], seen["stream"]) == (appended.position, "agent/live")
    assert follower.interrupt() == 0  # Ctrl-C is a normal way to stop following
    assert follower.drain_err() == []


@pytest.mark.slow
def test_follow_warns_loudly_on_a_broken_link_and_continues(
    ledger: Ledger, store_url: str, spawn: Callable[..., Follower]
) -> None:
    follower = spawn("-n", "1", "--type", "agent.*")
    ledger.append([fork("before")])
    follower.wait_for(lambda line: "agent/before" in line)
    head = ledger.store.max_position()
    run_sql(store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (b"\x07" * 32, head))
    broken = ledger.append([cost("hidden")])[0]  # filtered out, but still checked
    warning = follower.next_line(follower.err)
    assert warning.startswith(f"kei: WARNING: chain broken at position {broken.position}: ")
    ledger.append([fork("after")])
    follower.wait_for(lambda line: "agent/after" in line)
    assert follower.interrupt() == 0
    assert follower.drain_err() == [warning]


@pytest.mark.slow
def test_follow_ends_quietly_when_its_reader_goes_away(
    ledger: Ledger, follower_env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kei", "events", "tail", "--follow", "-n", "1"],
        env=follower_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "kei.ledger.genesis" in proc.stdout.readline()
        proc.stdout.close()  # like `kei events tail --follow | head -1`
        ledger.append([fork("unread")])
        assert proc.wait(timeout=WAIT_S) == 0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
