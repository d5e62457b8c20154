"""Issue 21: a kei-ledger import loses nothing without the report naming it.

One regression test per loss the issue lists, each with the upstream row it concerns
(the bundle ones are in ``test_import_kei_hibernate.py``). Upstream files are built
with upstream's own migrations (``upstream_ledger.py``); results are read back through
kei's read models and the log, never through the importer's own code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli_helpers import cli_env
from kei.adapters.cli.app import app
from kei.app.agents import AgentService
from kei.app.costs import CostService
from kei.app.importers import ImportReport, import_kei_ledger
from kei.app.ledger.ledger import Ledger
from kei.domain.catalog.catalog import Catalog
from kei.errors import InputError
from upstream_ledger import UpstreamLedger

T = 1_700_000_000
US = 1_000_000


def project_db(root: Path, name: str) -> UpstreamLedger:
    """An upstream ledger where upstream keeps it: ``<project>/.claude/agents/ledger.sqlite``."""
    folder = root / name / ".claude" / "agents"
    folder.mkdir(parents=True)
    return UpstreamLedger(folder / "ledger.sqlite")


def agents(ledger: Ledger) -> dict[str, dict[str, Any]]:
    with AgentService(ledger) as service:
        return {r["id"]: r for r in service.caught_up().rows()}


def costs(ledger: Ledger) -> dict[str, int]:
    with CostService(ledger) as service:
        return {r.key: r.micro_cents for r in service.report("agent", Catalog(())).rows}


def items(report: ImportReport) -> dict[tuple[str, str], str]:
    return {(i.row, i.what): i.why for i in report.not_carried}


def run(ledger: Ledger, db: UpstreamLedger, **options: Any) -> ImportReport:
    return import_kei_ledger(ledger, ledger.store.url, db.path, **options)


# -- colliding ids: a namespace per source database ------------------------------------


def test_colliding_ids_of_two_databases_are_kept_apart(ledger: Ledger, tmp_path: Path) -> None:
    """kei-import-project writes ``import-phase-1-1`` in every project."""
    a, b = project_db(tmp_path, "alpha"), project_db(tmp_path, "beta")
    # beta's parent starts before alpha's, its child after: were lineage to cross
    # databases, kei's parent rule would pick alpha's agent
    for db, parent, child, cost in ((a, T, T + 2, 2), (b, T - 50, T + 5, 5)):
        db.agent("import-phase-1", "import/phase-1", started=parent)
        db.agent("import-phase-1-1", parent_branch="import/phase-1", started=child,
                 status="done", finished_ts=child + 9, summary=db.path.parts[-4],
                 cost_cents=cost)  # fmt: skip

    first = run(ledger, a)
    second = run(ledger, b)

    assert (first.namespace, second.namespace) == ("alpha", "beta")
    rows = agents(ledger)
    assert rows["import-phase-1-1"]["summary"] == "alpha"
    assert rows["beta:import-phase-1-1"]["summary"] == "beta"
    assert rows["import-phase-1-1"]["parent_agent_id"] == "import-phase-1"
    assert rows["beta:import-phase-1-1"]["parent_agent_id"] == "beta:import-phase-1"
    assert costs(ledger)["import-phase-1-1"] == 2 * US
    assert costs(ledger)["beta:import-phase-1-1"] == 5 * US
    renamed = items(second)[("beta:agents/import-phase-1-1", "agent id")]
    assert "imported as 'beta:import-phase-1-1', namespace 'beta'" in renamed
    assert second.agents_imported == 2 and second.agents_updated == 0

    # each database is recognised again, wherever its file lives now
    moved = tmp_path / "moved.sqlite"
    b.close()
    moved.write_bytes(b.path.read_bytes())
    again = import_kei_ledger(ledger, ledger.store.url, moved)
    assert again.namespace == "beta" and again.events_appended == 0
    assert run(ledger, a).events_appended == 0
    with pytest.raises(InputError, match="imported before as namespace 'alpha'"):
        run(ledger, a, namespace="other")


def test_a_namespace_given_is_checked(ledger: Ledger, tmp_path: Path) -> None:
    db = UpstreamLedger(tmp_path / "x.sqlite").agent("a")
    with pytest.raises(InputError, match="not 1–64 letters"):
        run(ledger, db, namespace="no/slash")
    assert run(ledger, db, namespace="team-1").namespace == "team-1"
    fork = ledger.read_stream("agent/a")[0].payload()
    assert fork.origin.ref == "team-1:agents/a"  # type: ignore[attr-defined]


# -- cost_cents -------------------------------------------------------------------------


def test_cost_cents_that_disagree_with_the_micro_total_are_named(
    ledger: Ledger, tmp_path: Path
) -> None:
    """upstream's record-cost-micro(0 ¢, 2,000,000 µ¢): upstream shows 0¢, kei 2¢."""
    db = UpstreamLedger(tmp_path / "ledger.sqlite")
    db.agent("a", status="done", started=T, finished_ts=T + 1, cost_cents=0,
             cost_micro_cents=2_000_000, provider="p", model="m")  # fmt: skip
    db.agent("b", status="done", started=T, finished_ts=T + 1, cost_cents=3,
             cost_micro_cents=3_000_000, provider="p", model="m")  # fmt: skip
    report = run(ledger, db)
    assert costs(ledger) == {"a": 2_000_000, "b": 3_000_000}
    why = items(report)[("ledger:agents/a#cost", "cost_cents 0")]
    assert "cost_micro_cents 2000000" in why and "kei carries the exact total" in why
    assert [i.row for i in report.not_carried] == ["ledger:agents/a#cost"]


