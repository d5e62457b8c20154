"""``kei notify channels|rules|test|send|list|show|retry|run|receive``: notifications as events.

Thin: the channels come from the channel adapters' loader (``kei.app.notify.config.
channels_from``, which reads ``$KEI_HOME/notify.toml`` and the environment: this is the
only module that hands it the environment), the rules and delivery policies from the
same file, and ``kei.app.notify`` does the rest. Data on stdout, confirmations and
warnings on stderr. ``run`` and ``receive`` turn SIGTERM and SIGINT into a clean stop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import typer
from msgspec import Struct

from kei.adapters.cli.context import answering, command_group, open_ledger, stderr
from kei.adapters.cli.options import JsonLines, JsonObject, number, option_group
from kei.adapters.cli.output import json_line

IntervalOpt = Annotated[
    float | None,
    typer.Option(
        "--interval",
        metavar="S",
        min=0.01,
        max=60.0,
        help="Seconds between looks at the log when idle (default 0.25).",
    ),
]
ExampleOpt = Annotated[
    bool, typer.Option("--example", help="Print the shipped example notify.toml instead.")
]
OnceOpt = Annotated[bool, typer.Option("--once", help="Catch up, send what is due, and exit.")]
FromStartOpt = Annotated[
    bool,
    typer.Option("--from-start", help="A first run reads the whole log, not only what comes next."),
]

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.adapters.notify.channel import Channel
    from kei.app.notify.config import NotifyConfig
    from kei.app.notify.service import NotifyService
    from kei.domain.notify.state import NotificationState

notify_app, register = command_group(
    "notify", "Notifications: rules, channels, and every send recorded as events."
)

SeverityName = Literal["info", "success", "warn", "error"]  # domain.notify.SEVERITIES
StateName = Literal["pending", "claimed", "retrying", "delivered", "suppressed", "abandoned"]
ChannelArg = Annotated[str, typer.Argument(metavar="CHANNEL", help="A configured channel.")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="A notification id or its prefix.")]
QueueOpt = Annotated[
    bool, typer.Option("--queue", help="Only record the request; `kei notify run` sends it.")
]
_LOGGERS = ("kei.app.notify", "kei.adapters.notify")


@notify_app.command("channels")
def channels(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """The configured channels: name, kind, severity floor, rate limit, in-doubt policy."""
    with answering(ctx) as g:
        found, config = _config(g.settings())
        if not found and not as_json:
            stderr().print("kei: no channels configured (see docs/notify.md, Channels)")
        for name in sorted(found):
            c, policy = found[name], config.policy(found[name])
            row = {"name": name, "kind": c.kind, "min_severity": c.min_severity,
                   "min_interval_s": c.min_interval_s, "in_doubt": policy.in_doubt,
                   "max_attempts": policy.max_attempts}  # fmt: skip
            _emit(row, as_json, "\t".join(str(v) for v in row.values()))


@notify_app.command("rules")
def rules(ctx: typer.Context, example: ExampleOpt = False, as_json: JsonLines = False) -> None:
    """The rules of notify.toml, checked (one line each), or the shipped example."""
    with answering(ctx) as g:
        settings = g.settings()  # a broken KEI_HOME is refused here too, as everywhere
        if example:
            from importlib import resources

            sys.stdout.write(resources.files("kei").joinpath("data", EXAMPLE).read_text())
            return
        _, config = _config(settings)
        for r in config.rules:
            on = r.check or ",".join(r.on)
            row = {"id": r.id, "on": on, "channel": r.channel, "severity": r.severity,
                   "enabled": r.enabled}  # fmt: skip
            _emit(row, as_json, "\t".join(str(v) for v in row.values()))


EXAMPLE = "notify.example.toml"


@notify_app.command("test")
def test(ctx: typer.Context, channel: ChannelArg, as_json: JsonObject = False) -> None:
    """Send a test message on CHANNEL now, recorded like any notification (exit 1 if it
    was not delivered)."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        _outcome(service.test(channel), as_json)


