"""``kei import kei-ledger``: upstream kei-ledger databases (v1–v9) into kei, on both stores.

Upstream files are built with upstream's own DDL (``upstream_ledger.py``); the
results are read back through kei's read models (``agents``, ``costs``, ``skills``)
and the log itself, never through the importer's own code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli_helpers import cli_env, kei
from kei.adapters.cli.app import app
from kei.adapters.readmodels.db import make_engine
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.agents import AgentService
from kei.app.costs import CostService
from kei.app.importers import ImportReport, import_kei_ledger, kei_view
from kei.app.importers import kei_ledger as importer
from kei.app.json_form import rfc3339
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents.skills import Invocation
from kei.domain.catalog.catalog import Catalog
from kei.domain.events import AgentForked, CostAmended, Origin
from kei.errors import ConcurrencyError
from kei.projections.registry import default_projections
from kei.projections.skills import Skills
from upstream_ledger import LATEST, UpstreamLedger

T = 1_700_000_000
US = 1_000_000
DNA1 = "impl::rust::3F2A9C01::7B1E44D0-9a0c11fe"
DNA2 = "impl::rust::3F2A9C01::7B1E44D0-9a0c11ff"
DNA3 = "review::py-ts::0A0B0C0D::11223344-aabbccdd"


# -- helpers ---------------------------------------------------------------------------


def run(ledger: Ledger, url: str, path: Path, *, dry_run: bool = False) -> ImportReport:
    return import_kei_ledger(ledger, url, path, dry_run=dry_run)


def agents(ledger: Ledger, url: str) -> dict[str, dict[str, Any]]:
    with AgentService(ledger) as service:
        return {r["id"]: r for r in service.caught_up().rows()}


def costs(ledger: Ledger, url: str) -> dict[str, int]:
    with CostService(ledger) as service:
        return {r.key: r.micro_cents for r in service.report("agent", Catalog(())).rows}


def skills(ledger: Ledger, url: str) -> list[Invocation]:
    projection = Skills()
    engine = ProjectionEngine(url, ledger.store, [projection])
    try:
        engine.catch_up()
    finally:
        engine.close()
    reader = make_engine(url)
    try:
        with reader.connect() as conn:
            return projection.invocations(conn)
    finally:
        reader.dispose()


def digests(ledger: Ledger, url: str) -> dict[str, str]:
    engine = ProjectionEngine(url, ledger.store, default_projections())
    try:
        return {s.name: s.digest.hex() for s in engine.status()}
    finally:
        engine.close()


def types_after(ledger: Ledger, position: int) -> list[tuple[str, str]]:
    return [(e.stream, e.type) for e in ledger.read(after=position)]


NS = "ledger:"  # the namespace of a first import of ``ledger.sqlite``: its stem


def items(report: ImportReport) -> dict[tuple[str, str], str]:
    """The report's items, rows without the namespace of ``ledger.sqlite``."""
    return {(i.row.removeprefix(NS), i.what): i.why for i in report.not_carried}


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Callable[..., UpstreamLedger]]:
    made: list[UpstreamLedger] = []

    def make(version: int = LATEST, name: str = "ledger.sqlite") -> UpstreamLedger:
        db = UpstreamLedger(tmp_path / name, version)
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()


