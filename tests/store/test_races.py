"""Writes that lose a race: retried until they land, or exit 75 with nothing appended.

- Real processes: eight ``kei cost record`` for one agent (what parallel sub-agents'
  hooks do) and other writers at once, on SQLite and PostgreSQL: every one exits 0
  and every event is in the log.
- Forced exhaustion: a trigger makes every insert on one stream fail as a version
  clash would; with a budget of 3 tries (``KEI_WRITE_ATTEMPTS``) the command exits 75
  with one line and the log is unchanged.
- Mixed batches: only streams with ``expected_version`` are strict.
- A key revoked by another ledger or process signs nothing more in a ledger that
  was already open, whichever append path the batch takes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import cli_env, run_sql
from kei import ConcurrencyError, Ledger, LedgerStateError, NewEvent, SigningKey
from kei.adapters.cli.exits import Exit, exit_code_for
from kei.app.ledger.retrying import RetryPolicy, retry_write
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.errors import ContentionError, InputError, KeysChangedError

WRITERS = 8


def _cost(agent: str, n: int) -> events.CostRecorded:
    return events.CostRecorded(agent_id=agent, provider="p", model="m", micro_cents=n + 1)


def _init(home: Path, url: str) -> dict[str, str]:
    env = cli_env(home, url)
    runner = CliRunner()
    from kei.adapters.cli.app import app

    for args in (["init"], ["agent", "fork", "a1", "agent/a1"], ["agent", "fork", "a2", "b2"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return env


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kei", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _types(url: str, stream: str) -> list[str]:
    with Ledger.open(url) as ledger:
        return [e.type for e in ledger.read_stream(stream)]


# -- real processes -------------------------------------------------------------------


def test_parallel_writers_all_land(store_url: str, tmp_path: Path) -> None:
    env = _init(tmp_path / "home", store_url)
    cost = ["cost", "record", "a1", "--provider", "p", "--model", "m", "--micro-cents"]
    commands = [[*cost, str(100 + i)] for i in range(WRITERS)]
    commands += [["memory", "write", "shared-key", f"value {i}"] for i in range(3)]
    commands += [["skill", "record", "lint", "--success"] for _ in range(3)]
    commands += [["agent", "done", "a2", "--summary", "finished"]]
    procs = [_start(args, env) for args in commands]
    results = [(p.wait(timeout=180), p.communicate()) for p in procs]
    for args, (code, (_, err)) in zip(commands, results, strict=True):
        assert code == 0, (args, err)
        assert "Traceback" not in err
    assert _types(store_url, "agent/a1").count("cost.recorded") == WRITERS
    assert _types(store_url, "skill/lint").count("skill.invoked") == 3
    assert _types(store_url, "agent/a2")[-1] == "agent.completed"
    with Ledger.open(store_url) as ledger:
        amounts = [
            p.micro_cents
            for e in ledger.read_stream("agent/a1")
            if isinstance(p := e.payload(), events.CostRecorded)
        ]
        assert sorted(amounts) == [100 + i for i in range(WRITERS)]
        assert [e.version for e in ledger.read_stream("agent/a1")] == list(range(1, WRITERS + 2))
        assert verify_store(ledger.store).ok


# -- forced exhaustion ------------------------------------------------------------------

SQLITE_TRIGGER = (
    "CREATE TRIGGER kei_test_clash BEFORE INSERT ON kei_events "
    "WHEN NEW.originator_id = 'agent/a1' "
    "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: forced by the test'); END"
)
PG_TRIGGER = (
    "CREATE FUNCTION kei_test_clash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.originator_id = 'agent/a1' THEN "
    "RAISE EXCEPTION 'forced by the test' USING ERRCODE = 'unique_violation'; END IF; "
    "RETURN NEW; END $$; "
    "CREATE TRIGGER kei_test_clash BEFORE INSERT ON kei_events "
    "FOR EACH ROW EXECUTE FUNCTION kei_test_clash()"
)


def test_exhausted_retries_exit_75_and_append_nothing(store_url: str, tmp_path: Path) -> None:
    env = _init(tmp_path / "home", store_url)
    run_sql(store_url, SQLITE_TRIGGER if store_url.startswith("sqlite") else PG_TRIGGER)
    with Ledger.open(store_url) as ledger:
        before = ledger.store.count()
    env["KEI_WRITE_ATTEMPTS"] = "3"
    cost = ["cost", "record", "a1", "--provider", "p", "--model", "m", "--micro-cents", "5"]
    for args in (cost, ["agent", "done", "a1", "--summary", "x"]):
        proc = _start(args, env)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == Exit.TEMPFAIL == 75, err
        lines = err.strip().splitlines()
        assert lines[0].startswith("kei: error: agent a1 kept changing"), err
        assert "3 tries" in lines[0] and lines[1].startswith("kei: hint:")
        assert "Traceback" not in err
    with Ledger.open(store_url) as ledger:
        assert ledger.store.count() == before
        assert verify_store(ledger.store).ok


def test_bad_attempts_setting_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    env = _init(tmp_path / "home", sqlite_url)
    env["KEI_WRITE_ATTEMPTS"] = "0"
    proc = _start(["skill", "record", "lint", "--success"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith("kei: error: KEI_WRITE_ATTEMPTS"), err


def test_lost_races_exit_75_never_2() -> None:
    assert exit_code_for(ContentionError("x")) == Exit.TEMPFAIL
    assert exit_code_for(KeysChangedError("x")) == Exit.TEMPFAIL
    assert exit_code_for(ConcurrencyError("x")) == Exit.TEMPFAIL
    assert exit_code_for(InputError("x")) == Exit.USAGE


# -- the retry policy -------------------------------------------------------------------


def test_retry_redoes_the_write_with_bounded_jittered_waits() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConcurrencyError("lost")
        return "landed"

    policy = RetryPolicy(attempts=5, wait_initial=0.01, wait_max=0.03, sleep=waits.append)
    assert retry_write(policy, write, what="agent a1") == "landed"
    assert len(calls) == 4 and len(waits) == 3
    assert all(0 <= w <= 0.03 for w in waits)


def test_retry_gives_up_with_contention_and_stops_on_rules() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def lose() -> None:
        calls.append(1)
        raise ConcurrencyError("lost")

    policy = RetryPolicy(attempts=3, sleep=waits.append)
    with pytest.raises(ContentionError, match=r"agent a1 kept changing .*3 tries"):
        retry_write(policy, lose, what="agent a1")
    assert len(calls) == 3 and len(waits) == 2

    def refuse() -> None:
        calls.append(1)
        raise LedgerStateError("a rule")

    calls.clear()
    with pytest.raises(LedgerStateError):
        retry_write(policy, refuse, what="agent a1")
    assert len(calls) == 1
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


# -- mixed batches ------------------------------------------------------------------------


def test_mixed_batch_clash_on_a_free_stream_lands(
    store_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    mine, other = make_ledger(store_url), make_ledger(store_url)
    mine.append([NewEvent("shared", _cost("s", 0))])  # ``mine`` caches the end of "shared"
    other.append([NewEvent("shared", _cost("s", 1))])  # ... which is now stale
    got = mine.append([NewEvent("shared", _cost("s", 2)), NewEvent("strict", _cost("t", 0), 0)])
    assert [(e.stream, e.version) for e in got] == [("shared", 3), ("strict", 1)]


def test_mixed_batch_refused_only_when_a_strict_stream_moved(
    store_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    mine, other = make_ledger(store_url), make_ledger(store_url)
    mine.append([NewEvent("shared", _cost("s", 0))])
    other.append([NewEvent("shared", _cost("s", 1)), NewEvent("strict", _cost("t", 0))])
    count = mine.store.count()
    with pytest.raises(ConcurrencyError, match="stream strict is at version 1"):
        mine.append([NewEvent("shared", _cost("s", 2)), NewEvent("strict", _cost("t", 1), 0)])
    assert mine.store.count() == count
    got = mine.append([NewEvent("shared", _cost("s", 2)), NewEvent("strict", _cost("t", 1), 1)])
    assert [(e.stream, e.version) for e in got] == [("shared", 3), ("strict", 2)]


MIXED_WORKER = r"""
import sys
from kei import Ledger, NewEvent, SigningKey
from kei.domain import events

