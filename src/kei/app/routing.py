"""The router's commands over one ledger: select, outcome, escalate, explain, calibrate.

``select`` catches the ``posteriors`` read model up, reads its counts in plain SQL
(``route_evidence.TableEvidence``), prices the ladder from the catalog, lets
``kei.domain.routing.select.select`` decide, and appends the decision with all its evidence
on ``route/<decision_id>`` (``--dry-run`` appends nothing). Model names the user
gives (a pin, a ladder) are resolved through the catalog first, so an alias and its
model are one model in every event and count. Later events of a decision go on its
stream at the version read, so two racing outcomes cannot both land unseen.
``explain`` folds every outcome before the decision's position and decides again
from the recorded input: the log alone re-derives the decision, seed included.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from msgspec import Struct
from msgspec.structs import replace

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.app.readmodels import ReadModels, ReadModelService
from kei.app.route_evidence import FoldedEvidence, TableEvidence
from kei.app.route_writes import OUTCOME_TYPE, current_model, decision_events, record_outcome
from kei.domain.agents.dna import parse_dna
from kei.domain.catalog.catalog import Catalog
from kei.domain.events import Payload
from kei.domain.events.routing import (
    WEIGHTS_STREAM,
    RouteDecided,
    RouteEscalated,
    RouteOutcome,
    WeightsCalibrated,
    decision_stream,
)
from kei.domain.log.recorded import RecordedEvent
from kei.domain.routing.calibrate import Calibration, Observation, calibrate
from kei.domain.routing.escalation import Retry, next_after_failure
from kei.domain.routing.records import (
    decided_event,
    differences,
    input_of,
    recorded_price,
    weights_event,
    weights_value,
)
from kei.domain.routing.select import Decision, DecisionInput, select
from kei.errors import InputError
from kei.projections.posteriors import Posteriors, is_success

T = TypeVar("T")


class Routed(Struct, frozen=True):
    """A decision, its event, and its name in the log (None for a dry run)."""

    decision: Decision
    event: RouteDecided
    name: str | None


class Explanation(Struct, frozen=True):
    """A recorded decision beside the one the log re-derives."""

    recorded: RouteDecided
    position: int
    outcomes_before: int
    rederived: Decision
    differences: list[str]


SHOWN_DELTA = 0.10  # the lower bound `posterior show` prints, as select's default


class PosteriorRow(Struct, frozen=True):
    model: str
    task_class: str
    successes: int
    failures: int

    def to_dict(self) -> dict[str, Any]:
        """The object ``kei posterior show --json`` prints (and ``GET /v1/posteriors``)."""
        from kei.domain.routing.posterior import Beta

        b = Beta.from_counts(self.successes, self.failures)
        return {"task_class": self.task_class, "model": self.model, "alpha": b.alpha,
                "beta": b.beta, "n": b.n, "mean": b.mean,
                "lower_bound": b.lower_bound(SHOWN_DELTA)}  # fmt: skip


class RouteService(ReadModelService):
    """The routing commands over one ledger and its ``posteriors`` read model."""

    def __init__(self, ledger: Ledger, catalog: Catalog, *, seal_key: bytes | None = None) -> None:
        self.catalog, self._seal_key = catalog, seal_key
        super().__init__(ReadModels(ledger, Posteriors(), name="posteriors", seal_key=seal_key))

    # -- deciding ------------------------------------------------------------------

    def select(
        self,
        inp: DecisionInput,
        *,
        dry_run: bool = False,
        agent_id: str | None = None,
        budget: str | None = None,
    ) -> Routed:
        """Decide for ``inp`` (its models resolved through the catalog) and append the
        decision unless ``dry_run``. ``budget`` names a budget scope whose remaining
        amount this period (``app/budgets/status.remaining``) becomes the input's
        ``budget_micro_cents``, recorded with the scope."""
        if inp.dna:
            parse_dna(inp.dna)  # a malformed DNA is refused, naming the bad segment
        if budget is not None:
            if inp.budget_micro_cents is not None:
                raise InputError("give a budget scope or a budget amount, not both")
            from kei.app.budgets.status import remaining
            from kei.domain.budgets.scopes import parse_scope

            left = remaining(self.ledger, budget, seal_key=self._seal_key)
            inp, budget = replace(inp, budget_micro_cents=left), str(parse_scope(budget))
        inp = self.resolved(inp)
        self.models.catch_up()
        weights_ref, weights = self.current_weights()
        if weights is not None:
            inp = replace(inp, weights=weights_value(weights.weights))
        decision = select(inp, TableEvidence(self.ledger.store), self._price)
        decision_id = secrets.token_hex(8)
        prompt_sha = hashlib.sha256(inp.prompt.encode()).hexdigest() if inp.prompt else None
        event = decided_event(decision_id, inp, decision, weights_ref=weights_ref,
                              prompt_sha256=prompt_sha, agent_id=agent_id,
                              budget_scope=budget)  # fmt: skip
        if dry_run:
            return Routed(decision, event, None)
        recorded = self._append(decision_stream(decision_id), 0, [event])
        return Routed(decision, event, _name(recorded[-1]))

    def resolved(self, inp: DecisionInput) -> DecisionInput:
        """``inp`` with catalog ids for every model; a ladder or fallback it leaves out is
        the catalog's ``[router]`` one (kei's default where the catalog names none)."""
        pinned = None if inp.pinned is None else self._model_id(inp.pinned)
        router = self.catalog.router
        ladder = inp.ladder if inp.ladder is not None else router.ladder or None
        fallback = inp.fallback if inp.fallback is not None else router.fallback or None
        resolved = replace(inp, ladder=ladder, fallback=fallback)
        return replace(resolved, pinned=pinned, ladder=tuple(map(self._model_id, resolved.rungs)),
                       fallback=self._model_id(resolved.last_resort))  # fmt: skip

    def _model_id(self, name: str) -> str:
        return self.catalog.get(name).id  # an alias resolves; an unknown name is refused

    def _price(self, model: str, tokens_in: int, tokens_out: int) -> int:
        return self.catalog.price(model, tokens_in, tokens_out).micro_cents

    def current_weights(self) -> tuple[str | None, WeightsCalibrated | None]:
        """The latest applied calibration and its name, or (None, None): the defaults."""
        found = self.ledger.store.read_stream(WEIGHTS_STREAM)
        if not found:
            return None, None
        last = RecordedEvent.from_record(found[-1])
        payload = last.payload()
        assert isinstance(payload, WeightsCalibrated)
        return _name(last), payload

    # -- after a decision ------------------------------------------------------------

    def decision(self, decision_id: str) -> tuple[list[RecordedEvent], RouteDecided]:
        return decision_events(self.ledger, decision_id)

    def outcome(self, decision_id: str, outcome: str, depth: int | None = None) -> str:
        """Record how the routed work turned out (``route_writes``, from the stream)."""
        return record_outcome(self.ledger, decision_id, outcome, depth)

    def escalate(self, decision_id: str) -> RouteEscalated | None:
        """One step up the ladder after a failure; None when the ladder says surrender."""
        return self._retried(lambda: self._escalate(decision_id), f"decision {decision_id}")

    def _escalate(self, decision_id: str) -> RouteEscalated | None:
        events, decided = self.decision(decision_id)
        if any(e.type == OUTCOME_TYPE for e in events):
            raise InputError(
                f"decision {decision_id} already has an outcome: escalate before recording it"
            )
        model, depth = current_model(events, decided)
        step = next_after_failure(decided.ladder, model, depth, True)
        if not isinstance(step, Retry):
            return None
        payload = RouteEscalated(decision_id=decision_id, from_model=model,
                                 to_model=step.model, depth=step.depth)  # fmt: skip
        self._append(decision_stream(decision_id), len(events), [payload])
        return payload

    def explain(self, decision_id: str, prompt: str = "") -> Explanation:
        """Decide again from the log as it stood before the decision."""
        events, decided = self.decision(decision_id)
        position = events[0].position
        before = [o for o in self._outcomes() if o[0] < position]
        evidence = FoldedEvidence(o for _, o in before)
        again = select(input_of(decided, prompt), evidence, recorded_price(decided))
        return Explanation(decided, position, len(before), again, differences(decided, again))

    def _outcomes(self) -> list[tuple[int, RouteOutcome]]:
        found = []
        for record in self.ledger.store.read_types([OUTCOME_TYPE]):
            event = RecordedEvent.from_record(record)
            payload = event.payload()
            assert isinstance(payload, RouteOutcome)
            found.append((event.position, payload))
        return found

    # -- calibration and posteriors ------------------------------------------------------

    def calibrate(self, *, apply: bool = False) -> tuple[Calibration, str | None]:
        """Upstream's leave-one-out grid search over every outcome; ``apply`` records
        the weights as an event later decisions use."""
        rows = [Observation(o.task_class, o.model, is_success(o)) for _, o in self._outcomes()]
        result = calibrate(rows)
        if not apply:
            return result, None
        if math.isnan(result.mse):  # too few outcomes to calibrate
            raise InputError(
                f"{len(rows)} outcome(s) recorded; calibration needs at least 5",
                hint="record outcomes with `kei route outcome` first",
            )
        payload = WeightsCalibrated(
            weights=weights_event(result.weights), mse=result.mse,
            baseline_mse=result.baseline_mse, observations=len(rows), evaluated=result.evaluated,
        )  # fmt: skip

        def write() -> str:
            version = self.ledger.store.stream_version(WEIGHTS_STREAM)
            return _name(self._append(WEIGHTS_STREAM, version, [payload])[-1])

        return result, self._retried(write, "the routing weights")

    def posteriors(self, task_class: str | None = None) -> list[PosteriorRow]:
        """Every (model, task class) count, or one class's."""
        from kei.projections import names

        self.models.catch_up()
        sql = f"SELECT model, task_class, successes, failures FROM {names.POSTERIORS_TABLE}"
        params: list[str] = []
        if task_class is not None:
            sql, params = sql + " WHERE task_class = ?", [task_class]
        rows = self.ledger.store.select(sql + " ORDER BY task_class, model", params)
        return [PosteriorRow(m, tc, int(s), int(f)) for m, tc, s, f in rows]

    # -- appending -------------------------------------------------------------------

    def _append(
        self, stream: str, version: int, payloads: Sequence[Payload]
    ) -> list[RecordedEvent]:
        """Append at ``version``; a lost race raises ConcurrencyError, which the
        public command retries whole (``_retried``), reading and deciding again."""
        return self.ledger.append(
            [NewEvent(stream, p, version + i) for i, p in enumerate(payloads)]
        )

    def _retried(self, write: Callable[[], T], what: str) -> T:
        return retry_write(self.ledger.retry, write, what=what)


def _name(event: RecordedEvent) -> str:
    return f"{event.stream}:{event.version}"
