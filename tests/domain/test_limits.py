"""The field limits writers enforce (``kei.domain.events.limits``), and what they promise:

- every field of every registered payload (and nested struct) has a rule;
- a payload the limits accept encodes, decodes back equal, and folds in every
  projection on both stores;
- an integer outside its range, a control character in an identifier, a blank
  required value, an over-long string is refused by ``Ledger.append`` with a one-line
  InputError naming the type and the field, and nothing is appended;
- events signed before the limits existed still decode (the payload types carry no
  constraints).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import (
    REGISTRY,
    AgentCompleted,
    AgentForked,
    CostRecorded,
    MemoryWritten,
    Origin,
    OutcomeRecorded,
    Payload,
    SkillInvoked,
    TokenUsage,
    decode_payload,
    encode_payload,
    event_type_of,
    fields,
    limits,
)
from kei.errors import InputError
from kei.projections.registry import default_projections

ID_OK = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: not s.isspace())
COUNT = st.integers(0, fields.INT64_MAX)
MONEY = st.integers(-fields.MONEY_MAX, fields.MONEY_MAX)


def _nested_structs() -> list[type[msgspec.Struct]]:
    from kei.domain.events.payload import Origin, TokenUsage
    from kei.domain.events.routing import RouteCandidate, Weights

    return [Origin, TokenUsage, RouteCandidate, Weights]


def test_every_field_of_every_payload_has_a_rule() -> None:
    for struct in [t.payload_type for t in REGISTRY.values()] + _nested_structs():
        for f in msgspec.structs.fields(struct):
            assert fields.rule_for(struct, f.name).describe()


def test_the_payload_types_carry_no_constraints() -> None:
    """Old events decode: a value the limits refuse still decodes from the log."""
    huge = CostRecorded(
        agent_id="a\x1b", provider=" ", model="m", micro_cents=2**63 + 5,
        usage=TokenUsage(input_tokens=2**64 - 1),
    )  # fmt: skip
    assert decode_payload("cost.recorded", encode_payload(huge)) == huge


def test_accepted_values_encode_the_same_bytes() -> None:
    p = CostRecorded(agent_id="a", provider="p", model="m", micro_cents=5)
    before = encode_payload(p)
    limits.check_payload(p)
    assert encode_payload(p) == before


REFUSED: list[tuple[Payload, str]] = [
    (CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1,
                  usage=TokenUsage(input_tokens=2**63)), "usage.input_tokens"),
    (CostRecorded(agent_id="a", provider="p", model="m", micro_cents=10**15 + 1), "micro_cents"),
    (SkillInvoked(skill_name="s", success=True, duration_ms=2**63), "duration_ms"),
    (SkillInvoked(skill_name="s", success=True, duration_ms=-1), "duration_ms"),
    (OutcomeRecorded(agent_id="a", outcome="fail", stub_count=2**63), "stub_count"),
    (OutcomeRecorded(agent_id="a", outcome="bogus"), "outcome"),  # type: ignore[arg-type]
    (AgentForked(agent_id="", branch="b"), "agent_id"),
    (AgentForked(agent_id="   ", branch="b"), "agent_id"),
    (AgentForked(agent_id="a", branch="\t"), "branch"),
    (AgentForked(agent_id="a\nb", branch="b"), "agent_id"),
    (AgentForked(agent_id="a\x1b[2J", branch="b"), "agent_id"),
    (AgentForked(agent_id="a\x85", branch="b"), "agent_id"),
    (AgentForked(agent_id="a\u2028", branch="b"), "agent_id"),
    (AgentForked(agent_id="x" * 257, branch="b"), "agent_id"),
    (AgentForked(agent_id="a", branch="b", worktree="/w\n"), "worktree"),
    (AgentForked(agent_id="a", branch="b", origin=Origin(source="s", occurred_at_us=-1)),
     "origin.occurred_at_us"),
    (AgentForked(agent_id="a", branch="b", origin=Origin(source="s\x07")), "origin.source"),
    (AgentCompleted(agent_id="a", summary=" \n "), "summary"),
    (AgentCompleted(agent_id="a", summary="x\x00"), "summary"),
    (AgentCompleted(agent_id="a", summary=5), "summary"),  # type: ignore[arg-type]
    (MemoryWritten(namespace="n", key="k", value="v", tags=("ok", "")), "tags[1]"),
    (MemoryWritten(namespace="n", key="k", value="v", kind="a\x1bb"), "kind"),
    (MemoryWritten(namespace="n\r", key="k", value="v"), "namespace"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "field"), REFUSED, ids=[f for _, f in REFUSED])
def test_refused_values_name_the_type_and_field(payload: Payload, field: str) -> None:
    problem = limits.payload_problem(payload)
    assert problem is not None
    assert problem.startswith(event_type_of(payload).name + ": field " + field), problem
    assert "\n" not in problem


@pytest.mark.parametrize(("payload", "field"), REFUSED[:8], ids=[f for _, f in REFUSED[:8]])
def test_append_refuses_and_appends_nothing(ledger: Ledger, payload: Payload, field: str) -> None:
    before = ledger.store.count()
    batch = [NewEvent("ok", AgentForked(agent_id="ok", branch="b")), NewEvent("s", payload)]
    with pytest.raises(InputError, match=f"event 2 of 2: .*field {field}") as caught:
        ledger.append(batch)
    assert caught.value.hint is not None and "nothing was appended" in caught.value.hint
    assert ledger.store.count() == before


@pytest.mark.parametrize("stream", ["", " ", "s\n", "x" * 1025])
def test_bad_streams_are_refused(ledger: Ledger, stream: str) -> None:
    before = ledger.store.count()
    with pytest.raises(InputError):
        ledger.append([NewEvent(stream, AgentMerged_())])
    assert ledger.store.count() == before


def AgentMerged_() -> Payload:  # noqa: N802 - a small factory
    from kei.domain.events import AgentMerged

    return AgentMerged(agent_id="a")


def test_blank_allowed_where_the_schema_default_is_blank() -> None:
    from kei.domain.events import KeyAdded, MemoryForgotten

    assert limits.payload_problem(MemoryForgotten(namespace="n", key="k")) is None
    assert limits.payload_problem(KeyAdded(key_id="k", public_key="p")) is None
    assert limits.payload_problem(MemoryWritten(namespace="n", key="k", value="")) is None
    assert limits.payload_problem(AgentCompleted(agent_id="a", summary="line\n\x1b ok")) is None
    assert limits.payload_problem(AgentForked(agent_id="naïve ✓ a  b", branch="b")) is None


# -- properties ----------------------------------------------------------------------

cost = st.builds(
    CostRecorded,
    agent_id=ID_OK, provider=ID_OK, model=ID_OK, micro_cents=MONEY,
    usage=st.builds(TokenUsage, input_tokens=st.none() | COUNT, output_tokens=st.none() | COUNT,
                    cache_read_tokens=st.none() | COUNT, reasoning_tokens=st.none() | COUNT),
    price_entry_id=st.none() | ID_OK,
    origin=st.none() | st.builds(Origin, source=ID_OK,
                                 occurred_at_us=st.none() | st.integers(0, fields.TIME_MAX)),
)  # fmt: skip
fork = st.builds(
    AgentForked, agent_id=ID_OK, branch=ID_OK, parent_agent_id=st.none() | ID_OK,
    worktree=st.none() | ID_OK,
)  # fmt: skip
outcome = st.builds(
    OutcomeRecorded, agent_id=ID_OK, outcome=st.sampled_from(["functional", "fail"]),
    escalation_depth=st.none() | COUNT, stub_count=st.none() | COUNT,
)  # fmt: skip
skill = st.builds(
    SkillInvoked, skill_name=ID_OK, success=st.booleans(), duration_ms=st.none() | COUNT,
    agent_id=st.none() | ID_OK,
)  # fmt: skip
memory = st.builds(
    MemoryWritten, namespace=ID_OK, key=ID_OK, value=st.text(max_size=50).filter(
        lambda s: "\x00" not in s), kind=ID_OK, tags=st.lists(ID_OK, max_size=3).map(tuple),
)  # fmt: skip
completed = st.builds(
    AgentCompleted, agent_id=ID_OK,
    summary=st.text(min_size=1).filter(lambda s: not s.isspace() and "\x00" not in s),
)  # fmt: skip
ACCEPTED = st.one_of(cost, fork, outcome, skill, memory, completed)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ACCEPTED)
def test_accepted_payloads_round_trip(payload: Payload) -> None:
    assert limits.payload_problem(payload) is None
    name = event_type_of(payload).name
    assert decode_payload(name, encode_payload(payload)) == payload


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    ACCEPTED,
    st.sampled_from(["agent_id", "skill_name", "namespace", "key", "branch"]),
    st.sampled_from(["\x00", "\x1b", "\n", "\r", "\x7f", "\x9b", "\u2028", "   ", ""]),
)
def test_a_bad_identifier_is_always_refused(payload: Payload, field: str, bad: str) -> None:
    if field not in payload.__struct_fields__:
        return
    value = bad if bad.isspace() or not bad else f"ok{bad}ok"
    poisoned = msgspec.structs.replace(payload, **{field: value})
    assert limits.payload_problem(poisoned) is not None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)))
def test_out_of_range_counts_are_always_refused(n: int) -> None:
    for p in (
        SkillInvoked(skill_name="s", success=True, duration_ms=n),
        OutcomeRecorded(agent_id="a", outcome="fail", stub_count=n),
        CostRecorded(agent_id="a", provider="p", model="m", micro_cents=0,
                     usage=TokenUsage(output_tokens=n)),
    ):  # fmt: skip
        assert limits.payload_problem(p) is not None


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(ACCEPTED, min_size=1, max_size=8))
def test_accepted_payloads_fold_in_every_projection(
    tmp_path_factory: pytest.TempPathFactory,
    make_ledger: Callable[[str], Ledger],
    payloads: list[Payload],
) -> None:
    path: Path = tmp_path_factory.mktemp("fold") / "ledger.db"
    url = f"sqlite:///{path}"
    ledger = make_ledger(url)
    ledger.append([NewEvent(f"s{i}", p) for i, p in enumerate(payloads)])
    engine = ProjectionEngine(url, ledger.store, default_projections())
    try:
        engine.catch_up()
        with engine._engine.begin() as conn:
            for name in engine.projections:
                rows = conn.exec_driver_sql(f'SELECT count(*) FROM "{name}_faults"').scalar()
                assert rows == 0, name
    finally:
        engine.close()


def test_fold_on_postgres_of_the_widest_accepted_values(
    pg_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    widest = [
        CostRecorded(agent_id="a" * 256, provider="p", model="m", micro_cents=-(10**15),
                     usage=TokenUsage(input_tokens=fields.INT64_MAX,
                                      output_tokens=fields.INT64_MAX),
                     origin=Origin(source="s", occurred_at_us=fields.TIME_MAX)),
        SkillInvoked(skill_name="s", success=True, duration_ms=fields.INT64_MAX),
        OutcomeRecorded(agent_id="a", outcome="fail", stub_count=fields.INT64_MAX,
                        escalation_depth=fields.INT64_MAX),
        MemoryWritten(namespace="n", key="k", value="v\x1b\n" * 10, tags=("t",) * 3),
    ]  # fmt: skip
    ledger = make_ledger(pg_url)
    ledger.append([NewEvent(f"s{i}", p) for i, p in enumerate(widest)])
    engine = ProjectionEngine(pg_url, ledger.store, default_projections())
    try:
        engine.catch_up()
        with engine._engine.begin() as conn:
            for name in engine.projections:
                rows = conn.exec_driver_sql(f'SELECT count(*) FROM "{name}_faults"').scalar()
                assert rows == 0, name
    finally:
        engine.close()
