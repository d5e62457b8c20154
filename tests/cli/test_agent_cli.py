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
from cli_helpers import kei as run_cli
from kei.adapters.cli.app import app
from kei.adapters.files.keyfile import load_key
from kei.app.agents import AgentService
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import AgentForked, CostRecorded
from kei.domain.log.keys import SigningKey
from kei.errors import DnaCollisionError, DuplicateAgentError

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
        "root [running] branch=agent/root cost=$0.00",
        "  a [running] branch=agent/a cost=$0.00",
        "    b [running] branch=agent/b cost=$0.00",
        "      c [failed] branch=agent/c cost=$0.00",
        "        d [running] branch=agent/d cost=$0.00",
        "  e [running] branch=agent/e cost=$0.00",
    ]
    rows = [json.loads(x) for x in kei("agent", "tree", "b", "--json").stdout.splitlines()]
    assert [(r["id"], r["depth"]) for r in rows] == [("b", 0), ("c", 1), ("d", 2)]
    assert "no agent with id ghost" in kei("agent", "tree", "ghost", code=2).stderr


UNVERIFIED_CATALOG = """
[[models]]
id = "house-llm"
provider = "local"
status = "active"

[models.pricing]
input_per_mtok_micro = 1000000
output_per_mtok_micro = 2000000
status = "needs-verification"
"""


def test_tree_shows_each_agents_current_cost(kei: Kei, store_url: str, home: Path) -> None:
    """Amended costs count once, at their latest amount; an unvouched catalog price is
    marked on the agent whose cost includes it, and only there; dollars round half up."""
    (home / "models.toml").write_text(UNVERIFIED_CATALOG, encoding="utf-8")
    kei("agent", "fork", "root", "agent/root")
    kei("agent", "fork", "a", "agent/a", "--parent", "root")
    kei("agent", "fork", "b", "agent/b", "--parent", "a")
    kei("agent", "fork", "c", "agent/c", "--parent", "root")
    kei("agent", "fork", "elsewhere", "agent/x")

    def cost(args: str) -> None:
        kei("cost", "record", *args.split())

    # $1.05 from the (verified) catalog; half a cent, then 300 cents amended to 100 (once);
    # 1 cent at a price the catalog cannot vouch for; and an agent outside the tree.
    cost("root --provider anthropic --model sonnet --tokens-in 100000 --tokens-out 50000")
    cost("a --provider p --model m --micro-cents 500000")
    cost("a --provider p --model m --cents 300")
    kei("cost", "amend", "agent/a:3", "--cents", "100")
    cost("b --provider local --model house-llm --tokens-in 1000000 --tokens-out 0")
    cost("elsewhere --provider p --model m --cents 999")
    lines = kei("agent", "tree", "root").stdout.splitlines()
    assert lines == [
        "root [running] branch=agent/root cost=$1.05",
        "  a [running] branch=agent/a cost=$1.01",
        "    b [running] branch=agent/b cost=$0.01 (unverified price)",
        "  c [running] branch=agent/c cost=$0.00",
    ]
    rows = [json.loads(x) for x in kei("agent", "tree", "root", "--json").stdout.splitlines()]
    assert [(r["id"], r["micro_cents"], r["unverified_events"]) for r in rows] == [
        ("root", 105_000_000, 0),
        ("a", 100_500_000, 0),
        ("b", 1_000_000, 1),
        ("c", 0, 0),
    ]
    assert rows[1]["depth"] == 1 and rows[1]["parent_agent_id"] == "root"
    assert "spec_sha" in rows[0]  # --json keeps the whole row
    piped = run_cli(["agent", "tree", "a"], cli_env(home, store_url))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines() == [line[2:] for line in lines[1:3]]


def test_tree_catches_up_costs_appended_behind_its_back(
    kei: Kei, store_url: str, home: Path
) -> None:
    """Costs appended straight to the log (as an orchestrator embedding kei would) show up."""
    kei("agent", "fork", "root", "agent/root")
    kei("agent", "tree", "root")  # both read models caught up to here
    with Ledger.open(store_url, key=load_key(home / "keys" / "default.key")) as ledger:
        ledger.append([NewEvent("agent/root", CostRecorded(
            agent_id="root", provider="p", model="m", micro_cents=1_500_000))])  # fmt: skip
    assert kei("agent", "tree", "root").stdout == "root [running] branch=agent/root cost=$0.02\n"


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
    with Ledger.open(url, key=key) as ledger, AgentService(ledger) as service:
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