url, seed, wid = sys.argv[1:4]
ledger = Ledger.open(url, key=SigningKey(bytes.fromhex(seed), name="default"))
print("ready", flush=True)
sys.stdin.readline()
for n in range(20):
    cost = events.CostRecorded(agent_id=wid, provider="p", model="m", micro_cents=n + 1)
    ledger.append([NewEvent("shared", cost), NewEvent(f"own-{wid}", cost, n)])
ledger.close()
print("done", flush=True)
"""


def test_mixed_batches_in_parallel_processes_all_land(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    ledger = make_ledger(store_url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIXED_WORKER, store_url, key.seed.hex(), str(w)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and out.strip() == "done", err
    assert [e.version for e in ledger.read_stream("shared")] == list(range(1, 81))
    for w in range(4):
        assert len(ledger.read_stream(f"own-{w}")) == 20
    assert verify_store(ledger.store).ok


# -- a key revoked elsewhere ------------------------------------------------------------

BATCHES = {
    "one event on a new stream (sealed under the lock)": lambda: [NewEvent("fresh", _cost("f", 0))],
    "a stream this ledger wrote (optimistic, cached end)": lambda: [
        NewEvent("mine", _cost("m", 1))
    ],
    "a batch of ten on new streams (optimistic)": lambda: [
        NewEvent(f"many-{i}", _cost("x", i)) for i in range(10)
    ],
    "an expected version (optimistic, strict)": lambda: [NewEvent("mine", _cost("m", 1), 1)],
}


@pytest.mark.parametrize("batch", list(BATCHES))
def test_key_revoked_by_another_ledger_signs_nothing(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey, batch: str
) -> None:
    admin = make_ledger(store_url)
    k2 = SigningKey.generate(name="k2")
    admin.add_key(k2)
    open_ledger = make_ledger(store_url, signing_key=k2)
    open_ledger.append([NewEvent("mine", _cost("m", 0))])  # its key registry is now cached
    admin.revoke_key(k2.key_id_hex, "compromised")
    count = admin.store.count()
    with pytest.raises(LedgerStateError, match=f"key {k2.key_id_hex} .* was revoked"):
        open_ledger.append(BATCHES[batch]())
    assert admin.store.count() == count
    assert verify_store(admin.store).ok


def test_key_added_elsewhere_only_refreshes(
    store_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    admin, writer = make_ledger(store_url), make_ledger(store_url)
    writer.append([NewEvent("mine", _cost("m", 0))])
    admin.add_key(SigningKey.generate(name="k3"))
    got = writer.append([NewEvent("mine", _cost("m", 1))])
    assert got[0].version == 2
    assert verify_store(writer.store).ok


REVOKER = r"""
import sys
from kei import Ledger, SigningKey
url, seed, victim = sys.argv[1:4]
with Ledger.open(url, key=SigningKey(bytes.fromhex(seed), name="default")) as ledger:
    ledger.revoke_key(victim, "revoked by another process")
