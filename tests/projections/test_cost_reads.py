"""The plain-SQL reads behind ``kei cost report`` and ``kei agent tree``: they trust the
read models only when those stand at the head, at this code's versions, with the indexes
the tree relies on, and they answer as the services do, on both stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli_helpers import cli_env, run_sql
from kei.adapters.files.catalog import load_catalog
from kei.app import cost_reads
from kei.app.costs import CostService
from kei.app.ledger.ledger import Ledger
from kei.projections import names
from kei.projections.agents import Agents
from kei.projections.costs import Costs


def test_the_names_match_the_sqlalchemy_definitions() -> None:
    agents, costs = Agents(), Costs()
    tables = agents.define(sa.MetaData()) + costs.define(sa.MetaData())
    assert (agents.name, agents.version) == (names.AGENTS, names.AGENTS_VERSION)
    assert (costs.name, costs.version) == (names.COSTS, names.COSTS_VERSION)
    assert (agents.table.name, costs.table.name) == (names.AGENTS_TABLE, names.COSTS_TABLE)
    assert tuple(agents.table.c.keys()) == names.AGENT_COLUMNS
    indexes = {str(i.name) for t in tables for i in t.indexes}
    assert set(names.TREE_INDEXES) <= indexes


def app() -> Any:
    from kei.adapters.cli.app import app

    return app


@pytest.fixture
def kei(store_url: str, tmp_path: Path) -> Callable[..., Any]:
    env = cli_env(tmp_path / "home", store_url)

    def run(*args: str) -> Any:
        result = CliRunner().invoke(app(), list(args), env=env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    run("init")
    run("agent", "fork", "root", "agent/root")
    run("agent", "fork", "kid", "agent/kid", "--parent", "root")
    run("cost", "record", "kid", "--provider", "anthropic", "--model", "claude-sonnet-4-6",
        "--tokens-in", "1000", "--tokens-out", "200")  # fmt: skip
    run("cost", "record", "root", "--provider", "x", "--model", "y", "--micro-cents", "500")
    return run


def test_a_new_store_is_not_fresh(store_url: str, tmp_path: Path) -> None:
    assert (
        CliRunner().invoke(app(), ["init"], env=cli_env(tmp_path / "h", store_url)).exit_code == 0
    )
    with Ledger.open(store_url) as ledger:
        assert not cost_reads.is_fresh(ledger.store)  # no read models yet
        cost_reads.caught_up(ledger)
        assert cost_reads.is_fresh(ledger.store)
        assert cost_reads.report(ledger.store, "agent", load_catalog(None)).rows == []


def test_fresh_only_at_the_head_at_this_version_with_the_indexes(
    kei: Callable[..., Any], store_url: str
) -> None:
    with Ledger.open(store_url) as ledger:
        store = ledger.store
        assert not cost_reads.is_fresh(store)  # writes decide from streams, not read models
        cost_reads.caught_up(ledger)
        assert cost_reads.is_fresh(store)
        kei("agent", "fork", "late", "agent/late")
        assert not cost_reads.is_fresh(store)  # the log moved on
        cost_reads.caught_up(ledger)
        run_sql(store_url, "UPDATE kei_projections SET version = 1 WHERE name = 'costs'")
        assert not cost_reads.is_fresh(store)  # an older version's tables
        cost_reads.caught_up(ledger)
        assert cost_reads.is_fresh(store)
        run_sql(store_url, "DROP INDEX costs_events_agent_idx")
        assert not cost_reads.is_fresh(store)  # the tree would scan every cost per agent
        cost_reads.caught_up(ledger)
        assert cost_reads.is_fresh(store)


def test_the_reads_answer_as_the_service_does(kei: Callable[..., Any], store_url: str) -> None:
    catalog = load_catalog(None)
    with Ledger.open(store_url) as ledger, CostService(ledger) as service:
        now = 1_800_000_000_000_000  # one clock for both: a block's burn rate depends on it
        by_service = [
            service.report(by, catalog, cost_reads.Window(now_us=now)) for by in cost_reads.GROUPS
        ]
        tree = service.tree("root", catalog, full=True)
        assert cost_reads.is_fresh(ledger.store)
        for by, expected in zip(cost_reads.GROUPS, by_service, strict=True):
            assert (
                cost_reads.report(ledger.store, by, catalog, cost_reads.Window(now_us=now))
                == expected
            )
    assert [r.key for r in by_service[0].rows] == ["kid", "root"]
    assert [(n.depth, n.row["id"], n.row["dna"]) for n in tree] == [(0, "root", None),
                                                                   (1, "kid", None)]  # fmt: skip
    assert tree[1].cost.micro_cents == by_service[0].rows[0].micro_cents
    assert tree[0].cost.micro_cents == 500
