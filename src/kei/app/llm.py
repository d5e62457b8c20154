"""One LLM call through kei: route it, make it, and record it in the ledger.

Steps of :meth:`LlmService.chat`:

1. Discover what each viable backend serves and route the model
   (``kei.adapters.llm.router.decide``, with the catalog's fallback walk).
2. Call the chosen backend, streaming text to the caller's ``on_chunk``.
3. Append ``llm.route.decided`` and ``llm.call.completed`` on ``llm/<call_id>`` in one
   batch. The completed event carries the usage, durations and the price: the matched
   catalog model's rates when the catalog knows it (local models are usually 0), else
   ``micro_cents`` None. A count the backend left unknown is priced only when its rate
   is 0, so an unknown is never priced as zero tokens of a paid model.
4. For a call made for an agent, also append a ``cost.recorded`` on the agent's stream
   (``CostService``), so cost reports include it; an unpriced call (a model the catalog
   does not price, or an unknown count) records an *unpriced* cost (``unpriced`` true,
   ``micro_cents`` 0) and says so in a note.

A call that fails (no route, refused, timed out, cut mid-stream, interrupted, the
caller's ``on_chunk`` raising) is still recorded: ``llm.call.completed`` with ``ok``
false and the one-line error (backend ``<none>`` when nothing could be routed); then
the error is raised again. The agent is
checked before the backend is called, so an unknown agent costs no model call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping

from msgspec import Struct, field
from msgspec.structs import replace

from kei.adapters.llm.protocol import Completion, LlmBackend, Message, OnChunk, one_line
from kei.adapters.llm.router import (
    Capacity,
    Inventory,
    RouteDecision,
    decide,
    discover,
)
from kei.app.agent_writes import agent_stream
from kei.app.cost_writes import no_speed_note
from kei.app.costs import CostService
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.catalog.catalog import Catalog, Model
from kei.domain.catalog.pricing import FAST, recorded_speed
from kei.domain.events import CostRecorded, TokenUsage
from kei.domain.events.llm import BackendRouteDecided, LlmCallCompleted, call_stream
from kei.errors import InputError, KeiError

__all__ = ["CallRequest", "CallResult", "LlmService", "inventories_of", "price_call"]

log = logging.getLogger(__name__)
NO_BACKEND = "<none>"


class CallRequest(Struct, frozen=True):
    model: str
    messages: tuple[Message, ...]
    require_local: bool = False
    role: str | None = None
    budget_micro: int | None = None
    agent_id: str | None = None
    speed: str | None = None  # priced at this speed (``cost.recorded``'s), None: standard


class CallResult(Struct, frozen=True):
    call_id: str
    decision: RouteDecision
    completion: Completion
    micro_cents: int | None
    events: tuple[str, ...]  # STREAM:VERSION of the llm events appended
    cost_event: str | None = None
    notes: tuple[str, ...] = field(default=())
    speed: str | None = None
    speed_unpriced: bool = False


def price_call(
    catalog: Catalog, entry: Model | None, usage: TokenUsage, speed: str | None = None
) -> int | None:
    """The call's price from the catalog, tier by tier (``Catalog.quote``, at ``speed``),
    or None when it cannot be known (module rules): a count the backend left unknown is
    priced only when every rate it would be priced at is 0, and usage whose parts do
    not add up (more cached tokens than input) is not priced."""
    if entry is None or entry.pricing.unit != "token":
        return None
    r = entry.pricing.rates(usage.input_tokens or 0)
    tin, tout = usage.input_tokens, usage.output_tokens
    if tin is None and not (r.input or r.cache_write_5m or r.cache_write_1h or r.cache_read):
        tin = (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
    if tout is None and not (r.output or r.reasoning):
        tout = usage.reasoning_tokens or 0
    if tin is None or tout is None:
        return None
    try:
        known = replace(usage, input_tokens=tin, output_tokens=tout)
        return catalog.quote(entry.id, known, speed).micro_cents
    except InputError:
        return None


def _speed_unpriced(entry: Model, speed: str) -> bool:
    """Whether ``Catalog.quote`` priced a call at ``speed`` (not the standard one) at the
    standard rates: the entry has no token rates for that speed."""
    p = entry.pricing
    return not (speed == FAST and p.fast is not None and p.unit == "token")


def inventories_of(backends: Mapping[str, LlmBackend], capacity: Capacity) -> list[Inventory]:
    """What each viable backend serves, in the capacity's order."""
    kinds = [k for k in capacity.backends if k in backends]
    return discover((k, backends[k].list_models) for k in kinds)


