"""``kei events export --format jsonl``: every event, exact bytes, checked on the way out."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.store import open_store
from kei.adapters.store.base import iter_all
from kei.app.jsonl.export import export_jsonl, read_jsonl
from kei.app.jsonl.importing import import_jsonl
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import AgentForked, CostRecorded
from kei.domain.log.records import StoredRecord
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
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["head"], d["first_seq"], d["seq"]) for d in lines if "head" in d] == [
        (i, i, i) for i in range(32)
    ]  # each transaction's signed head follows its last event (here one event each)
    first = [d for d in lines if "head" not in d][1]
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
    first, head = target.read_text().splitlines()
    assert json.loads(first)["type"] == "kei.ledger.genesis"
    assert json.loads(head)["head"] == 0
    bad = kei(["events", "export", "--format", "csv"], env)
    assert bad.returncode != 0 and "'csv' is not one of 'jsonl'" in bad.stderr
    assert not list(tmp_path.glob(".*.part"))


# -- kei events import --format jsonl ------------------------------------------------


def exported(ledger: Ledger, since: int = 0) -> bytes:
    out = io.BytesIO()
    export_jsonl(ledger.store, out, since=since)
    return out.getvalue()


def rows(store_url: str) -> list[StoredRecord]:
    store = open_store(store_url)
    try:
        return list(iter_all(store))
    finally:
        store.close()


def test_import_restores_an_empty_store_byte_for_byte(
    ledger: Ledger, store_url: str, tmp_path: Path
) -> None:
    fill(ledger, 12)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    done = import_jsonl(io.BytesIO(exported(ledger)), target)
    assert (done.mode, done.new) == ("restore", 14)
    assert rows(target) == rows(store_url)


def test_import_extends_and_a_second_run_is_a_prefix(
    sqlite_url: str, make_ledger: Callable[[str], Ledger], tmp_path: Path
) -> None:
    ledger = make_ledger(sqlite_url)
    fill(ledger, 5)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    import_jsonl(io.BytesIO(exported(ledger)), target)
    head = ledger.last(1)[0].position
    fill(ledger, 3)
    later = exported(ledger, since=head - 2)  # overlaps the copy by two events
    assert import_jsonl(io.BytesIO(later), target).new == 4
    assert rows(target) == rows(sqlite_url)
    again = import_jsonl(io.BytesIO(exported(ledger)), target)
    assert (again.mode, again.new) == ("prefix", 0)


def test_a_tampered_line_another_ledger_and_a_gap_are_refused_with_nothing_written(
    sqlite_url: str, make_ledger: Callable[[str], Ledger], tmp_path: Path
) -> None:
    ledger = make_ledger(sqlite_url)
    fill(ledger, 6)
    lines = exported(ledger).splitlines(keepends=True)
    assert "head" not in json.loads(lines[4])  # genesis, its head, an event, its head
    tampered = json.loads(lines[4])
    tampered["payload"]["micro_cents"] = 999  # the payload is informational: change state
    state = bytearray(base64.b64decode(tampered["state"]))
    state[-1] ^= 1
    tampered["state"] = base64.b64encode(bytes(state)).decode()
    bad = b"".join([*lines[:4], json.dumps(tampered).encode() + b"\n", *lines[5:]])
    target = tmp_path / "copy.db"
    with pytest.raises(VerificationError, match="do not verify"):
        import_jsonl(io.BytesIO(bad), f"sqlite:///{target}")
    assert not target.exists()
    other = make_ledger(f"sqlite:///{tmp_path / 'other.db'}")
    fill(other, 2)
    with pytest.raises(VerificationError, match="another ledger"):
        import_jsonl(io.BytesIO(exported(other)), sqlite_url)
    head = ledger.last(1)[0].position
    fill(ledger, 3)
    gap = exported(ledger, since=head + 1)
    copy = f"sqlite:///{tmp_path / 'copy2.db'}"
    import_jsonl(io.BytesIO(b"".join(lines)), copy)
    before = rows(copy)
    with pytest.raises(VerificationError, match="start at sequence"):
        import_jsonl(io.BytesIO(gap), copy)
    assert rows(copy) == before


def test_cli_import_round_trip(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert kei(["init"], env).returncode == 0
    dump = tmp_path / "log.jsonl"
    assert kei(["events", "export", "--out", str(dump)], env).returncode == 0
    other = cli_env(tmp_path / "home2")
    dry = kei(["events", "import", str(dump), "--dry-run"], other)
    assert dry.returncode == 0 and "would append 1" in dry.stderr, dry.stderr
    done = kei(["events", "import", str(dump)], other)
    assert done.returncode == 0 and "appended 1" in done.stderr
    assert kei(["verify-chain"], other).returncode == 0
    missing = kei(["events", "import", str(tmp_path / "nope.jsonl")], other)
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr
