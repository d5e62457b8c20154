"""``kei notify``: notifications per second through one notifier, and the delay from a
triggering event's commit to the provider receiving the POST.

The provider is the delivery tests' fake (``tests/notify/delivery/delivery_fakes.py``),
a real HTTP server on 127.0.0.1 answering at once, run in its own process so it does
not share the notifier's interpreter; the channel is the tests' ``PostChannel`` (httpx,
keep-alive, no rate limit).

1. Throughput, SQLite: ``--events`` notifications are requested (not timed), then one
   notifier (``Runner.run(once=True)``: outbox catch-up, checked stream reads, claims in
   batches, one POST and one outcome per notification) sends them all. Also the whole
   path: ``--events`` ``agent.failed`` events, then a rule follower and the notifier
   from the start of the log. Target: >= 500 notifications/s.
2. Delay, SQLite and PostgreSQL: ``kei notify run``'s loop in a child process with one
   rule on ``agent.failed``; a writer appends ``--delays`` failures ``GAP_S`` apart and
   stamps each commit; the provider stamps each POST's arrival. Target: p99 <= 1 s
   (SQLite). The notifier looks at the log every 0.25 s when idle (``poll_s``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import Figure, parse_args, report, scratch_dir, scratch_pg, wait_quiet

FAKES = Path(__file__).resolve().parents[1] / "tests" / "notify" / "delivery"
sys.path.insert(0, str(FAKES))

from delivery_fakes import FakeProvider, PostChannel  # noqa: E402

from kei.app.ledger.ledger import Ledger, NewEvent  # noqa: E402
from kei.app.notify.appends import append_requests  # noqa: E402
from kei.app.notify.config import parse_config  # noqa: E402
from kei.app.notify.runner import Runner  # noqa: E402
from kei.app.notify.service import NotifyService  # noqa: E402
from kei.domain.events import AgentFailed, AgentForked, NotifyRequested  # noqa: E402
from kei.domain.log.keys import SigningKey  # noqa: E402
from kei.domain.notify.ids import notification_id  # noqa: E402

SEED = b"\x0b" * 32
GAP_S = 0.05
RULE = {"id": "failed", "on": "agent.failed", "channel": "chat", "severity": "error",
        "template": {"subject": "{agent_id}", "body": "{reason}"}}  # fmt: skip


def provider_process() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(FAKES / "delivery_fakes.py"), "--serve"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def received(url: str) -> int:
    import httpx

    return int(httpx.get(url.split("/hooks", maxsplit=1)[0] + "/").json()["received"])


def open_ledger(url: str) -> Ledger:
    ledger = Ledger.open(url, key=SigningKey(SEED, name="bench"), create=True)
    if not ledger.is_initialised():
        ledger.init("bench")
    return ledger


def throughput(count: int, *, rules: bool) -> float:
    """Notifications per second through one notifier (``rules``: from events)."""
    proc, url = provider_process()
    try:
        with scratch_dir("notify") as tmp:
            ledger = open_ledger(f"sqlite:///{tmp / 'n.db'}")
            chat = PostChannel("chat", url)
            config = parse_config({"rules": [RULE] if rules else []}, "bench", {"chat": chat})
            _fill(ledger, count, rules=rules)
            service = NotifyService(ledger, {"chat": chat}, config)
            wait_quiet()
            start = time.perf_counter()
            report = Runner(service).run(once=True, from_start=True)
            rate = report.sent / (time.perf_counter() - start)
            if report.sent != count or received(url) != count:
                raise RuntimeError(f"sent {report.sent}, received {received(url)} of {count}")
            service.close()
            chat.close()
            ledger.close()
            return rate
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def _fill(ledger: Ledger, count: int, *, rules: bool) -> None:
    for first in range(0, count, 500):
        n = range(first, min(count, first + 500))
        if rules:
            ledger.append([e for i in n for e in (
                NewEvent(f"agent/a{i}", AgentForked(agent_id=f"a{i}", branch="b"), 0),
                NewEvent(f"agent/a{i}", AgentFailed(agent_id=f"a{i}", reason="boom"), 1))])  # fmt: skip
        else:
            append_requests(ledger, [NotifyRequested(
                notification_id=notification_id("send", f"k{i}"), cause="send", channel="chat",
                channel_kind="slack", severity="info", subject=f"n{i}") for i in n])  # fmt: skip


def delays(url: str, count: int) -> list[float]:
    """Commit -> POST received, in ms, for ``count`` failures appended ``GAP_S`` apart."""
    ledger = open_ledger(url)
    options = {"config": {"rules": [RULE]}, "from_start": True}
    with FakeProvider() as provider:
        child = subprocess.Popen(
            [sys.executable, str(FAKES / "delivery_fakes.py"), url, SEED.hex(), provider.url,
             json.dumps(options)], stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        committed: dict[str, float] = {}
        try:
            time.sleep(1.0)  # the child's first turn (its projections made) before timing
            for i in range(count):
                agent = f"d{i}"
                ledger.append([NewEvent(f"agent/{agent}", AgentForked(agent_id=agent, branch="b"), 0),
                               NewEvent(f"agent/{agent}", AgentFailed(agent_id=agent, reason="x"), 1)])  # fmt: skip
                committed[agent] = time.time()
                time.sleep(GAP_S)
            deadline = time.monotonic() + 30
            while provider.count < count and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            child.terminate()
            child.wait(30)
        arrived = dict(zip(provider.subjects(), provider.arrived, strict=True))
    ledger.close()
    if len(arrived) < count:
        raise RuntimeError(f"only {len(arrived)} of {count} notifications arrived")
    return [1000 * (arrived[a] - t) for a, t in committed.items()]


def delay_figures(store: str, ms: list[float], target: float | None) -> list[Figure]:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    note = f"{len(ordered)} events {GAP_S * 1000:.0f} ms apart, max {ordered[-1]:.0f} ms"
    return [
        Figure(
            "notify",
            f"commit -> POST p50, {store}",
            statistics.median(ordered),
            unit="ms",
            higher=False,
        ),
        Figure(
            "notify",
            f"commit -> POST p99, {store}",
            p99,
            target=target,
            unit="ms",
            higher=False,
            note=note,
        ),
    ]


def main() -> None:
    args = parse_args(__doc__ or "", default_events=3000, delays={"type": int, "default": 200})
    rates = [throughput(args.events, rules=False) for _ in range(args.reps)]
    whole = [throughput(args.events, rules=True) for _ in range(args.reps)]
    figures = [
        Figure(
            "notify",
            "notifier, queued -> delivered, SQLite",
            statistics.median(rates),
            target=500,
            unit="notifications/s",
            note=f"{args.events} per run, median of {args.reps}",
        ),
        Figure(
            "notify",
            "rules + notifier, event -> delivered, SQLite",
            statistics.median(whole),
            unit="notifications/s",
        ),
    ]
    with scratch_dir("notify-delay") as tmp:
        wait_quiet()
        figures += delay_figures("SQLite", delays(f"sqlite:///{tmp / 'd.db'}", args.delays), 1000)
    with scratch_pg() as url:
        wait_quiet()
        figures += delay_figures("PostgreSQL", delays(url, args.delays), None)
    print(f"kei notify: {args.events} notifications per throughput run, {args.delays} delays")
    report(figures, args.json)


if __name__ == "__main__":
    main()