class LlmService:
    """Calls through the viable local backends, recorded on ``ledger``.

    ``backends`` maps a kind to its client; a call's cost goes through ``CostService``
    on the same ledger.
    """

    def __init__(
        self,
        ledger: Ledger,
        catalog: Catalog,
        backends: Mapping[str, LlmBackend],
        capacity: Capacity,
        *,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        seal_key: bytes | None = None,
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.backends = dict(backends)
        self.capacity = capacity
        self._new_id = new_id
        self._seal_key = seal_key

    def inventories(self) -> list[Inventory]:
        return inventories_of(self.backends, self.capacity)

    def route(self, request: CallRequest) -> RouteDecision:
        return decide(
            request.model,
            self.inventories(),
            self.capacity,
            require_local=request.require_local,
            catalog=self.catalog,
            role=request.role,
            budget_micro=request.budget_micro,
        )

    def chat(self, request: CallRequest, on_chunk: OnChunk | None = None) -> CallResult:
        """Route, call, record (see the module rules); a failure is recorded, then raised."""
        if request.agent_id is not None:
            self._check_agent(request.agent_id)
        call_id = self._new_id()
        try:
            decision = self.route(request)
        except KeiError as exc:
            self._record(call_id, None, _failed(call_id, NO_BACKEND, request, str(exc)))
            raise
        backend = self.backends[decision.backend]
        try:
            completion = backend.chat(decision.model, request.messages, on_chunk=on_chunk)
        except (Exception, KeyboardInterrupt) as exc:
            failed = _failed(call_id, decision.backend, request, _error_of(exc), decision.model)
            self._record(call_id, decision, failed)
            raise
        speed = recorded_speed(request.speed)
        micro = price_call(self.catalog, decision.catalog_model, completion.usage, speed)
        entry = decision.catalog_model if micro is not None else None
        odd = entry is not None and speed is not None and _speed_unpriced(entry, speed)
        done = LlmCallCompleted(
            call_id=call_id, backend=decision.backend, model=decision.model, ok=True,
            usage=completion.usage, total_us=completion.total_us, load_us=completion.load_us,
            prompt_us=completion.prompt_us, generation_us=completion.generation_us,
            finish_reason=completion.finish_reason, agent_id=request.agent_id,
            micro_cents=micro, price_entry_id=entry.id if entry else None,
            price_entry_hash=entry.price_digest if entry else None, speed=speed,
            speed_unpriced=odd,
        )  # fmt: skip
        events = self._record(call_id, decision, done)
        cost, notes = self._cost(request.agent_id, done, entry)
        return CallResult(call_id, decision, completion, micro, events, cost, notes, speed, odd)

    # -- recording -------------------------------------------------------------------

    def _record(
        self, call_id: str, decision: RouteDecision | None, done: LlmCallCompleted
    ) -> tuple[str, ...]:
        stream = call_stream(call_id)
        payloads: list[BackendRouteDecided | LlmCallCompleted] = []
        if decision is not None:
            payloads.append(_decided(call_id, decision))
        payloads.append(done)
        batch = [NewEvent(stream, p, 0 if i == 0 else None) for i, p in enumerate(payloads)]
        recorded = self.ledger.append(batch)
        return tuple(f"{e.stream}:{e.version}" for e in recorded)

    def _cost(
        self, agent_id: str | None, done: LlmCallCompleted, entry: Model | None
    ) -> tuple[str | None, tuple[str, ...]]:
        if agent_id is None:
            return None, ()
        notes: tuple[str, ...] = ()
        if done.micro_cents is None or entry is None:
            why = ("a token count is unknown" if entry is not None else
                   f"the catalog has no token price for {done.model!r}")  # fmt: skip
            notes = (f"cost for agent {agent_id} recorded as unpriced: {why}; add a price "
                     "with a [[models]] entry in $KEI_HOME/models.toml",)  # fmt: skip
            log.info("%s", notes[0])
        elif done.speed_unpriced:
            notes = (no_speed_note(entry.id, done.speed),)
        request = CostRecorded(
            agent_id=agent_id, provider=entry.provider if entry else "local",
            model=entry.id if entry else done.model, micro_cents=done.micro_cents or 0,
            usage=done.usage, price_entry_id=done.price_entry_id,
            price_entry_hash=done.price_entry_hash, unpriced=done.micro_cents is None,
            speed=done.speed, speed_unpriced=done.speed_unpriced,
        )  # fmt: skip
        with CostService(self.ledger, seal_key=self._seal_key) as costs:
            return costs.record(request), notes

    def _check_agent(self, agent_id: str) -> None:
        if self.ledger.store.stream_version(agent_stream(agent_id)) == 0:
            raise InputError(f"no agent with id {agent_id}", hint="see `kei agent list`")


def _error_of(exc: BaseException) -> str:
    """The one line a failed call records."""
    if isinstance(exc, KeiError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted before the answer ended"
    return one_line(f"{type(exc).__name__}: {exc}")


def _decided(call_id: str, d: RouteDecision) -> BackendRouteDecided:
    return BackendRouteDecided(
        call_id=call_id, requested_model=d.requested_model, backend=d.backend, model=d.model,
        exact=d.exact, tried=d.tried, rationale=d.rationale, require_local=d.require_local,
        capability=d.capability,
    )  # fmt: skip


def _failed(
    call_id: str, backend: str, request: CallRequest, error: str, model: str | None = None
) -> LlmCallCompleted:
    return LlmCallCompleted(call_id=call_id, backend=backend, model=model or request.model,
                            ok=False, error=error, agent_id=request.agent_id)  # fmt: skip