"""


def test_key_revoked_by_another_process_signs_nothing(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    admin = make_ledger(store_url)
    k2 = SigningKey.generate(name="k2")
    admin.add_key(k2)
    open_ledger = make_ledger(store_url, signing_key=k2)
    open_ledger.append([NewEvent("mine", _cost("m", 0))])
    subprocess.run(
        [sys.executable, "-c", REVOKER, store_url, key.seed.hex(), k2.key_id_hex],
        check=True,
        timeout=60,
    )
    count = admin.store.count()
    for n in range(5):
        with pytest.raises(LedgerStateError, match="was revoked"):
            open_ledger.append([NewEvent("mine", _cost("m", n + 1))])
    assert admin.store.count() == count
    assert verify_store(admin.store).ok


# -- other writers that decide on what they read ------------------------------------------


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    done = [(p.wait(timeout=180), p.communicate()[1]) for p in procs]
    assert all("Traceback" not in err for _, err in done), done
    return done


def test_racing_forgets_leave_one_tombstone(store_url: str, tmp_path: Path) -> None:
    env = _init(tmp_path / "home", store_url)
    _finish([_start(["memory", "write", "k", "value"], env)])
    done = _finish([_start(["memory", "forget", "k"], env) for _ in range(4)])
    codes = sorted(code for code, _ in done)
    assert codes == [0, 2, 2, 2], done  # the losers re-decide: nothing left to forget
    assert all("nothing to forget" in err for code, err in done if code == 2)
    assert _types(store_url, "memory/default/k") == ["memory.written", "memory.forgotten"]


TRACE = Path(__file__).parents[1] / "fixtures" / "traces" / "session-a.jsonl"


def test_racing_ingests_of_one_session_append_each_event_once(
    store_url: str, tmp_path: Path
) -> None:
    env = _init(tmp_path / "home", store_url)
    args = ["retro", "ingest", str(TRACE), "--session", "s1"]
    done = _finish([_start(args, env) for _ in range(3)])
    assert [code for code, _ in done] == [0, 0, 0], done
    alone = tmp_path / "alone"
    env2 = _init(alone, f"sqlite:///{alone / 'ledger.db'}")
    _finish([_start(args, env2)])
    assert len(_types(store_url, "trace/s1")) == len(
        _types(f"sqlite:///{alone / 'ledger.db'}", "trace/s1")
    )


def test_racing_revocations_keep_one_key_active(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    first = make_ledger(store_url)
    k2 = SigningKey.generate(name="k2")
    first.add_key(k2)
    second = make_ledger(store_url)  # signs with the genesis key too
    fold, raced = second.keyring, []

    def keyring(*, refresh: bool = False) -> object:
        ring = fold(refresh=refresh)
        if refresh and not raced:  # ``first`` revokes k2 right after ``second`` read
            raced.append(first.revoke_key(k2.key_id_hex, "rotated"))
        return ring

    second.keyring = keyring  # type: ignore[method-assign]
    with pytest.raises(LedgerStateError, match=f"key {key.key_id_hex} is the last active key"):
        second.revoke_key(key.key_id_hex, "rotated too")
    ring = first.keyring(refresh=True)
    assert [k.key_id for k in ring.active_keys()] == [key.key_id]
    assert verify_store(first.store).ok
