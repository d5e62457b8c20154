"""The field limits' table: which kind of value each payload field holds, and the
bounds of each kind.

``domain/events/limits.py`` enforces them (its docstring lists the kinds); this
module only declares them, once, as a :class:`Rule` per field name (``_BY_NAME``),
with the few per-type ``_EXCEPTIONS``: a test checks every field of every payload
and nested struct has one. The sizes (characters, items) are in ``kei.limits``;
the ranges of integers here are facts of the formats (a 64-bit column, the last
microsecond of year 9999) or, for money, a bound on sums.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import msgspec
from msgspec import Struct

from kei.limits import LIMITS

struct_fields: Final = cache(msgspec.structs.fields)
"""A struct's fields, worked out once: msgspec evaluates the annotations on each call
(about 0.1 ms each), and building the checkers asks for each struct's fields often."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MONEY_MAX: Final = 10**15
TIME_MAX: Final = 253_402_300_799_999_999
FLOAT_MAX: Final = 1.7976931348623157e308


class Rule(Struct, frozen=True):
    """How one field is checked: its kind, and whether a string may be blank."""

    kind: str
    blank_ok: bool = False

    @property
    def is_string(self) -> bool:
        return self.kind in STRING_MAX

    def describe(self) -> str:
        """The limit in words, as docs/events.md lists it."""
        if self.is_string:
            need = "" if self.blank_ok else ", not blank"
            chars = "no NUL" if self.kind == TEXT else "no control characters"
            return f"{self.kind}: at most {STRING_MAX[self.kind]:,} characters, {chars}{need}"
        low, high = INT_RANGE.get(self.kind, (None, None))
        if low is not None:
            return f"{self.kind}: an integer from {low:,} to {high:,}"
        return {FLOAT: "a finite number", BOOL: "true or false"}.get(self.kind, self.kind)


ID, STREAM, PATH, TEXT = "identifier", "stream", "path", "text"
COUNT, MONEY, TIME, INT, FLOAT, BOOL, ENUM, STRUCT = (
    "count", "money", "time", "integer", "float", "bool", "enum", "struct",
)  # fmt: skip
STRING_MAX: Final = {
    ID: LIMITS.max_id_chars,
    STREAM: LIMITS.max_stream_chars,
    PATH: LIMITS.max_path_chars,
    TEXT: LIMITS.max_text_chars,
}
INT_RANGE: Final = {
    COUNT: (0, INT64_MAX),
    MONEY: (-MONEY_MAX, MONEY_MAX),
    TIME: (0, TIME_MAX),
    INT: (INT64_MIN, INT64_MAX),
}

_id, _id_or_blank, _text, _text_or_blank = Rule(ID), Rule(ID, True), Rule(TEXT), Rule(TEXT, True)
_count, _money, _time, _float, _bool = Rule(COUNT), Rule(MONEY), Rule(TIME), Rule(FLOAT), Rule(BOOL)
_stream, _path, _enum, _struct = Rule(STREAM), Rule(PATH), Rule(ENUM), Rule(STRUCT)

