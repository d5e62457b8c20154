"""A write decides only from rows it has checked: a row of a stream it reads that was
edited, re-chained or slipped in behind kei's back refuses the write (exit 1, one
line naming the stream and position), and nothing is appended. On both stores, through
the library and through the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.store.base import PendingRecord
from kei.app.agent_writes import AgentWriter
from kei.app.ledger.ledger import Ledger
from kei.domain import events
from kei.domain.events import AgentCompleted, AgentForked
from kei.domain.log.envelope import seal
from kei.domain.log.keys import SigningKey
from kei.errors import VerificationError


def _pos_col(url: str) -> str:
    return "rowid" if url.startswith("sqlite") else "notification_id"


def _positions(url: str, stream: str) -> list[int]:
    col = _pos_col(url)
    mark = "?" if url.startswith("sqlite") else "%s"
    rows = run_sql(
        url, f"SELECT {col} FROM kei_events WHERE originator_id = {mark} ORDER BY {col}", (stream,)
    )
    return [int(r[0]) for r in rows]


def _flip_payload_byte(url: str, position: int) -> None:
    col = _pos_col(url)
    mark = "?" if url.startswith("sqlite") else "%s"
    (state,) = run_sql(url, f"SELECT state FROM kei_events WHERE {col} = {mark}", (position,))[0]
    state = bytes(state)
    run_sql(
        url,
        f"UPDATE kei_events SET state = {mark} WHERE {col} = {mark}",
        (state[:-2] + bytes([state[-2] ^ 1]) + state[-1:], position),
    )


def _forked(ledger: Ledger, agent_id: str) -> None:
    AgentWriter(ledger).fork(AgentForked(agent_id=agent_id, branch=f"b/{agent_id}"))


def test_clean_streams_decide_as_before(ledger: Ledger) -> None:
    _forked(ledger, "a1")
    assert AgentWriter(ledger).done("a1", "ok").appended == 1
    assert [e.type for e in ledger.read_stream_checked("agent/a1")] == [
        "agent.forked",
        "agent.completed",
    ]


def test_an_edited_row_refuses_the_write_and_appends_nothing(
    ledger: Ledger, store_url: str
) -> None:
    _forked(ledger, "a1")
    (fork_at,) = _positions(store_url, "agent/a1")
    _flip_payload_byte(store_url, fork_at)
    end = ledger.store.max_position()
    with pytest.raises(VerificationError, match=rf"agent/a1 at position {fork_at} does not verify"):
        AgentWriter(ledger).done("a1", "ok")
    assert ledger.store.max_position() == end


def test_a_row_signed_by_a_key_the_log_does_not_know_refuses_the_write(
    ledger: Ledger,
) -> None:
    """An intruder with table access but no registered key appends a 'done' that would
    close the agent; the real writer refuses to decide from it."""
    _forked(ledger, "a1")
    intruder = SigningKey.generate(name="intruder")
    state = seal(
        stream="agent/a1", version=2, type_="agent.completed", schema_version=1,
        timestamp_us=1_764_000_000_000_000, signer=intruder,
        payload=events.encode_payload(AgentCompleted(agent_id="a1", summary="x")),
    )  # fmt: skip
    ledger.store.append([PendingRecord("agent/a1", 2, "agent.completed", state)])
    with pytest.raises(VerificationError, match="unknown-key"):
        AgentWriter(ledger).fail("a1", "real failure")


def test_a_missing_middle_row_is_a_version_gap(ledger: Ledger, store_url: str) -> None:
    _forked(ledger, "a1")
    AgentWriter(ledger).done("a1", "ok")
    AgentWriter(ledger).outcome("a1", "functional")
    first, middle, _last = _positions(store_url, "agent/a1")
    col = _pos_col(store_url)
    mark = "?" if store_url.startswith("sqlite") else "%s"
    run_sql(store_url, f"DELETE FROM kei_events WHERE {col} = {mark}", (middle,))
    with pytest.raises(VerificationError, match="version-gap"):
        AgentWriter(ledger).outcome("a1", "partial")
    assert first < middle


def test_the_cli_says_one_line_and_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home)
    assert kei(["init"], env).returncode == 0
    assert kei(["agent", "fork", "a1", "b/a1"], env).returncode == 0
    url = f"sqlite:///{home / 'ledger.db'}"
    (fork_at,) = _positions(url, "agent/a1")
    _flip_payload_byte(url, fork_at)
    before = kei(["events", "tail", "-n", "100", "--json"], env).stdout
    done: Any = kei(["agent", "done", "a1", "--summary", "ok"], env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "agent/a1 at position" in lines[0] and "Traceback" not in done.stderr
    assert kei(["events", "tail", "-n", "100", "--json"], env).stdout == before


def test_a_fork_checks_its_parents_fork_row_and_reads_no_further(
    ledger: Ledger, store_url: str
) -> None:
    """A child's fork decides from the row that began its parent's stream (checked), not
    from the parent's every cost (a Claude Code session's root holds thousands)."""
    _forked(ledger, "root")
    AgentWriter(ledger).done("root", "ok")
    fork_at, done_at = _positions(store_url, "agent/root")
    _flip_payload_byte(store_url, done_at)  # a later row: not what a fork decides from
    writer = AgentWriter(ledger)
    child = AgentForked(agent_id="c1", branch="b/c1", parent_agent_id="root")
    assert writer.fork(child).appended == 1
    _flip_payload_byte(store_url, fork_at)  # the row that says the parent exists
    end = ledger.store.max_position()
    with pytest.raises(VerificationError, match=rf"agent/root at position {fork_at}"):
        writer.fork(AgentForked(agent_id="c2", branch="b/c2", parent_agent_id="root"))
    assert ledger.store.max_position() == end