@notify_app.command("send")
def send(
    ctx: typer.Context,
    channel: ChannelArg,
    subject: Annotated[str, typer.Option("--subject", metavar="TEXT", help="The subject.")],
    body: Annotated[str, typer.Option("--body", metavar="TEXT", help="The body.")] = "",
    severity: Annotated[
        SeverityName, typer.Option("--severity", help="info, success, warn or error.")
    ] = "info",
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="KEY", help="Names the notification: sent once per key."),
    ] = None,
    queue: QueueOpt = False,
    as_json: JsonObject = False,
) -> None:
    """Request one notification on CHANNEL and send it now (exit 1 if not delivered)."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        state = service.send(channel, subject, body, severity=severity, key=key, queue=queue)
        _outcome(state, as_json, queued=queue)


@notify_app.command("list")
def list_notifications(
    ctx: typer.Context,
    state: Annotated[StateName | None, typer.Option("--state", help="Only this state.")] = None,
    limit: Annotated[int, number("--limit", help="At most N, newest first.")] = 100,
    as_json: JsonLines = False,
) -> None:
    """Notifications, newest first: id, state, channel, attempts, subject."""
    from kei.app.ledger.tail import printable

    with answering(ctx) as g, _service(g.settings()) as service:
        rows = service.listing(state, limit)
        if not rows and not as_json:
            stderr().print("kei: (no notifications)")
        for r in rows:
            line = (f"{r['id'][:12]}\t{r['state']}\t{printable(r['channel'])}\t"
                    f"attempts={r['attempts']}\t{printable(r['subject'])}")  # fmt: skip
            _emit(r, as_json, line)


@notify_app.command("show")
def show(ctx: typer.Context, ref: IdArg, as_json: JsonObject = False) -> None:
    """One notification: its state and every event of its stream, checked."""
    from kei.app.json_form import json_form
    from kei.app.ledger.tail import printable

    with answering(ctx) as g, _service(g.settings()) as service:
        shown = service.show(ref)
        summary = _summary(shown.state)
        if as_json:
            json_line({**summary, "events": [e.to_dict() for e in shown.events]})
            return
        for k, v in json_form(summary).items():
            if v not in (None, ""):
                print(f"{k}: {printable(str(v))}")
        for e in shown.events:
            data = e.payload_data().items()
            fields = " ".join(f"{k}={v}" for k, v in data if k != "notification_id" and v)
            print(f"  v{e.version} {e.type} {printable(fields)}")


@notify_app.command("retry")
def retry(
    ctx: typer.Context,
    ref: IdArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why.")] = "",
    queue: QueueOpt = False,
    as_json: JsonObject = False,
) -> None:
    """Send an abandoned, suppressed or waiting notification again, with a fresh budget of
    attempts (a claim left in doubt is resent: the log marks it a possible duplicate)."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        _outcome(service.retry(ref, reason, queue=queue), as_json, queued=queue)


class RunHow(Struct, frozen=True, kw_only=True):
    """How ``kei notify run`` runs: its three options, declared once as a group."""

    once: bool = False
    interval: float | None = None
    from_start: bool = False


_RUN: Final = {"once": OnceOpt, "interval": IntervalOpt, "from_start": FromStartOpt}


@notify_app.command("run")
@option_group("how", _RUN, RunHow, {"once": False, "from_start": False})
def run(ctx: typer.Context, *, how: RunHow, as_json: JsonObject = False) -> None:
    """Follow the log, request what the rules match and send what is due, until SIGTERM
    or SIGINT (the sends in flight are finished and recorded first)."""
    from msgspec.structs import replace

    from kei.app.notify.runner import Runner

    stop = threading.Event()
    with answering(ctx) as g, _loud(g.verbose), _stopping(stop):
        settings = g.settings()
        with _service(settings, write=True, stop=stop) as service:
            if how.interval is not None:
                config = service.config
                wait = replace(config.settings, poll_s=how.interval)
                service.config = replace(config, settings=wait)
            if not service.channels:
                from kei.errors import InputError

                raise InputError("no channels configured: nothing could be sent",
                                 hint="see docs/notify.md, Channels")  # fmt: skip
            report = Runner(service, stop).run(once=how.once, from_start=how.from_start)
        if as_json:
            json_line({f: getattr(report, f) for f in report.__struct_fields__})
        stderr().print(f"kei: notify run: {report.requested} requested, {report.sent} sent, "
                       f"{report.errors} errors")  # fmt: skip


