"""Poison events: values an earlier release signed that no read model can hold.

``kei cost record --tokens-in 9223372036854775808`` (and a huge ``skill record
--duration-ms`` or ``agent outcome --stubs``) used to be signed and then crash every
later read for ever. Now writers refuse them (exit 2, log unchanged), and a ledger
that already holds them (written here behind the validation, through
``Ledger._append``, as the old release could) stays readable on both stores: the read
models record and skip the event and every read says so in one warning line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env, run_sql
from cli_helpers import kei as kei_process
from kei.adapters.files.keyfile import load_key
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import (
    CostRecorded,
    OutcomeRecorded,
    Payload,
    SkillInvoked,
    TokenUsage,
)

Kei = Callable[..., Result]
HUGE = 2**63


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def kei(store_url: str, home: Path) -> Kei:
    env = cli_env(home, store_url)

    def run(*args: str, code: int | None = 0) -> Result:
        from kei.adapters.cli.app import app

        result = CliRunner().invoke(app, list(args), env=env)
        if code is not None:
            assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    run("init")
    run("agent", "fork", "a1", "agent/a1")
    run("agent", "fork", "a2", "agent/a2")
    run("agent", "done", "a2", "--summary", "finished")
    return run


def poison(url: str, home: Path, *payloads: tuple[str, Payload]) -> list[int]:
    """Sign ``payloads`` as the release before the limits did: no validation."""
    with Ledger.open(url, key=load_key(home / "keys" / "default.key")) as ledger:
        done = ledger._append([NewEvent(stream, p) for stream, p in payloads])
        return [e.position for e in done]


def count(url: str) -> int:
    with Ledger.open(url) as ledger:
        return ledger.store.count()


POISON_CASES = [
    ("cost", "record", "a1", "--provider", "x", "--model", "gpt-4o", "--micro-cents", "5",
     "--tokens-in", str(HUGE)),
    ("skill", "record", "s1", "--success", "--duration-ms", str(HUGE)),
    ("agent", "outcome", "a2", "--outcome", "functional", "--stubs", str(HUGE)),
]  # fmt: skip


@pytest.mark.parametrize("args", POISON_CASES, ids=["tokens", "duration", "stubs"])
def test_writers_refuse_the_poison_values(
    kei: Kei, store_url: str, home: Path, args: tuple[str, ...]
) -> None:
    """Through the real entry point: the option's range refuses the value before the
    payload's limits would (both say the limit, exit 2, append nothing)."""
    before = count(store_url)
    result = kei_process(list(args), cli_env(home, store_url))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("kei: error:") and "9223372036854775807" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(store_url) == before


def test_a_poisoned_ledger_stays_readable(kei: Kei, store_url: str, home: Path) -> None:
    bad_cost = CostRecorded(
        agent_id="a1", provider="x", model="m", micro_cents=7, usage=TokenUsage(input_tokens=HUGE)
    )
    bad_skill = SkillInvoked(skill_name="s1", success=True, duration_ms=HUGE)
    bad_outcome = OutcomeRecorded(agent_id="a2", outcome="functional", stub_count=HUGE)
    positions = poison(
        store_url, home, ("a1", bad_cost), ("skill/s1", bad_skill), ("a2", bad_outcome)
    )

    report = kei("cost", "report")
    assert f"read model costs skipped position {positions[0]}" in report.stderr
    assert "usage.input_tokens" in report.stderr and "Traceback" not in report.stderr
    tree = kei("agent", "tree", "a1")
    assert "a1" in tree.stdout
    assert f"read model agents skipped position {positions[2]}" in tree.stderr
    assert "skills skipped" in kei("skill", "report").stderr

    # a later write is folded as usual, past the poison
    kei("cost", "record", "a1", "--provider", "x", "--model", "gpt-4o", "--micro-cents", "9")
    shown = json.loads(kei("cost", "report", "--json").stdout.splitlines()[0])
    assert shown["total_micro_cents"] == 9

    status = kei("projections", "status", "--json")
    rebuilt = kei("projections", "rebuild", "--json")
    digests = [{d["name"]: d["digest"] for d in map(json.loads, r.stdout.splitlines())}
               for r in (status, rebuilt)]  # fmt: skip
    assert digests[0] == digests[1]  # the faults are part of the state, reproduced
    faults = run_sql(store_url, "SELECT position, type, reason FROM costs_faults")
    assert [(p, t) for p, t, _ in faults] == [(positions[0], "cost.recorded")]
    assert "usage.input_tokens" in faults[0][2]


