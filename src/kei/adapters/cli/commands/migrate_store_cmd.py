"""``kei migrate status|up`` with no ``--target``: kei's own store (``app/migrate/own_store``).

Thin: opens the ledger, calls, renders. ``status`` writes nothing (the ledger is
opened read-only). ``up`` signs each store step and projection rebuild with the
ledger's key; a store newer than this kei is refused on open, one line, exit 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from msgspec.structs import asdict

from kei.adapters.cli.context import answering, open_ledger, seal_key_or_none
from kei.adapters.cli.exits import MIGRATE_EXITS
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.app.migrate.own_store import OwnStatus, OwnUp


def own_status(ctx: typer.Context, *, as_json: bool) -> None:
    from kei.app.migrate.own_store import own_status as read_status
    from kei.projections.registry import default_projections

    with answering(ctx, table=MIGRATE_EXITS) as g:
        with open_ledger(g.settings(), read_only=True) as ledger:
            report = read_status(ledger, default_projections())
        if as_json:
            json_line(_status_dict(report))
        else:
            print("\n".join(status_lines(report)))


def own_up(ctx: typer.Context, *, as_json: bool) -> None:
    from kei.app.migrate.own_store import own_up as run_up
    from kei.projections.registry import default_projections

    with answering(ctx, table=MIGRATE_EXITS) as g:
        settings = g.settings()
        with open_ledger(settings, with_key=True) as ledger:
            report = run_up(ledger, default_projections, seal_key=seal_key_or_none(settings))
        if as_json:
            json_line(asdict(report) | {"migrated": [asdict(m) for m in report.migrated],
                                        "rebuilt": [asdict(r) for r in report.rebuilt]})  # fmt: skip
        else:
            print("\n".join(up_lines(report)))


def _status_dict(report: OwnStatus) -> dict[str, object]:
    return asdict(report) | {
        "projections": [asdict(p) | {"stale": p.stale} for p in report.projections],
        "events": [asdict(e) for e in report.events],
    }


def status_lines(report: OwnStatus) -> list[str]:
    """The store line, one per projection, one per (type, schema version)."""
    state = "up to date" if report.stored_version >= report.code_version else "behind"
    lines = [
        f"store {report.store} ({report.dialect}): schema {report.stored_version} "
        f"(this kei: {report.code_version}), {state}"
    ]
    for p in report.projections:
        stored = "-" if p.stored_version is None else str(p.stored_version)
        mark = "  STALE" if p.stale else ""
        lines.append(
            f"projection {p.name}: version {stored} (code {p.code_version}), "
            f"position {p.position}{mark}"
        )
    for e in report.events:
        schema = "?" if e.schema_version is None else str(e.schema_version)
        older = "" if e.current else "  (not the current schema)"
        lines.append(f"events {e.type} schema {schema}: {e.count}{older}")
    return lines


def up_lines(report: OwnUp) -> list[str]:
    lines = [
        f"store {report.store}: schema {m.from_version} -> {m.to_version} ({m.summary})"
        + (" [recovered]" if m.recovered else "")
        for m in report.migrated
    ]
    lines += [
        f"projection {r.name}: rebuilt {r.from_version} -> {r.to_version} at position "
        f"{r.position}, {r.digest}" + (" (shadow tables, swapped)" if r.shadow else "")
        for r in report.rebuilt
    ]
    if not lines:
        lines.append(f"store {report.store}: schema {report.to_version}, nothing to do")
    return lines