# -- rows deleted upstream ---------------------------------------------------------------


def test_rows_deleted_upstream_are_named_on_rerun(ledger: Ledger, tmp_path: Path) -> None:
    db = UpstreamLedger(tmp_path / "ledger.sqlite")
    db.agent("keep", started=T).agent("gone", started=T + 1, status="done", finished_ts=T + 2)
    db.skill("lint", T + 3).skill("lint", T + 4)
    assert run(ledger, db).not_carried == []
    db.sql("DELETE FROM agents WHERE id = 'gone'")
    db.sql("DELETE FROM skill_invocations WHERE id = 1")
    report = run(ledger, db)
    assert report.events_appended == 0
    found = items(report)
    why = found[("ledger:agents/gone", "agent")]
    assert "deleted upstream since an earlier import" in why and "'gone'" in why
    assert "its use of skill 'lint'" in found[("ledger:skill_invocations/1", "skill invocation")]
    assert len(found) == 2
    assert agents(ledger)["gone"]["status"] == "done"  # kei keeps what it carried


# -- text timestamps ---------------------------------------------------------------------


def test_text_timestamps_are_read_or_named_never_1970(ledger: Ledger, tmp_path: Path) -> None:
    db = UpstreamLedger(tmp_path / "ledger.sqlite")
    db.agent("iso", started="2023-11-14T22:13:20Z", status="done",
             finished_ts="2023-11-14 22:13:30")  # fmt: skip
    db.agent("digits", started=str(T), status="done", finished_ts=f"{T + 5}.75")
    db.agent("words", started="yesterday")
    db.agent("late", started=T, status="failed", finished_ts="soon", summary="x")
    db.skill("lint", "2023-11-14T22:13:21+00:00").skill("lint", "never")
    report = run(ledger, db)
    rows = agents(ledger)
    assert rows["iso"]["forked_us"] == T * US and rows["iso"]["finished_us"] == (T + 10) * US
    assert rows["digits"]["forked_us"] == T * US and rows["digits"]["finished_us"] == (T + 5) * US
    assert "words" not in rows
    assert rows["late"]["finished_us"] == T * US  # dated at started_ts, and named
    assert all(r["forked_us"] >= T * US for r in rows.values())
    found = items(report)
    assert (
        "started_ts 'yesterday' is not a time kei reads" in found[("ledger:agents/words", "agent")]
    )
    assert "dated at started_ts" in found[("ledger:agents/late", "finished_ts 'soon'")]
    assert "not carried" in found[("ledger:skill_invocations/2", "ts 'never'")]
    assert report.skill_invocations == 1


# -- tables not carried ------------------------------------------------------------------


def test_prune_retirements_and_every_other_table_are_named(ledger: Ledger, tmp_path: Path) -> None:
    db = UpstreamLedger(tmp_path / "ledger.sqlite")
    db.agent("old", started=T, status="done", finished_ts=T + 1)
    db.sql(
        "CREATE TABLE prune_retirements (agent_id TEXT PRIMARY KEY, retired_ts INTEGER NOT NULL)"
    )
    db.sql("INSERT INTO prune_retirements VALUES ('old', ?)", (T + 99,))
    db.sql("CREATE TABLE notes (x TEXT)")
    db.sql("INSERT INTO notes VALUES ('a'), ('b')")
    found = items(run(ledger, db))
    assert found[("ledger:prune_retirements", "table, 1 rows")].startswith("kei has no retirement")
    why = found[("ledger:prune_retirements/old", f"retired_ts {T + 99}")]
    assert "kei carries agent 'old', not its retirement" in why
    assert "does not carry this table" in found[("ledger:notes", "table, 2 rows")]
    assert len(found) == 3


# -- agent trees -------------------------------------------------------------------------