def test_export_and_replay_of_a_poisoned_ledger(
    kei: Kei, store_url: str, home: Path, tmp_path: Path
) -> None:
    poison(store_url, home, ("a1", CostRecorded(
        agent_id="a1", provider="x", model="m", micro_cents=HUGE)))  # fmt: skip
    bundle = tmp_path / "b.tar.zst"
    env = cli_env(home, store_url)
    done = kei_process(["hibernate", "export", "--out", str(bundle)], env)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "replayed.db"
    out = kei_process(["replay", str(bundle), "--db", str(target)], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_a_payload_that_no_longer_decodes_is_a_fault(kei: Kei, store_url: str, home: Path) -> None:
    """A signed payload that is not what its type says: an outcome the type does not
    allow (a Struct does not check its values when made; the decoder does)."""
    poison(store_url, home, ("a1", OutcomeRecorded(agent_id="a1", outcome="bogus")))  # type: ignore[arg-type]
    result = kei("agent", "tree", "a1")
    assert "read model agents skipped" in result.stderr and "outcome" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_upstream_rows_are_reported_not_signed(
    sqlite_url: str, make_ledger: Callable[[str], Ledger], tmp_path: Path
) -> None:
    """kei-ledger rows with values kei's limits refuse are skipped, each with its
    reason in the report; the rest is carried over; no traceback."""
    from kei.app.importers import import_kei_ledger
    from upstream_ledger import UpstreamLedger

    db = UpstreamLedger(tmp_path / "upstream.db")
    db.agent("good", status="done", summary=None)
    db.agent("esc\x1b[2Jape")
    db.skill("s\nkill", 1_700_000_000)
    db.skill("fine", 1_700_000_000, duration_ms=5)
    ledger = make_ledger(sqlite_url)
    report = import_kei_ledger(ledger, sqlite_url, db.path)
    skipped = {(c.row, c.what): c.why for c in report.not_carried}
    assert report.agents_imported == 1 and report.skill_invocations == 1
    assert any("agent_id" in why and "control" in why for why in skipped.values()), skipped
    assert any("skill_name" in why for why in skipped.values()), skipped
    summaries = [e.payload() for e in ledger.read() if e.type == "agent.completed"]
    assert [p.summary for p in summaries] == ["(no summary upstream)"]  # type: ignore[attr-defined]


BAD_VALUES = [
    ("agent", "fork", "", "b"),
    ("agent", "fork", "x", "   "),
    ("agent", "fork", "a\nb", "b"),
    ("agent", "fork", "a\x1b[2Jb", "b"),
    ("agent", "fork", "x" * 120_000, "b"),
    ("agent", "done", "a1", "--summary", "  "),
    ("agent", "fail", "a1", "--reason", ""),
    ("cost", "record", "a1", "--provider", " ", "--model", "gpt-4o", "--micro-cents", "5"),
    ("memory", "write", "k\x1b]0;pwned\x07", "v"),
    ("memory", "write", "k", "v", "--tag", "t\nu"),
    ("memory", "write", "k", "v", "--kind", " "),
    ("memory", "write", "k", "v", "--namespace", "n\rs"),
    ("keys", "new", "na\nme"),
    ("skill", "record", " ", "--success"),
]  # fmt: skip


@pytest.mark.parametrize("args", BAD_VALUES, ids=[str(i) for i in range(len(BAD_VALUES))])
def test_clearly_bad_values_exit_2_and_append_nothing(
    kei: Kei, store_url: str, args: tuple[str, ...]
) -> None:
    before = count(store_url)
    result = kei(*args, code=2)
    assert result.stderr.startswith("kei: error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert count(store_url) == before


def test_retro_ingest_skips_a_line_whose_values_break_the_limits(
    kei: Kei, store_url: str, tmp_path: Path
) -> None:
    rows = [
        {"type": "assistant", "timestamp": "2026-11-25T10:00:00Z",
         "message": {"role": "assistant", "content": [
             {"type": "tool_use", "name": "Ba\x1b[2Jsh", "input": {"command": "ls"}}]}},
        {"type": "assistant", "timestamp": "2026-11-25T10:00:09Z",
         "message": {"role": "assistant", "content": [{"type": "text", "text": "fine"}]}},
    ]  # fmt: skip
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    before = count(store_url)
    report = json.loads(kei("retro", "ingest", str(path), "--session", "s", "--json").stdout)
    assert report["appended"] == 1, report
    assert [s["line"] for s in report["skipped"]] == [1]
    assert "control character" in report["skipped"][0]["reason"]
    assert count(store_url) == before + 1