# -- every schema version --------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, LATEST + 1))
def test_every_schema_version_imports(
    version: int, ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream(version)
    root: dict[str, Any] = {"worktree_path": "/w/root"}
    kid: dict[str, Any] = {"parent_branch": "agent/root"}
    if version >= 2:
        root["dna"] = DNA1
    if version >= 4:
        kid.update(creator_id="human:denis", fork_parent_id=DNA1)
    if version >= 6:
        root.update(cost_cents=3, provider="anthropic", model="sonnet")
    if version >= 7:
        kid.update(cost_micro_cents=1234, provider="openai", model="gpt")
    if version >= 9:
        root.update(outcome="functional", escalation_depth=1, stubs_count=0, tokens_in=10)
    db.agent("root", status="done", started=T, finished_ts=T + 9, summary="ok", **root)
    db.agent("kid", status="failed", started=T + 1, finished_ts=T + 5, summary="bad", **kid)
    if version >= 8:
        db.skill("lint", T + 2, success=True, duration_ms=40, agent_id="kid")

    report = run(ledger, store_url, db.path)

    assert report.schema_version == version
    assert (report.agents_imported, report.agents_skipped) == (2, 0)
    # v7's record-cost-micro adds µ¢ without whole cents: upstream shows 0¢, kei 1234 µ¢
    assert set(items(report)) == ({("agents/kid#cost", "cost_cents 0")} if version >= 7 else set())
    rows = agents(ledger, store_url)
    assert rows["root"]["status"] == "done" and rows["root"]["summary"] == "ok"
    assert rows["root"]["worktree"] == "/w/root"
    assert rows["root"]["forked_us"] == T * US and rows["root"]["finished_us"] == (T + 9) * US
    assert rows["kid"]["status"] == "failed" and rows["kid"]["reason"] == "bad"
    assert rows["kid"]["parent_agent_id"] == "root"
    assert rows["kid"]["parent_branch"] == "agent/root"
    assert rows["root"]["dna"] == (DNA1 if version >= 2 else None)
    assert rows["kid"]["creator"] == ("human:denis" if version >= 4 else None)
    assert rows["kid"]["fork_parent"] == (DNA1 if version >= 4 else None)
    expected_costs = {}
    if version >= 6:
        expected_costs["root"] = 3 * US
    if version >= 7:
        expected_costs["kid"] = 1234
    assert costs(ledger, store_url) == expected_costs
    assert rows["root"]["outcome"] == ("functional" if version >= 9 else None)
    assert rows["root"]["escalation_depth"] == (1 if version >= 9 else None)
    invoked = skills(ledger, store_url)
    assert [(i.skill_name, i.timestamp_us) for i in invoked] == (
        [("lint", (T + 2) * US)] if version >= 8 else []
    )
    fork = ledger.read_stream("agent/root")[0].payload()
    assert isinstance(fork, AgentForked)
    assert fork.origin == Origin(source="kei-ledger", occurred_at_us=T * US, ref=NS + "agents/root")


# -- awkward data ----------------------------------------------------------------------


def awkward(db: UpstreamLedger) -> None:
    """Rows upstream allows that kei has to think about (db created at v2, left at v9)."""
    db.agent("long", "b" * 300, started=T - 10)  # possible only before v3's triggers
    db.agent("longp", "agent/longp", parent_branch="p" * 257, started=T - 9)
    db.migrate(LATEST)
    db.agent(
        "r", "agent/r", parent_branch="main", started=T, status="done", finished_ts=T + 50,
        summary="ok", cost_micro_cents=1_500_000, provider="anthropic", model="claude",
        tokens_in=100,
    )  # fmt: skip
    db.agent("cyc_a", "cyc/A", parent_branch="cyc/B", started=T + 1)
    db.agent("cyc_b", "cyc/B", parent_branch="cyc/A", started=T + 2)
    db.agent("dup1", "dup", started=T + 3)
    db.agent("early", "agent/early", parent_branch="dup", started=T + 4)
    db.agent("dup2", "dup", started=T + 5)
    db.agent("late", "agent/late", parent_branch="dup", started=T + 6)
    db.agent("empty_dna", dna="", started=T + 7)
    db.agent("bad_dna", dna="not-a-dna", fork_parent_id="nope", started=T + 8)
    db.agent("good", dna=DNA1, started=T + 9)
    db.agent("merged", status="merged", summary="shipped", finished_ts=T + 60, started=T + 10)
    db.agent("rejected", status="rejected", finished_ts=T + 61, started=T + 11)
    db.agent("run_out", outcome="functional", started=T + 12)
    db.agent(
        "failed_out", status="failed", summary="boom", outcome="fail", escalation_depth=2,
        stubs_count=3, finished_ts=T + 62, started=T + 13,
    )  # fmt: skip
    db.agent("cents", cost_cents=7, provider="", model="", started=T + 14)
    db.agent("tokens", tokens_in=5, tokens_out=6, started=T + 15)
    db.agent("nothing", cost_cents=0, started=T + 16)
    db.skill("lint", T + 20, success=True, duration_ms=100)
    db.skill("lint", T + 21, success=False)
    db.skill("deploy", T + 22, success=True, duration_ms=-5, agent_id="r", trajectory_id="t1")
    db.skill("", T + 23, success=True)


def test_awkward_v9_data_imports_completely(
    ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream(2)
    awkward(db)
    report = run(ledger, store_url, db.path)
    rows = agents(ledger, store_url)

    assert set(rows) == {
        "r", "cyc_a", "cyc_b", "dup1", "early", "dup2", "late", "empty_dna", "bad_dna", "good",
        "merged", "rejected", "run_out", "failed_out", "cents", "tokens", "nothing",
    }  # fmt: skip
    parents = {k: r["parent_agent_id"] for k, r in rows.items() if r["parent_agent_id"]}
    assert parents == {"cyc_b": "cyc_a", "early": "dup1", "late": "dup2"}
    assert rows["cyc_a"]["parent_branch"] == "cyc/B" and rows["r"]["parent_branch"] == "main"
    assert rows["good"]["dna"] == DNA1
    assert rows["empty_dna"]["dna"] is None and rows["bad_dna"]["dna"] is None
    assert rows["bad_dna"]["fork_parent"] is None
    status = {k: (r["status"], r["summary"], r["reason"]) for k, r in rows.items()}
    assert status["r"] == ("done", "ok", None)
    assert status["merged"] == ("merged", "shipped", None)
    assert status["rejected"] == ("failed", None, "rejected upstream")
    assert status["failed_out"] == ("failed", None, "boom")
    assert status["run_out"] == ("running", None, None)
    assert rows["merged"]["finished_us"] == (T + 60) * US
    assert (rows["failed_out"]["outcome"], rows["failed_out"]["escalation_depth"]) == ("fail", 2)
    assert rows["failed_out"]["stub_count"] == 3
    assert rows["run_out"]["outcome"] is None
    assert costs(ledger, store_url) == {"r": 1_500_000, "cents": 7_000_000, "tokens": 0}
    recorded = [e.payload() for e in ledger.read_stream("agent/cents") if e.type == "cost.recorded"]
    assert [(p.provider, p.model) for p in recorded] == [("unknown", "unknown")]  # type: ignore[attr-defined]
    usage = [e.payload().usage for e in ledger.read_stream("agent/r") if e.type == "cost.recorded"]  # type: ignore[attr-defined]
    assert (usage[0].input_tokens, usage[0].output_tokens) == (100, None)
    assert ledger.read_stream("agent/cents")[-1].payload().price_entry_id is None  # type: ignore[attr-defined]

    invoked = sorted(skills(ledger, store_url), key=lambda i: i.timestamp_us)
    assert [(i.skill_name, i.success, i.duration_ms) for i in invoked] == [
        ("lint", True, 100),
        ("lint", False, None),
        ("deploy", True, None),
    ]

    found = items(report)
    assert found[("agents/long", "agent")] == "branch length 300 exceeds cap 256"
    assert found[("agents/longp", "agent")] == "parent_branch length 257 exceeds cap 256"
    assert "empty" in found[("agents/empty_dna", "dna ''")]
    assert "expected 4 '::'-separated segments" in found[("agents/bad_dna", "dna 'not-a-dna'")]
    assert ("agents/bad_dna", "fork_parent_id 'nope'") in found
    assert "imported as failed" in found[("agents/rejected", "status 'rejected'")]
    assert "still running" in found[("agents/run_out", "outcome 'functional'")]
    assert found[("skill_invocations/3", "duration_ms -5")] == "negative; carried as unknown"
    assert "skill_name must not be empty" in found[("skill_invocations/4", "skill invocation")]
    # issue 21: kei's parent rule and upstream's tree differ for these rows, named
    assert "gives it none" in found[("agents/cyc_a", "parent_branch 'cyc/B'")]
    assert "picked 'dup1'" in found[("agents/early", "parent_branch 'dup'")]
    assert (
        "('dup1', 'dup2'); kei's parent rule picked 'dup2'"
        in found[("agents/late", "parent_branch 'dup'")]
    )
    # issue 21: upstream's 0 whole cents beside its exact 1,500,000 µ¢, named
    assert "cost_micro_cents 1500000" in found[("agents/r#cost", "cost_cents 0")]
    assert len(found) == 13
    assert (report.agents_imported, report.agents_skipped) == (17, 2)
    assert (report.cost_events, report.skill_invocations) == (3, 3)
    assert any("merged agent(s) imported as done" in n for n in report.notes)
    assert any("2 cost event(s) had no provider or model" in n for n in report.notes)
    assert report.events_appended == ledger.store.count() - 1  # all but the genesis


def test_pre_v5_duplicate_dnas_import(
    ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    with AgentService(ledger) as service:
        service.fork(AgentForked(agent_id="native", branch="n", dna=DNA3))
    db = upstream(4)
    db.agent("first", dna=DNA1, started=T).agent("second", dna=DNA1, started=T + 1)
    db.agent("third", dna=DNA3, started=T + 2)
    report = run(ledger, store_url, db.path)
    rows = agents(ledger, store_url)
    assert (rows["first"]["dna"], rows["second"]["dna"], rows["third"]["dna"]) == (DNA1, None, None)
    found = items(report)
    assert found[("agents/second", f"dna '{DNA1}'")] == "already claimed by agent first; dropped"
    assert found[("agents/third", f"dna '{DNA3}'")] == "already claimed by agent native; dropped"
    assert report.agents_imported == 3


def test_native_agent_with_the_same_id_is_kept_apart(
    ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    with AgentService(ledger) as service:
        service.fork(AgentForked(agent_id="a", branch="mine"))
    db = upstream()
    db.agent("a", status="done", cost_cents=2, started=T)
    report = run(ledger, store_url, db.path)
    assert "imported as 'ledger:a'" in items(report)[("agents/a", "agent id")]
    rows = agents(ledger, store_url)
    assert rows["a"]["branch"] == "mine" and rows["ledger:a"]["branch"] == "agent/a"
    assert costs(ledger, store_url) == {"ledger:a": 2 * US}
    assert report.agents_imported == 1 and report.agents_skipped == 0
    assert run(ledger, store_url, db.path).events_appended == 0


# -- idempotent and incremental ---------------------------------------------------------


def test_importing_twice_appends_nothing(
    ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream(2)
    awkward(db)
    run(ledger, store_url, db.path)
    before, count = digests(ledger, store_url), ledger.store.count()
    again = run(ledger, store_url, db.path)
    assert again.events_appended == 0 and ledger.store.count() == count
    assert digests(ledger, store_url) == before
    assert (again.agents_imported, again.agents_updated, again.agents_unchanged) == (0, 0, 17)
    assert (again.skill_invocations, again.skills_already) == (0, 3)


@pytest.mark.parametrize("streams", ["one by one", "all at once"])
def test_reimport_appends_exactly_what_upstream_added(
    ledger: Ledger,
    store_url: str,
    upstream: Callable[..., UpstreamLedger],
    streams: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if streams == "all at once":  # how a re-run of a large import reads kei
        monkeypatch.setattr(kei_view, "READ_ONE_BY_ONE", 0)
    db = upstream()
    db.agent("a", started=T, cost_cents=1, provider="anthropic", model="m")
    db.agent("b", status="done", summary="ok", finished_ts=T + 5, started=T + 1)
    db.agent("c", status="done", summary="fine", finished_ts=T + 6, started=T + 2)
    db.skill("lint", T + 3).skill("lint", T + 4, success=False)
    run(ledger, store_url, db.path)
    mark = ledger.store.max_position()

    db.update("a", status="done", summary="finished", finished_ts=T + 100)
    db.update("a", cost_cents=5, cost_micro_cents=5_000_000)
    db.update("b", status="merged", outcome="functional", escalation_depth=0, stubs_count=1)
    db.agent("d", parent_branch="agent/a", started=T + 50)
    db.skill("lint", T + 101).skill("deploy", T + 102)
    report = run(ledger, store_url, db.path)

    assert sorted(types_after(ledger, mark)) == sorted(
        [
            ("agent/a", "agent.completed"),
            ("agent/a", "cost.amended"),
            ("agent/b", "agent.merged"),
            ("agent/b", "agent.outcome"),
            ("agent/d", "agent.forked"),
            ("skill/lint", "skill.invoked"),
            ("skill/deploy", "skill.invoked"),
        ]
    )
    assert (report.agents_imported, report.agents_updated, report.agents_unchanged) == (1, 2, 1)
    rows = agents(ledger, store_url)
    assert (rows["a"]["status"], rows["a"]["summary"]) == ("done", "finished")
    assert rows["b"]["status"] == "merged" and rows["b"]["outcome"] == "functional"
    assert rows["d"]["parent_agent_id"] == "a"
    assert costs(ledger, store_url) == {"a": 5_000_000}
    assert len(skills(ledger, store_url)) == 4
    assert run(ledger, store_url, db.path).events_appended == 0


def test_cost_change_amends_the_current_head_of_the_chain(
    ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream()
    db.agent("a", started=T, cost_cents=1, provider="p", model="m")
    run(ledger, store_url, db.path)
    with CostService(ledger) as service:
        service.amend(
            CostAmended(
                agent_id="a", supersedes_stream="agent/a", supersedes_version=2, provider="p",
                model="m", micro_cents=42, reason="by hand",
            )
        )  # fmt: skip
    assert run(ledger, store_url, db.path).events_appended == 0  # upstream did not change
    assert costs(ledger, store_url) == {"a": 42}
    db.update("a", cost_cents=9, cost_micro_cents=9_000_000)
    assert run(ledger, store_url, db.path).cost_events == 1
    last = ledger.read_stream("agent/a")[-1].payload()
    assert isinstance(last, CostAmended) and last.supersedes_version == 3
    assert costs(ledger, store_url) == {"a": 9_000_000}


def test_a_concurrent_writer_stops_the_run_and_a_rerun_resumes(
    ledger: Ledger,
    store_url: str,
    upstream: Callable[..., UpstreamLedger],
    make_ledger: Callable[[str], Ledger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = upstream()
    for i in range(5):
        db.agent(f"a{i}", started=T + i)
    monkeypatch.setattr(importer, "AGENT_CHUNK", 2)
    other, real, calls = make_ledger(store_url), ledger.append, []

    def append(batch: list[NewEvent]) -> Any:
        calls.append(len(batch))
        if len(calls) == 2:  # another writer forks a3 between the chunks
            other.append([NewEvent("agent/a3", AgentForked(agent_id="a3", branch="x"), 0)])
        return real(batch)

    monkeypatch.setattr(ledger, "append", append)
    with pytest.raises(ConcurrencyError, match="2 of 5 events were appended"):
        run(ledger, store_url, db.path)
    assert set(agents(ledger, store_url)) == {"a0", "a1", "a3"}
    report = run(ledger, store_url, db.path)
    assert (report.agents_imported, report.agents_unchanged, report.agents_skipped) == (3, 2, 0)
    assert set(agents(ledger, store_url)) == {f"a{i}" for i in range(5)} | {"ledger:a3"}


def test_dry_run_reports_the_same_and_appends_nothing(
    ledger: Ledger, store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream(2)
    awkward(db)
    count = ledger.store.count()
    dry = run(ledger, store_url, db.path, dry_run=True)
    assert ledger.store.count() == count
    real = run(ledger, store_url, db.path)
    assert dry.dry_run and not real.dry_run
    assert dry.to_dict() | {"dry_run": False} == real.to_dict()


# -- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    environment = cli_env(tmp_path / "home", store_url)
    done = CliRunner().invoke(app, ["init"], env=environment)
    assert done.exit_code == 0, done.stderr
    return environment


def cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_summary_json_and_dry_run(
    env: dict[str, str], store_url: str, upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream(2)
    awkward(db)
    with Ledger.open(store_url) as ledger:
        count = ledger.store.count()
    dry = cli(env, "import", "kei-ledger", str(db.path), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "(dry run: nothing appended)" in dry.stdout
    with Ledger.open(store_url) as ledger:
        assert ledger.store.count() == count

    done = cli(env, "import", "kei-ledger", str(db.path))
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"kei-ledger schema v9 from {db.path}, namespace ledger"
    assert lines[1] == "agents: 17 imported, 0 updated, 0 unchanged, 2 skipped"
    assert lines[3:5] == ["cost events: 3", "skill invocations: 3 imported, 0 already in kei"]
    assert "not carried over: 13" in lines
    assert "  ledger:agents/long\tagent\tbranch length 300 exceeds cap 256" in lines

    again = cli(env, "import", "kei-ledger", str(db.path), "--json")
    assert again.exit_code == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["events_appended"] == 0 and data["agents_unchanged"] == 17
    assert {"row", "what", "why"} == set(data["not_carried"][0])


def test_cli_errors_are_one_line_and_append_nothing(
    env: dict[str, str], store_url: str, tmp_path: Path, upstream: Callable[..., UpstreamLedger]
) -> None:
    (tmp_path / "text.db").write_text("this is not a database, just some text\n" * 50)
    other = UpstreamLedger(tmp_path / "other.db", 0)
    other.sql("CREATE TABLE things (id INTEGER)")
    other.close()
    newer = upstream(LATEST, "newer.db")
    newer.sql("PRAGMA user_version = 10")
    cases = {
        "missing.db": "missing.db: no such file",
        "text.db": "is not a readable SQLite database (file is not a database)",
        "other.db": "is not a kei-ledger database (it has no agents table)",
        "newer.db": "schema v10 is newer than the v1–v9 kei can import",
    }
    with Ledger.open(store_url) as ledger:
        count = ledger.store.count()
    for name, message in cases.items():
        done = kei(["import", "kei-ledger", str(tmp_path / name)], env)
        assert done.returncode == 2, (name, done.stderr)
        assert done.stdout == ""
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("kei: error: ") and message in done.stderr
        assert "Traceback" not in done.stderr
    with Ledger.open(store_url) as ledger:
        assert ledger.store.count() == count


def test_imported_times_are_upstream_times(
    env: dict[str, str], upstream: Callable[..., UpstreamLedger]
) -> None:
    db = upstream()
    db.agent("old", started=T, status="done", finished_ts=T + 30)
    db.skill("lint", T + 10).skill("lint", T + 1000).skill("lint", T + 2000, success=False)
    assert cli(env, "import", "kei-ledger", str(db.path)).exit_code == 0
    listed = json.loads(cli(env, "agent", "list", "--json").stdout)
    assert (listed["forked_at"], listed["finished_at"]) == (rfc3339(T * US), rfc3339((T + 30) * US))
    window = json.loads(cli(env, "skill", "report", "--since", str(T + 500), "--json").stdout)
    assert [(r["total_invocations"], r["wins"]) for r in window] == [(2, 1)]
    assert window[0]["last_invoked_at"] == rfc3339((T + 2000) * US)
    assert json.loads(cli(env, "skill", "report", "--json").stdout) == []  # 30 days back from now
