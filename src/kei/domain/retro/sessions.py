"""Session retrospectives: what the trace events say about sessions, recomputed, never kept.

Every function here takes trace events and first reduces them to the distinct ones
(one per ``content_hash``), so an answer depends only on the *set* of events: ingest
a file twice, replay the log, shuffle the input, and the answer does not change.
That fixes upstream's weak points (spec §12.7): in-session pattern counts grew on
every run, re-ingest duplicated events, and "duration" was ingest wall-clock time.
Rules (spec §6.4, §6.6–6.8), upstream's unless marked *kei*:

- Retrospective: *kei* duration = last − first trace timestamp; ``events`` counts
  every event (upstream's "Tool calls"), *kei* ``tool_calls`` only those with a tool;
  errors; the 5 top tools and 10 top files; *kei* the count of every class.
  Ties sort by name, so output is stable.
- In-session pattern: a class seen ≥ 2 times in the session, count = occurrences.
  Cross-session pattern: a class seen in ≥ 2 sessions, count = sessions.
- Co-access: each event with a file F, taken in trace time order, pairs F with up to
  10 distinct other files of the same session seen at most 300 s earlier, most
  recent first; each pair ``(min, max)`` counts once per such event, summed over
  sessions. *kei*: events without a timestamp have no place in time and take no part.
- TF-IDF: tokens ``[A-Za-z][A-Za-z0-9_]{2,}``, lower-cased; tf = raw count;
  ``idf = ln((N+1)/(df+1)) + 1`` over the N sessions with at least one token; a query
  token the corpus lacks weighs 1. *kei*: a session's document is its events' text,
  not an optional ``--prompt``; the cosine uses whole document vectors (upstream's
  single-JOIN rewrite left only the query's terms in the document norm). Sessions
  sharing no token with the query are never candidates; scores ≤ 0 are dropped.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Final

from msgspec import Struct

from kei.domain.retro.trace import TraceEvent

__all__ = [
    "CoAccess", "Pattern", "SessionRetro", "Similar",
    "all_patterns", "coaccess_pairs", "distinct", "documents", "idf",
    "patterns_across_sessions", "patterns_in_session", "recent_sessions",
    "retrospective", "similar_sessions", "tokenize", "top_similar",
]  # fmt: skip

COACCESS_WINDOW_US: Final = 300 * 1_000_000
COACCESS_FANOUT: Final = 10
TOP_TOOLS: Final = 5
TOP_FILES: Final = 10
_TOKEN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")

Ranked = tuple[tuple[str, int], ...]


class SessionRetro(Struct, frozen=True):
    """One session's retrospective; times are µs from the trace itself."""

    session: str
    started_us: int | None
    ended_us: int | None
    events: int
    tool_calls: int
    errors: int
    top_tools: Ranked
    top_files: Ranked
    classes: Ranked

    @property
    def duration_us(self) -> int | None:
        if self.started_us is None or self.ended_us is None:
            return None
        return self.ended_us - self.started_us


class Pattern(Struct, frozen=True):
    """A recurring class; ``session`` is ``None`` for a cross-session pattern."""

    event_class: str
    session: str | None
    count: int
    first_seen_us: int | None
    last_seen_us: int | None


class CoAccess(Struct, frozen=True):
    """Two files touched close together in time; ``file_a < file_b``."""

    file_a: str
    file_b: str
    count: int


class Similar(Struct, frozen=True):
    """A session and its cosine similarity to a query, in (0, 1]."""

    session: str
    score: float


def distinct(events: Iterable[TraceEvent]) -> tuple[TraceEvent, ...]:
    """One event per content hash, in trace order (untimed events last)."""
    unique: dict[str, TraceEvent] = {}
    for event in events:
        kept = unique.get(event.content_hash)
        if kept is None or _order(event) < _order(kept):
            unique[event.content_hash] = event
    return tuple(sorted(unique.values(), key=_order))


def retrospective(events: Iterable[TraceEvent], session: str) -> SessionRetro | None:
    """The session's retrospective, or ``None`` when it has no events."""
    mine = [e for e in distinct(events) if e.session == session]
    if not mine:
        return None
    times = [e.ts_us for e in mine if e.ts_us is not None]
    return SessionRetro(
        session=session,
        started_us=min(times, default=None),
        ended_us=max(times, default=None),
        events=len(mine),
        tool_calls=sum(1 for e in mine if e.tool is not None),
        errors=sum(1 for e in mine if e.is_error),
        top_tools=_ranked((e.tool for e in mine if e.tool is not None), TOP_TOOLS),
        top_files=_ranked((e.file_path for e in mine if e.file_path is not None), TOP_FILES),
        classes=_ranked((e.event_class for e in mine), None),
    )


def recent_sessions(events: Iterable[TraceEvent], n: int = 1) -> tuple[str, ...]:
    """The ``n`` sessions with the latest last event (sessions without times last)."""
    last: dict[str, int | None] = {}
    for e in distinct(events):
        if e.ts_us is not None or e.session not in last:
            last[e.session] = e.ts_us  # distinct() puts a session's latest time last
    ordered = sorted(last, key=lambda s: (last[s] is None, -(last[s] or 0), s))
    return tuple(ordered[: max(n, 0)])


def patterns_in_session(events: Iterable[TraceEvent], session: str) -> tuple[Pattern, ...]:
    """Classes occurring at least twice in ``session``, most frequent first."""
    groups = _by_class(e for e in distinct(events) if e.session == session)
    found = [_pattern(c, session, len(g), g) for c, g in groups.items() if len(g) >= 2]
    return tuple(sorted(found, key=lambda p: (-p.count, p.event_class)))


