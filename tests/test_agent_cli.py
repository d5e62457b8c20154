"""``kei agent ...`` end to end on both stores: upstream's pinned ledger behaviours
(spec §11), refusals that leave the log unchanged, and racing forks.

Commands run in-process (``CliRunner``) against a real ledger made by ``kei init``;
racing forks run in threads, each with its own ledger connection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env
from kei.adapters.agent_service import AgentService
from kei.adapters.cli.app import app
from kei.adapters.keyfile import load_key
from kei.adapters.ledger import Ledger
from kei.domain.agents import DnaCollisionError, DuplicateAgentError
from kei.domain.events import AgentForked
from kei.domain.keys import SigningKey

DNA = "impl::rust-test::ABCDEF12::12345678-abcdef01"
DNA2 = "impl::rust-test::ABCDEF12::12345678-abcdef02"

Kei = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def kei(store_url: str, home: Path) -> Kei:
    env = cli_env(home, store_url)

    def run(*args: str, code: int | None = 0) -> Result:
        result = CliRunner().invoke(app, list(args), env=env)
        if code is not None:
            assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    run("init")
    return run


def count(url: str) -> int:
    with Ledger.open(url) as ledger:
        return ledger.store.count()


def test_second_done_keeps_first_summary_and_appends_nothing(kei: Kei, store_url: str) -> None:
    assert "forked a -> agent/a" in kei("agent", "fork", "a", "agent/a").stderr
    kei("agent", "done", "a", "--summary", "first")
    before = count(store_url)
    again = kei("agent", "done", "a", "--summary", "second")
    assert "already done; first summary kept; nothing appended" in again.stderr
    assert count(store_url) == before
    shown = json.loads(kei("agent", "show", "a", "--json").stdout)
    assert shown["agent"]["summary"] == "first"
    assert [e["type"] for e in shown["events"]] == ["agent.forked", "agent.completed"]


def test_duplicate_id_is_not_called_a_dna_collision(kei: Kei, store_url: str) -> None:
    kei("agent", "fork", "a", "agent/a", "--dna", DNA)
    before = count(store_url)
    dup = kei("agent", "fork", "a", "agent/b", "--dna", DNA2, code=2)
    assert "agent a already exists" in dup.stderr
    assert "collision" not in dup.stderr
    clash = kei("agent", "fork", "b", "agent/b", "--dna", DNA, code=2)
    assert f"dna collision: {DNA} already present" in clash.stderr
    assert "agent a has that DNA" in clash.stderr
    assert count(store_url) == before


def test_any_number_of_agents_without_dna(kei: Kei) -> None:
    for i in range(12):
        kei("agent", "fork", f"n{i}", f"agent/n{i}")
    rows = [json.loads(line) for line in kei("agent", "list", "--json").stdout.splitlines()]
    assert len(rows) == 12
    assert all(r["dna"] is None for r in rows)


@pytest.mark.parametrize("flag", ["branch", "--parent-branch"])
def test_branch_cap_is_256(kei: Kei, store_url: str, flag: str) -> None:
    def fork(agent: str, n: int, code: int) -> Result:
        value = "b" * n
        args = [agent, value] if flag == "branch" else [agent, "x", flag, value]
        return kei("agent", "fork", *args, code=code)

    fork("ok", 256, 0)
    before = count(store_url)
    refused = fork("long", 257, 2)
    name = "branch" if flag == "branch" else "parent_branch"
    assert f"{name} length 257 exceeds cap 256" in refused.stderr
    assert count(store_url) == before


def test_tree_prints_every_agent_at_any_depth(kei: Kei) -> None:
    kei("agent", "fork", "root", "agent/root")
    for parent, child in [("root", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("root", "e")]:
        kei("agent", "fork", child, f"agent/{child}", "--parent", parent)
    kei("agent", "fork", "other", "agent/other")
    kei("agent", "fail", "c", "--reason", "broke")
    lines = kei("agent", "tree", "root").stdout.splitlines()
    assert lines == [
        "root [running] branch=agent/root",
        "  a [running] branch=agent/a",
        "    b [running] branch=agent/b",
        "      c [failed] branch=agent/c",
        "        d [running] branch=agent/d",
        "  e [running] branch=agent/e",
    ]
    rows = [json.loads(x) for x in kei("agent", "tree", "b", "--json").stdout.splitlines()]
    assert [(r["id"], r["depth"]) for r in rows] == [("b", 0), ("c", 1), ("d", 2)]
    assert "no agent with id ghost" in kei("agent", "tree", "ghost", code=2).stderr


def test_descendants_are_recursive(kei: Kei) -> None:
    dnas = [f"impl::t::ABCDEF12::12345678-0000000{i}" for i in range(5)]
    kei("agent", "fork", "g0", "agent/g0", "--dna", dnas[0])
    for i in range(1, 5):
        kei("agent", "fork", f"g{i}", f"agent/g{i}", "--dna", dnas[i], "--fork-parent", dnas[i - 1])
    kei("agent", "fork", "s", "agent/s", "--creator", dnas[1])
    lines = kei("agent", "descendants", dnas[0]).stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["g1", "g2", "s", "g3", "g4"]
    assert "s\tspawn\trunning\tagent/s\tdepth=2" in lines
    one = kei("agent", "descendants", dnas[0], "--depth", "1", "--json").stdout.splitlines()
    assert [json.loads(x)["id"] for x in one] == ["g1"]
    empty = kei("agent", "descendants", dnas[4])
    assert empty.stdout == ""
    assert f"(no descendants for {dnas[4]})" in empty.stderr


def test_list_filters_by_status(kei: Kei) -> None:
    assert "(no agents)" in kei("agent", "list").stderr
    kei("agent", "fork", "a", "agent/a", "--spec-sha", "0123456789abcdef")
    kei("agent", "fork", "b", "agent/b", "--parent", "a")
    kei("agent", "done", "a", "--summary", "ok")
    kei("agent", "merged", "a")
    kei("agent", "outcome", "a", "--outcome", "partial", "--escalation-depth", "1", "--stubs", "2")
    lines = kei("agent", "list", "--status", "merged").stdout.splitlines()
    assert len(lines) == 1
    fields = lines[0].split("\t")
    assert fields[:3] == ["a", "merged", "agent/a"]
    assert fields[4:] == ["parent=-", "spec=0123456789ab"]
    assert kei("agent", "list").stdout.splitlines()[0].startswith("b\trunning")
    row = json.loads(kei("agent", "show", "a", "--json").stdout)["agent"]
    assert (row["outcome"], row["escalation_depth"], row["stub_count"]) == ("partial", 1, 2)


REFUSED = [
    ("fork", "x", "agent/x", "--parent", "ghost"),
    ("fork", "x", "agent/x", "--dna", "not-a-dna"),
    ("fork", "x", "agent/x", "--fork-parent", "a::b"),
    ("fork", "a", "agent/a2"),
    ("fork", "x", "agent/x", "--dna", DNA),
    ("done", "ghost", "--summary", "s"),
    ("done", "m", "--summary", "s"),
    ("fail", "f", "--reason", "r"),
    ("fail", "m", "--reason", "r"),
    ("merged", "a"),
    ("merged", "m"),
    ("outcome", "a", "--outcome", "functional"),
    ("outcome", "m", "--outcome", "great"),
    ("outcome", "m", "--outcome", "fail", "--stubs", "-1"),
    ("outcome", "ghost", "--outcome", "fail"),
]


def test_refused_commands_leave_the_log_unchanged(kei: Kei, store_url: str) -> None:
    kei("agent", "fork", "a", "agent/a", "--dna", DNA)
    kei("agent", "fork", "f", "agent/f")
    kei("agent", "fail", "f", "--reason", "r")
    kei("agent", "fork", "m", "agent/m")
    kei("agent", "done", "m", "--summary", "s")
    kei("agent", "merged", "m")
    before = count(store_url)
    for args in REFUSED:
        result = kei("agent", *args, code=None)
        already = "already" in result.stderr and "nothing appended" in result.stderr
        assert result.exit_code == 2 or already, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert count(store_url) == before, args


def test_validate_names_the_missing_artefacts(kei: Kei, tmp_path: Path) -> None:
    base = tmp_path / "repo" / ".claude" / "agents" / "a1"
    base.mkdir(parents=True)
    for name in ("spec.md", "plan.md", "progress.json", "chatlog.md"):
        (base / name).write_text("x")
    (base / "review.md").mkdir()  # a directory is not an artefact
    missing = kei("agent", "validate", "agent/a1", "--repo", str(tmp_path / "repo"), code=2)
    assert missing.stderr.splitlines() == ["MISSING for a1:", "  - handoffs.md", "  - review.md"]
    (base / "handoffs.md").write_text("x")
    (base / "review.md").rmdir()
    (base / "review.md").write_text("x")
    ok = kei("agent", "validate", "a1", "--repo", str(tmp_path / "repo"))
    assert ok.stdout == "OK: all 6 artefacts present for a1\n"


def race_fork(
    url: str, key: SigningKey, request: AgentForked, barrier: threading.Barrier
) -> object:
    """Fork once the other thread is ready too; the result or the refusal."""
    with Ledger.open(url, key=key) as ledger, AgentService(ledger, url) as service:
        service.caught_up()
        barrier.wait()
        try:
            return service.fork(request)
        except (DuplicateAgentError, DnaCollisionError) as exc:
            return exc


@pytest.mark.parametrize("same", ["id", "dna"])
def test_racing_forks_exactly_one_wins(kei: Kei, store_url: str, home: Path, same: str) -> None:
    key = load_key(home / "keys" / "default.key")
    kei("agent", "list")  # the tables exist: the engine's CREATE TABLE is not race-safe
    for r in range(4):
        barrier = threading.Barrier(2, timeout=60)
        requests = [
            AgentForked(
                agent_id=f"r{r}" if same == "id" else f"r{r}-{n}",
                branch="b",
                dna=f"impl::race::ABCDEF12::12345678-{r:04d}{n if same == 'id' else 0:04d}",
            )
            for n in range(2)
        ]
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(race_fork, store_url, key, q, barrier) for q in requests]
            outcomes = [j.result() for j in jobs]
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert len(outcomes) == 2 and len(errors) == 1, outcomes
        wanted = DuplicateAgentError if same == "id" else DnaCollisionError
        assert isinstance(errors[0], wanted)
    assert len(kei("agent", "list", "--json").stdout.splitlines()) == 4
