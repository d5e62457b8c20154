"""What the budget tests share besides their fixtures (``budgets_fixtures.py``): the one
JSON answer of a command, the events of the log or of a stream, every crossing, and a
cost recorded at a chosen time (through the writer ``kei cost record`` uses)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kei.adapters.files.keyfile import load_key
from kei.app.cost_writes import record_cost
from kei.app.ledger.ledger import Ledger
from kei.domain.events import CostRecorded, Origin, TokenUsage

Kei = Callable[..., Any]


def answer(result: Any) -> dict[str, Any]:
    """The one JSON object a ``--json`` command printed."""
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def events(url: str) -> list[Any]:
    with Ledger.open(url) as ledger:
        return list(ledger.read())


def stream(url: str, name: str) -> list[Any]:
    """(version, type, payload as plain data) of each event of one stream."""
    with Ledger.open(url) as ledger:
        return [(e.version, e.type, e.payload_data()) for e in ledger.read_stream(name)]


def crossings(url: str) -> list[tuple[str, int, int]]:
    """(stream, version, threshold) of every crossing in the log, in log order."""
    return [
        (e.stream, e.version, e.payload_data()["threshold_percent"])
        for e in events(url)
        if e.type == "budget.threshold.crossed"
    ]


def record_at(
    url: str,
    home: Path,
    agent: str,
    micro: int,
    at_us: int,
    *,
    session: str | None = None,
    cwd: str | None = None,
    unpriced: bool = False,
) -> None:
    """A cost whose call time is ``at_us`` (an import's ``origin``), recorded by the
    writer ``kei cost record`` uses; no budget check runs (as after ``events import``)."""
    key = load_key(home / "keys" / "default.key")
    with Ledger.open(url, key=key) as ledger:
        record_cost(ledger, CostRecorded(
            agent_id=agent, provider="p", model="m", micro_cents=0 if unpriced else micro,
            usage=TokenUsage(), unpriced=unpriced, session=session, cwd=cwd,
            origin=Origin(source="test", occurred_at_us=at_us, ref=f"{agent}/{at_us}/{micro}"),
        ))  # fmt: skip
