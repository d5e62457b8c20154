"""Skill metrics: upstream's pinned values (spec §1.7, §11) and the ``skills`` projection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kei.adapters.readmodels.db import make_engine
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents import skills as sk
from kei.domain.events import SkillInvoked
from kei.domain.log.keys import SigningKey
from kei.errors import InputError
from kei.projections.skills import Skills

US = 1_000_000
NOW = datetime(2030, 3, 17, 12, 0, tzinfo=UTC)  # upstream fixtures use a future NOW too
NOW_US = int(NOW.timestamp()) * US


def inv(name: str, ok: bool, *, ago_s: int = 0, ms: int | None = 123) -> sk.Invocation:
    return sk.Invocation(name, ok, NOW_US - ago_s * US, ms)


# -- recommendation tiers -------------------------------------------------------

TIERS = [
    ("5-at-95%-insufficient", 5, 0.95, "insufficient"),
    ("10-at-95%-validated", 10, 0.95, "validated"),
    ("20-at-25%-archive", 20, 0.25, "archive"),
    ("20-at-55%-reextract", 20, 0.55, "reextract"),
    ("20-at-80%-insufficient", 20, 0.80, "insufficient"),
    ("9-at-100%-insufficient", 9, 1.0, "insufficient"),
    ("10-at-90%-validated", 10, 0.90, "validated"),
    ("10-at-70%-insufficient", 10, 0.70, "insufficient"),
    ("10-at-30%-reextract", 10, 0.30, "reextract"),
    ("10-at-0%-archive", 10, 0.0, "archive"),
    ("doc-says-validated-needs-21-but-code-says-10", 10, 0.91, "validated"),
    ("doc-says-below-60%-but-code-reextracts-at-65%", 20, 0.65, "reextract"),
]


@pytest.mark.parametrize(
    ("total", "rate", "tier"), [t[1:] for t in TIERS], ids=[t[0] for t in TIERS]
)
def test_recommendation_tiers_follow_upstreams_code(total: int, rate: float, tier: str) -> None:
    assert sk.recommend(total, rate).value == tier


def test_only_archive_is_shouted_in_markdown() -> None:
    labels = {r.value: r.label for r in sk.Recommendation}
    assert labels == {
        "validated": "validated",
        "archive": "ARCHIVE",
        "reextract": "reextract",
        "insufficient": "insufficient",
    }


# -- percentiles by index ---------------------------------------------------------

PERCENTILES = [
    ("upstream-hand-checked-100-to-190", list(range(100, 200, 10)), (140, 190)),
    ("unsorted-input", [190, 100, 170, 110, 150, 130, 120, 180, 160, 140], (140, 190)),
    ("no-durations", [], (0, 0)),
    ("one", [42], (42, 42)),
    ("two-lower-median", [10, 20], (10, 20)),
    ("negatives-clamped-to-zero", [-5, -1, 30], (0, 30)),
    ("twenty-nearest-rank-is-19th", list(range(1, 21)), (10, 19)),
    ("hundred", list(range(1, 101)), (50, 95)),
    ("twenty-one", list(range(1, 22)), (11, 20)),
]


@pytest.mark.parametrize(
    ("durations", "expected"), [p[1:] for p in PERCENTILES], ids=[p[0] for p in PERCENTILES]
)
def test_percentiles_by_index(durations: list[int], expected: tuple[int, int]) -> None:
    assert sk.percentiles(durations) == expected


# -- aggregation -----------------------------------------------------------------


def upstream_seed() -> list[sk.Invocation]:
    """Upstream's fixture: skill_a 16/20 within a day; skill_b 3/5 recent plus 5 wins
    35 days ago; skill_c one win 60 days ago."""
    rows = [inv("skill_a", i < 16, ago_s=i * 3600) for i in range(20)]
    rows += [inv("skill_b", i < 3, ago_s=i * 60) for i in range(5)]
    rows += [inv("skill_b", True, ago_s=35 * 86_400 + i * 60) for i in range(5)]
    rows.append(inv("skill_c", True, ago_s=60 * 86_400))
    return rows


def test_an_empty_window_gives_an_empty_report() -> None:
    assert sk.aggregate([]) == []
    assert sk.aggregate(upstream_seed(), since_us=NOW_US + 1) == []


def test_aggregate_over_everything_is_worst_first() -> None:
    rows = sk.aggregate(upstream_seed())
    assert [(r.skill_name, r.total_invocations, r.wins) for r in rows] == [
        ("skill_a", 20, 16),
        ("skill_b", 10, 8),
        ("skill_c", 1, 1),
    ]
    assert rows[0].success_rate == pytest.approx(0.80)
    assert rows[0].recommendation is sk.Recommendation.INSUFFICIENT
    assert rows[0].last_invoked_us == NOW_US
    assert rows[2].last_invoked_ts == NOW_US // US - 60 * 86_400


def test_the_since_filter_drops_older_invocations() -> None:
    since = sk.parse_since("30d", NOW_US)
    rows = sk.aggregate(upstream_seed(), since_us=since)
    assert [(r.skill_name, r.total_invocations, r.wins) for r in rows] == [
        ("skill_b", 5, 3),
        ("skill_a", 20, 16),
    ]


def test_since_is_inclusive() -> None:
    rows = sk.aggregate([inv("x", True, ago_s=10)], since_us=NOW_US - 10 * US)
    assert len(rows) == 1


def test_ties_in_rate_are_ordered_by_name() -> None:
    rows = sk.aggregate([inv("b", True), inv("a", True), inv("c", False)])
    assert [r.skill_name for r in rows] == ["c", "a", "b"]


def test_unknown_durations_are_left_out_of_percentiles() -> None:
    rows = sk.aggregate([inv("x", True, ms=None), inv("x", True, ms=50), inv("x", False, ms=None)])
    assert (rows[0].p50_duration_ms, rows[0].p95_duration_ms) == (50, 50)
    only_unknown = sk.aggregate([inv("y", True, ms=None)])
    assert (only_unknown[0].p50_duration_ms, only_unknown[0].p95_duration_ms) == (0, 0)


def test_json_form_uses_upstreams_keys() -> None:
    row = sk.aggregate([inv("x", True, ms=7)])[0].to_dict()
    assert row == {
        "skill_name": "x",
        "total_invocations": 1,
        "wins": 1,
        "success_rate": 1.0,
        "p50_duration_ms": 7,
        "p95_duration_ms": 7,
        "last_invoked_ts": NOW_US // US,
        "last_invoked": "2030-03-17T12:00:00Z",
        "recommendation": "insufficient",
    }


# -- input -----------------------------------------------------------------------

SINCE = [
    ("days", "30d", NOW_US - 30 * 86_400 * US),
    ("hours", "12h", NOW_US - 12 * 3600 * US),
    ("minutes", "90m", NOW_US - 90 * 60 * US),
    ("seconds", "45s", NOW_US - 45 * US),
    ("weeks", "2w", NOW_US - 14 * 86_400 * US),
    ("unix-seconds-like-upstream", "1900000000", 1_900_000_000 * US),
    ("date-is-utc-midnight", "2030-03-01", int(datetime(2030, 3, 1, tzinfo=UTC).timestamp()) * US),
    (
        "rfc3339-z",
        "2030-03-01T06:30:00Z",
        int(datetime(2030, 3, 1, 6, 30, tzinfo=UTC).timestamp()) * US,
    ),
    (
        "offset",
        "2030-03-01T06:30:00+02:00",
        int(datetime(2030, 3, 1, 4, 30, tzinfo=UTC).timestamp()) * US,
    ),
]


@pytest.mark.parametrize(("text", "expected"), [s[1:] for s in SINCE], ids=[s[0] for s in SINCE])
def test_parse_since(text: str, expected: int) -> None:
    assert sk.parse_since(text, NOW_US) == expected


@pytest.mark.parametrize("text", ["yesterday", "30 days", "-3d", "", "3x", "2030-13-01"])
def test_bad_since_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="is not a date, a time or a duration"):
        sk.parse_since(text, NOW_US)


@pytest.mark.parametrize(("text", "ok"), [("1", True), ("0", False)])
def test_parse_success(text: str, ok: bool) -> None:
    assert sk.parse_success(text) is ok


@pytest.mark.parametrize("text", ["2", "-1", "true", "yes", ""])
def test_success_outside_0_and_1_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="--success must be 0 or 1"):
        sk.parse_success(text)


def test_upstreams_record_checks() -> None:
    with pytest.raises(InputError, match="skill_name must not be empty"):
        sk.validate_invocation("  ", None)
    with pytest.raises(InputError, match=r"duration_ms must be >= 0"):
        sk.validate_invocation("x", -1)
    sk.validate_invocation("x", 0)
    assert sk.skill_stream("lint") == "skill/lint"


# -- the projection, on both stores ---------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(store_url: str, key: SigningKey) -> Iterator[tuple[Ledger, Clock]]:
    clock = Clock()
    ledger = Ledger.open(store_url, key=key, create=True, clock=clock)
    ledger.init("skills")
    yield ledger, clock
    ledger.close()


def record(ledger: Ledger, name: str, ok: bool, ms: int | None = None) -> None:
    payload = SkillInvoked(skill_name=name, success=ok, duration_ms=ms, agent_id="a-1")
    ledger.append([NewEvent(sk.skill_stream(name), payload)])


def read_report(url: str, skills: Skills, since_us: int = 0) -> list[sk.SkillMetrics]:
    reader = make_engine(url)
    try:
        with reader.connect() as conn:
            return sk.aggregate(skills.invocations(conn, since_us=since_us), since_us=since_us)
    finally:
        reader.dispose()


def test_projection_report_since_and_last_used(
    store_url: str, clocked: tuple[Ledger, Clock]
) -> None:
    ledger, clock = clocked
    clock.now = NOW - timedelta(days=35)
    for _ in range(5):
        record(ledger, "skill_b", True, 500)
    clock.now = NOW
    for i in range(10):
        record(ledger, "skill_b", i < 2, 100 + 10 * i)
    skills = Skills()
    engine = ProjectionEngine(store_url, ledger.store, [skills])
    try:
        engine.catch_up()
        everything = read_report(store_url, skills)
        recent = read_report(store_url, skills, sk.parse_since("30d", NOW_US))
        reader = make_engine(store_url)
        with reader.connect() as conn:
            assert skills.last_used_us(conn, "skill_b") == NOW_US
            assert skills.last_used_us(conn, "missing") is None
        reader.dispose()
    finally:
        engine.close()
    assert [(r.total_invocations, r.wins) for r in everything] == [(15, 7)]
    assert [(r.total_invocations, r.wins) for r in recent] == [(10, 2)]
    assert (recent[0].p50_duration_ms, recent[0].p95_duration_ms) == (140, 190)
    assert recent[0].recommendation is sk.Recommendation.ARCHIVE


def test_incremental_equals_rebuilt(store_url: str, make_ledger: Callable[[str], Ledger]) -> None:
    ledger = make_ledger(store_url)
    engine = ProjectionEngine(store_url, ledger.store, [Skills()], page_size=3)
    try:
        for i in range(7):
            record(ledger, f"s{i % 3}", i % 2 == 0, None if i == 4 else i)
            engine.catch_up()
        incremental = engine.digest("skills")
        engine.rebuild()
        assert engine.digest("skills") == incremental
    finally:
        engine.close()
