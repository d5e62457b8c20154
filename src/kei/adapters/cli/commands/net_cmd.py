"""``kei net up|down|status|peers|history|run``: tunnels as signed desired/observed history.

Thin: the tunnels come from ``$KEI_HOME/net.toml`` (``kei.adapters.net.settings``), each
built by its mode's builder (``kei.adapters.net.modes``), and ``kei.app.net`` does the
rest. Data on stdout, confirmations and warnings on stderr. ``up`` and ``down`` exit 1
when the tunnel is not as asked afterwards; ``run`` turns SIGTERM and SIGINT into a
clean stop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kei.adapters.cli.commands.notify_cmd import _loud as loud_on_stderr
from kei.adapters.cli.commands.notify_cmd import _stopping
from kei.adapters.cli.context import answering, command_group, open_ledger, stderr
from kei.adapters.cli.exits import NET_EXITS
from kei.adapters.cli.options import JsonLines, JsonObject
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.net.service import NetService, Tunnel

net_app, register = command_group(
    "net", "Network tunnels (WireGuard, IPsec, OpenVPN): intent, actions and peers as events."
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A tunnel of net.toml.")]
NamesArg = Annotated[
    list[str] | None, typer.Argument(metavar="[NAME]...", help="Tunnels (default: all).")
]
QueueOpt = Annotated[
    bool, typer.Option("--queue", help="Only record the intent; `kei net run` acts on it.")
]
OnceOpt = Annotated[bool, typer.Option("--once", help="Reconcile every tunnel once and exit.")]
GoneOpt = Annotated[bool, typer.Option("--all", help="Also peers that are gone.")]
_LOGGERS = ("kei.app.net", "kei.adapters.net")


@net_app.command("up")
def up(ctx: typer.Context, name: NameArg, queue: QueueOpt = False,
       as_json: JsonObject = False) -> None:  # fmt: skip
    """Bring tunnel NAME up as net.toml configures it, recorded (exit 1 if it is not up)."""
    _intend(ctx, name, "up", queue=queue, as_json=as_json)


@net_app.command("down")
def down(ctx: typer.Context, name: NameArg, queue: QueueOpt = False,
         as_json: JsonObject = False) -> None:  # fmt: skip
    """Take tunnel NAME down, recorded (exit 1 if it is still up)."""
    _intend(ctx, name, "down", queue=queue, as_json=as_json)


@net_app.command("status")
def status(ctx: typer.Context, names: NamesArg = None, as_json: JsonLines = False) -> None:
    """Each tunnel: mode, intent, phase, attempts, configuration digest, peers present."""
    with answering(ctx, table=NET_EXITS) as g, _service(g.settings()) as service:
        tunnels = service.status(names or ())
        if not tunnels and not as_json:
            stderr().print("kei: no tunnels configured (see docs/net.md)")
        for t in tunnels:
            row = _summary(t)
            _emit(row, as_json, "\t".join(str(row[k]) for k in
                                          ("name", "mode", "desired", "phase", "peers")))  # fmt: skip


@net_app.command("peers")
def peers(ctx: typer.Context, name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="One tunnel (default: all).")] = None,
        gone: GoneOpt = False, as_json: JsonLines = False) -> None:  # fmt: skip
    """Peers as last recorded: tunnel, peer (public key, common name or IKE id), endpoint,
    bytes in and out, last handshake."""
    from kei.app.json_form import rfc3339
    from kei.app.ledger.tail import printable

    with answering(ctx, table=NET_EXITS) as g, _service(g.settings()) as service:
        rows = service.peers(name, gone=gone)
        if not rows and not as_json:
            stderr().print("kei: (no peers)")
        for r in rows:
            row = {k: r[k] for k in ("stream", "peer_id", "endpoint", "last_seen_us", "rx_bytes",
                                     "tx_bytes", "present", "recorded_us")}  # fmt: skip
            row["addresses"] = [a for a in str(r["addresses"]).split(",") if a]
            line = (f"{printable(r['stream'])}\t{printable(r['peer_id'])}\t"
                    f"{printable(r['endpoint'] or '-')}\trx={r['rx_bytes']}\ttx={r['tx_bytes']}\t"
                    f"{rfc3339(r['last_seen_us']) or 'never'}")  # fmt: skip
            _emit(row, as_json, line)


@net_app.command("history")
def history(ctx: typer.Context, name: NameArg, as_json: JsonLines = False) -> None:
    """Every event of tunnel NAME's stream, checked: intents, claims, outcomes, peers."""
    from kei.app.ledger.tail import printable

    with answering(ctx, table=NET_EXITS) as g, _service(g.settings()) as service:
        for e in service.history(name):
            if as_json:
                json_line(e.to_dict())
                continue
            fields = " ".join(
                f"{k}={v}" for k, v in e.payload_data().items() if v not in (None, "")
            )
            print(f"v{e.version}\t{e.type}\t{printable(fields)}")