# Fields named alike mean alike in every payload; exceptions are listed per type below.
_BY_NAME: Final[dict[str, Rule]] = {
    # identifiers that need a value when present
    **dict.fromkeys(
        [
            "agent_id",
            "branch",
            "provider",
            "model",
            "dna",
            "parent_dna",
            "ledger_id",
            "key_id",
            "public_key",
            "parent_agent_id",
            "parent_branch",
            "spec_sha",
            "creator",
            "fork_parent",
            "price_entry_id",
            "price_entry_hash",
            "skill_name",
            "trajectory_id",
            "decision_id",
            "policy",
            "fallback",
            "weights_ref",
            "pinned",
            "prompt_sha256",
            "from_model",
            "to_model",
            "call_id",
            "requested_model",
            "backend",
            "capability",
            "finish_reason",
            "namespace",
            "key",
            "kind",
            "tags",
            "ladder",
            "complexity_features",
            "tried",
            "redacted_by",
            "flagged_by",
            "session",
            "speed",
            "content_hash",
            "event_class",
            "tool",
            "rule",
            "source",
            "ref",
            "event_type",
            "fields",
            "args_sha256",
            "period_key",
            "up_sha256",
            "down_sha256",
            "schema_before_sha256",
            "schema_after_sha256",
            "recorded_sha256",
            "actual_sha256",
            "digest",
            "notification_id",
            "rule_id",
            "channel",
            "channel_kind",
            "trigger_type",
            "notifier",
            "request_sha256",
            "provider_status",
            "retry_after_raw",
            "provider_code",
            "project",
            "commit",
            "walker_sha256",
            "module_id",
            "content_sha256",
            "languages",
            "trait",
            "methods",
            "keywords",
            "matcher_version",
            "item_id",
            "phase_id",
            "module_ids",
            "report_sha256",
            "mode",
            "config_sha256",
            "reconciler",
            "backend_version",
            "peer_id",
            "endpoint",
            "addresses",
            "token_id",
            "secret_sha256",
        ],
        _id,
    ),
    # identifiers whose schema default is "" (a key or ledger without a name, no tier)
    **dict.fromkeys(
        [
            "name",
            "key_name",
            "tier",
            "task_class",
            "client_name",
            "client_version",
            "protocol_version",
            "receipt",
        ],
        _id_or_blank,
    ),
    **dict.fromkeys(["stream", "supersedes_stream", "target", "trigger_stream"], _stream),
    **dict.fromkeys(
        ["worktree", "file_path", "cwd", "budget_scope", "manifest_path", "source_path"], _path
    ),
    **dict.fromkeys(["summary", "reason", "rationale", "subject"], _text),
    **dict.fromkeys(["value", "text", "error", "detail", "body_text"], _text_or_blank),
    **dict.fromkeys(
        [
            "supersedes_version",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "cache_write_1h_tokens",
            "duration_ms",
            "escalation_depth",
            "stub_count",
            "tokens_in",
            "tokens_out",
            "n",
            "depth",
            "observations",
            "evaluated",
            "line_no",
            "block",
            "total_us",
            "load_us",
            "prompt_us",
            "generation_us",
            "appended",
            "duration_us",
            "threshold_percent",
            "budget_version",
            "unpriced_events",
            "version",
            "statements_run",
            "from_version",
            "to_version",
            "position",
            "trigger_version",
            "attempt",
            "http_status",
            "latency_us",
            "retry_after_ms",
            "files",
            "sloc",
            "desired_version",
            "allowed_ports",
            "rx_bytes",
            "tx_bytes",
        ],
        _count,
    ),
    **dict.fromkeys(
        ["micro_cents", "expected_cost_micro_cents", "limit_micro_cents", "budget_micro_cents"],
        _money,
    ),
    "spent_micro_cents": Rule(INT),  # a sum of many amounts, each within the money range
    **dict.fromkeys(
        [
            "occurred_at_us",
            "before_us",
            "ts_us",
            "not_after_us",
            "not_before_us",
            "lease_until_us",
            "last_seen_us",
            "expires_us",
        ],
        _time,
    ),
    "seed": Rule(INT),
    "exit_code": Rule(INT),  # negative: ended by a signal
    **dict.fromkeys(
        [
            "q_threshold",
            "delta",
            "lower_bound",
            "complexity_tau",
            "mse",
            "baseline_mse",
            "alpha",
            "beta",
            "sample",
            "role",
            "caps",
            "scope",
            "body",
            "confidence",
            "threshold",
        ],
        _float,
    ),
    **dict.fromkeys(
        [
            "success",
            "exact",
            "require_local",
            "ok",
            "is_error",
            "smoothed",
            "feasible",
            "signed_heads",
            "unpriced",
            "speed_unpriced",
            "over_budget",
            "irreversible",
            "recovered",
            "partial",
            "shadow",
            "retryable",
            "after_in_doubt",
            "in_doubt",
            "is_public",
        ],
        _bool,
    ),
    **dict.fromkeys(
        [
            "outcome",
            "period",
            "direction",
            "phase",
            "resolution",
            "drift",
            "dialect",
            "cause",
            "severity",
            "failure_class",
            "matcher",
            "item",
            "priority",
            "status",
            "state",
            "action",
            "observed",
        ],
        _enum,
    ),
    **dict.fromkeys(["origin", "usage", "weights", "candidates"], _struct),
}
# (payload type name, field) -> rule, where a field departs from its name's rule.
_EXCEPTIONS: Final[dict[tuple[str, str], Rule]] = {
    ("RouteDecided", "dna"): _id_or_blank,  # a prompt may give no DNA segments
    ("RouteDecided", "task_class"): _id_or_blank,
    ("MemoryForgotten", "reason"): _text_or_blank,  # schema default ""
    ("TraceRejected", "source"): _id,
    # a budget's scope: `project:` and a path, or a kind and an identifier (not a weight)
    **{(t, "scope"): _path for t in ("BudgetSet", "BudgetCleared", "ThresholdCrossed")},
    ("NotifySuppressed", "reason"): _enum,  # a closed list of reasons, not prose
    ("NotifyAbandoned", "reason"): _enum,
    ("NotifyRequeued", "reason"): _text_or_blank,  # schema default ""
    ("ProjectImportStarted", "source"): _path,  # a path or URL, as long as a path may be
    ("ModuleUnreadable", "error"): _text,
    ("NetPeerDisappeared", "reason"): _enum,
    ("NetModeDesired", "config_sha256"): _id_or_blank,  # "" for a down intent
    ("NetModeConfigureFailed", "stderr_tail"): _text_or_blank,
    ("TokenCreated", "name"): _id,  # tokens are revoked and listed by name
    ("TokenCreated", "scope"): _enum,  # read | write | admin, not a weight
}


def rule_for(struct: type[msgspec.Struct], field: str) -> Rule:
    """The rule of ``field`` of ``struct``; KeyError for a field no rule covers."""
    return _EXCEPTIONS.get((struct.__name__, field)) or _BY_NAME[field]