def test_rows_whose_parent_differs_from_upstreams_tree_are_named(
    ledger: Ledger, tmp_path: Path
) -> None:
    db = UpstreamLedger(tmp_path / "ledger.sqlite")
    db.agent("p1", "shared", started=T).agent("p2", "shared", started=T + 1)
    db.agent("kid", parent_branch="shared", started=T + 2)
    db.agent("orphan", parent_branch="later", started=T + 3).agent("l", "later", started=T + 4)
    db.agent("plain", parent_branch="main", started=T + 5)  # no agent on main: same tree
    found = items(run(ledger, db))
    assert (
        "('p1', 'p2'); kei's parent rule picked 'p2'"
        in found[("ledger:agents/kid", "parent_branch 'shared'")]
    )
    assert (
        "under 'l', all started after it"
        in found[("ledger:agents/orphan", "parent_branch 'later'")]
    )
    assert len(found) == 2


# -- the CLI -----------------------------------------------------------------------------


def test_cli_namespace_option_and_summary(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    db = UpstreamLedger(tmp_path / "up.sqlite").agent("a")
    args = ["import", "kei-ledger", str(db.path), "--namespace", "proj"]
    done = CliRunner().invoke(app, args, env=env)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(", namespace proj")
    bad = CliRunner().invoke(app, [*args[:3], "--namespace", "a b"], env=env)
    assert bad.exit_code == 2 and "namespace 'a b'" in bad.stderr


# -- doc claims --------------------------------------------------------------------------


def test_skill_report_markdown_is_upstreams_byte_for_byte(tmp_path: Path) -> None:
    """docs/cli.md says so; issue 21 found kei's separator row and ``**ARCHIVE**``.
    Expected bytes: upstream's ``emit_markdown`` (kei-ledger ``aggregate-skills``)."""
    env = cli_env(tmp_path / "home")
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    db = UpstreamLedger(tmp_path / "up.sqlite")
    for i in range(10):
        db.skill("deploy", T + i, success=i < 2, duration_ms=100 + 10 * i)
    db.skill("lint", T + 20, success=True, duration_ms=7)
    assert CliRunner().invoke(app, ["import", "kei-ledger", str(db.path)], env=env).exit_code == 0
    out = CliRunner().invoke(app, ["skill", "report", "--since", str(T - 1)], env=env)
    assert out.exit_code == 0, out.stderr
    assert out.stdout == (
        "| skill | total | success% | p50_ms | p95_ms | last_ts | recommendation |\n"
        "|-------|-------|----------|--------|--------|---------|----------------|\n"
        f"| deploy | 10 | 20.0% | 140 | 190 | {T + 9} | ARCHIVE |\n"
        f"| lint | 1 | 100.0% | 7 | 7 | {T + 20} | insufficient |\n"
    )


def test_transcript_guard_refusals_are_the_documented_ones(tmp_path: Path) -> None:
    """Upstream's guard sees a Claude Code message as one line of JSON, so it stores a
    ``system:`` line and a base64 line; kei screens the readable text too and refuses
    them (docs/cli.md, kei retro ingest, says which and why). Pinned here."""
    import json

    from kei.app.ledger.ledger import Ledger as Opened

    def line(n: int, text: str) -> str:
        message = {"role": "user", "content": [{"type": "text", "text": text}]}
        return json.dumps({"type": "user", "message": message, "uuid": f"u{n}",
                           "timestamp": "2026-06-02T09:00:00Z"})  # fmt: skip

    trace = tmp_path / "t.jsonl"
    texts = ["fine", "log:\nsystem: rebooted", "a file:\n" + "QUJD" * 300, "also fine"]
    trace.write_text("\n".join(line(n, t) for n, t in enumerate(texts)) + "\n")
    url = f"sqlite:///{tmp_path / 'traces.db'}"
    env = cli_env(tmp_path / "home", url)
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    args = ["retro", "ingest", str(trace), "--session", "s", "--json"]
    out = CliRunner().invoke(app, args, env=env)
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["rejected"] == 2
    with Opened.open(url) as opened:
        rules = sorted(e.payload().rule for e in opened.read() if e.type == "trace.rejected")  # type: ignore[attr-defined]
    assert rules == ["long_base64_line", "system_role_prefix"]


def test_an_import_made_before_namespaces_stays_in_the_empty_one(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Its events carry plain ``agents/<id>`` refs; a re-run must not import it again."""
    from kei.domain.events import AgentForked, Origin

    old = Origin(source="kei-ledger", occurred_at_us=T * US, ref="agents/a")
    with AgentService(ledger) as service:
        service.fork(AgentForked(agent_id="a", branch="agent/a", spec_sha="spec", origin=old))
    db = UpstreamLedger(tmp_path / "ledger.sqlite").agent("a", started=T)
    db.agent("b", started=T + 1)
    report = run(ledger, db)
    assert report.namespace == "" and report.agents_unchanged == 1
    assert report.agents_imported == 1 and report.not_carried == []
    fork = ledger.read_stream("agent/b")[0].payload()
    assert fork.origin.ref == "agents/b"  # type: ignore[attr-defined]
    assert run(ledger, db).events_appended == 0