@net_app.command("run")
def run(ctx: typer.Context, once: OnceOpt = False, as_json: JsonObject = False) -> None:
    """Reconcile every tunnel of net.toml until SIGTERM or SIGINT: act on intents, retry
    failures, record peers."""
    stop = threading.Event()
    with answering(ctx, table=NET_EXITS) as g, loud_on_stderr(g.verbose, _LOGGERS), _stopping(stop):
        with _service(g.settings(), write=True, stop=stop) as service:
            if not service.settings.tunnels:
                from kei.errors import InputError

                raise InputError(f"no tunnels in {service.settings.source}: nothing to reconcile",
                                 hint="see docs/net.md")  # fmt: skip
            turns, errors = service.run(once=once)
        if as_json:
            json_line({"turns": turns, "errors": errors})
        stderr().print(f"kei: net run: stopped after {turns} turns, {errors} errors")


# -- helpers -----------------------------------------------------------------------------


def _intend(ctx: typer.Context, name: str, want: str, *, queue: bool, as_json: bool) -> None:
    with answering(ctx, table=NET_EXITS) as g, loud_on_stderr(g.verbose, _LOGGERS):
        with _service(g.settings(), write=True) as service:
            t = service.intend(name, "up" if want == "up" else "down", queue=queue)
        row = _summary(t)
        if as_json:
            json_line(row)
        if queue:
            stderr().print(f"kei: net {name}: {want} recorded; `kei net run` acts on it")
            return
        if row["phase"] != want:
            why = f": {t.state.last_error.strip().splitlines()[-1]}" if t.state.last_error else ""
            stderr().print(f"kei: error: net {name} is {row['phase']}, not {want}{why}")
            raise typer.Exit(1)
        stderr().print(f"kei: net {name} is {want}")


@contextmanager
def _service(
    settings: Settings, *, write: bool = False, stop: threading.Event | None = None
) -> Iterator[NetService]:
    from kei.adapters.net import settings as net_settings
    from kei.adapters.net.modes import build
    from kei.app.net.service import NetService

    found = net_settings.load(settings.home)
    with (
        open_ledger(settings, with_key=write) as ledger,
        NetService(ledger, found, lambda n: build(found, n), stop=stop) as svc,
    ):
        yield svc


def _summary(t: Tunnel) -> dict[str, Any]:
    s, want = t.state, t.state.desired
    return {
        "name": t.name, "mode": t.mode, "stream": t.stream,
        "desired": want.state if want else None, "phase": s.phase, "attempts": s.attempts,
        "config_sha256": s.config_sha256 or None, "is_public": want.is_public if want else None,
        "allowed_ports": list(want.allowed_ports) if want else [], "peers": len(s.peers),
        "last_exit_code": s.last_exit_code, "last_error": s.last_error or None,
        "not_before_us": s.not_before_us, "version": s.version,
    }  # fmt: skip


def _emit(row: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        json_line(row)
    else:
        print(line)
