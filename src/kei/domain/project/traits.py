"""The twelve runtime traits a module may implement, and how well its code fits one.

The table is upstream kei-import-project's (``trait_patterns.rs``: required method
names, indicator keywords, forbidden dependencies) and so is the score::

    confidence = 0.6 × required methods found / required
               + 0.4 × keywords found / keywords

kept from 0.3 (``WEAK``), confident from 0.5 (``CONFIDENT``). What differs is the
evidence the score is given (``Evidence``): upstream counted any ``fn send`` anywhere;
kei's tags matcher gives only methods defined in an implementation (an ``impl``
block, a class, a Go method), never in a trait or interface that declares them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from msgspec import Struct

WEAK: Final = 0.3
CONFIDENT: Final = 0.5


class TraitPattern(Struct, frozen=True):
    """One trait's fingerprint."""

    trait: str
    methods: tuple[str, ...]
    keywords: tuple[str, ...]
    forbidden_deps: tuple[str, ...] = ()


class Evidence(Struct, frozen=True):
    """What a module's code shows: ``methods`` implemented, every other ``names``
    (types, implemented traits, imports, calls) and the crates or packages it uses."""

    methods: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    deps: frozenset[str] = frozenset()


class TraitScore(Struct, frozen=True):
    """One trait's score for one module, with what matched."""

    trait: str
    confidence: float
    methods: tuple[str, ...]
    keywords: tuple[str, ...]


def _p(trait: str, methods: str, keywords: str) -> TraitPattern:
    return TraitPattern(trait, tuple(methods.split()), tuple(keywords.split()))


PATTERNS: Final[tuple[TraitPattern, ...]] = (
    _p("ComputeProvider", "create destroy status provider_name cost_per_hour_microcents",
       "VmSpec VmHandle VmStatus compute provision region tier cloud"),
    _p("AuthProvider", "issue_challenge verify revoke is_passwordless",
       "AuthChallenge AuthSession oauth oidc passwordless magic_link webauthn"),
    _p("NotifyChannel", "send channel_name supports_batching",
       "Notification NotifySeverity telegram discord slack sms email notify"),
    _p("GitBackend", "ensure_repo clone push mirror supports_auto_create",
       "GitRemote CommitMeta forgejo gitea gitlab bitbucket GitAuthKind"),
    _p("LlmBackend",
       "complete backend_name model_name pricing_per_mtok context_window supports_caching "
       "supports_batch",
       "CompletionOpts CompletionResponse ollama llamacpp mlx openai anthropic tokens_input "
       "tokens_output"),
    _p("ServiceManager", "install uninstall start stop status enable_at_boot manager_name",
       "ServiceUnit ServiceStatus RestartPolicy systemd launchd TimerSpec"),
    _p("MemoryBackend", "store query compact mirror_to_remote backend_name",
       "MemoryItem MemoryQuery sqlite redis postgres sled memory rusqlite"),
    _p("Scheduler", "register cancel list next_fire scheduler_name",
       "ScheduledTask ScheduleKind cron schedule jitter on_calendar"),
    _p("NetworkMode", "configure teardown peers is_public mode_name",
       "NetworkConfig PeerStatus wireguard tailscale vpn ipsec openvpn"),
    _p("Backup", "push list restore prune_older_than destination_name",
       "Snapshot backup snapshot prune s3 b2 rclone"),
    _p("CostGuard", "record_spend current reset install guard_name",
       "CostBudget CostVerdict CostScope microcents hard_kill soft_alert"),
    _p("Observability", "log metric flush sink_name supports_structured",
       "LogEvent Metric LogLevel observability otlp prometheus grafana tracing"),
)  # fmt: skip
TRAITS: Final = frozenset(p.trait for p in PATTERNS)


def score(evidence: Evidence, patterns: Iterable[TraitPattern] = PATTERNS) -> list[TraitScore]:
    """Every trait scoring at least ``WEAK``, best first (ties in the table's order, as upstream).

    Keywords are matched as substrings of the names joined (upstream's rule), so
    ``TelegramNotifier`` does not hold ``telegram`` but ``telegram_send`` does.
    """
    joined = " ".join(sorted(evidence.names | evidence.methods))
    found: list[TraitScore] = []
    for p in patterns:
        if any(d in evidence.deps for d in p.forbidden_deps):
            continue
        methods = tuple(m for m in p.methods if m in evidence.methods)
        keywords = tuple(k for k in p.keywords if k in joined)
        confidence = 0.6 * len(methods) / len(p.methods) + 0.4 * len(keywords) / len(p.keywords)
        if confidence >= WEAK:
            found.append(TraitScore(p.trait, confidence, methods, keywords))
    found.sort(key=lambda s: -s.confidence)  # stable: ties keep the table order
    return found
