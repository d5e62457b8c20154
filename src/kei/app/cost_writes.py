"""Recording a cost, and the agent's running total, from the agent's stream alone.

``record`` works as the agent commands do (``kei.app.agent_writes``): read the version
of ``agent/<id>``, fold that stream into the domain's ``LedgerState``, ask
``decide_cost`` and append at the version read, so a racing writer makes it decide
again. :func:`stream_total` sums the agent's current cost events in the same stream
with the costs read model's rule (an amendment replaces its target once; a second
amendment of one target counts nothing), so ``kei cost record`` answers with the
total without catching a read model up or loading SQLAlchemy.

Pricing (:func:`price_request`): an explicit amount is stored as given, with no price
entry; tokens without an amount are priced from the catalog tier by tier
(``Catalog.quote``: input, cache writes and reads, output, reasoning, long context),
and the event names the entry that produced the amount (model id and
``Model.price_digest``, which covers every tier's rate). A model the catalog does not
know is recorded as *unpriced* (``unpriced`` true, ``micro_cents`` 0), with a one-line
note saying how to add its price; it is not refused. A call made at a speed other
than the standard one (``speed``, Anthropic's fast mode) is priced at the entry's rates
for that speed; where the entry has none it is priced at the standard rates and marked
``speed_unpriced``, with a note: recorded, never silently under-priced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from msgspec import Struct

from kei.app.agent_writes import agent_state, agent_stream
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.domain.agents.rules import LedgerState, apply, decide_cost
from kei.domain.catalog.catalog import Catalog, Quote
from kei.domain.catalog.pricing import recorded_speed
from kei.domain.events import CostAmended, CostRecorded, Origin, TokenUsage
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError
from kei.limits import LIMITS

COST_TYPES = frozenset({"cost.recorded", "cost.amended"})


class Charge(Struct, frozen=True):
    """An amount and the catalog entry that priced it (both None when given by hand);
    ``unpriced`` when the catalog had no price, ``speed_unpriced`` when it had none for
    the call's ``speed`` (standard rates then), with the ``note`` to show."""

    micro_cents: int
    entry_id: str | None = None
    entry_hash: str | None = None
    unpriced: bool = False
    note: str | None = None
    quote: Quote | None = None
    speed: str | None = None
    speed_unpriced: bool = False

    def fields(self) -> dict[str, Any]:
        """The cost event fields this charge fills."""
        return {"micro_cents": self.micro_cents, "price_entry_id": self.entry_id,
                "price_entry_hash": self.entry_hash, "unpriced": self.unpriced,
                "speed": self.speed, "speed_unpriced": self.speed_unpriced}  # fmt: skip


def price_request(
    catalog: Catalog,
    provider: str,
    model: str,
    usage: TokenUsage,
    micro: int | None,
    speed: str | None = None,
) -> Charge:
    """The amount to store: ``micro`` as given, else the catalog's price of ``usage``
    made at ``speed``, else (a model the catalog does not know) an unpriced charge."""
    speed = recorded_speed(speed)
    if micro is not None:
        return Charge(micro, speed=speed)
    if usage.input_tokens is None or usage.output_tokens is None:
        raise InputError(
            "no amount: give --micro-cents (or --cents), or both --tokens-in and --tokens-out "
            "to price the call from the catalog"
        )
    entry = catalog.find(model)
    if entry is None:
        return Charge(0, unpriced=True, note=no_price_note(model), speed=speed)
    if entry.provider != provider:
        raise InputError(
            f"model {model!r} is a {entry.provider} model in the catalog, not {provider}",
            hint="fix --provider, or give the amount with --micro-cents",
        )
    quote = catalog.quote(model, usage, speed)
    note = no_speed_note(entry.id, speed) if quote.speed_unpriced else None
    return Charge(quote.micro_cents, entry.id, entry.price_digest, note=note, quote=quote,
                  speed=speed, speed_unpriced=quote.speed_unpriced)  # fmt: skip


def no_speed_note(model: str, speed: str | None) -> str:
    """The one line said when a call's speed has no rates in its price entry."""
    return (f"no {speed} price for {model!r}; recorded at standard rates and marked "
            f"speed_unpriced. Add a [models.pricing.{speed}] table in $KEI_HOME/models.toml "
            "(docs/cli.md), or give the amount with --micro-cents")  # fmt: skip