def patterns_across_sessions(events: Iterable[TraceEvent]) -> tuple[Pattern, ...]:
    """Classes seen in at least two sessions; count = number of sessions."""
    groups = _by_class(distinct(events))
    found = []
    for event_class, group in groups.items():
        sessions = len({e.session for e in group})
        if sessions >= 2:
            found.append(_pattern(event_class, None, sessions, group))
    return tuple(sorted(found, key=lambda p: (-p.count, p.event_class)))


def all_patterns(events: Iterable[TraceEvent], limit: int = 50) -> tuple[Pattern, ...]:
    """Every session's in-session patterns, most recently seen first (upstream's list)."""
    unique = distinct(events)
    found = [p for s in sorted({e.session for e in unique}) for p in patterns_in_session(unique, s)]
    found.sort(
        key=lambda p: (
            p.last_seen_us is None,
            -(p.last_seen_us or 0),
            p.event_class,
            p.session or "",
        )
    )
    return tuple(found[: max(limit, 0)])


def coaccess_pairs(events: Iterable[TraceEvent]) -> tuple[CoAccess, ...]:
    """File pairs touched within 300 s of each other, most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    earlier: dict[str, list[TraceEvent]] = defaultdict(list)
    for event in distinct(events):
        if event.file_path is None or event.ts_us is None:
            continue
        seen = earlier[event.session]
        for other in _recent_others(seen, event.file_path, event.ts_us):
            counts[(min(event.file_path, other), max(event.file_path, other))] += 1
        seen.append(event)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(CoAccess(a, b, n) for (a, b), n in ordered)


def tokenize(text: str) -> list[str]:
    """ASCII words of three or more characters, lower-cased (Cyrillic gives none)."""
    return [m.group().lower() for m in _TOKEN.finditer(text)]


def documents(
    events: Iterable[TraceEvent], extra: Mapping[str, str] | None = None
) -> dict[str, Counter[str]]:
    """Term counts per session over its events' text (plus any ``extra`` text)."""
    docs: dict[str, Counter[str]] = defaultdict(Counter)
    for event in distinct(events):
        docs[event.session].update(tokenize(event.text))
    for session, text in (extra or {}).items():
        docs[session].update(tokenize(text))
    return {session: tf for session, tf in sorted(docs.items()) if tf}


def idf(docs: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """``ln((N+1)/(df+1)) + 1`` for every token of the corpus."""
    df: Counter[str] = Counter(token for tf in docs.values() for token in tf if tf[token] > 0)
    n = sum(1 for tf in docs.values() if any(c > 0 for c in tf.values()))
    return {token: math.log((n + 1) / (d + 1)) + 1.0 for token, d in sorted(df.items())}


def top_similar(query: str, docs: Mapping[str, Mapping[str, int]], k: int) -> tuple[Similar, ...]:
    """The ``k`` sessions most like ``query``; ``()`` for a query with no tokens."""
    return _rank(Counter(tokenize(query)), docs, k, exclude=None)


def similar_sessions(
    session: str, docs: Mapping[str, Mapping[str, int]], k: int
) -> tuple[Similar, ...]:
    """The ``k`` other sessions most like ``session``'s own document."""
    return _rank(docs.get(session, {}), docs, k, exclude=session)


def _rank(
    query: Mapping[str, int], docs: Mapping[str, Mapping[str, int]], k: int, exclude: str | None
) -> tuple[Similar, ...]:
    weights = idf(docs)
    q = _vector(query, weights)
    if not q:
        return ()
    scored = []
    for session, tf in docs.items():
        if session == exclude or not any(token in tf for token in q):
            continue
        score = _cosine(q, _vector(tf, weights))
        if score > 0.0:
            scored.append(Similar(session, score))
    scored.sort(key=lambda s: (-s.score, s.session))
    return tuple(scored[: max(k, 0)])


def _vector(tf: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, float]:
    return {t: c * weights.get(t, 1.0) for t, c in sorted(tf.items()) if c > 0}


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    dot = math.fsum(v * b[t] for t, v in a.items() if t in b)
    norm_a = math.sqrt(math.fsum(v * v for v in a.values()))
    norm_b = math.sqrt(math.fsum(v * v for v in b.values()))
    return min(1.0, dot / (norm_a * norm_b)) if norm_a and norm_b else 0.0


def _order(e: TraceEvent) -> tuple[str, bool, int, int, int, str]:
    return (e.session, e.ts_us is None, e.ts_us or 0, e.line_no, e.block, e.content_hash)


def _ranked(values: Iterable[str], limit: int | None) -> Ranked:
    ordered = sorted(Counter(values).items(), key=lambda item: (-item[1], item[0]))
    return tuple(ordered[:limit])


def _by_class(events: Iterable[TraceEvent]) -> dict[str, list[TraceEvent]]:
    groups: dict[str, list[TraceEvent]] = defaultdict(list)
    for event in events:
        groups[event.event_class].append(event)
    return groups


def _pattern(event_class: str, session: str | None, count: int, group: list[TraceEvent]) -> Pattern:
    times = [e.ts_us for e in group if e.ts_us is not None]
    return Pattern(event_class, session, count, min(times, default=None), max(times, default=None))


def _recent_others(seen: list[TraceEvent], path: str, ts_us: int) -> list[str]:
    others: list[str] = []
    for prior in reversed(seen):
        if prior.ts_us is None or prior.ts_us < ts_us - COACCESS_WINDOW_US:
            break
        other = prior.file_path
        if other is not None and other != path and other not in others:
            others.append(other)
            if len(others) == COACCESS_FANOUT:
                break
    return others
