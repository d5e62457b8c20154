"""``kei projections status|rebuild|verify``: the read models' positions and digests.

Thin: opens the ledger and a ``ProjectionEngine`` over the shipped projections
(``kei.projections.registry``), calls it, prints. ``status`` and ``rebuild`` catch up
first (checking each read model against the log and its seal, rebuilding one that
disagrees), so what they show is the state after every verified event. ``verify``
changes nothing: it re-folds every projection from the log into a scratch database
and compares digests with the live read models (``kei.app.read_model_audit``).
Data on stdout (a table, or NDJSON with ``--json``, one object per projection); a
chain break stops them with exit 1, like ``verify-chain``; so does a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from kei.adapters.cli.config import Settings
from kei.adapters.cli.context import answering, command_group, is_tty, open_ledger, seal_key, stderr
from kei.adapters.cli.exits import Exit
from kei.adapters.cli.options import JsonLines
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.adapters.readmodels.engine import ProjectionEngine, ProjectionStatus
    from kei.app.read_model_audit import Audit

projections_app, register = command_group("projections", "Read models built from the log.")


@contextmanager
def _engine(settings: Settings) -> Iterator[ProjectionEngine]:
    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.projections.registry import default_projections

    with open_ledger(settings) as ledger:
        key = seal_key(settings)
        engine = ProjectionEngine(ledger.url, ledger.store, default_projections(), seal_key=key)
        try:
            yield engine
        finally:
            engine.close()


@projections_app.command("status")
def status(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """Catch every projection up, then show its name, version, position and digest."""
    with answering(ctx) as g, _engine(g.settings()) as engine:
        _show(engine.status(), as_json=as_json)


@projections_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="The projection to rebuild (default: all).")
    ] = None,
    as_json: JsonLines = False,
) -> None:
    """Drop a projection's tables and rebuild them from the whole verified log."""
    with answering(ctx) as g, _engine(g.settings()) as engine:
        names = None if name is None else [name]
        engine.rebuild(names)
        _show(engine.status(names), as_json=as_json)


@projections_app.command("verify")
def verify(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """Re-fold every projection from the log in a scratch database and compare its
    digest with the live read model (exit 1 on a mismatch); changes nothing."""
    from kei.app.read_model_audit import audit_read_models

    with answering(ctx) as g:
        settings = g.settings()
        with open_ledger(settings) as ledger:
            audits = audit_read_models(ledger)
        ok = show_audits(audits, as_json=as_json)
    raise typer.Exit(int(Exit.OK if ok else Exit.FINDINGS))


def show_audits(audits: list[Audit], *, as_json: bool) -> bool:
    """Print one line per projection (matched or MISMATCH) and a summary on stderr;
    True when every read model matched its fold of the log."""
    for a in audits:
        if as_json:
            json_line(a.to_dict())
            continue
        verdict = "matched" if a.matched else "MISMATCH"
        why = "" if a.problem is None else f"\t{a.problem}"
        print(f"{a.name}\t{verdict}\tposition {a.position}{why}")
    bad = [a.name for a in audits if not a.matched]
    err = stderr()
    if not bad:
        err.print(f"kei: OK: {len(audits)} read models match the log", markup=False)
        return True
    err.print(
        f"kei: FAIL: {len(bad)} of {len(audits)} read models disagree with the log: "
        + ", ".join(bad),
        markup=False,
    )
    err.print("kei: hint: run `kei projections rebuild` to rebuild them from the log", markup=False)
    return False


def _show(statuses: list[ProjectionStatus], *, as_json: bool) -> None:
    if as_json:
        for s in statuses:
            json_line(s.to_dict())
        return
    rows = [(s.name, str(s.version), str(s.position), "sha256:" + s.digest.hex()) for s in statuses]
    if not is_tty():
        for row in rows:
            print("\t".join(row))
        return
    table = Table("name", "version", "position")
    table.add_column("digest", overflow="fold")  # never cut a digest short
    for row in rows:
        table.add_row(*row)
    Console().print(table)