def no_price_note(model: str) -> str:
    """The one line said when a cost is recorded unpriced."""
    return (f"no price for {model!r}; recorded as unpriced. Add it with a [[models]] entry "
            "in $KEI_HOME/models.toml (see `kei models list` and docs/cli.md), or give "
            "the amount with --micro-cents")  # fmt: skip


def record_cost(ledger: Ledger, request: CostRecorded) -> RecordedEvent:
    """Append ``request`` for a known agent (``decide_cost``); returns the event."""
    return retry_write(
        ledger.retry, lambda: _record_once(ledger, request), what=f"agent {request.agent_id}"
    )


def _record_once(ledger: Ledger, request: CostRecorded) -> RecordedEvent:
    stream = agent_stream(request.agent_id)
    version = ledger.store.stream_version(stream)  # read first: a later event conflicts
    decision = decide_cost(agent_state(ledger, request.agent_id), request)
    batch = [NewEvent(stream, p, version + i) for i, p in enumerate(decision.payloads)]
    return ledger.append(batch)[-1]  # ConcurrencyError: another writer came first


def record_costs(ledger: Ledger, agent_id: str, requests: Sequence[CostRecorded]) -> int:
    """Append ``requests`` for one known agent, as ``record_cost`` does, in as few batches
    as the batch limit allows; a request whose ``origin.ref`` the agent's stream already
    holds (a re-run import, or another that came first) is left out. Returns the events
    appended; a lost race reads the stream again and appends only what is still missing."""
    return record_costs_of(ledger, {agent_id: requests})


def record_costs_of(ledger: Ledger, by_agent: Mapping[str, Sequence[CostRecorded]]) -> int:
    """``record_costs`` for several agents at once: each agent's stream read and decided
    alone, their events appended together in as few batches (transactions) as the batch
    limit allows, each at the version its stream was read at. A bulk importer pays one
    commit for many agents instead of one each; a lost race reads them all again."""
    what = f"agent {next(iter(by_agent))}" if len(by_agent) == 1 else f"{len(by_agent)} agents"
    return retry_write(ledger.retry, lambda: _record_many(ledger, by_agent), what=what)


def _record_many(ledger: Ledger, by_agent: Mapping[str, Sequence[CostRecorded]]) -> int:
    batch = [e for agent, requests in by_agent.items() for e in _new_costs(ledger, agent, requests)]
    step = LIMITS.max_batch_events
    for start in range(0, len(batch), step):
        ledger.append(batch[start : start + step])
    return len(batch)


def _new_costs(ledger: Ledger, agent_id: str, requests: Sequence[CostRecorded]) -> list[NewEvent]:
    """The events ``requests`` add to the agent's stream as it is now (checked)."""
    stream = agent_stream(agent_id)
    events = ledger.read_stream_checked(stream)
    state = LedgerState()
    for event in events:
        apply(state, event)
    held = {ref for event in events if (ref := origin_ref(event)) is not None}
    payloads = [
        p
        for r in requests
        if r.origin is None or r.origin.ref not in held
        for p in decide_cost(state, r).payloads
    ]
    version = events[-1].version if events else 0
    return [NewEvent(stream, p, version + i) for i, p in enumerate(payloads)]


def origin_ref(event: RecordedEvent) -> str | None:
    """The ``origin.ref`` of a cost event (the upstream row an import carried over)."""
    if event.type not in COST_TYPES:
        return None
    origin = getattr(event.payload(), "origin", None)
    return origin.ref if isinstance(origin, Origin) else None


def stream_total(ledger: Ledger, agent_id: str) -> int:
    """The agent's current cost in micro-cents, from its stream."""
    return current_total(ledger.read_stream_checked(agent_stream(agent_id)), agent_id)


def current_total(events: Iterable[RecordedEvent], agent_id: str) -> int:
    """The sum of the current cost events of ``agent_id`` among ``events`` (log order):
    an amendment replaces a current target, any other amendment counts nothing."""
    current: dict[tuple[str, int], tuple[str, int]] = {}  # (stream, version) -> (agent, µ¢)
    for event in events:
        if event.type not in COST_TYPES:
            continue
        p = event.payload()
        if not isinstance(p, CostRecorded | CostAmended):
            continue
        if isinstance(p, CostAmended):
            key = (p.supersedes_stream, p.supersedes_version)
            if key not in current:
                continue  # unknown or already replaced: ignored, as the read model does
            del current[key]
        current[(event.stream, event.version)] = (p.agent_id, p.micro_cents)
    return sum(micro for who, micro in current.values() if who == agent_id)
