"""``kei events export --format jsonl``: every event, exact bytes, checked on the way out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.jsonl import export_jsonl, read_jsonl
from kei.adapters.ledger import Ledger, NewEvent
from kei.adapters.store.base import iter_all
from kei.domain.events import AgentForked, CostRecorded
from kei.errors import InputError, VerificationError


def fill(ledger: Ledger, n: int) -> None:
    ledger.append([NewEvent("agent/a", AgentForked(agent_id="a", branch="main"))])
    for i in range(n):
        cost = CostRecorded(agent_id="a", provider="p", model="m", micro_cents=i)
        ledger.append([NewEvent("agent/a", cost)])


def test_export_reads_back_to_the_exact_stored_records(ledger: Ledger) -> None:
    fill(ledger, 30)
    out = io.BytesIO()
    assert export_jsonl(ledger.store, out) == 32  # with the genesis
    back = list(read_jsonl(io.BytesIO(out.getvalue())))
    assert back == list(iter_all(ledger.store))
    first = json.loads(out.getvalue().splitlines()[1])
    assert first["type"] == "agent.forked" and first["payload"]["agent_id"] == "a"
    assert first["hash"].startswith("sha256:") and first["signature"].startswith("ed25519:")


def test_since_exports_only_what_follows(ledger: Ledger) -> None:
    fill(ledger, 10)
    positions = [e.position for e in ledger.read()]
    out = io.BytesIO()
    assert export_jsonl(ledger.store, out, since=positions[5]) == len(positions) - 6
    assert [r.position for r in read_jsonl(io.BytesIO(out.getvalue()))] == positions[6:]


def test_export_stops_at_a_tampered_event(ledger: Ledger) -> None:
    fill(ledger, 5)
    target = [e.position for e in ledger.read()][3]
    url = ledger.store.url
    state = next(r.state for r in iter_all(ledger.store) if r.position == target)
    column = "rowid" if url.startswith("sqlite") else "notification_id"
    run_sql(url, f"UPDATE kei_events SET state = ? WHERE {column} = ?", (state + b"!", target))
    with pytest.raises(VerificationError, match=f"position {target}"):
        export_jsonl(ledger.store, io.BytesIO())


def test_a_bad_line_is_named() -> None:
    with pytest.raises(InputError, match="line 2 is not a kei event"):
        list(read_jsonl(io.BytesIO(b'\n{"position": "x"}\n')))


def test_cli_export_to_a_file(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert kei(["init"], env).returncode == 0
    target = tmp_path / "log.jsonl"
    done = kei(["events", "export", "--format", "jsonl", "--out", str(target)], env)
    assert done.returncode == 0 and "exported 1 events" in done.stderr
    assert json.loads(target.read_text())["type"] == "kei.ledger.genesis"
    bad = kei(["events", "export", "--format", "csv"], env)
    assert bad.returncode != 0 and "unknown format 'csv'" in bad.stderr
    assert not list(tmp_path.glob(".*.part"))
