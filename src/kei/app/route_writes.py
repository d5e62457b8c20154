"""Recording a routing decision's outcome from the decision's stream alone.

``route/<decision_id>`` holds the decision, its escalations and at most one outcome;
the outcome is appended at the version read, so two racing outcomes cannot both land
(the loser reads again and is refused). No read model is involved: a hook's
``kei route outcome`` loads the ledger and nothing more (``kei.app.routing`` keeps
the commands that read the ``posteriors`` read model).
"""

from __future__ import annotations

from typing import Final

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.domain.events.payload import OUTCOMES
from kei.domain.events.routing import RouteDecided, RouteEscalated, RouteOutcome, decision_stream
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError

OUTCOME_TYPE: Final = "route.outcome"


def decision_events(ledger: Ledger, decision_id: str) -> tuple[list[RecordedEvent], RouteDecided]:
    """The decision's events and its ``route.decided`` payload (refused when unknown)."""
    events = ledger.read_stream_checked(decision_stream(decision_id))
    if not events:
        raise InputError(
            f"no routing decision {decision_id!r} in the log",
            hint="use the id `kei route select` printed",
        )
    first = events[0].payload()
    assert isinstance(first, RouteDecided)
    return events, first


def record_outcome(ledger: Ledger, decision_id: str, outcome: str, depth: int | None) -> str:
    """Record how the routed work turned out; ``depth`` defaults to the number of
    escalations the decision went through. Returns the event's ``STREAM:VERSION``."""
    return retry_write(
        ledger.retry,
        lambda: _outcome(ledger, decision_id, outcome, depth),
        what=f"decision {decision_id}",
    )


def _outcome(ledger: Ledger, decision_id: str, outcome: str, depth: int | None) -> str:
    if outcome not in OUTCOMES:
        raise InputError(f"unknown outcome {outcome!r}", hint=f"use one of {', '.join(OUTCOMES)}")
    events, decided = decision_events(ledger, decision_id)
    if decided.task_class is None:
        raise InputError(f"decision {decision_id} has no task class (empty DNA): nothing to learn")
    done = [e for e in events if e.type == OUTCOME_TYPE]
    if done:
        raise InputError(f"decision {decision_id} already has an outcome ({event_name(done[0])})")
    model, escalations = current_model(events, decided)
    payload = RouteOutcome(
        decision_id=decision_id, task_class=decided.task_class, model=model,
        outcome=outcome,  # type: ignore[arg-type]  # checked against OUTCOMES above
        escalation_depth=escalations if depth is None else depth, agent_id=decided.agent_id,
    )  # fmt: skip
    stream = decision_stream(decision_id)
    return event_name(ledger.append([NewEvent(stream, payload, len(events))])[-1])


def current_model(events: list[RecordedEvent], decided: RouteDecided) -> tuple[str, int]:
    """The model the decision now stands on, and how many escalations led there."""
    model, depth = decided.model, 0
    for e in events:
        p = e.payload()
        if isinstance(p, RouteEscalated):
            model, depth = p.to_model, p.depth
    return model, depth


def event_name(event: RecordedEvent) -> str:
    return f"{event.stream}:{event.version}"
