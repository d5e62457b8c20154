"""Rules and templates (``kei.domain.notify.rules``): what parses, what matches, and
that every bad rule, however hostile, is one ``InputError`` line naming the file, the
rule and the key, never another exception."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei.app.notify.config import parse_config
from kei.domain.events import AgentFailed, CostRecorded, TokenUsage
from kei.domain.notify.requests import event_trigger, event_values, request
from kei.domain.notify.rules import parse_rules, payload_fields
from kei.domain.notify.template import compile_template
from kei.errors import InputError

GOOD: dict[str, Any] = {
    "id": "fail",
    "on": "agent.failed",
    "channel": "ops",
    "severity": "error",
    "template": {"subject": "Agent {agent_id} failed", "body": "{reason} {{literal}}"},
}


def one(**changes: Any) -> dict[str, Any]:
    rule = {**GOOD, **changes}
    return {k: v for k, v in rule.items() if v is not None}


def values_of(payload: Any, event_type: str, stream: str = "agent/a", version: int = 2) -> Any:
    return event_values(payload, event_type=event_type, stream=stream, version=version,
                        position=9, time="2026-01-01T00:00:00.000000Z")  # fmt: skip


def test_a_rule_renders_its_template_and_names_its_trigger() -> None:
    (rule,) = parse_rules([GOOD], "notify.toml", channels=["ops"])
    values = values_of(AgentFailed(agent_id="a", reason="boom"), "agent.failed")
    assert rule.matches("agent.failed", values)
    trigger = event_trigger(rule, values, stream="agent/a", version=2, ts_us=5)
    req = request(rule, trigger, "slack")
    assert (req.subject, req.body_text) == ("Agent a failed", "boom {literal}")
    assert (req.trigger_stream, req.trigger_version, req.trigger_type) == (
        "agent/a",
        2,
        "agent.failed",
    )
    again = request(
        rule, event_trigger(rule, values, stream="agent/a", version=2, ts_us=99), "slack"
    )
    assert again.notification_id == req.notification_id  # derived from the signed coordinates
    other = request(
        rule, event_trigger(rule, values, stream="agent/a", version=3, ts_us=5), "slack"
    )
    assert other.notification_id != req.notification_id


@pytest.mark.parametrize(
    ("where", "payload", "hit"),
    [
        ({"reason": "boom"}, AgentFailed(agent_id="a", reason="boom"), True),
        ({"reason": {"ne": "boom"}}, AgentFailed(agent_id="a", reason="boom"), False),
        ({"reason": {"in": ["x", "boom"]}}, AgentFailed(agent_id="a", reason="boom"), True),
        ({"micro_cents": {"ge": 100}}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=100), True),
        ({"micro_cents": {"gt": 100}}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=100), False),
        ({"usage.input_tokens": {"gt": 5}}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1, usage=TokenUsage(input_tokens=6)), True),
        ({"usage.input_tokens": {"gt": 5}}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1), False),
        ({"micro_cents": {"lt": "text"}}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1), False),
        ({"unpriced": True}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1), False),
        ({"unpriced": 0}, CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1), False),
    ],
)  # fmt: skip
def test_where_compares_like_with_like(where: dict[str, Any], payload: Any, hit: bool) -> None:
    event_type = "agent.failed" if isinstance(payload, AgentFailed) else "cost.recorded"
    template = {"subject": "x"}
    (rule,) = parse_rules([one(on=event_type, where=where, template=template)], "f")
    assert rule.matches(event_type, values_of(payload, event_type)) is hit


def test_the_notify_types_are_the_registered_ones() -> None:
    from kei.domain.events import REGISTRY
    from kei.domain.events.notify import NOTIFY_TYPES

    assert {n for n in REGISTRY if n.startswith("notify.")} == NOTIFY_TYPES


def test_globs_never_match_notify_events() -> None:
    (rule,) = parse_rules([one(on="*", template={"subject": "x"})], "f")
    assert rule.wants("agent.failed") and rule.wants("cost.recorded")
    assert not rule.wants("notify.failed") and not rule.wants("notify.requested")


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        ({"id": "bad id"}, "id", "letters"),
        ({"on": "notify.failed"}, "on", "loop"),
        ({"on": "agent.nope"}, "on", "matches no event type"),
        ({"on": "check:nope"}, "on", "unknown check"),
        ({"on": []}, "on", "needs"),
        ({"channel": "nope"}, "channel", "no channel named 'nope'"),
        ({"severity": "fatal"}, "severity", "is not one of"),
        ({"template": {"subject": "{agent_id.__class__}"}}, "template.subject", "plain field"),
        ({"template": {"subject": "{agent_id[0]}"}}, "template.subject", "plain field"),
        ({"template": {"subject": "{agent_id!r}"}}, "template.subject", "no conversion"),
        ({"template": {"subject": "{agent_id:>99999}"}}, "template.subject", "format spec"),
        ({"template": {"subject": "{}"}}, "template.subject", "plain field"),
        ({"template": {"subject": "}"}}, "template.subject", "Single"),
        ({"template": {"subject": "{model}"}}, "template.subject", "not a field"),
        ({"template": {"body": "x"}}, "template", "subject"),
        ({"template": {"subject": "x", "html": "y"}}, "template.html", "only subject"),
        ({"where": {"model": "x"}}, "where", "not a field"),
        ({"where": {"reason": {"like": "x"}}}, "where", "unknown operator"),
        ({"where": {"reason": {"gt": True}}}, "where", "compares numbers or text"),
        ({"where": "reason = 1"}, "where", "must be a table"),
        ({"tags": ["ok", ""]}, "tags", "is not a tag"),
        ({"expire_after_s": 0}, "expire_after_s", "whole number"),
        ({"every_s": 60}, "every_s", "not a rule key"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"colour": "red"}, "colour", "not a rule key"),
    ],
)
def test_a_bad_rule_is_one_line_naming_file_rule_and_key(
    changes: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_rules([one(**changes)], "/home/me/.kei/notify.toml", channels=["ops"])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("/home/me/.kei/notify.toml: rule ")
    assert f"key {key}:" in message and says in message


def test_check_rules_take_their_own_keys_and_fields() -> None:
    verify = one(on="check:verify-chain", every_s=600, quick=True,
                 template={"subject": "{kind} at {position}", "body": "{detail} of {findings}"})  # fmt: skip
    stalled = one(id="stall", on="check:stalled-agent", idle_s=120,
                  template={"subject": "{agent_id} quiet {idle_s}s since {last_time}"})  # fmt: skip
    v, s = parse_rules([verify, stalled], "f")
    assert (v.check, v.every_s, v.quick, s.check, s.idle_s) == (
        "check:verify-chain", 600, True, "check:stalled-agent", 120,
    )  # fmt: skip
    with pytest.raises(InputError, match=r"key template\.subject: .*reason"):
        parse_rules([one(on="check:verify-chain", template={"subject": "{reason}"})], "f")


def test_two_rules_with_one_id_are_refused() -> None:
    with pytest.raises(InputError, match="rule 'fail': key id: used by an earlier rule"):
        parse_rules([GOOD, GOOD], "f")


def test_the_shipped_example_parses() -> None:
    raw = resources.files("kei").joinpath("data", "notify.example.toml").read_text()
    data = tomllib.loads(raw)
    fields = payload_fields()
    # budget.threshold.crossed is the budgets work's event: until it is registered, the
    # example's template names the fields its brief gives it.
    fields.setdefault(
        "budget.threshold.crossed",
        frozenset({"scope", "period_key", "threshold_percent", "spent_micro_cents",
                   "limit_micro_cents"}),
    )  # fmt: skip
    rules = parse_rules(data["rules"], "example", fields=fields, channels=data["channels"])
    assert {r.id for r in rules} >= {"agent-failed", "budget-crossed", "tamper", "agent-stalled"}
    assert {r.check for r in rules} == {None, "check:verify-chain", "check:stalled-agent"}


def test_template_values_are_text_never_code() -> None:
    t = compile_template("{a}|{b}|{c}|{d}|{e}|{missing}")
    assert t.render({"a": None, "b": True, "c": (1, "x"), "d": 1.5, "e": {"k": 1}}) == (
        '|true|1, x|1.5|{"k":1}|?'
    )


SCALAR = st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.floats(), st.none())
HOSTILE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
KEYS = st.sampled_from(["id", "on", "where", "channel", "severity", "template", "tags",
                        "enabled", "expire_after_s", "every_s", "idle_s", "quick", "x"])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(KEYS, HOSTILE | st.just("agent.failed"), max_size=8), max_size=3))
def test_hostile_rules_are_one_line_errors(entries: list[dict[str, Any]]) -> None:
    try:
        parse_rules(entries, "notify.toml", channels=["ops"])
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("notify.toml: ")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["notifier", "delivery", "rules", "channels"]), HOSTILE))
def test_hostile_files_are_one_line_errors(data: dict[str, Any]) -> None:
    try:
        parse_config(data, "notify.toml", {})
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("notify.toml: ")