@notify_app.command("receive")
def receive(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, number("--port", least=0, most=65535, help="Port (0: any free one).")
    ] = 8787,
    channel: Annotated[
        str | None, typer.Option("--channel", metavar="NAME", help="Only this sms channel.")
    ] = None,
) -> None:
    """Receive Twilio status callbacks at POST /twilio/CHANNEL until SIGTERM or SIGINT:
    each one whose signature checks appends a notify.receipt (once)."""
    from kei.adapters.notify.callbacks import Callback, Recorded, sms_receivers
    from kei.adapters.notify.receiver import CallbackServer
    from kei.errors import InputError

    stop = threading.Event()
    with answering(ctx) as g, _loud(g.verbose), _stopping(stop):
        with _service(g.settings(), write=True) as service:
            receivers = sms_receivers(service.channels, channel)
            if not receivers:
                which = f"channel {channel!r} is not" if channel else "no channel is"
                raise InputError(f"{which} an sms channel with a status_callback URL",
                                 hint="see docs/notify.md, Twilio status callbacks")  # fmt: skip

            def record(c: Callback) -> Recorded:
                return service.record_callback(c.channel, c.sid, c.status, c.code)

            try:
                server = CallbackServer((host, port), receivers, record)
            except OSError as error:
                raise InputError(f"cannot listen on {host}:{port}: {error.strerror}",
                                 hint="pass a free --port") from None  # fmt: skip
            with server:
                serving = threading.Thread(target=server.serve_forever, daemon=True)
                serving.start()
                for name in sorted(receivers):
                    stderr().print(f"kei: notify receive: {server.url}/twilio/{name}")
                while not stop.wait(0.5):
                    pass
                server.shutdown()
                serving.join()
        stderr().print("kei: notify receive: stopped")


# -- helpers -----------------------------------------------------------------------------


def _config(settings: Settings) -> tuple[dict[str, Channel], NotifyConfig]:
    from kei.app.notify.config import config_path, load

    return load(config_path(settings.home), os.environ)


@contextmanager
def _service(
    settings: Settings, *, write: bool = False, stop: threading.Event | None = None
) -> Iterator[NotifyService]:
    from kei.app.notify.service import NotifyService

    found, config = _config(settings)
    try:
        with (
            open_ledger(settings, with_key=write) as ledger,
            NotifyService(ledger, found, config, stop=stop) as svc,  # unsealed: see docs/notify.md
        ):
            yield svc
    finally:
        for c in found.values():
            c.close()


def _summary(s: NotificationState) -> dict[str, Any]:
    r = s.request
    return {
        "id": s.notification_id, "state": s.state, "channel": r.channel,
        "channel_kind": r.channel_kind, "severity": r.severity, "cause": r.cause,
        "rule_id": r.rule_id, "subject": r.subject, "attempts": s.attempts,
        "possible_duplicates": s.possible_duplicates, "receipt": s.receipt,
        "last_class": s.last_class, "last_error": s.last_error, "end_reason": s.end_reason,
        "requested_us": s.requested_us, "not_before_us": s.not_before_us,
    }  # fmt: skip


def _outcome(s: NotificationState, as_json: bool, *, queued: bool = False) -> None:
    """Print what became of a send; exit 1 when it was not delivered (unless queued)."""
    if as_json:
        json_line(_summary(s))
    short = s.notification_id[:12]
    if queued:
        stderr().print(f"kei: notification {short} requested; `kei notify run` sends it")
    elif s.state == "delivered":
        stderr().print(f"kei: notification {short} delivered (receipt {s.receipt or '-'})")
    else:
        why = s.end_reason or s.last_class or s.state
        more = "; `kei notify run` retries it" if s.state == "retrying" else ""
        stderr().print(f"kei: error: notification {short} not delivered: {why}"
                       f"{': ' + s.last_error if s.last_error else ''}{more}")  # fmt: skip
        raise typer.Exit(1)


def _emit(row: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        json_line(row)
    else:
        print(line)


class _Lines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        if record.levelno < logging.WARNING:
            level = "info"
        stderr().print(f"kei: {level}: {' '.join(record.getMessage().split())}")


@contextmanager
def _loud(verbose: bool, names: tuple[str, ...] = _LOGGERS) -> Iterator[None]:
    """The warnings of the loggers ``names`` (the notifier's by default; and with
    --verbose their news) as ``kei:`` lines. ``kei net`` uses it too."""
    handler = _Lines(logging.INFO if verbose else logging.WARNING)
    loggers = [logging.getLogger(n) for n in names]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(min(lg.level or logging.WARNING, handler.level))
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


@contextmanager
def _stopping(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (a clean end) instead of killing the loop."""
    handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
